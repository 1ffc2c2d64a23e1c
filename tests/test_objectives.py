"""Objectives as values (issue #12 item 3): resolved once from their names, and the study and the leaderboard
take a list of them (with one objective every output is as before)."""

from __future__ import annotations

import optuna
import pytest

from autoarch.objectives import Objective, directions, resolve_objectives
from autoarch.study import open_study
from autoarch.trials import leaderboard


def test_a_metric_objective_and_an_error_objective() -> None:
    acc, rmse = Objective("accuracy"), Objective("neg_rmse")
    assert (acc.metric, acc.lower_is_better, acc.value({"accuracy": 0.9})) == ("accuracy", False, 0.9)
    assert (rmse.metric, rmse.lower_is_better, rmse.value({"rmse": 0.5})) == ("rmse", True, -0.5)
    assert acc.drop(0.95, 0.94) == pytest.approx(1.0) and rmse.drop(2.0, 2.1) == pytest.approx(5.0)
    assert (acc.drop_unit, rmse.drop_unit) == ("points", "% of the error")
    assert resolve_objectives("accuracy, f1_macro") == (acc, Objective("f1_macro"))
    assert resolve_objectives(["neg_rmse"]) == (rmse,)
    assert directions([acc, rmse]) == ["maximize", "maximize"]  # errors are negated


def _trial(values: list[float], number_attrs: dict | None = None) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(values=values, user_attrs={"params": 10, **(number_attrs or {})})


def _open(objectives: tuple[Objective, ...]) -> optuna.Study:
    return open_study(optuna.storages.InMemoryStorage(), "s", {"data_sha256": "x"}, {},
                      optuna.samplers.RandomSampler(), optuna.pruners.NopPruner(), "memory", objectives)


def test_the_study_gets_one_direction_per_objective_and_the_leaderboard_a_column_each() -> None:
    objectives = resolve_objectives("accuracy,f1_macro")
    study = _open(objectives)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MAXIMIZE"]
    for values in ([0.8, 0.7], [0.9, 0.5], [0.85, 0.9]):
        study.add_trial(_trial(values))
    board = leaderboard(study, objectives=objectives)
    assert board["trial"].tolist() == [1, 2, 0]  # by the first objective
    assert board["value_f1_macro"].tolist() == [0.5, 0.9, 0.7] and board["value"].tolist() == [0.9, 0.85, 0.8]


def test_one_objective_keeps_the_leaderboard_as_it_was() -> None:
    study = _open(resolve_objectives("neg_rmse"))
    for value in (-0.5, -0.2):
        study.add_trial(_trial([value]))
    board = leaderboard(study)
    assert board["value"].tolist() == [-0.2, -0.5]
    assert not [c for c in board.columns if c.startswith("value_")]


def test_a_minimised_first_objective_sorts_ascending() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    for values in ([3.0, 0.1], [1.0, 0.2]):
        study.add_trial(_trial(values))
    board = leaderboard(study)
    assert board["value"].tolist() == [1.0, 3.0] and "value_1" in board.columns
