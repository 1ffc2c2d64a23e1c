from __future__ import annotations

from collections.abc import Callable

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.testing.pytest_samplers import BasicSamplerTestCase, MultiObjectiveSamplerTestCase
from optuna.trial import TrialState

from autoarch.controllers import ReinforceSampler
from autoarch.controllers._reinforce import _Actions


class TestReinforceSamplerContract(BasicSamplerTestCase, MultiObjectiveSamplerTestCase):
    """optuna's own sampler contract suite, run against our sampler."""

    @pytest.fixture
    def sampler(self) -> Callable[[], ReinforceSampler]:
        return lambda: ReinforceSampler(seed=0)


def _objective(trial: optuna.Trial) -> float:
    op = trial.suggest_categorical("op", ["none", "skip", "conv1", "conv3", "pool"])
    n_layers = trial.suggest_int("n_layers", 1, 4)
    lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
    width = trial.suggest_int("width", 16, 1024, step=16)
    return (op == "conv3") + 0.5 * (op == "conv1") - abs(n_layers - 3) - abs(np.log10(lr) + 2) + width / 1024


def _run(seed: int, n_trials: int = 60, storage: str | None = None, **kwargs: float) -> optuna.Study:
    study = optuna.create_study(sampler=ReinforceSampler(seed=seed, **kwargs), direction="maximize",
                                storage=storage)
    study.optimize(_objective, n_trials=n_trials)
    return study


def _logits(sampler: ReinforceSampler) -> dict[str, np.ndarray]:
    return {name: v for (name, _), v in sampler._policy.logits.items()}


def test_same_seed_gives_the_same_sequence() -> None:
    a, b = _run(seed=3), _run(seed=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.params for t in _run(seed=4).trials] != [t.params for t in a.trials]


def test_the_policy_learns_the_best_choice() -> None:
    study = _run(seed=0, n_trials=150)
    early = [t.params["op"] for t in study.trials[:30]]
    late = [t.params["op"] for t in study.trials[-30:]]
    assert late.count("conv3") > 2 * early.count("conv3")
    assert late.count("conv3") >= 20
    probs = np.exp(_logits(study.sampler)["op"])
    assert probs.argmax() == 3  # conv3
    assert np.mean([t.value for t in study.trials[-30:]]) > np.mean([t.value for t in study.trials[:30]])


def test_minimizing_learns_the_opposite_choice() -> None:
    study = optuna.create_study(sampler=ReinforceSampler(seed=0), direction="minimize")
    study.optimize(lambda t: float(t.suggest_categorical("op", ["a", "b", "c"]) == "a"), n_trials=80)
    assert [t.params["op"] for t in study.trials[-20:]].count("a") <= 3


def test_each_trial_records_the_history_its_policy_came_from() -> None:
    study = _run(seed=0, n_trials=20)
    assert [t.system_attrs["reinforce:history"] for t in study.trials] == list(range(20))


def test_a_fresh_sampler_rebuilds_the_same_policy_from_the_storage(tmp_path) -> None:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    first = _run(seed=0, n_trials=30, storage=storage)
    first.sampler._sync(first, first.trials[-1])  # the policy after all 30 trials
    original = {name: v.copy() for name, v in _logits(first.sampler).items()}
    resumed = optuna.load_study(study_name=first.study_name, storage=storage, sampler=ReinforceSampler(seed=9))
    resumed.optimize(_objective, n_trials=1)
    # The resumed trial's policy was replayed from the 30 stored trials, by a sampler that never saw them.
    assert resumed.trials[-1].system_attrs["reinforce:history"] == 30
    rebuilt = _logits(resumed.sampler)
    assert original.keys() == rebuilt.keys()
    for name in original:
        np.testing.assert_allclose(rebuilt[name], original[name])


