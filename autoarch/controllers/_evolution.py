from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from autoarch._compat import (
    distribution_contains,
    search_space_transform,
    set_trial_system_attr,
    storage_of,
    study_id,
    trial_id,
)
from autoarch.controllers._base import DefineByRunSampler
from autoarch.pareto import STOPPED_AT, crowding_distance, gains, nondominated_rank

__all__ = ["EvolutionSampler"]

_PARENT_KEY = "evolution:parent"
_TARGET_KEY = "evolution:mutate"
_OTHER_PARENT_KEY = "evolution:parent2"


class EvolutionSampler(DefineByRunSampler):
    """Regularized (aging) evolution (Real et al., 2019) as an optuna sampler.

    The population is the ``population_size`` most recently *created* complete trials of the study, so the
    oldest model dies whatever its score (aging). For each new trial, ``sample_size`` members are drawn at
    random, the best becomes the parent, and the child copies the parent's parameters except one, picked at
    random and mutated; every other inherited parameter is also mutated with probability ``mutation_prob``.
    Parameters that the parent lacks (a conditional branch that opens only in the child, e.g. the width of a
    new layer) are sampled at random. Until the population is full, trials are sampled at random.

    A child that would repeat the parameters of a trial already in the study is mutated again (up to
    ``max_retries`` times): on a discrete space, a repeated architecture wastes a query. With probability
    ``crossover_prob`` (off by default) a second parent is picked by another tournament and the child first
    takes each parameter from either parent with equal probability (uniform crossover), then mutates.

    Multi-fidelity: a trial that a pruner stopped after some epochs (PRUNED, with intermediate values) is a
    member of the population too, ranked by its fidelity first and its last reported value second: a complete
    trial beats any pruned one, a trial pruned after 9 epochs beats one pruned after 3 (successive halving
    promoted it), and equal fidelities compare by value. Without this, a search whose pruner stops most
    candidates early would rarely fill its population and would stay random. Trials rejected before training
    (no intermediate value) are not members. In a multi-objective study optuna records neither values nor
    intermediate values of a pruned trial; autoarch's Pareto early stopping stores the values at the step it
    stopped as the user attribute :data:`~autoarch.pareto.STOPPED_AT`, and such a trial is a member likewise.

    Multi-objective (a study with several ``directions``): Pareto selection. The tournament's winner is the
    contender of the highest fidelity (complete, else stopped later), then of the lowest non-domination rank
    among the population's members of that fidelity, and among equal ranks the one of the
    largest crowding distance in its front (NSGA-II's diversity measure), so the population spreads along the
    front instead of crowding at one end; contenders still tied (both ends of a front have an infinite distance)
    are drawn at random, so both ends grow; the population still ages.

    All state is derived from the study's trials, and the parents and mutated parameter are stored in each
    trial's system attributes, so several workers on one storage and a resumed study behave correctly.

    ``make_sampler("evolution", ...)`` gives the settings tuned on NAS-Bench-201 and HPOLib (a tournament of
    the whole population, ``mutation_prob=0``); the constructor's defaults are the classic ones.

    Args:
        population_size: number of trials in the population (P).
        sample_size: tournament size (S), ``2 <= S <= P``.
        mutation_prob: extra per-parameter mutation probability; ``None`` means ``1 / n_params`` of the parent.
        crossover_prob: probability that a child has two parents, in ``[0, 1]``.
        max_retries: how many times a child that repeats an earlier trial is mutated again, ``>= 0``.
        seed: seed of the random number generator.

    Example:
        >>> import optuna
        >>> from autoarch.controllers import EvolutionSampler
        >>> study = optuna.create_study(sampler=EvolutionSampler(population_size=8, sample_size=3, seed=0))
        >>> study.optimize(lambda t: (t.suggest_float("x", -5, 5) - 1) ** 2, n_trials=30)
    """

    def __init__(self, population_size: int = 20, sample_size: int = 5, mutation_prob: float | None = None,
                 crossover_prob: float = 0.0, max_retries: int = 10, seed: int | None = None) -> None:
        if population_size < 2:
            raise ValueError(f"`population_size >= 2` must hold, but got {population_size=}.")
        if not 2 <= sample_size <= population_size:
            raise ValueError(f"`2 <= sample_size <= population_size` must hold, but got ({sample_size=}, "
                             f"{population_size=}).")
        if mutation_prob is not None and not 0.0 <= mutation_prob <= 1.0:
            raise ValueError(f"`0 <= mutation_prob <= 1` must hold, but got {mutation_prob=}.")
        if not 0.0 <= crossover_prob <= 1.0:
            raise ValueError(f"`0 <= crossover_prob <= 1` must hold, but got {crossover_prob=}.")
        if max_retries < 0:
            raise ValueError(f"`max_retries >= 0` must hold, but got {max_retries=}.")
        self.population_size = population_size
        self.sample_size = sample_size
        self.mutation_prob = mutation_prob
        self.crossover_prob = crossover_prob
        self.max_retries = max_retries
        self._rng = np.random.RandomState(seed)
        self._random_sampler = RandomSampler(seed=seed)
        self._lock = threading.Lock()
        # trial id -> the child's planned parameter values (None: sample at random)
        self._plans: dict[int, dict[str, Any] | None] = {}
        # trial number -> its parameters as a set, for finished trials (their parameters never change)
        self._seen: dict[int, frozenset[tuple[str, Any]]] = {}
        self._seen_study: tuple[int, int] | None = None  # (storage, study id) that _seen belongs to

    def reseed_rng(self) -> None:
        self._rng.seed()
        self._random_sampler.reseed_rng()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        several = len(study.directions) > 1
        members = [t for t in trials if t.state == TrialState.COMPLETE or (t.state == TrialState.PRUNED and (
                   STOPPED_AT in t.user_attrs if several else t.intermediate_values))]
        if len(members) < self.population_size:
            with self._lock:
                self._plans[trial_id(trial)] = None
            return
        population = sorted(members, key=lambda t: t.number)[-self.population_size:]
        with self._lock:
            fitness = _fitness(population, study.directions)
            # several objectives: both ends of a front have infinite crowding distance, a tie
            parent = self._tournament(population, fitness, several)
            other = None
            if self.crossover_prob > 0.0 and self._rng.rand() < self.crossover_prob:
                others = [i for i, t in enumerate(population) if t is not parent]
                other = self._tournament([population[i] for i in others], [fitness[i] for i in others], several)
            if self._seen_study != (id(storage_of(study)), study_id(study)):
                self._seen_study, self._seen = (id(storage_of(study)), study_id(study)), {}
            seen = self._existing(trials, trial.number)
            for _ in range(self.max_retries + 1):
                base, dists = dict(parent.params), dict(parent.distributions)
                if other is not None:  # uniform crossover; a parameter only one parent has comes from it
                    for name in sorted(other.params):
                        if name not in base or self._rng.rand() < 0.5:
                            base[name], dists[name] = other.params[name], other.distributions[name]
                target, plan = self._mutate_all(base, dists)
                if frozenset(plan.items()) not in seen:
                    break
            self._plans[trial_id(trial)] = plan
        set_trial_system_attr(study, trial, _PARENT_KEY, parent.number)
        if other is not None:
            set_trial_system_attr(study, trial, _OTHER_PARENT_KEY, other.number)
        if target is not None:
            set_trial_system_attr(study, trial, _TARGET_KEY, target)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        with self._lock:
            plan = self._plans.get(trial_id(trial))
        if plan is None or param_name not in plan:
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        value = plan[param_name]
        if not _contains(param_distribution, value):
            # The parameter's range changed (a dynamic search space): the inherited value no longer fits.
            return self._random_sampler.sample_independent(study, trial, param_name, param_distribution)
        return value

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: list[float] | None
                    ) -> None:
        with self._lock:
            self._plans.pop(trial_id(trial), None)

    def _tournament(self, population: list[FrozenTrial], fitness: list[tuple[float, ...]],
                    break_ties: bool = False) -> FrozenTrial:
        """The fittest of ``sample_size`` members drawn without replacement (caller holds the lock). Equally fit
        contenders go to the oldest, or with ``break_ties`` to one drawn at random."""
        size = min(self.sample_size, len(population))
        contenders = sorted(self._rng.choice(len(population), size, replace=False))
        best = max(fitness[i] for i in contenders)
        tied = [i for i in contenders if fitness[i] == best]
        if break_ties and len(tied) > 1:
            return population[tied[self._rng.randint(len(tied))]]
        return population[tied[0]]

    def _mutate_all(self, base: dict[str, Any], dists: dict[str, BaseDistribution]
                    ) -> tuple[str | None, dict[str, Any]]:
        """The mutated parameter and the child's values: ``base`` with one parameter mutated, and each other
        with probability ``mutation_prob`` (caller holds the lock)."""
        names = sorted(base)
        target = names[self._rng.randint(len(names))] if names else None
        rate = self.mutation_prob if self.mutation_prob is not None else 1.0 / max(1, len(names))
        plan = {}
        for name in names:
            mutate = name == target or self._rng.rand() < rate
            plan[name] = self._mutate(base[name], dists[name]) if mutate else base[name]
        return target, plan

    def _existing(self, trials: list[FrozenTrial], number: int) -> set[frozenset[tuple[str, Any]]]:
        """The parameter sets of the study's other trials (caller holds the lock)."""
        out = set()
        for t in trials:
            if t.number == number:
                continue
            params = self._seen.get(t.number)
            if params is None:
                try:
                    params = frozenset(t.params.items())
                except TypeError:  # an unhashable value (a hand-made trial): never a duplicate
                    continue
                if t.state.is_finished():
                    self._seen[t.number] = params
            out.add(params)
        return out

    def _mutate(self, value: Any, dist: BaseDistribution) -> Any:
        """A different value: another choice of a categorical, a Gaussian step (in log space where the
        distribution is log-scaled) of a numerical parameter."""
        if isinstance(dist, CategoricalDistribution):
            others = [c for c in dist.choices if c != value]
            return others[self._rng.randint(len(others))] if others else value
        space = {"p": dist}
        trans = search_space_transform(space, transform_0_1=True)
        x = trans.transform({"p": value})
        for _ in range(8):
            new = trans.untransform(np.clip(x + self._rng.normal(0.0, 0.2, size=x.shape), 0.0, 1.0))["p"]
            if new != value:
                return new
        return trans.untransform(self._rng.uniform(0.0, 1.0, size=x.shape))["p"]


