"""The search at scale: holdout validation, per-epoch multi-fidelity, chance-level stops, warm starts, the
budget planner, official and user-given test splits, and image folders from search to predict."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from PIL import Image

import autoarch
import autoarch.budget
import autoarch.finish
import autoarch.rundir
import autoarch.trials
from autoarch import loaders, runner
from autoarch.config import (
    AUGMENT_MIN_SIDE,
    DEFAULT_EPOCHS,
    EPOCH_SAMPLES,
    HOLDOUT,
    LARGE_DATA,
    MAX_AUTO_EPOCHS,
    SEARCH_SAMPLES,
    SearchConfig,
    resolve_augment,
    resolve_cv,
    resolve_epochs,
    resolve_patience,
    resolve_search_samples,
)
from autoarch.evaluate import cross_validate
from autoarch.exceptions import ConfigError, DataError

TINY = dict(trials=3, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0, prune=0.0)


def test_cv_auto_is_holdout_from_large_data_on() -> None:
    assert resolve_cv("auto", LARGE_DATA - 1) == 5
    assert resolve_cv("auto", LARGE_DATA) == HOLDOUT
    assert resolve_cv("holdout", 100) == HOLDOUT
    assert resolve_cv(3, 10**6) == 3 and resolve_cv(0.25, 10) == 0.25


def test_holdout_search_scores_one_split_and_reports_it() -> None:
    result = autoarch.search("wine", cv="holdout", **TINY)
    search = result.report["search"]
    assert search["cv"] == HOLDOUT and search["validation"] == "holdout 10%"
    assert search["early_stop"] == "halving"  # auto with holdout
    best = result.study.best_trial
    assert len(best.user_attrs["best_epochs"]) == 1 and best.user_attrs["cv_accuracy_std"] == 0.0


def test_kfold_uses_the_median_pruner_by_default() -> None:
    result = autoarch.search("wine", cv=3, **TINY)
    assert result.report["search"]["early_stop"] == "median"
    assert len(result.study.best_trial.user_attrs["best_epochs"]) == 3


def test_successive_halving_stops_candidates_after_an_epoch() -> None:
    result = autoarch.search("digits", cv=0.3, early_stop="halving", controller="random", trials=8, epochs=10,
                             patience=10, finetune_epochs=1, calibration_samples=32, prune=0.0, warm_start=False,
                             space="mlp")
    trials = result.study.get_trials()
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, [t.state for t in trials]
    for t in pruned:
        assert "--early-stop halving after" in t.user_attrs["pruned_reason"]
        assert t.user_attrs["epochs_trained"] < 10
        assert max(t.intermediate_values) == t.user_attrs["epochs_trained"]  # a report after every epoch
    fidelity = result.report["search"]["fidelity"]
    assert len(fidelity) >= 2 and sum(fidelity.values()) == len(trials)
    board = result.leaderboard
    assert "epochs_trained" in board and board["epochs_trained"].notna().all()


def test_a_candidate_at_chance_level_is_stopped_after_two_epochs_and_40_steps() -> None:
    """Stopped at chance level after CHANCE_EPOCHS epochs, or later on small data: not before CHANCE_STEPS
    optimizer steps (100 training rows per fold: a few batches an epoch, so well after 2 epochs)."""
    rng = np.random.default_rng(0)
    X = np.zeros((150, 4), dtype=np.float32)  # nothing to learn: the network predicts one class
    y = rng.permutation(np.repeat([0, 1, 2], 50))
    result_error = None
    try:
        autoarch.search(X, y, space="mlp", cv=3, trials=2, epochs=60, patience=60, finetune_epochs=1, prune=0.0)
    except autoarch.AutoArchError as exc:
        result_error = str(exc)
    assert result_error is not None and "completed" in result_error
    # the same through the objective directly, to read the trial
    ctx = runner._prepare(X, y, None, None, {"space": "mlp", "cv": 3, "trials": 1, "epochs": 60, "patience": 60})
    # a fixed candidate: an unseeded sampler sometimes drew one that diverged before it was at chance
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    objective = autoarch.trials.make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric,
                                                  autoarch.trainer.resolve_device("cpu"))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    batches = math.ceil(autoarch.trials.fold_rows(len(ctx.train), 3, None) / trial.params["batch_size"])
    expected = max(autoarch.trials.CHANCE_EPOCHS, math.ceil(autoarch.trials.CHANCE_STEPS / batches))
    assert expected > 2  # small data: the step count decides
    assert trial.user_attrs["pruned_reason"].startswith(f"at chance level after {expected} epochs")
    assert trial.user_attrs["epochs_trained"] == expected
    # the same candidate as a warm start (a reference network) is trained on every fold all the same
    study.enqueue_trial(trial.params, user_attrs={"warm_start": "reference"})
    study.optimize(objective, n_trials=1, catch=(Exception,))
    warm = study.trials[1]
    assert warm.state == TrialState.COMPLETE and "pruned_reason" not in warm.user_attrs
    assert warm.user_attrs["epochs_trained"] > 2 * expected


def test_on_large_data_the_chance_level_stop_comes_after_two_epochs() -> None:
    rng = np.random.default_rng(0)
    X = np.zeros((6000, 4), dtype=np.float32)
    y = rng.permutation(np.repeat([0, 1, 2], 2000))
    ctx = runner._prepare(X, y, None, None, {"space": "mlp", "cv": 0.2, "trials": 1, "epochs": 8, "patience": 8})
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"batch_size": 128})
    objective = autoarch.trials.make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric,
                                                  autoarch.trainer.resolve_device("cpu"))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED, trial.user_attrs
    assert trial.user_attrs["pruned_reason"].startswith("at chance level after 2 epochs")


def test_warm_starts_are_the_first_trials_of_a_cnn_search(tmp_path) -> None:
    result = autoarch.search("digits", cv=2, out=tmp_path / "run", **{**TINY, "trials": 3})
    trials = sorted(result.study.get_trials(), key=lambda t: t.number)
    assert [t.user_attrs.get("warm_start") for t in trials] == ["lenet5-like", "vgg-like", "small-resnet"]
    space = autoarch.search_spaces.CNNSpace(augment=False)  # 8x8 images: --augment auto leaves it off
    for t, (_, arch) in zip(trials, space.warm_starts(), strict=True):
        assert t.user_attrs["architecture"] == arch
        assert t.params["optimizer"] == "adam" and t.params["lr"] == 1e-3
        assert t.params["batch_size"] == autoarch.trials.WARM_START_SMALL_BATCH  # 1,437 training images < LARGE_DATA
    board = pd.read_csv(tmp_path / "run" / "leaderboard.csv")
    assert set(board["warm_start"].dropna()) == {"lenet5-like", "vgg-like", "small-resnet"}
    # resuming does not queue them again
    again = autoarch.search("digits", cv=2, out=tmp_path / "run", **{**TINY, "trials": 4})
    assert sum("warm_start" in t.user_attrs for t in again.study.get_trials()) == 3


def test_no_warm_start_on_request() -> None:
    result = autoarch.search("digits", cv=2, warm_start=False, **{**TINY, "trials": 1})
    assert "warm_start" not in result.study.trials[0].user_attrs


def test_finish_estimate_scales_the_best_trials_cost_to_the_training_split() -> None:
    study = optuna.create_study(direction="maximize")
    assert autoarch.budget.finish_estimate(study, 1000, 4) is None
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        "seconds": 10.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4]}))
    # 10 s / (5 epochs * 500 samples) = 4 ms per sample-epoch; 1000 samples * (4 retrain + 4 fine-tune) epochs
    # (a fine-tune is counted for a quarter of the retrain's epochs, at least 2: what the finish does when time
    # is short)
    overhead = autoarch.budget.FINISH_OVERHEAD
    assert autoarch.budget.finish_estimate(study, 1000, 4) == pytest.approx(overhead + 0.004 * 1000 * 6)
    budget = autoarch.budget.Budget(job_deadline=1000.0, n_train=1000, finetune_epochs=4)
    assert budget.search_deadline(study) == pytest.approx(1000.0 - autoarch.budget.FINISH_OVERHEAD - 24.0)
    assert autoarch.budget.Budget(None, 1000, 4).search_deadline(study) is None
    assert autoarch.budget.finish_estimate(study, 1000, 1) == pytest.approx(autoarch.budget.FINISH_OVERHEAD + 20.0)


def test_finish_estimate_counts_the_finishs_extra_threads() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        "seconds": 10.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4], "threads": 1}))
    one = autoarch.budget.finish_estimate(study, 1000, 0, threads=1) - autoarch.budget.FINISH_OVERHEAD
    two = autoarch.budget.finish_estimate(study, 1000, 0, threads=2) - autoarch.budget.FINISH_OVERHEAD
    assert one == pytest.approx(16.0) and two == pytest.approx(16.0 / autoarch.budget.THREAD_SPEEDUP)


def test_search_samples_auto_subsamples_only_large_training_splits() -> None:
    assert resolve_search_samples("auto", SEARCH_SAMPLES) is None
    assert resolve_search_samples("auto", SEARCH_SAMPLES + 1) == SEARCH_SAMPLES
    assert resolve_search_samples("all", 10**6) is None and resolve_search_samples(None, 10**6) is None
    assert resolve_search_samples(300, 1000) == 300 and resolve_search_samples(300, 200) is None


def test_epochs_auto_gives_a_small_training_split_as_many_samples_as_20_epochs_of_digits() -> None:
    assert resolve_epochs("auto", 1437) == DEFAULT_EPOCHS == 20  # digits, the README's job: unchanged
    assert resolve_epochs("auto", EPOCH_SAMPLES // DEFAULT_EPOCHS) == DEFAULT_EPOCHS
    assert resolve_epochs("auto", EPOCH_SAMPLES // DEFAULT_EPOCHS - 1) == DEFAULT_EPOCHS + 1
    assert resolve_epochs("auto", 200) == 100  # OSULeaf
    assert resolve_epochs("auto", 270) == 75  # JapaneseVowels: 20,000 / 270 = 74.1, rounded up
    assert resolve_epochs("auto", 10) == MAX_AUTO_EPOCHS
    assert resolve_epochs(7, 10) == 7 and resolve_epochs(50, 10**6) == 50
    assert resolve_patience("auto", 20) == 5 and resolve_patience("auto", 100) == 25
    assert resolve_patience("auto", 2) == 5 and resolve_patience(3, 100) == 3


@pytest.mark.parametrize("name, value", [("epochs", 0), ("epochs", "many"), ("patience", True), ("patience", 1.5)])
def test_epochs_and_patience_are_positive_ints_or_auto(name, value) -> None:
    with pytest.raises(ConfigError, match=f"'{name}' parameter of search must be an int >= 1 or 'auto'"):
        SearchConfig(**{name: value}).validate()


def test_a_search_on_a_small_training_split_trains_candidates_for_more_epochs(caplog) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)  # 96 training samples after the 20% held out: 200 epochs, patience 50
    with caplog.at_level("INFO", logger="autoarch"):
        result = autoarch.search(X, y, space="mlp", trials=1, cv=2, finetune_epochs=1, calibration_samples=32,
                                 prune=0.0, warm_start=False)
    training = result.study.best_trial.user_attrs["training"]
    assert (training["max_epochs"], training["patience"]) == (MAX_AUTO_EPOCHS, MAX_AUTO_EPOCHS // 4)
    options = result.study.user_attrs["spec"]["options"]
    assert (options["epochs"], options["patience"]) == (MAX_AUTO_EPOCHS, MAX_AUTO_EPOCHS // 4)
    assert "96 training samples: each candidate trains for at most 200 epochs, patience 50" in caplog.text
    given = autoarch.search(X, y, space="mlp", trials=1, cv=2, epochs=3, finetune_epochs=1, calibration_samples=32,
                            prune=0.0, warm_start=False)
    assert given.study.best_trial.user_attrs["training"]["max_epochs"] == 3
    assert given.study.best_trial.user_attrs["training"]["patience"] == 5


def test_cross_validate_trains_on_a_stratified_subset_and_validates_on_the_whole_fold(monkeypatch) -> None:
    from autoarch import evaluate

    data = loaders.load_dataset("digits")
    space = autoarch.search_spaces.get_space("mlp", data.input_kind)
    arch = {"n_layers": 1, "width_0": 16, "activation": "relu", "dropout": 0.0, "batch_norm": False,
            "connectivity": "plain"}
    fitted: list[np.ndarray] = []
    fit = evaluate.fit

    def spy(model, X, y, *args, **kwargs):
        fitted.append(y)
        return fit(model, X, y, *args, **kwargs)

    monkeypatch.setattr(evaluate, "fit", spy)
    result = cross_validate(space, arch, autoarch.trainer.TrainConfig(max_epochs=1), data, cv=0.2, max_fit=300)
    # 300 of the fold's 1,437 training samples, 30 of them set aside for early stopping
    assert result.n_fit == len(fitted[0]) == 270
    assert np.bincount(fitted[0], minlength=10).min() >= 25  # stratified: every class keeps about a tenth
    full = cross_validate(space, arch, autoarch.trainer.TrainConfig(max_epochs=1), data, cv=0.2)
    assert full.n_fit == len(fitted[1]) == 1293


def test_a_search_with_search_samples_trains_trials_on_the_subset_and_retrains_on_everything(tmp_path) -> None:
    result = autoarch.search("digits", cv="holdout", search_samples=400, out=tmp_path / "run", space="mlp",
                             **TINY)
    for t in result.study.get_trials(states=(TrialState.COMPLETE,)):
        assert t.user_attrs["n_fit"] == 360  # 400 minus the 10% early-stopping part
    assert result.report["search"]["search_samples"] == 400
    retrain = result.report["best"]["retrain"]
    assert retrain["samples"] == result.report["data"]["n_train"] and "skipped" not in retrain
    assert "at most 400 samples" in (tmp_path / "run" / "report.md").read_text()
    assert not (tmp_path / "run" / autoarch.rundir.KEEP_DIR).exists()


def test_epoch_cost_is_estimated_from_trials_that_trained() -> None:
    study = optuna.create_study(direction="maximize")
    for seconds, epochs, macs in ((4.0, 2, 1000), (9.0, 3, 1000), (1.0, 1, 500)):
        assert autoarch.budget.estimate_epoch_seconds(study, 10_000) is None
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={
            "seconds": seconds, "epochs_trained": epochs, "macs": macs}))
    # seconds per epoch and MAC: 0.002, 0.003, 0.002 -> median 0.002
    assert autoarch.budget.estimate_epoch_seconds(study, 10_000) == pytest.approx(20.0)


def _write_idx(path, array: np.ndarray, header: bytes) -> None:
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A miniature Fashion-MNIST in the idx format: 60 training and 20 test images."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 20)):
        y = np.arange(n) % 10
        X = rng.integers(0, 50, size=(n, 28, 28))
        X[np.arange(n), y * 2, :] = 255  # a bright row per class
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", X, b"\0" * 16)
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", y, b"\0" * 8)
    monkeypatch.setattr(loaders, "FASHION_MNIST_DIR", tmp_path)
    return tmp_path


def test_fashion_mnist_is_held_out_on_its_official_test_split(fake_fashion) -> None:
    test = loaders.official_test("fashion-mnist")
    assert len(test) == 20 and test.input_shape == (1, 28, 28) and test.classes == loaders.FASHION_MNIST_LABELS
    result = autoarch.search("fashion-mnist", cv=2, warm_start=False, **{**TINY, "trials": 1, "epochs": 1})
    assert result.report["data"]["n_train"] == 60 and result.report["data"]["n_test"] == 20
    assert result.report["search"]["held_out"] == "official"
    old = autoarch.search("fashion-mnist", cv=2, test="split", test_size=0.25, warm_start=False,
                          **{**TINY, "trials": 1, "epochs": 1})
    assert old.report["data"]["n_train"] == 45 and old.report["search"]["held_out"] == "split"


def test_a_test_file_of_the_user_is_the_held_out_set(tmp_path) -> None:
    rng = np.random.default_rng(0)

    def table(n: int, labels: list[str]) -> pd.DataFrame:
        frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
        frame["label"] = [labels[i % len(labels)] for i in range(n)]
        return frame

    table(60, ["x", "y"]).to_csv(tmp_path / "train.csv", index=False)
    table(16, ["y", "x"]).to_csv(tmp_path / "test.csv", index=False)
    result = autoarch.search(str(tmp_path / "train.csv"), target="label", test=str(tmp_path / "test.csv"), cv=2,
                             **{**TINY, "trials": 1})
    assert result.report["data"]["n_train"] == 60 and result.report["data"]["n_test"] == 16
    table(16, ["x", "z"]).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(DataError, match=r"class\(es\) \['z'\] are not among the training classes"):
        autoarch.search(str(tmp_path / "train.csv"), target="label", test=str(tmp_path / "other.csv"), cv=2,
                        **TINY)


def _image_folder(root, classes=("cat", "dog", "owl"), n=8, size=12, mode="L") -> None:
    rng = np.random.default_rng(1)
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = rng.integers(0, 40, size=(size, size), dtype=np.uint8)
            pixels[k * 4:k * 4 + 4, :] = 250  # a bright band whose place tells the class
            img = Image.fromarray(pixels, mode="L")
            (img.convert(mode) if mode != "L" else img).save(root / name / f"{i}.png")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoarch.cli", *args], capture_output=True, text=True, timeout=300)


def test_image_folder_search_then_predict_on_image_files(tmp_path) -> None:
    _image_folder(tmp_path / "images")
    out = tmp_path / "run"
    done = _cli("search", str(tmp_path / "images"), "--out", str(out), "--trials", "2", "--cv", "2", "--epochs", "3",
                "--finetune-epochs", "1", "--calibration-samples", "16", "--test-size", "0.25", "--quiet")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["classes"] == ["cat", "dog", "owl"] and report["data"]["input_shape"] == [1, 12, 12]
    predicted = _cli("predict", str(out / "model.int8.onnx"), str(tmp_path / "images"))
    assert predicted.returncode == 0, predicted.stderr
    lines = predicted.stdout.strip().splitlines()
    assert lines[0].startswith("file,prediction") and len(lines) == 1 + 24
    one = _cli("predict", str(out / "model.onnx"), str(tmp_path / "images" / "owl" / "0.png"), "--no-proba")
    assert one.returncode == 0 and one.stdout.strip().splitlines()[1].split(",")[1] in {"cat", "dog", "owl"}


@pytest.mark.parametrize("case, message", [
    ("empty", "has no images"),
    ("one", "one class"),
    ("sizes", "--image-size"),
    ("junk", "--on-bad-image skip"),
    ("test-classes", "cat"),
])
def test_bad_image_folders_end_with_one_line_and_write_nothing(tmp_path, case, message) -> None:
    root = tmp_path / "images"
    extra: list[str] = []
    if case == "one":
        _image_folder(root, classes=("cat",))
    else:
        _image_folder(root)
    if case == "empty":
        (root / "emu").mkdir()
    elif case == "sizes":
        Image.fromarray(np.zeros((20, 16), dtype=np.uint8)).save(root / "dog" / "big.png")
    elif case == "junk":
        (root / "owl" / "notes.png").write_bytes(b"not an image")
    elif case == "test-classes":
        _image_folder(tmp_path / "test", classes=("dog", "owl", "yak"))
        extra = ["--test", str(tmp_path / "test")]
    out = tmp_path / "run"
    done = _cli("search", str(root), "--out", str(out), "--trials", "1", *extra)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autoarch: error:") and message in lines[0], done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def test_a_candidate_whose_epoch_would_not_fit_the_budget_is_rejected_before_training() -> None:
    ctx = runner._prepare("iris", None, None, None, {"space": "mlp", "cv": 2, "trials": 5, "epochs": 2})
    study = optuna.create_study(direction="maximize")
    for _ in range(3):  # earlier trials that cost an hour per epoch and MAC: nothing fits in 100 s
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={
            "seconds": 3600.0, "epochs_trained": 1, "macs": 1}))
    budget = autoarch.budget.Budget(job_deadline=time.time() + 100, n_train=len(ctx.train), finetune_epochs=1)
    objective = autoarch.trials.make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric,
                                       autoarch.trainer.resolve_device("cpu"), search_deadline=budget)
    study.optimize(objective, n_trials=1)
    trial = study.trials[-1]
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["pruned_reason"].startswith("one epoch would take about")
    assert "epochs_trained" not in trial.user_attrs


@pytest.mark.parametrize(("cv", "part"), [("holdout", "holdout"), (3, "last fold's")])
def test_a_search_ships_the_kept_trial_model_when_no_time_is_left(tmp_path, monkeypatch, cv, part) -> None:
    finish = autoarch.finish.finish_run

    def no_time_left(*args, **kwargs):
        assert list((tmp_path / "run" / autoarch.rundir.KEEP_DIR).glob("trial_*.pt"))  # kept while the search runs
        return finish(*args[:-1], time.time())  # the job deadline is now: nothing fits

    monkeypatch.setattr(runner, "finish_run", no_time_left)
    result = autoarch.search("wine", cv=cv, out=tmp_path / "run", **{**TINY, "prune": 0.15})
    retrain = result.report["best"]["retrain"]
    assert retrain["epochs"] == 0 and f"trained on its {part} fit part is shipped" in retrain["skipped"]
    assert retrain["samples"] == result.study.best_trial.user_attrs["n_fit"]
    assert not (tmp_path / "run" / autoarch.rundir.KEEP_DIR).exists()


def test_holdout_search_retrains_when_time_allows(tmp_path) -> None:
    result = autoarch.search("wine", cv="holdout", out=tmp_path / "run", **TINY)
    retrain = result.report["best"]["retrain"]
    assert retrain["epochs"] >= 1 and "skipped" not in retrain
    assert retrain["samples"] == result.report["data"]["n_train"]


def test_augment_auto_searches_augmentation_from_16_pixels_a_side() -> None:
    assert resolve_augment("auto", (1, 8, 8)) == "off"
    assert resolve_augment("auto", (1, AUGMENT_MIN_SIDE - 1, 64)) == "off"
    assert resolve_augment("auto", (3, AUGMENT_MIN_SIDE, AUGMENT_MIN_SIDE)) == "search"
    assert resolve_augment("auto", (30,)) == "off"  # tabular
    assert resolve_augment("search", (1, 8, 8)) == "search"
    assert resolve_augment("off", (1, 28, 28)) == "off"


@pytest.mark.parametrize(("augment", "searched"), [("auto", False), ("search", True), ("off", False)])
def test_augment_option_decides_whether_trials_search_augmentation(augment, searched) -> None:
    result = autoarch.search("digits", cv=2, augment=augment, warm_start=False, **{**TINY, "trials": 2})
    for t in result.study.trials:
        assert any(k.startswith("aug_") for k in t.params) is searched
    assert result.report["config"]["augment"] == ("search" if searched else "off")


def test_augment_must_be_a_known_value() -> None:
    with pytest.raises(autoarch.exceptions.ConfigError, match="augment"):
        autoarch.search("digits", augment="yes")


@pytest.mark.parametrize(("data", "metric", "monitor"), [("wine", "accuracy", "accuracy"),
                                                         ("wine", "f1_macro", "f1_macro"),
                                                         ("diabetes", "r2", "r2"), ("diabetes", "neg_rmse", None)])
def test_the_search_keeps_each_candidates_epoch_of_best_objective_metric(monkeypatch, data, metric, monitor) -> None:
    # an error metric (neg_*) is what the loss already follows
    seen: dict[str, object] = {}

    def spy(*args, **kwargs):
        seen.update(kwargs)
        raise RuntimeError("spied")

    monkeypatch.setattr(autoarch.trials, "cross_validate", spy)
    ctx = runner._prepare(data, None, None, None, {"space": "mlp", "cv": 3, "trials": 1, "metric": metric})
    study = optuna.create_study(direction="maximize")
    study.optimize(autoarch.trials.make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric,
                                          autoarch.trainer.resolve_device("cpu")), n_trials=1, catch=(Exception,))
    assert seen["monitor"] == monitor


def _costed_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    # 10 s / (5 epochs * 500 samples) = 4 ms per sample-epoch; 1000 samples * 4 epochs (no fine-tune) = 16 s
    study.add_trial(optuna.trial.create_trial(value=0.90, user_attrs={
        "seconds": 10.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4], "threads": 2}))
    # 0.4 ms per sample-epoch: 1.6 s
    study.add_trial(optuna.trial.create_trial(value=0.88, user_attrs={
        "seconds": 1.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4], "threads": 2}))
    return study


def test_the_finish_retrains_the_best_trial_that_fits_when_the_best_no_longer_does(tmp_path) -> None:
    study = _costed_study()
    complete = study.get_trials()
    deadline = time.time() + autoarch.budget.FINISH_OVERHEAD + 8.0  # 8 s left: the runner-up's 1.6 s fits, not the 16 s
    chosen, note = autoarch.budget.affordable_best(study, complete, 1000, 0, deadline, None)
    assert chosen.number == 1 and "trial 1 (0.8800), which fits, is retrained instead" in note
    assert "best trial 0 (0.9000) needs about 16 s" in note
    roomy = time.time() + autoarch.budget.FINISH_OVERHEAD + 60.0
    assert autoarch.budget.affordable_best(study, complete, 1000, 0, roomy, None) == (study.best_trial, None)
    assert autoarch.budget.affordable_best(study, complete, 1000, 0, None, None) == (study.best_trial, None)
    # the best trial is kept when its retrain fits with the fine-tune cut short (the finish cuts it): with 20
    # fine-tune epochs, cheap under --timeout 1000 and so reserved whole by the search, it would need 96 s; with the
    # short fine-tune (2 epochs: a quarter of 4 retrain epochs, at least 2) 24 s of the 30 left
    tight = time.time() + autoarch.budget.finish_overhead(1000) + 30.0
    assert autoarch.budget.affordable_best(study, complete, 1000, 20, tight, None, 1000) == (study.best_trial, None)
    # ... but not when each fine-tune epoch costs 1.85 (early stopping on 85%, then all of it): 30.8 s > 30
    assert autoarch.budget.affordable_best(study, complete, 1000, 20, tight, None, 1000, factor=1.85)[0].number == 1
    # a best trial whose holdout model was kept is shipped as it is when no retrain fits, never replaced
    (tmp_path / autoarch.rundir.KEEP_DIR).mkdir()
    (tmp_path / autoarch.rundir.KEEP_DIR / "trial_0.pt").write_bytes(b"")
    assert autoarch.budget.affordable_best(study, complete, 1000, 0, deadline, tmp_path)[0].number == 0


@pytest.mark.parametrize(("runner_up", "kept", "shipped"), [
    (0.88, True, 0),  # 0.02 below the best: more than its folds' standard error (0.0094): the best's fold model
    (0.895, True, 1),  # within it: the runner-up, retrained on the whole split
    (0.88, False, 1),  # no fold model kept: the runner-up
])
def test_with_k_fold_the_best_trials_kept_fold_model_beats_a_runner_up_below_its_standard_error(
        tmp_path, runner_up, kept, shipped) -> None:
    study = optuna.create_study(direction="maximize")
    # 30 s / (3 folds * 5 epochs * 500 samples) = 4 ms per sample-epoch: 16 s to retrain on 1000, 8 s are left
    study.add_trial(optuna.trial.create_trial(value=0.90, user_attrs={
        "seconds": 30.0, "epochs_run": [5, 5, 5], "n_fit": 500, "best_epochs": [4, 4, 4], "threads": 2,
        "fold_scores": [0.90, 0.92, 0.88]}))
    study.add_trial(optuna.trial.create_trial(value=runner_up, user_attrs={
        "seconds": 3.0, "epochs_run": [5, 5, 5], "n_fit": 500, "best_epochs": [4, 4, 4], "threads": 2,
        "fold_scores": [runner_up] * 3}))
    if kept:
        (tmp_path / autoarch.rundir.KEEP_DIR).mkdir()
        (tmp_path / autoarch.rundir.KEEP_DIR / "trial_0.pt").write_bytes(b"")
    deadline = time.time() + autoarch.budget.FINISH_OVERHEAD + 8.0
    chosen, note = autoarch.budget.affordable_best(study, study.get_trials(), 1000, 0, deadline, tmp_path)
    assert chosen.number == shipped and (note is None) == (shipped == 0)


def test_a_short_timeout_reserves_a_share_of_itself_for_the_finish_and_the_whole_fine_tune_when_cheap() -> None:
    assert autoarch.budget.finish_overhead(None) == autoarch.budget.FINISH_OVERHEAD
    assert autoarch.budget.finish_overhead(1800) == autoarch.budget.FINISH_OVERHEAD
    assert autoarch.budget.finish_overhead(180) == pytest.approx(9.0) and autoarch.budget.finish_overhead(20) == 5.0
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        "seconds": 10.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4]}))
    # 4 ms per sample-epoch, 1000 samples: 20 fine-tune epochs cost 80 s, within 10% of a 1000 s budget
    full = autoarch.budget.finish_estimate(study, 1000, 20, timeout=1000)
    assert full == pytest.approx(autoarch.budget.finish_overhead(1000) + 4.0 * (4 + 20))
    # ... but not of a 500 s one: the short fine-tune (a quarter of the retrain's 4 epochs, at least 2)
    short = autoarch.budget.finish_estimate(study, 1000, 20, timeout=500)
    assert short == pytest.approx(autoarch.budget.finish_overhead(500) + 4.0 * (4 + 2))
    # The one-shot pruning's fine-tune early-stops on 85% of the split, then fine-tunes on all of it: each planned
    # epoch costs 1.85, short or whole (the airline-tweets run at 83381bb reserved 2 where the finish needed 3.7,
    # and shipped the holdout model for lack of the retrain's time).
    factor = autoarch.config.SearchConfig(timeout=500).finetune_factor
    assert factor == pytest.approx(1.85)
    short = autoarch.budget.finish_estimate(study, 1000, 20, timeout=500, factor=factor)
    assert short == pytest.approx(autoarch.budget.finish_overhead(500) + 4.0 * (4 + 2 * 1.85))
    budget = autoarch.budget.Budget(job_deadline=1000.0, n_train=1000, finetune_epochs=20, timeout=500,
                                    factor=factor)
    assert budget.search_deadline(study) == pytest.approx(1000.0 - short)
    full = autoarch.budget.finish_estimate(study, 1000, 10, timeout=1000, factor=factor)  # 74 s of 1000: whole
    assert full == pytest.approx(autoarch.budget.finish_overhead(1000) + 4.0 * (4 + 10 * 1.85))


def test_kept_holdout_models_leave_the_retrain_unreserved_unless_it_is_cheap() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.9, user_attrs={
        "seconds": 10.0, "epochs_run": [5], "n_fit": 500, "best_epochs": [4]}))
    # 4 ms per sample-epoch, 1000 samples: the 4-epoch retrain costs 16 s, at most 10% of a 1000 s budget ...
    cheap = autoarch.budget.finish_estimate(study, 1000, 0, retrain=False, timeout=1000)
    assert cheap == pytest.approx(autoarch.budget.finish_overhead(1000) + 16.0)
    # ... but not of a 100 s one: the kept model ships when no retrain fits, and none is reserved
    dear = autoarch.budget.finish_estimate(study, 1000, 0, retrain=False, timeout=100)
    assert dear == pytest.approx(autoarch.budget.finish_overhead(100))
    assert autoarch.budget.finish_estimate(study, 1000, 0, timeout=100) == pytest.approx(dear + 16.0)


@pytest.mark.parametrize("rows, stopped", [(3000, True), (10, False)])
def test_a_diverging_candidate_is_stopped_unless_an_epoch_is_too_few_batches_to_tell(monkeypatch, rows, stopped):
    # The training loss is fed to the trial's epoch callback directly: epoch 1 at 1.0, epoch 2 at 10 (> 3x).
    def fake_cross_validate(*args, on_epoch, **kwargs):
        on_epoch(0, 1, {"train_loss": 1.0})
        on_epoch(0, 2, {"train_loss": 10.0})
        raise AssertionError("not stopped")

    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 3)).astype(np.float32)
    y = rng.normal(size=rows).astype(np.float32)
    ctx = runner._prepare(X, y, None, None, {"space": "mlp", "cv": 2, "trials": 1, "epochs": 4, "test_size": 0.2})
    monkeypatch.setattr(autoarch.trials, "cross_validate", fake_cross_validate)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    objective = autoarch.trials.make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric,
                                                  autoarch.trainer.resolve_device("cpu"))
    study.optimize(objective, n_trials=1, catch=(Exception,))
    trial = study.trials[0]
    if stopped:  # 1,200 rows a fold: at least 4 batches of any searched size
        assert trial.state == TrialState.PRUNED
        assert trial.user_attrs["pruned_reason"] == "diverging: training loss 10 in epoch 2, 1 in the first"
    else:  # 4 rows a fold, one batch an epoch: no reference, the candidate trains on
        assert trial.state == TrialState.FAIL and "pruned_reason" not in trial.user_attrs
