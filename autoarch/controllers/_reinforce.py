from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from autoarch._compat import (
    search_space_transform,
    set_trial_system_attr,
    storage_of,
    study_id,
    trial_id,
)
from autoarch.controllers._base import DefineByRunSampler
from autoarch.pareto import gains

__all__ = ["ReinforceSampler"]

_HISTORY_KEY = "reinforce:history"
# A discrete parameter with at most this many values gets one action per value; wider ones are binned.
_MAX_ACTIONS = 32
# Every this many replayed trials the policy is checkpointed, so that a trial completing out of order (another
# worker's) costs a replay from the checkpoint before it instead of from the start.
_CHECKPOINT_EVERY = 64


class _Actions:
    """The actions of one parameter: its choices, its discrete values, or bins of its (log-)range."""

    def __init__(self, dist: BaseDistribution, n_bins: int) -> None:
        self.dist = dist
        self.values: list[Any] | None = None
        self.trans: Any = None  # optuna's search-space transform (autoarch._compat)
        if isinstance(dist, CategoricalDistribution):
            self.n = len(dist.choices)
            return
        assert isinstance(dist, (IntDistribution, FloatDistribution))
        if dist.step is not None and not dist.log:
            count = int(round((dist.high - dist.low) / dist.step)) + 1
            if count <= _MAX_ACTIONS:
                self.values = [dist.low + i * dist.step for i in range(count)]
                if isinstance(dist, IntDistribution):
                    self.values = [int(v) for v in self.values]
                else:  # the same rounding as optuna's, so that values are exact multiples of the step
                    self.values = [float(np.clip(round(v, 12), dist.low, dist.high)) for v in self.values]
        elif isinstance(dist, IntDistribution) and dist.high - dist.low + 1 <= _MAX_ACTIONS:  # log ints
            self.values = list(range(dist.low, dist.high + 1))
        if self.values is not None:
            self.n = len(self.values)
        else:
            self.trans = search_space_transform({"p": dist}, transform_0_1=True)
            self.n = n_bins

    def index(self, value: Any) -> int:
        """The action that produced ``value``."""
        if isinstance(self.dist, CategoricalDistribution):
            return int(self.dist.to_internal_repr(value))
        if self.values is not None:
            return int(np.argmin([abs(v - value) for v in self.values]))
        assert self.trans is not None
        u = float(self.trans.transform({"p": value})[0])
        return min(self.n - 1, max(0, int(u * self.n)))

    def value(self, action: int, rng: np.random.RandomState) -> Any:
        """A value of ``action``: the choice or value itself, or a uniform draw inside the bin."""
        if isinstance(self.dist, CategoricalDistribution):
            return self.dist.to_external_repr(action)
        if self.values is not None:
            return self.values[action]
        assert self.trans is not None
        u = (action + rng.uniform()) / self.n
        return self.trans.untransform(np.array([u]))["p"]


@dataclass
class _Policy:
    """Logits per (parameter, distribution), the reward baseline, and the replayed history."""

    logits: dict[tuple[str, BaseDistribution], np.ndarray] = field(default_factory=dict)
    baseline: float | None = None
    scores: list[float] = field(default_factory=list)  # sorted, larger is better
    numbers: list[int] = field(default_factory=list)  # trial numbers replayed, in order
    vectors: list[np.ndarray] = field(default_factory=list)  # multi-objective: the gains replayed, in order

    def copy(self) -> _Policy:
        return _Policy({k: v.copy() for k, v in self.logits.items()}, self.baseline, list(self.scores),
                       list(self.numbers), list(self.vectors))


