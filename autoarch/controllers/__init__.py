"""NAS controllers. Every controller is an optuna sampler.

``evolution`` (regularized/aging evolution, :class:`EvolutionSampler`) and ``reinforce`` (policy gradient,
:class:`ReinforceSampler`) are written here; ``random`` is optuna's random sampler with per-trial seeds
(:class:`TrialSeededRandomSampler`); ``tpe``, ``nsga2`` and ``grid`` are optuna's own samplers. A user's own
controller is any optuna sampler class, given by import path (``--controller mypkg.samplers:MySampler``).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import optuna

from autoarch.config import CONTROLLERS
from autoarch.controllers._evolution import EvolutionSampler
from autoarch.controllers._random import TrialSeededRandomSampler
from autoarch.controllers._reinforce import ReinforceSampler
from autoarch.exceptions import ConfigError, did_you_mean
from autoarch.imports import import_class

__all__ = ["EvolutionSampler", "ReinforceSampler", "TrialSeededRandomSampler", "CONTROLLERS", "make_sampler",
           "import_sampler"]



def make_sampler(name: str, *, seed: int | None, n_trials: int = 50,
                 grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of controller ``name``, sized for a budget of ``n_trials`` trials.

    Sizes and rates were tuned on NAS-Bench-201 CIFAR-10 and HPOLib FCNet (``benchmarks/controllers.py``):
    evolution's population is a third of the budget (4 to 20), its tournament is the whole population
    (the parent is the best of the ``P`` youngest trials) and a child differs from its parent in exactly one
    parameter; REINFORCE uses :class:`ReinforceSampler`'s defaults; NSGA-II's population is a tenth of the
    budget (10 to 50); TPE samples the first ``min(10, n_trials // 3)`` trials at random.
    """
    if name == "evolution":
        population = max(4, min(20, n_trials // 3))
        return EvolutionSampler(population_size=population, sample_size=population, mutation_prob=0.0,
                                seed=seed)
    if name == "reinforce":
        return ReinforceSampler(seed=seed)
    if name == "random":
        return TrialSeededRandomSampler(seed=seed)
    if name == "tpe":
        with warnings.catch_warnings():  # multivariate/group are "experimental" in optuna: a warning on every run
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, n_trials // 3)),
                                              multivariate=True, group=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=max(10, min(50, n_trials // 10)), seed=seed)
    if name == "grid":
        if grid is None:
            raise ConfigError("the grid controller needs the search space's grid.")
        return optuna.samplers.GridSampler(grid, seed=seed)
    if ":" in name:  # a user's sampler class, by import path
        cls = import_sampler(name)
        return cls(seed=seed) if "seed" in inspect.signature(cls).parameters else cls()
    raise ConfigError(f"controller must be one of {list(CONTROLLERS)} or an import path 'module:Class', but got "
                      f"{name!r}.{did_you_mean(name, CONTROLLERS)}")


def import_sampler(path: str) -> type[optuna.samplers.BaseSampler]:
    """A user's controller: the optuna sampler class at ``path`` (``module:Class``), built with ``seed=`` when its
    ``__init__`` takes one (ConfigError in one line when it does not import or is not a sampler)."""
    return import_class(path, optuna.samplers.BaseSampler, "controller", ConfigError,
                        "give a subclass of optuna.samplers.BaseSampler")
