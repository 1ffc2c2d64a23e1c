from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from autoarch.controllers import EvolutionSampler

_PARENT = "evolution:parent"
_DISTS = {"x": CategoricalDistribution(list(range(10))), "y": FloatDistribution(0.0, 1.0)}


def _study(direction: str = "maximize") -> optuna.Study:
    sampler = EvolutionSampler(population_size=4, sample_size=4, mutation_prob=0.0, seed=0)
    return optuna.create_study(sampler=sampler, direction=direction)


def _add(study: optuna.Study, i: int, state: TrialState, intermediate: dict[int, float] | None = None,
         value: float | None = None) -> int:
    """Add a finished trial with the distinct parameters ``x = i``, ``y = i / 10``; return its number."""
    trial = optuna.trial.create_trial(params={"x": i, "y": i / 10}, distributions=_DISTS, state=state,
                                      value=value, intermediate_values=intermediate or {})
    study.add_trial(trial)
    return study.trials[-1].number


def _parent_of_next(study: optuna.Study) -> int | None:
    """Ask for a trial, sample its parameters, and return its parent's number (None: sampled at random)."""
    trial = study.ask()
    trial.suggest_categorical("x", list(range(10)))
    trial.suggest_float("y", 0.0, 1.0)
    parent = study._storage.get_trial(trial._trial_id).system_attrs.get(_PARENT)
    study.tell(trial, state=TrialState.FAIL)  # a failed trial is never a member
    return parent


def _pruned_population(study: optuna.Study) -> list[int]:
    """Four pruned trials at steps 1, 1, 3, 9 with values 0.9, 0.8, 0.5, 0.1."""
    return [_add(study, 0, TrialState.PRUNED, {1: 0.9}), _add(study, 1, TrialState.PRUNED, {1: 0.8}),
            _add(study, 2, TrialState.PRUNED, {1: 0.95, 3: 0.5}), _add(study, 3, TrialState.PRUNED, {9: 0.1})]


def test_highest_fidelity_pruned_trial_wins_despite_the_lowest_value() -> None:
    study = _study()
    numbers = _pruned_population(study)
    assert _parent_of_next(study) == numbers[3]


def test_the_child_copies_the_pruned_parent_except_one_parameter() -> None:
    study = _study()
    numbers = _pruned_population(study)
    trial = study.ask()
    x = trial.suggest_categorical("x", list(range(10)))
    y = trial.suggest_float("y", 0.0, 1.0)
    attrs = study._storage.get_trial(trial._trial_id).system_attrs
    assert attrs[_PARENT] == numbers[3]
    parent = study.trials[numbers[3]].params
    changed = {name for name, value in (("x", x), ("y", y)) if value != parent[name]}
    assert changed == {attrs["evolution:mutate"]}  # mutation_prob=0: only the target parameter changes


def test_a_complete_trial_beats_every_pruned_one() -> None:
    study = _study()
    _pruned_population(study)
    complete = _add(study, 4, TrialState.COMPLETE, {1: 0.0}, value=0.01)  # lowest value of all
    assert _parent_of_next(study) == complete


def test_among_complete_trials_the_value_decides() -> None:
    study = _study()
    _add(study, 0, TrialState.PRUNED, {9: 0.99})
    low = _add(study, 1, TrialState.COMPLETE, value=0.2)
    high = _add(study, 2, TrialState.COMPLETE, value=0.7)
    _add(study, 3, TrialState.COMPLETE, value=0.5)
    assert low != high
    assert _parent_of_next(study) == high


def test_equal_fidelity_compares_the_last_reported_value_not_the_best() -> None:
    study = _study()
    _add(study, 0, TrialState.PRUNED, {1: 0.99, 3: 0.2})  # best earlier value, worst at step 3
    winner = _add(study, 1, TrialState.PRUNED, {3: 0.6})
    _add(study, 2, TrialState.PRUNED, {1: 0.9, 2: 0.95})
    _add(study, 3, TrialState.PRUNED, {3: 0.4})
    assert _parent_of_next(study) == winner


def test_minimize_prefers_the_lower_value_at_equal_fidelity() -> None:
    study = _study("minimize")
    _add(study, 0, TrialState.PRUNED, {3: 0.5})
    low = _add(study, 1, TrialState.PRUNED, {3: 0.1})
    _add(study, 2, TrialState.PRUNED, {3: 0.9})
    _add(study, 3, TrialState.PRUNED, {1: 0.0})  # lower value, but lower fidelity
    assert _parent_of_next(study) == low


def test_minimize_still_ranks_complete_above_pruned() -> None:
    study = _study("minimize")
    _add(study, 0, TrialState.PRUNED, {9: 0.0})
    _add(study, 1, TrialState.PRUNED, {3: 0.0})
    complete = _add(study, 2, TrialState.COMPLETE, value=100.0)
    _add(study, 3, TrialState.PRUNED, {1: 0.0})
    assert _parent_of_next(study) == complete


def test_trials_pruned_without_intermediate_values_are_not_members() -> None:
    study = _study()
    _add(study, 0, TrialState.PRUNED, {1: 0.9})
    _add(study, 1, TrialState.PRUNED, {1: 0.8})
    _add(study, 2, TrialState.PRUNED, {3: 0.5})
    _add(study, 3, TrialState.PRUNED)  # rejected before training
    _add(study, 4, TrialState.PRUNED)
    _add(study, 5, TrialState.FAIL)
    assert _parent_of_next(study) is None  # 3 members < population_size: random sampling
    _add(study, 6, TrialState.PRUNED, {2: 0.1})
    assert _parent_of_next(study) == 2  # now full (trials 0, 1, 2, 7): step 3 is the best fidelity


def test_the_oldest_pruned_member_ages_out() -> None:
    study = _study()
    oldest = _add(study, 0, TrialState.PRUNED, {9: 0.9})  # the best, but the oldest
    _add(study, 1, TrialState.PRUNED, {1: 0.1})
    _add(study, 2, TrialState.PRUNED, {1: 0.3})
    _add(study, 3, TrialState.PRUNED, {1: 0.2})
    assert _parent_of_next(study) == oldest
    newest = _add(study, 4, TrialState.PRUNED, {2: 0.0})
    assert _parent_of_next(study) == newest  # the population is now trials 1-4


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_search_with_a_pruner_leaves_random_sampling(direction: str) -> None:
    """With a pruner that stops most trials, the pruned trials fill the population and children appear."""
    sampler = EvolutionSampler(population_size=4, sample_size=2, seed=0)
    study = optuna.create_study(sampler=sampler, direction=direction)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("x", list(range(10)))
        trial.report(float(x), 1)
        if trial.number % 4:  # three of every four trials are pruned after one step
            raise optuna.TrialPruned()
        return float(x)

    study.optimize(objective, n_trials=12)
    children = [t for t in study.trials if _PARENT in t.system_attrs]
    # Only 3 trials completed: without pruned members the population (4) would never be full.
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) == 3
    assert len(children) == 12 - 4
    assert children[0].number == 4


def test_an_undefined_last_value_never_wins() -> None:
    study = _study()
    _add(study, 0, TrialState.PRUNED, {3: float("nan")})
    winner = _add(study, 1, TrialState.PRUNED, {3: 0.5})
    _add(study, 2, TrialState.PRUNED, {3: 0.4})
    _add(study, 3, TrialState.PRUNED, {1: 0.9})
    assert _parent_of_next(study) == winner
