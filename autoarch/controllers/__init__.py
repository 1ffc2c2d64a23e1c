"""NAS controllers. Every controller is an optuna sampler.

``evolution`` (regularized/aging evolution, :class:`EvolutionSampler`) is written here; ``random``, ``tpe``
and ``grid`` are optuna's own samplers.
"""

from __future__ import annotations

from typing import Any

import optuna

from autoarch.controllers._evolution import EvolutionSampler
from autoarch.exceptions import ConfigError, did_you_mean

__all__ = ["EvolutionSampler", "CONTROLLERS", "make_sampler"]

CONTROLLERS = ("evolution", "random", "tpe", "grid")


def make_sampler(name: str, *, seed: int | None, n_trials: int = 50,
                 grid: dict[str, list[Any]] | None = None) -> optuna.samplers.BaseSampler:
    """The sampler of controller ``name``, sized for a budget of ``n_trials`` trials.

    Evolution's population is a third of the budget (4 to 20) with a tournament of a quarter of the
    population (at least 2); TPE samples the first ``min(10, n_trials // 3)`` trials at random.
    """
    if name == "evolution":
        population = max(4, min(20, n_trials // 3))
        return EvolutionSampler(population_size=population, sample_size=max(2, population // 4), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, n_trials // 3)),
                                          multivariate=True, group=True)
    if name == "grid":
        if grid is None:
            raise ConfigError("the grid controller needs the search space's grid.")
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise ConfigError(f"controller must be one of {list(CONTROLLERS)}, but got {name!r}.{did_you_mean(name, CONTROLLERS)}")
