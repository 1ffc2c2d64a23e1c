from __future__ import annotations

import json
import time

import numpy as np
import onnx
import optuna
import pandas as pd
import pytest
import torch

import autoarch
import autoarch.loaders
from autoarch.compress import run_onnx, session
from autoarch.exceptions import ConfigError, DataError
from autoarch.search_spaces import MLPSpace

TINY = dict(trials=3, cv=2, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0)


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "iris"
    return autoarch.search("iris", out=out, **TINY), out


def test_run_directory_holds_every_artifact(iris_run) -> None:
    result, out = iris_run
    for name in ("architecture.json", "model.pt", "winner.pt", "model.onnx", "model.int8.onnx", "leaderboard.csv",
                 "report.json", "report.md", "study.db"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))
    spec = json.loads((out / "architecture.json").read_text())
    assert spec["space"] == "mlp" and spec["classes"] == ["setosa", "versicolor", "virginica"]
    assert spec["architecture"] == result.architecture
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 3 and {"cv_accuracy_mean", "cv_accuracy_std", "params", "architecture"} <= set(board)
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["n_test"] == 30 and report["search"]["cv"] == 2
    assert [r["stage"] for r in report["compression"]["stages"]][-1] == "onnx int8"
    md = (out / "report.md").read_text()
    for heading in ("## Best architecture", "## Scores", "## Compression", "latency b64"):
        assert heading in md


def test_every_metric_mean_and_std_is_stored_on_trials(iris_run) -> None:
    result, _ = iris_run
    for trial in result.study.trials:
        for metric in ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"):
            assert f"cv_{metric}_mean" in trial.user_attrs and f"cv_{metric}_std" in trial.user_attrs
    best = result.study.best_trial
    assert result.cv_scores["accuracy"][0] == best.value