class ReinforceSampler(DefineByRunSampler):
    """A policy-gradient (REINFORCE) controller as an optuna sampler.

    The policy is a softmax over the actions of each parameter, independent across parameters: the choices
    of a categorical, the values of a discrete int / stepped float with at most 32 values, or ``n_bins`` equal
    bins of the (log-)range of any other numerical parameter (a value is then drawn uniformly inside the bin).
    Each completed trial is a REINFORCE step on the actions it took, with reward = the fraction of the earlier
    completed trials it beats (so any objective scale and direction gives rewards in [0, 1]), a moving-average
    baseline (``baseline_decay``) and an entropy bonus (``entropy_weight``) that keeps the policy exploring.
    Failed and pruned trials do not update the policy.

    Multi-objective (a study with several ``directions``): the reward scalarises the objectives with random
    Chebyshev weights drawn per trial (a Dirichlet(1, ..., 1) draw seeded by the trial number, so every worker
    replays the same weights): every objective is scaled to [0, 1] over the trials replayed so far, the trial's
    distance to the ideal point is ``max_k w_k (1 - z_k)``, and its reward is the fraction of the earlier
    completed trials farther from it. Over many trials the weights sweep the whole front.

    The policy is *derived* from the study: it is the replay, in trial-number order, of the study's completed
    trials, so several workers on one storage, and a study resumed by a fresh sampler, continue from the same
    policy. Each trial records in its system attributes how many completed trials its policy was built from.
    Replay is incremental (and checkpointed for trials that complete out of order), so the overhead per trial
    stays well under a millisecond for single-worker studies of a thousand trials.

    The defaults were tuned on NAS-Bench-201 CIFAR-10 and the four HPOLib FCNet tables
    (``benchmarks/controllers.py --tune``; figures in BENCHMARKS.md).

    Args:
        learning_rate: step size of the policy's logits.
        baseline_decay: decay of the reward's exponential moving average, in ``[0, 1)``.
        entropy_weight: weight of the entropy bonus, ``>= 0``.
        n_bins: number of bins of a continuous or wide numerical parameter, ``>= 2``.
        seed: seed of the random number generator.

    Example:
        >>> import optuna
        >>> from autoarch.controllers import ReinforceSampler
        >>> study = optuna.create_study(sampler=ReinforceSampler(seed=0))
        >>> study.optimize(lambda t: (t.suggest_int("x", -5, 5) - 1) ** 2, n_trials=30)
    """

    def __init__(self, learning_rate: float = 1.5, baseline_decay: float = 0.9, entropy_weight: float = 0.1,
                 n_bins: int = 10, seed: int | None = None) -> None:
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate > 0` must hold, but got {learning_rate=}.")
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"`0 <= baseline_decay < 1` must hold, but got {baseline_decay=}.")
        if not entropy_weight >= 0.0:
            raise ValueError(f"`entropy_weight >= 0` must hold, but got {entropy_weight=}.")
        if n_bins < 2:
            raise ValueError(f"`n_bins >= 2` must hold, but got {n_bins=}.")
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.entropy_weight = entropy_weight
        self.n_bins = n_bins
        self._rng = np.random.RandomState(seed)
        self._lock = threading.Lock()
        self._actions: dict[BaseDistribution, _Actions] = {}
        self._policy = _Policy()
        self._checkpoints: list[_Policy] = [_Policy()]  # policy after 0, 64, 128, ... replayed trials
        self._study: tuple[int, int] | None = None  # (storage, study id) the policy belongs to
        self._synced: int | None = None  # id of the trial whose policy is current

    def reseed_rng(self) -> None:
        self._rng.seed()

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        with self._lock:
            self._sync(study, trial)
            n_history = len(self._policy.numbers)
        set_trial_system_attr(study, trial, _HISTORY_KEY, n_history)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        with self._lock:
            if self._synced != trial_id(trial):
                self._sync(study, trial)
            actions = self._actions_of(param_distribution)
            logits = self._policy.logits.get((param_name, param_distribution))
            if logits is None or actions.n == 1:
                action = self._rng.randint(actions.n)
            else:
                action = int(self._rng.choice(actions.n, p=_softmax(logits)))
            return actions.value(action, self._rng)

    def _actions_of(self, dist: BaseDistribution) -> _Actions:
        if dist not in self._actions:
            self._actions[dist] = _Actions(dist, self.n_bins)
        return self._actions[dist]

    def _sync(self, study: Study, trial: FrozenTrial) -> None:
        """Bring the policy up to date with the study's completed trials (caller holds the lock)."""
        if self._study != (id(storage_of(study)), study_id(study)):
            self._study = (id(storage_of(study)), study_id(study))
            self._policy, self._checkpoints = _Policy(), [_Policy()]
        done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
        numbers = self._policy.numbers
        common = 0
        limit = min(len(numbers), len(done))
        while common < limit and numbers[common] == done[common].number:
            common += 1
        if common < len(numbers):  # a trial completed out of order: go back to the checkpoint before it
            del self._checkpoints[common // _CHECKPOINT_EVERY + 1:]
            self._policy = self._checkpoints[-1].copy()
        for t in done[len(self._policy.numbers):]:
            self._update(t, gains(t.values, study.directions)[0])
            if len(self._policy.numbers) % _CHECKPOINT_EVERY == 0:
                self._checkpoints.append(self._policy.copy())
        self._synced = trial_id(trial)

    def _update(self, trial: FrozenTrial, gain: np.ndarray) -> None:
        """One REINFORCE step on the actions ``trial`` took (reward = quantile of its score; of its Chebyshev
        distance with several objectives). ``gain``: its values signed so that larger is better."""
        policy = self._policy
        policy.numbers.append(trial.number)
        if np.isnan(gain).any():
            return
        if len(gain) > 1:
            reward = _chebyshev_reward(trial.number, gain, policy.vectors)
            policy.vectors.append(gain)
        else:
            score, scores = float(gain[0]), policy.scores
            if scores:
                below = bisect.bisect_left(scores, score)
                reward = (below + bisect.bisect_right(scores, score)) / (2.0 * len(scores))
            else:
                reward = 0.5
            bisect.insort(scores, score)
        if policy.baseline is None:
            policy.baseline = reward
        advantage = reward - policy.baseline
        policy.baseline = self.baseline_decay * policy.baseline + (1.0 - self.baseline_decay) * reward
        for name, value in trial.params.items():
            dist = trial.distributions[name]
            actions = self._actions_of(dist)
            if actions.n == 1:
                continue
            logits = policy.logits.get((name, dist))
            if logits is None:
                logits = policy.logits[(name, dist)] = np.zeros(actions.n)
            probs = _softmax(logits)
            grad = -advantage * probs
            grad[actions.index(value)] += advantage
            if self.entropy_weight:
                log_probs = np.log(np.maximum(probs, 1e-300))
                grad -= self.entropy_weight * probs * (log_probs - float(probs @ log_probs))
            logits += self.learning_rate * grad


def _chebyshev_reward(number: int, gain: np.ndarray, history: list[np.ndarray]) -> float:
    """The fraction of ``history`` (gains of earlier trials) farther from the ideal point than ``gain`` under the
    random Chebyshev weights of trial ``number`` (ties count half); 0.5 without history."""
    if not history:
        return 0.5
    weights = np.random.default_rng(number).dirichlet(np.ones(len(gain)))
    points = np.vstack([*history, gain])
    low, high = points.min(axis=0), points.max(axis=0)
    scaled = (points - low) / np.where(high > low, high - low, 1.0)
    distance = (weights * (1.0 - scaled)).max(axis=1)
    mine, earlier = distance[-1], distance[:-1]
    return float((np.sum(earlier > mine) + 0.5 * np.sum(earlier == mine)) / len(earlier))


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()
