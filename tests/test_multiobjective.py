"""Multi-objective search (issue #13 items 1, 3, 4): --objectives with costs measured before training, a real
multi-objective optuna study, the Pareto front (pareto.csv, report), --pick, and `autoarch export --trial`."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest

import autoarch
from autoarch.exceptions import ConfigError, DataError
from autoarch.objectives import Objective, check_objectives
from autoarch.pareto import (
    STOPPED_AT,
    among_best,
    crowding_distance,
    front_trials,
    knee_index,
    nondominated_rank,
    pareto_stop,
    parse_pick,
    pick_point,
)
from autoarch.trials import STEP_SCORES, leaderboard

TINY = dict(cv=2, epochs=2, patience=1, finetune_epochs=1, calibration_samples=16, seed=0, workers=1)
METRICS = ("accuracy", "f1_macro")


# ---------------------------------------------------------------------------------------------------- pure parts

def test_nondominated_rank_sorts_fronts() -> None:
    g = np.array([[3, 1], [1, 3], [2, 2], [1, 1], [0, 0], [2, 2]], dtype=float)
    assert nondominated_rank(g).tolist() == [0, 0, 0, 1, 2, 0]  # equal points do not dominate each other


def test_crowding_distance_is_infinite_at_the_extremes_and_larger_where_sparse() -> None:
    g = np.array([[0, 4], [1, 3], [1.2, 2.8], [4, 0]], dtype=float)
    d = crowding_distance(g)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[2] > d[1]  # (1.2, 2.8) has a far neighbour on one side, (1, 3) two near ones


def test_knee_is_the_point_nearest_the_ideal() -> None:
    g = np.array([[1.0, 0.0], [0.9, 0.8], [0.0, 1.0]])  # (accuracy, -latency) scaled: the middle one
    assert knee_index(g) == 1


def test_among_best_orders_by_rank_then_crowding() -> None:
    others = [[0.9, -3.0], [0.5, -1.0], [0.7, -2.0], [0.6, -2.5]]  # (accuracy, -latency); the last is dominated
    # an inner point of the front (0.6, -2.5 is behind it): behind the two ends and the sparser inner (0.7, -2.0)
    assert among_best([0.8, -2.4], others, keep=4)
    assert not among_best([0.8, -2.4], others, keep=3)
    assert among_best([0.5, -1.0], [], keep=1)  # the first candidate at a rung
    assert among_best([0.95, -3.5], others, keep=1)  # an end of the front (infinite distance) ties the other end
    assert not among_best([0.55, -2.6], others, keep=4)  # dominated by (0.6, -2.5) and (0.7, -2.0): rank 1


def test_pareto_halving_stops_the_dominated_at_rungs_only() -> None:
    started = [[0.9, -0.4], [0.8, -0.2], [0.85, -0.3], [0.6, -0.9], [0.7, -0.8]]
    dominated, cheap = [0.5, -0.5], [0.3, -0.1]  # cheap: the worst accuracy, the lowest latency
    assert pareto_stop("halving", 1, dominated, started, []) is not None
    assert pareto_stop("halving", 2, dominated, started, []) is None  # not a rung: 1, 3, 9, ...
    assert pareto_stop("hyperband", 3, dominated, started, []) is not None
    assert pareto_stop("halving", 9, cheap, started, []) is None  # an end of the front goes on
    assert "best 2 of 6" in pareto_stop("halving", 1, dominated, started, [])
    assert pareto_stop("none", 1, dominated, started, started) is None


def test_pareto_median_waits_for_five_completed_trials() -> None:
    completed = [[0.9, -0.4], [0.8, -0.2], [0.85, -0.3], [0.6, -0.9]]
    own = [0.5, -0.5]
    assert pareto_stop("median", 2, own, completed, completed) is None  # four completed: no stop yet
    assert "better half of 6" in pareto_stop("median", 2, own, completed + [[0.7, -0.8]], completed + [[0.7, -0.8]])
    assert pareto_stop("median", 2, [0.95, -0.1], completed * 2, completed * 2) is None  # dominates every one


def test_objectives_costs_are_minimised_and_plain() -> None:
    latency, error = Objective("latency"), Objective("neg_rmse")
    assert latency.is_cost and latency.direction == "minimize" and latency.unit == "ms"
    assert latency.value({"latency": 0.3}) == 0.3 and latency.plain(0.3) == 0.3
    assert error.direction == "maximize" and error.plain(-2.0) == 2.0
    assert latency.within(0.3, 0.5) and not latency.within(0.6, 0.5)
    assert Objective("accuracy").within(0.9, 0.85) and not error.within(-2.0, 1.5)


@pytest.mark.parametrize("names, message", [
    (["accuracy", "latncy"], "unknown objective 'latncy'"),
    (["latency", "accuracy"], "the first of --objectives must be a metric"),
    (["accuracy", "latency", "accuracy"], "names an objective twice"),
])
def test_check_objectives_names_the_problem(names, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_objectives([Objective(n) for n in names], METRICS)


@pytest.mark.parametrize("text", ["kne", "best-under", "best-under:latency", "best-under:latency=fast", "best:x"])
def test_parse_pick_refuses_malformed_rules(text) -> None:
    with pytest.raises(ValueError, match="--pick"):
        parse_pick(text)


def _trial(number: int, values: list[float]) -> SimpleNamespace:
    return SimpleNamespace(number=number, values=values, state=SimpleNamespace(name="COMPLETE"))


def test_pick_rules_choose_from_the_front() -> None:
    objectives = (Objective("accuracy"), Objective("latency"))
    trials = [_trial(0, [0.99, 2.0]), _trial(1, [0.97, 0.4]), _trial(2, [0.90, 0.1]), _trial(3, [0.89, 0.5])]
    front = front_trials(trials, objectives)
    assert [t.number for t in front] == [0, 1, 2]  # trial 3 is dominated by trial 1; best accuracy first
    assert pick_point(front, objectives, parse_pick("best"))[0].number == 0
    assert pick_point(front, objectives, parse_pick("knee"))[0].number == 1
    assert pick_point(front, objectives, parse_pick("best-under:latency=0.5"))[0].number == 1
    assert pick_point(front, objectives, parse_pick("best-under:latency=0.2"))[0].number == 2
    chosen, why = pick_point(front, objectives, parse_pick("best-under:latency=0.05"))
    assert chosen.number == 2 and "no front point is within best-under:latency=0.05" in why
    assert "smallest latency on the front: 0.1" in why


# ------------------------------------------------------------------------------------------------ a whole search

@pytest.fixture(scope="module")
def mo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mo") / "iris"
    result = autoarch.search("iris", out=out, trials=6, objectives="accuracy,latency", warm_start=False,
                             latency_batch=2, **TINY)
    return result, out


def test_the_study_has_one_direction_per_objective_and_optuna_plots_its_front(mo_run) -> None:
    result, _ = mo_run
    assert result.study.directions == [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    for t in result.study.trials:
        if t.state.name == "COMPLETE":
            # the latency objective is the int8 latency at --latency-batch measured before training
            assert t.values[1] == t.user_attrs["int8_cost"]["latency_b2_ms"]
            assert t.values[0] == t.user_attrs["cv_accuracy_mean"]
    optuna.visualization.plot_pareto_front(result.study, target_names=["accuracy", "latency"])


def test_pareto_csv_holds_exactly_the_non_dominated_trials(mo_run) -> None:
    result, out = mo_run
    board = pd.read_csv(out / "leaderboard.csv")
    front = pd.read_csv(out / "pareto.csv")
    done = board[board["state"] == "COMPLETE"]
    g = done[["value_accuracy", "value_latency"]].to_numpy() * [1.0, -1.0]
    expected = set(done["trial"][nondominated_rank(g) == 0])
    assert set(front["trial"]) == expected == {t.number for t in result.study.best_trials}
    assert front["picked"].sum() == 1


def test_the_knee_is_shipped_and_the_report_shows_the_front(mo_run) -> None:
    result, out = mo_run
    report = json.loads((out / "report.json").read_text())
    front = report["front"]
    assert front["pick"] == "knee" and [o["name"] for o in report["search"]["objectives"]] == ["accuracy",
                                                                                               "latency"]
    points = {p["trial"]: p for p in front["points"]}
    gains = np.array([[p["values"]["accuracy"], -p["values"]["latency"]] for p in front["points"]])
    assert front["picked"] == front["points"][knee_index(gains)]["trial"] == report["best"]["trial"]
    assert "knee" in report["best"]["picked"]
    assert f"Pareto front: {len(points)} trials (pareto.csv); shipped trial {front['picked']}, the knee" in \
        result.summary()
    assert set(points) == {t.number for t in result.study.best_trials}
    md = (out / "report.md").read_text()
    assert "## Pareto front" in md and f"`--pick knee` chose trial {front['picked']}" in md
    assert (out / "report.html").read_text().count("Pareto front") >= 1


def test_export_ships_another_trial_of_the_front(mo_run, tmp_path) -> None:
    result, out = mo_run
    others = [t.number for t in result.study.trials if t.state.name == "COMPLETE"
              and t.number != result.report["best"]["trial"]]
    target = tmp_path / "other"
    exported = autoarch.export_trial(out, others[0], out=target)
    report = json.loads((target / "report.json").read_text())
    assert report["best"]["trial"] == others[0] and report["best"]["picked"] == "asked for by autoarch export"
    if "front" in report:
        assert report["front"]["pick"] == f"autoarch export --trial {others[0]}"
        assert f"`autoarch export --trial {others[0]}` shipped trial {others[0]};" in (target / "report.md").read_text()
    assert exported.architecture == result.study.trials[others[0]].user_attrs["architecture"]
    import torch

    model = autoarch.load(target)
    assert model(torch.zeros(2, 4)).shape == (2, 3)  # iris: three classes
    with pytest.raises(DataError, match="trial 99 of the study did not complete"):
        autoarch.export_trial(out, 99, out=tmp_path / "none")


def test_export_from_the_command_line(mo_run, tmp_path) -> None:
    _, out = mo_run
    run = subprocess.run([sys.executable, "-m", "autoarch.cli", "export", str(out), "--trial", "0", "--out",
                          str(tmp_path / "t0"), "--quiet"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "run directory:" in run.stdout and (tmp_path / "t0" / "model.int8.onnx").is_file()
    bad = subprocess.run([sys.executable, "-m", "autoarch.cli", "export", str(tmp_path / "nope"), "--trial", "0"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_reinforce_runs_a_multi_objective_search_on_params() -> None:
    # params needs no int8 model: it is counted on the candidate
    result = autoarch.search("iris", trials=3, objectives="accuracy,params", controller="reinforce", prune=0.0,
                             warm_start=False, pick="best-under:params=100000", **TINY)
    for t in result.study.trials:
        if t.state.name == "COMPLETE":
            assert t.values[1] == t.user_attrs["params"]
    assert "int8_cost" not in result.study.trials[0].user_attrs  # nothing measured that no objective needs
    assert "best-under:params=100000" in result.report["best"]["picked"]


def test_early_stop_stops_multi_objective_candidates_by_pareto_rank() -> None:
    # optuna's pruners follow one objective; with several, --early-stop compares (metric after an epoch, costs)
    options = dict(trials=8, objectives="accuracy,params", prune=0.0, warm_start=False, cv=0.3, epochs=6,
                   patience=6, finetune_epochs=1, calibration_samples=16, seed=0, workers=1)
    study = autoarch.search("iris", early_stop="halving", **options).study
    stopped = study.trials
    assert not [t for t in stopped if t.state.name == "FAIL"]
    pruned = [t for t in stopped if t.state.name == "PRUNED"]
    assert pruned and all("by Pareto rank" in t.user_attrs["pruned_reason"] for t in pruned)
    assert all(t.user_attrs["epochs_trained"] in (1, 3) for t in pruned)  # at the rungs
    # the values where it stopped, for the evolution controller (optuna keeps none of a pruned trial here)
    assert all(t.user_attrs[STOPPED_AT]["step"] == t.user_attrs["epochs_trained"]
               and t.user_attrs[STOPPED_AT]["values"][1] == t.user_attrs["params"] for t in pruned)
    complete = [t for t in stopped if t.state.name == "COMPLETE"]
    assert all(set(t.user_attrs["step_scores"]) == {str(s) for s in range(1, 7)} for t in complete)
    board = leaderboard(study, objectives=[Objective("accuracy"), Objective("params")]).set_index("trial")
    for t in pruned:  # the leaderboard shows where it stopped
        assert [board.at[t.number, "value_accuracy"], board.at[t.number, "value_params"]] == \
            t.user_attrs[STOPPED_AT]["values"]
    kept = autoarch.search("iris", early_stop="none", **options).study.trials
    assert not [t for t in kept if t.state.name == "PRUNED"]


def test_the_search_history_draws_a_trial_stopped_by_pareto_rank_where_it_stopped() -> None:
    from autoarch.html_report import _score

    stopped = SimpleNamespace(state=SimpleNamespace(name="PRUNED"), values=None, intermediate_values={},
                              user_attrs={STOPPED_AT: {"step": 3, "values": [0.81, 0.05]}})
    assert _score(stopped) == (0.81, "stopped")  # was "other", which the chart does not draw
    rejected = SimpleNamespace(state=SimpleNamespace(name="PRUNED"), values=None, intermediate_values={},
                               user_attrs={"rejected": True})
    assert _score(rejected) == (None, "rejected")


def test_early_stop_auto_is_none_for_several_objectives_on_k_fold(mo_run) -> None:
    result, _ = mo_run  # cv=2: the median rule for one objective, every candidate to the end for several
    assert result.report["config"]["early_stop"] == "none"
    assert not any(STEP_SCORES in t.user_attrs for t in result.study.trials)  # nothing written per epoch


@pytest.mark.parametrize("options, message", [
    (dict(objectives="accuracy,speed"), "unknown objective 'speed'"),
    (dict(objectives="latency,accuracy"), "the first of --objectives must be a metric"),
    (dict(objectives="accuracy,latency", metric="f1_macro"), "--metric f1_macro and --objectives"),
    (dict(objectives="accuracy,latency", pick="best-under:int8_size=40"), "'int8_size', which is not one of"),
    (dict(pick="best-under:latency=0.5"), "bounds 'latency', which is not searched"),
    (dict(objectives="accuracy,latency", pick="fastest"), "'pick' parameter of search must be"),
    (dict(objectives="neg_rmse,latency"), "unknown objective .neg_rmse.; --objectives takes: accuracy"),
])
def test_bad_objectives_fail_before_anything_is_written(options, message, tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        autoarch.search("iris", out=out, trials=2, **TINY, **options)
    assert not out.exists()


def test_bad_objectives_on_the_command_line_exit_2(tmp_path) -> None:
    run = subprocess.run([sys.executable, "-m", "autoarch.cli", "search", "iris", "--objectives", "accuracy,speed",
                          "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown objective 'speed'" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "r").exists()


def test_a_run_directory_resumes_only_with_the_objectives_it_was_made_with(mo_run) -> None:
    _, out = mo_run
    with pytest.raises(ConfigError, match=r"other settings \(objectives: \['accuracy', 'latency'\] -> None"):
        autoarch.search("iris", out=out, trials=6, warm_start=False, latency_batch=2, **TINY)