def test_trials_completing_out_of_order_give_the_replayed_policy() -> None:
    """Another worker's trial may complete after later ones: the policy must equal a replay in number order,
    also when that rolls back past a checkpoint (every 64 trials)."""
    rng = np.random.RandomState(0)
    study = optuna.create_study(sampler=ReinforceSampler(seed=0), direction="maximize")
    for _ in range(10):
        batch = [study.ask() for _ in range(20)]
        for trial in batch:
            trial.suggest_categorical("op", ["a", "b", "c"])
            trial.suggest_float("x", 0.0, 1.0)
        for i in rng.permutation(len(batch)):
            trial = batch[i]
            study.tell(trial, trial.params["x"] + (trial.params["op"] == "b"))
            study.sampler._sync(study, trial._cached_frozen_trial)  # the policy as a worker would see it now
    fresh = ReinforceSampler(seed=0)
    fresh._sync(study, study.trials[-1])
    assert study.sampler._policy.numbers == fresh._policy.numbers == list(range(200))
    for name, logits in _logits(fresh).items():
        np.testing.assert_allclose(_logits(study.sampler)[name], logits)


def test_failed_and_pruned_trials_do_not_update_the_policy() -> None:
    study = optuna.create_study(sampler=ReinforceSampler(seed=0), direction="maximize")
    dist = {"op": CategoricalDistribution(["a", "b"])}
    for i in range(10):
        study.add_trial(optuna.create_trial(params={"op": "a"}, distributions=dist, value=float(i)))
    for state in (TrialState.FAIL, TrialState.PRUNED):
        study.add_trial(optuna.create_trial(params={"op": "b"}, distributions=dist, state=state,
                                            intermediate_values={0: 100.0} if state == TrialState.PRUNED else None))
    only_complete = optuna.create_study(sampler=ReinforceSampler(seed=0), direction="maximize")
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        only_complete.add_trial(t)
    a, b = study.sampler, only_complete.sampler
    a._sync(study, study.trials[-1])
    b._sync(only_complete, only_complete.trials[-1])
    np.testing.assert_allclose(_logits(a)["op"], _logits(b)["op"])


@pytest.mark.parametrize(("dist", "n"), [
    (CategoricalDistribution([None, 1, 2.5, "a"]), 4),
    (IntDistribution(1, 4), 4),
    (IntDistribution(0, 10, step=2), 6),
    (IntDistribution(1, 8, log=True), 8),
    (IntDistribution(16, 1024), 10),  # too many values: binned
    (FloatDistribution(0.0, 0.5, step=0.1), 6),
    (FloatDistribution(1e-5, 1.0, log=True), 10),
])
def test_every_distribution_maps_to_actions_and_back(dist, n) -> None:
    actions = _Actions(dist, n_bins=10)
    assert actions.n == n
    rng = np.random.RandomState(0)
    for action in range(actions.n):
        for _ in range(5):
            value = actions.value(action, rng)
            assert dist._contains(dist.to_internal_repr(value))
            assert actions.index(value) == action


def test_log_bins_cover_the_range_evenly_in_log_space() -> None:
    actions = _Actions(FloatDistribution(1e-5, 1.0, log=True), n_bins=5)
    rng = np.random.RandomState(0)
    lows = [min(actions.value(a, rng) for _ in range(50)) for a in range(5)]
    np.testing.assert_allclose(np.log10(lows), [-5, -4, -3, -2, -1], atol=0.1)


def test_invalid_arguments_state_the_rule() -> None:
    with pytest.raises(ValueError, match="learning_rate > 0"):
        ReinforceSampler(learning_rate=0.0)
    with pytest.raises(ValueError, match="0 <= baseline_decay < 1"):
        ReinforceSampler(baseline_decay=1.0)
    with pytest.raises(ValueError, match="entropy_weight >= 0"):
        ReinforceSampler(entropy_weight=-0.1)
    with pytest.raises(ValueError, match="n_bins >= 2"):
        ReinforceSampler(n_bins=1)