def test_load_rebuilds_the_pruned_model_and_onnx_agrees(iris_run) -> None:
    result, out = iris_run
    model = autoarch.load(out)
    X = autoarch.loaders.load_dataset("iris").X
    expected = result.model.eval()(torch.as_tensor(X)).detach().numpy()
    np.testing.assert_allclose(model(torch.as_tensor(X)).detach().numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(run_onnx(session(out / "model.onnx"), X), expected, atol=1e-4)
    assert sum(p.numel() for p in model.parameters()) == result.report["compression"]["stages"][1]["params"]
    meta = {p.key: p.value for p in onnx.load(str(out / "model.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == ["setosa", "versicolor", "virginica"]


def test_rerun_resumes_instead_of_starting_over(iris_run) -> None:
    _, out = iris_run
    again = autoarch.search("iris", out=out, **TINY).study.trials
    assert len(again) == 3  # nothing new to do
    more = autoarch.search("iris", out=out, **{**TINY, "trials": 4}).study.trials
    assert len(more) == 4
    assert [t.params for t in more[:3]] == [t.params for t in again]


def test_resume_with_other_settings_is_refused(iris_run) -> None:
    _, out = iris_run
    with pytest.raises(ConfigError, match=r"cv: 2 -> 3"):
        autoarch.search("iris", out=out, **{**TINY, "cv": 3})


def test_a_trial_left_running_is_not_counted_and_the_budget_is_run_in_full(tmp_path) -> None:
    out = tmp_path / "run"
    autoarch.search("iris", out=out, **TINY)
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.load_study(study_name="autoarch", storage=storage)
    study.ask()  # a trial left RUNNING, as by a killed process
    result = autoarch.search("iris", out=out, **{**TINY, "trials": 4})
    states = [t.state.name for t in result.study.trials]
    # A RUNNING trial in a heartbeat storage may be another machine's; it is left alone and not counted: the four
    # trials asked for were all run besides it.
    assert states[3] == "RUNNING"
    assert states.count("COMPLETE") == 4 and len(states) == 5


def test_a_timeout_without_trials_runs_trials_until_the_deadline(tmp_path, monkeypatch) -> None:
    """--timeout and no --trials: trials run until the search's deadline (optuna's ``n_trials=None, timeout=T``),
    not the default count of a search given neither (made 2 here to keep the test short); its remote workers stop
    at that deadline too."""
    import autoarch.config
    from autoarch.budget import n_done
    from autoarch.runner import run_worker

    monkeypatch.setattr(autoarch.config, "DEFAULT_TRIALS", 2)
    options = {**TINY, "epochs": 1, "workers": 1}
    del options["trials"]
    capped = autoarch.search("iris", **options)
    assert len(capped.study.trials) == 2 and capped.report["search"]["trials_requested"] == 2
    out = tmp_path / "run"
    started = time.time()
    timed = autoarch.search("iris", out=out, timeout=12, **options)
    counted = n_done(timed.study)  # trials that count toward a budget (not those rejected before training)
    assert counted > 2
    assert timed.report["search"]["trials_requested"] is None
    assert "trials until --timeout" in (out / "report.md").read_text()
    assert started + 12 <= timed.study.user_attrs["job"]["deadline"] <= time.time() + 12
    # A worker joining after the deadline starts nothing (without it, it would run until 3 more trials counted).
    monkeypatch.setattr(autoarch.config, "UNTIL_TIMEOUT", counted + 3)
    assert run_worker(f"sqlite:///{out / 'study.db'}") == 0
    # Resumed without --timeout, the search's budget is the default 2 (spent): a worker follows that run, not the
    # first run's recorded --timeout (which, with no deadline left, would have it run until UNTIL_TIMEOUT).
    autoarch.search("iris", out=out, **options)
    assert run_worker(f"sqlite:///{out / 'study.db'}") == 0


def test_same_seed_same_leaderboard(tmp_path) -> None:
    a = autoarch.search("wine", out=tmp_path / "a", workers=1, **TINY).leaderboard
    b = autoarch.search("wine", out=tmp_path / "b", workers=1, **TINY).leaderboard
    pd.testing.assert_frame_equal(a.drop(columns=["seconds"]), b.drop(columns=["seconds"]))


class _FlakySpace(MLPSpace):
    """Fails on every even trial, like a candidate that crashes."""

    def suggest(self, trial):
        arch = super().suggest(trial)
        if trial.number % 2 == 0:
            raise RuntimeError("boom: candidate crashed")
        return arch


def test_failing_candidates_are_recorded_and_the_search_goes_on(tmp_path) -> None:
    result = autoarch.search("iris", out=tmp_path / "r", space=_FlakySpace(max_layers=1), **{**TINY, "trials": 4})
    states = {t.number: t.state.name for t in result.study.trials}
    assert states == {0: "FAIL", 1: "COMPLETE", 2: "FAIL", 3: "COMPLETE"}
    board = result.leaderboard.set_index("trial")
    assert board.loc[0, "reason"] == "RuntimeError: boom: candidate crashed"
    assert "## Failed trials" in (tmp_path / "r" / "report.md").read_text()


def test_arrays_and_regression(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3)).astype(np.float32)
    y = X @ np.array([1.0, -2.0, 0.5]) * 10 + 100
    result = autoarch.search(X, y, metric="neg_mae", **TINY, prune=0.0)
    assert set(result.test_scores) == {"mse", "rmse", "mae", "r2"}
    assert result.report["data"]["task"] == "regression"
    assert [r.stage for r in result.compression.stages] == ["torch fp32", "onnx fp32", "onnx int8"]
    path = result.export(tmp_path / "exported.onnx", int8=True)
    assert run_onnx(session(path), X).shape == (120, 1)


@pytest.mark.parametrize("controller", ["random", "tpe", "grid"])
def test_optuna_controllers_run(controller: str) -> None:
    result = autoarch.search("iris", controller=controller, **{**TINY, "trials": 2}, prune=0.0)
    assert len(result.study.trials) == 2


def test_bad_options_fail_before_any_training(tmp_path) -> None:
    out = tmp_path / "x"
    with pytest.raises(ConfigError, match="'cv' parameter of search must be an int >= 2 .k-fold."):
        autoarch.search("iris", cv=1, out=out)
    with pytest.raises(ConfigError, match="Did you mean 'trials'"):
        autoarch.search("iris", trails=3, out=out)
    with pytest.raises(DataError, match="fewer than the 5 folds"):
        X = np.random.rand(40, 2)
        autoarch.search(X, ["a"] * 35 + ["b"] * 5, cv=5, out=out)
    assert not out.exists()  # nothing written, not even the run directory


def test_a_search_compresses_its_winner_with_any_compress_target(tmp_path) -> None:
    from autoarch.compress import CompressConfig
    from autoarch.config import SearchConfig
    from autoarch.configfile import load_config_file

    options = {k: v for k, v in TINY.items() if k not in ("finetune_epochs", "calibration_samples")}
    compress = CompressConfig(target_params=0.5, max_drop=100.0, steps=1, finetune_epochs=1, round_to=1,
                              calibration_samples=32)
    result = autoarch.search("iris", out=tmp_path / "run", compress=compress, **options)
    comp = result.report["compression"]
    assert comp["pruning"]["target"]["kind"] == "params" and comp["pruning"]["n_val"] > 0
    assert [s["step"] for s in comp["steps"]] == [0, 1] and comp["pruning"]["kept_step"] == 1
    pruned, unpruned = result.compression.stage("torch pruned"), result.compression.stage("torch fp32")
    assert pruned is not None and unpruned is not None and pruned.params < unpruned.params
    assert sum(p.numel() for p in autoarch.load(tmp_path / "run").parameters()) == pruned.params
    assert "Pruned toward keeping 0.5 of the params in up to 1 steps" in (tmp_path / "run" / "report.md").read_text()
    assert "compression: target reached at step 1; kept step 1" in result.summary()
    # the report's config block repeats the run, compression included
    again = SearchConfig(**load_config_file(str(tmp_path / "run" / "report.json")))
    assert again.compress == compress and again.compression.target == ("params", 0.5)
