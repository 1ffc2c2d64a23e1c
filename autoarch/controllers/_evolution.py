from __future__ import annotations

import threading
from typing import Any

import numpy as np
from optuna._transform import _SearchSpaceTransform
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["EvolutionSampler"]

_PARENT_KEY = "evolution:parent"
_TARGET_KEY = "evolution:mutate"


class EvolutionSampler(BaseSampler):
    """Regularized (aging) evolution (Real et al., 2019) as an optuna sampler.

    The population is the ``population_size`` most recently *created* complete trials of the study, so the
    oldest model dies whatever its score (aging). For each new trial, ``sample_size`` members are drawn at
    random, the best becomes the parent, and the child copies the parent's parameters except one, picked at
    random and mutated; every other inherited parameter is also mutated with probability ``mutation_prob``.
    Parameters that the parent lacks (a conditional branch that opens only in the child, e.g. the width of a
    new layer) are sampled at random. Until the population is full, trials are sampled at random.

    All state is derived from the study's trials, and the parent and mutated parameter are stored in each
    trial's system attributes, so several workers on one storage and a resumed study behave correctly.

    Args:
        population_size: number of trials in the population (P).
        sample_size: tournament size (S), ``2 <= S <= P``.
        mutation_prob: extra per-parameter mutation probability; ``None`` means ``1 / n_params`` of the parent.
        seed: seed of the random number generator.

    Example:
        >>> import optuna
        >>> from autoarch.controllers import EvolutionSampler
        >>> study = optuna.create_study(sampler=EvolutionSampler(population_size=8, sample_size=3, seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=30)
    """

    def __init__(self, population_size: int = 20, sample_size: int = 5, mutation_prob: float | None = None,
                 seed: int | None = None) -> None:
        if population_size < 2:
            raise ValueError(f"`population_size >= 2` must hold, but got {population_size=}.")
        if not 2 <= sample_size <= population_size:
            raise ValueError(f"`2 <= sample_size <= population_size` must hold, but got ({sample_size=}, "
                             f"{population_size=}).")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"`0 <= mutation_prob <= 1` must hold, but got {mutation_prob=}.")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_prob = mutation_prob
        self._rng = np.random.RandomState(seed)
        self._random_sampler = RandomSampler(seed=seed)
        self._lock = threading.Lock()
        self._parents: dict[int, tuple[FrozenTrial | None, str | None]] = {}

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random_sampler.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
                        ) -> dict[str, Any]:
        self._raise_error_if_multi_objective(study)
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._raise_error_if_multi_objective(study)
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(complete) < self.population_size:
            with self._lock:
                self._parents[trial._trial_id] = (None, None)
            return
        population = sorted(complete, key=lambda t: t.number)[-self.population_size:]
        with self._lock:
            contenders = self._rng.choice(len(population), self.sample_size, replace=False)
        pick = max if study.direction == StudyDirection.MAXIMIZE else min
        parent = pick((population[i] for i in sorted(contenders)), key=lambda t: float(t.value))
        names = sorted(parent.params)
        with self._lock:
            target = names[self._rng.randint(len(names))] if names else None
            self._parents[trial._trial_id] = (parent, target)
        study._storage.set_trial_system_attr(trial._trial_id, _PARENT_KEY, parent.number)
        if target is not None:
            study._storage.set_trial_system_attr(trial._trial_id, _TARGET_KEY, target)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        self._raise_error_if_multi_objective(study)
        with self._lock:
            parent, target = self._parents.get(trial._trial_id, (None, None))
        if parent is None or param_name not in parent.params:
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        value = parent.params[param_name]
        if not _contains(param_distribution, value):
            # The parameter's range changed (a dynamic search space): the inherited value no longer fits.
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        rate = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(1, len(parent.params))
        with self._lock:
            mutate = param_name == target or self._rng.rand() < rate
            return self._mutate(value, param_distribution) if mutate else value

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: list[float] | None
                    ) -> None:
        with self._lock:
            self._parents.pop(trial._trial_id, None)

    def _mutate(self, value: Any, dist: BaseDistribution) -> Any:
        """A different value: another choice of a categorical, a Gaussian step (in log space where the
        distribution is log-scaled) of a numerical parameter."""
        if isinstance(dist, CategoricalDistribution):
            others = [c for c in dist.choices if c != value]
            return others[self._rng.randint(len(others))] if others else value
        space = {"p": dist}
        trans = _SearchSpaceTransform(space, transform_0_1=True)
        x = trans.transform({"p": value})
        for _ in range(8):
            new = trans.untransform(np.clip(x + self._rng.normal(0.0, 0.2, size=x.shape), 0.0, 1.0))["p"]
            if new != value:
                return new
        return trans.untransform(self._rng.uniform(0.0, 1.0, size=x.shape))["p"]


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist._contains(dist.to_internal_repr(value))