def _fitness(population: list[FrozenTrial], directions: list[StudyDirection]) -> list[tuple[float, ...]]:
    """Larger is fitter: :func:`_rank` for a single objective; for several (fidelity, minus the non-domination
    rank, crowding distance in its front), ranks and fronts among the members of one fidelity: a complete trial's
    values, a stopped one's at the step it stopped (:data:`~autoarch.pareto.STOPPED_AT`)."""
    if len(directions) == 1:
        sign = 1.0 if directions[0] == StudyDirection.MAXIMIZE else -1.0
        return [_rank(t, sign) for t in population]
    fidelity = np.array([math.inf if t.state == TrialState.COMPLETE else float(t.user_attrs[STOPPED_AT]["step"])
                         for t in population])
    g = gains([t.values if t.state == TrialState.COMPLETE else t.user_attrs[STOPPED_AT]["values"]
               for t in population], directions)
    rank, crowding = np.zeros(len(population)), np.zeros(len(population))
    for level in np.unique(fidelity):
        same = np.flatnonzero(fidelity == level)
        rank[same] = nondominated_rank(g[same])
        for r in np.unique(rank[same]):
            members = same[rank[same] == r]
            crowding[members] = crowding_distance(g[members])
    return [(float(f), -float(r), float(c)) for f, r, c in zip(fidelity, rank, crowding, strict=True)]


def _rank(trial: FrozenTrial, sign: float) -> tuple[float, float]:
    """(fidelity, signed value): a complete trial has infinite fidelity, a pruned one its last reported step."""
    if trial.state == TrialState.COMPLETE:
        return math.inf, sign * float(trial.value)
    step = max(trial.intermediate_values)
    value = sign * float(trial.intermediate_values[step])
    return float(step), -math.inf if math.isnan(value) else value  # an undefined score never wins


def _contains(dist: BaseDistribution, value: Any) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return distribution_contains(dist, dist.to_internal_repr(value))
