"""The standalone compression stage: config, pruning to a goal, the iterative schedule, int8 choice,
verification, and ``compress_run`` / ``autoarch compress`` on a real search run directory."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

import autoarch
from autoarch.cli import main
from autoarch.compress import (
    CompressConfig,
    compress,
    compress_run,
    count_macs_params,
    prune,
    prune_iteratively,
    prune_to,
    read_metadata,
    replay_pruning,
)
from autoarch.compress.pruning import count_params
from autoarch.data import from_arrays, train_test_split
from autoarch.evaluate import build_model
from autoarch.exceptions import ConfigError, DataError
from autoarch.search_spaces import CNNSpace, MLPSpace
from autoarch.trainer import TrainConfig, fit

MLP_ARCH = {"n_layers": 2, "width_0": 64, "width_1": 32, "connectivity": "residual", "activation": "relu",
            "dropout": 0.0, "batch_norm": True}


def _blobs(n: int = 240, d: int = 6, seed: int = 0):
    """Three well-separated classes with string labels: an easy, deterministic task."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(3, d))
    y = np.arange(n) % 3
    X = centers[y] + rng.normal(size=(n, d))
    labels = np.array(["cat", "dog", "eel"])[y]
    return from_arrays(X, labels, task="classification", feature_names=[f"f{i}" for i in range(d)])


@pytest.fixture(scope="module")
def tabular():
    data = _blobs()
    train, test = train_test_split(data, 0.25, seed=0)
    torch.manual_seed(0)
    model = build_model(MLPSpace(), MLP_ARCH, train)
    cfg = TrainConfig(lr=1e-2, batch_size=32)
    fit(model, train.X, train.y, train.task, cfg, epochs=8)
    return model.eval(), train, test, cfg


# --- options -------------------------------------------------------------------------------------------

def test_config_rejects_bad_options_with_a_clear_message() -> None:
    with pytest.raises(ConfigError, match="at most one compression target"):
        CompressConfig(target_macs=0.5, target_params=0.5).validate()
    with pytest.raises(ConfigError, match=r"target_macs.*\(0, 1\).*Got 1.5"):
        CompressConfig(target_macs=1.5).validate()
    with pytest.raises(ConfigError, match="Did you mean 'taylor'"):
        CompressConfig(importance="tailor").validate()
    with pytest.raises(ConfigError, match="Did you mean 'max_drop'"):
        CompressConfig.from_options(max_dorp=1.0)
    assert CompressConfig().target == ("macs", 0.25)
    assert CompressConfig(target_latency=0.4).target == ("latency", 0.4)


# --- pruning --------------------------------------------------------------------------------------------

def test_prune_to_meets_the_goal_and_leaves_the_input_alone(tabular) -> None:
    model, train, _, _ = tabular
    x = torch.as_tensor(train.X[:4])
    macs0 = count_macs_params(model, x)[0]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned, ratio, history, value = prune_to(model, x[:2], lambda m: count_macs_params(m, x)[0], 0.4 * macs0)
    assert value == count_macs_params(pruned, x)[0] <= 0.4 * macs0 and 0 < ratio <= 0.8 and history
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    rebuilt = replay_pruning(build_model(MLPSpace(), MLP_ARCH, train), x[:2], json.loads(json.dumps(history)))
    rebuilt.load_state_dict(pruned.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), pruned(x))


def test_round_to_keeps_aligned_widths_and_never_empties_a_layer(tabular) -> None:
    model, train, _, _ = tabular
    x = torch.as_tensor(train.X[:2])
    import copy

    for ratio in (0.3, 0.6, 0.8):
        m = copy.deepcopy(model)
        prune(m, x, ratio, round_to=8)
        widths = [b.linear.out_features for b in m.net.blocks]
        assert all(w % 8 == 0 and w >= 8 for w in widths), (ratio, widths)
        assert m(x).shape == (2, 3)


def test_importance_needs_what_it_ranks_by(tabular) -> None:
    model, train, _, _ = tabular
    x = torch.as_tensor(train.X[:2])
    with pytest.raises(ConfigError, match="taylor.*gradients"):
        prune(model, x, 0.3, importance="taylor")
    plain = build_model(MLPSpace(), {**MLP_ARCH, "batch_norm": False}, train)
    with pytest.raises(ConfigError, match="no batch norm"):
        prune(plain, x, 0.3, importance="bn_scale")


# --- the schedule ---------------------------------------------------------------------------------------

def _split(train):
    return train_test_split(train, 0.2, seed=0)


def test_schedule_reaches_the_target_in_geometric_steps(tabular) -> None:
    model, train, _, cfg = tabular
    fit_data, val = _split(train)
    config = CompressConfig(target_params=0.3, max_drop=100.0, steps=3, finetune_epochs=1, round_to=1,
                            importance="taylor", global_pruning=True)
    result = prune_iteratively(model, fit_data, val, config=config, train_config=cfg, metric="accuracy")
    params = [s["params"] for s in result.steps]
    assert [s["step"] for s in result.steps] == [0, 1, 2, 3]
    assert params[0] == count_params(model) and all(a > b for a, b in zip(params, params[1:], strict=False))
    for k, step in enumerate(result.steps[1:], start=1):  # each step meets its goal: 0.3 ** (k / 3)
        assert step["params"] <= params[0] * 0.3 ** (k / 3)
    assert result.target_reached and result.kept_step == 3 and "target reached" in result.stop_reason
    assert count_params(result.model) == params[-1]
    assert {"channel_ratio", "macs", "val_accuracy", "drop", "within_budget", "seconds"} <= set(result.steps[1])


def test_schedule_stops_at_the_budget_and_keeps_the_last_step_within_it(tabular) -> None:
    model, train, _, cfg = tabular
    fit_data, val = _split(train)
    # No fine-tuning and a 2% target: accuracy must fall, and a zero budget tolerates no loss at all.
    config = CompressConfig(target_params=0.02, max_drop=0.0, steps=4, finetune_epochs=0, round_to=1)
    result = prune_iteratively(model, fit_data, val, config=config, train_config=cfg, metric="accuracy")
    last = result.steps[-1]
    assert not last["within_budget"] and last["drop"] > 0 and "more than the budget" in result.stop_reason
    assert all(s["within_budget"] for s in result.steps[:-1])
    assert result.kept_step == len(result.steps) - 2 and not result.target_reached
    assert count_params(result.model) == result.steps[result.kept_step]["params"]
    x = torch.as_tensor(val.X)
    kept_acc = (result.model(x).argmax(1).numpy() == val.y).mean()
    assert kept_acc == pytest.approx(result.steps[result.kept_step]["val_accuracy"])


def test_drops_are_measured_against_the_fine_tuned_reference(tabular) -> None:
    model, train, _, cfg = tabular
    fit_data, val = _split(train)
    config = CompressConfig(target_params=0.5, max_drop=100.0, steps=1, finetune_epochs=2, round_to=1)
    result = prune_iteratively(model, fit_data, val, config=config, train_config=cfg, metric="accuracy")
    step0 = result.steps[0]
    x = torch.as_tensor(val.X)
    assert step0["val_accuracy_before_finetune"] == pytest.approx((model(x).argmax(1).numpy() == val.y).mean())
    assert step0["drop"] == 0.0
    assert result.steps[1]["drop"] == pytest.approx(100 * (step0["val_accuracy"] - result.steps[1]["val_accuracy"]))


def test_a_latency_target_times_every_candidate(tabular) -> None:
    model, train, _, cfg = tabular
    fit_data, val = _split(train)
    timed: list[int] = []

    def latency(m) -> float:  # a stand-in for ONNX Runtime timing: proportional to the parameters
        timed.append(count_params(m))
        return count_params(m) / 1000.0

    config = CompressConfig(target_latency=0.5, max_drop=100.0, steps=2, finetune_epochs=0, round_to=1)
    result = prune_iteratively(model, fit_data, val, config=config, train_config=cfg, metric="accuracy",
                               latency=latency)
    assert result.target_reached and all("latency_b64_ms" in s for s in result.steps)
    assert result.steps[-1]["latency_b64_ms"] <= 0.5 * result.steps[0]["latency_b64_ms"]
    assert len(timed) > len(result.steps)  # candidates were timed, not just the kept steps


def test_regression_compresses_with_the_error_budget(tmp_path) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 5))
    data = from_arrays(X, X @ rng.normal(size=5) * 10 + 50, task="regression")
    train, test = train_test_split(data, 0.25, seed=0)
    model = build_model(MLPSpace(), {**MLP_ARCH, "batch_norm": False}, train)
    cfg = TrainConfig(lr=1e-2, batch_size=32)
    fit(model, train.X, train.y, train.task, cfg, epochs=10)
    res = compress(model, train, test, tmp_path, config=CompressConfig(target_params=0.5, max_drop=1000.0, steps=1,
                                                                      finetune_epochs=1, round_to=1),
                   train_config=cfg, measure_memory=False)
    assert res.pruning["metric"] == "neg_rmse" and res.pruning["drop_unit"] == "% of the error"
    assert "val_rmse" in res.steps[1] and res.stages[-1].stage == "onnx int8"
    assert res.verification["onnx_fp32"]["max_abs_diff_vs_torch"] < 1e-3 * float(np.abs(test.y).max())
    assert "max_abs_diff_vs_fp32" in res.verification["onnx_int8"]


def test_error_metrics_count_the_drop_in_percent_of_the_error() -> None:
    from autoarch.compress.schedule import metric_drop

    assert metric_drop("accuracy", 0.95, 0.94) == pytest.approx(1.0)
    assert metric_drop("neg_rmse", 2.0, 2.1) == pytest.approx(5.0)


# --- export, int8 and verification ------------------------------------------------------------------------

def test_compress_verifies_every_stage_and_chooses_int8_by_measuring(tabular, tmp_path) -> None:
    model, train, test, cfg = tabular
    config = CompressConfig(target_macs=0.5, max_drop=100.0, steps=1, finetune_epochs=1, round_to=1)
    res = compress(model, train, test, tmp_path, config=config, train_config=cfg)
    stages = {r.stage: r.to_dict() for r in res.stages}  # as report.json holds them
    assert list(stages) == ["torch fp32", "torch pruned", "onnx fp32 unpruned", "onnx fp32", "onnx int8"]
    for name in ("onnx fp32 unpruned", "onnx fp32", "onnx int8"):
        row = stages[name]
        assert row["checker"] == "ok" and row["opset"] >= 17 and row["bytes"] > 0
        assert row["latency_b1_ms"] > 0 and row["latency_b64_ms"] > 0
        assert row["peak_memory_mb"] > 0  # the probe measured the session (None would be a broken probe)
    assert stages["onnx fp32"]["max_abs_diff_vs_torch"] < 1e-4
    assert stages["onnx fp32 unpruned"]["max_abs_diff_vs_torch"] < 1e-4
    int8 = stages["onnx int8"]
    assert 0.9 <= int8["argmax_agreement_vs_torch"] <= 1.0 and "accuracy_delta_vs_fp32" in int8
    decision = res.verification["onnx_int8"]["decision"]
    # A Linear-only model: static and dynamic were both timed at batch 64 and the faster kept.
    assert set(decision["candidates"]) == {"static", "dynamic"}
    faster = min(decision["candidates"], key=lambda k: decision["candidates"][k]["latency_b64_ms"])
    assert decision["method"] == faster == int8["method"]
    assert read_metadata(res.int8_path)["quantization"] == faster
    for batch in (1, 64):  # a slower int8 model is flagged, never hidden
        slower = int8[f"latency_b{batch}_ms"] >= stages["onnx fp32"][f"latency_b{batch}_ms"]
        assert res.verification[f"int8_faster_than_fp32_b{batch}"] is (not slower)
        assert slower == any(f"NOT faster than fp32 at batch {batch}" in w for w in res.verification["warnings"])
    # Decisions were taken on data held back from the training split, never on the held-out split.
    assert res.pruning["n_fit"] + res.pruning["n_val"] == len(train)
    assert res.pruning["target_reached"] and stages["torch pruned"]["macs"] <= 0.5 * stages["torch fp32"]["macs"]


def test_onnx_metadata_describes_the_model(tabular, tmp_path) -> None:
    model, train, test, cfg = tabular
    res = compress(model, train, test, tmp_path, config=CompressConfig(steps=1, finetune_epochs=0, int8="static",
                                                                      round_to=1, max_drop=100.0),
                   train_config=cfg, measure_memory=False)
    for path in (res.onnx_path, res.int8_path):
        meta = read_metadata(path)
        assert json.loads(meta["classes"]) == ["cat", "dog", "eel"]
        assert json.loads(meta["input_shape"]) == [6]
        assert json.loads(meta["feature_names"]) == [f"f{i}" for i in range(6)]
        assert meta["task"] == "classification" and meta["output"] == "logits" and meta["metric"] == "accuracy"
        prep = json.loads(meta["preprocessing"])
        np.testing.assert_allclose(prep["standardize"]["mean"], model.mean.numpy(), rtol=1e-6)
        np.testing.assert_allclose(prep["standardize"]["std"], model.std.numpy(), rtol=1e-6)
        assert prep["applied_inside_model"] is True
        assert json.loads(meta["compression"])["target"] == {"kind": "macs", "keep": 0.25}
    assert read_metadata(res.int8_path)["quantization"] == "static"


# --- a search run directory -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    space = CNNSpace(max_stages=2, channels=(16,), max_convs=1, kernels=(3,), activations=("relu",))
    autoarch.search("digits", trials=1, cv=2, epochs=3, out=out, prune=0.0, max_samples=400, seed=0, space=space)
    return out


def test_compress_run_restarts_from_the_winner_and_reloads_identically(run_dir, tmp_path) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    steps: list[dict] = []
    res = compress_run(run_dir, out=tmp_path / "c", target_params=0.5, max_drop=100.0, steps=2, finetune_epochs=1,
                       round_to=1, calibration_samples=32, on_step=steps.append, measure_memory=False)
    out = tmp_path / "c"
    for name in ("architecture.json", "model.pt", "model.onnx", "model.int8.onnx", "compression.json",
                 "compression.md"):
        assert (out / name).is_file(), name
    assert [s["step"] for s in steps] == [0, 1, 2] and res.pruning["target_reached"]
    summary = json.loads((out / "compression.json").read_text())
    assert "retrained from scratch" in summary["started_from"] and len(summary["steps"]) == 3
    assert [r.stage for r in res.stages][:3] == ["torch fp32 winner", "torch fp32", "torch pruned"]
    # The split is the search's: same held-out size, and validation comes out of the training split only.
    assert summary["n_test"] == report["data"]["n_test"]
    assert summary["n_fit"] + summary["n_val"] == report["data"]["n_train"]
    assert res.stages[0].scores[report["search"]["metric"]] == pytest.approx(report["test"][report["search"]["metric"]])
    # architecture + pruning record + state_dict rebuild the pruned model exactly (weights_only load).
    spec = json.loads((out / "architecture.json").read_text())
    assert spec["pruning_history"] == json.loads(json.dumps(res.pruning_history))
    state = torch.load(out / "model.pt", weights_only=True)
    assert count_params(res.model) < res.stages[0].params == report["compression"]["stages"][0]["params"]
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in res.model.state_dict().items()}
    loaded = autoarch.load(out)
    x = torch.randn(7, 1, 8, 8)
    torch.testing.assert_close(loaded(x), res.model(x), rtol=0, atol=0)
    assert "## Pruning steps" in (out / "compression.md").read_text()


def test_compress_run_with_a_channel_target_prunes_winner_pt_in_one_shot(run_dir, tmp_path) -> None:
    res = compress_run(run_dir, out=tmp_path / "c", target_channels=0.5, finetune_epochs=1, round_to=1,
                       calibration_samples=32, measure_memory=False, finetune_stop=False)
    summary = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert summary["started_from"] == "winner.pt" and summary["n_val"] == 0  # nothing held back, no retrain
    assert res.steps == [] and res.pruning["kept_step"] == 1
    assert res.stage("torch pruned").params < res.stage("torch fp32").params
    md = (tmp_path / "c" / "compression.md").read_text()
    assert "in one shot (no accuracy budget" in md and "## Pruning steps" not in md


def test_compress_run_checks_a_channel_target_on_a_held_back_part(run_dir, tmp_path) -> None:
    res = compress_run(run_dir, out=tmp_path / "c", target_channels=0.5, finetune_epochs=1, round_to=1,
                       calibration_samples=32, measure_memory=False, max_drop=100.0, check=True)
    summary = json.loads((tmp_path / "c" / "compression.json").read_text())
    assert summary["started_from"] == "winner.pt" and summary["n_val"] > 0  # held back, still no retrain
    assert res.pruning["check"]["within_budget"] and res.pruning["kept_step"] == 1
    md = (tmp_path / "c" / "compression.md").read_text()
    assert "in one shot, kept only within 100 points of validation accuracy" in md


def test_compress_run_continues_from_a_pruned_model(run_dir, tmp_path) -> None:
    first = compress_run(run_dir, out=tmp_path / "a", target_params=0.6, max_drop=100.0, steps=1, finetune_epochs=0,
                         round_to=1, int8="none", measure_memory=False, retrain=False)
    assert json.loads((tmp_path / "a" / "compression.json").read_text())["started_from"] == "winner.pt"
    assert first.stages[0].stage == "torch fp32"
    # Treat the first result as a run directory without winner.pt: start from its model.pt and prune further.
    (tmp_path / "a" / "report.json").write_text((run_dir / "report.json").read_text())
    second = compress_run(tmp_path / "a", out=tmp_path / "b", target_params=0.6, max_drop=100.0, steps=1,
                          finetune_epochs=0, round_to=1, int8="none", measure_memory=False)
    assert count_params(second.model) < count_params(first.model)
    assert len(second.pruning_history) > len(first.pruning_history)
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(autoarch.load(tmp_path / "b")(x), second.model(x), rtol=0, atol=0)


def test_compress_run_refuses_data_that_is_not_the_runs(run_dir, tmp_path) -> None:
    with pytest.raises(DataError, match="run had"):
        compress_run(run_dir, out=tmp_path / "x", data="iris")
    with pytest.raises(DataError, match="does not exist"):
        compress_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="architecture.json is missing"):
        compress_run(tmp_path / "empty")


def test_cli_compress_writes_the_model_and_reports_steps(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    rc = main(["compress", str(run_dir), "--out", str(out), "--target-macs", "0.5", "--max-drop", "100",
               "--steps", "1", "--finetune-epochs", "1", "--round-to", "1", "--int8", "static", "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0 and "step 1:" in text and "onnx int8" in text
    assert (out / "model.int8.onnx").is_file()
    onnx.checker.check_model(onnx.load(str(out / "model.int8.onnx")), full_check=True)


@pytest.mark.parametrize("args, expected", [
    (["--target-macs", "0.5", "--target-params", "0.5"], "not allowed with"),
    (["--target-macs", "2"], "target_macs"),
    (["--importance", "tailor"], "invalid choice"),
    (["--max-dorp", "1"], "Did you mean '--max-drop'"),
])
def test_cli_compress_bad_options_exit_2_with_one_line(run_dir, capsys, args, expected) -> None:
    try:
        rc = main(["compress", str(run_dir), *args, "--quiet"])
    except SystemExit as exc:  # argparse's own errors
        rc = int(exc.code)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and expected in err and "Traceback" not in err


def test_cli_compress_missing_run_dir_exits_2(tmp_path, capsys) -> None:
    assert main(["compress", str(tmp_path / "nope"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err


def test_a_csv_run_reloads_its_file_and_predicts_with_its_labels(tmp_path) -> None:
    from autoarch.predict import predict_file

    data = _blobs(n=90, d=4, seed=3)
    frame = pd.DataFrame(data.X, columns=data.feature_names)
    frame["label"] = data.labels(data.y)
    frame.to_csv(tmp_path / "blobs.csv", index=False)
    run = tmp_path / "run"
    space = MLPSpace(max_layers=1, widths=(32,), activations=("relu",))
    autoarch.search(str(tmp_path / "blobs.csv"), target="label", trials=1, cv=2, epochs=3, out=run, prune=0.0,
                    space=space)
    report = json.loads((run / "report.json").read_text())
    assert report["data"]["source"]["source"] == str((tmp_path / "blobs.csv").resolve())
    res = compress_run(run, target_params=0.5, max_drop=100.0, steps=1, finetune_epochs=0, round_to=1, int8="none",
                       measure_memory=False)
    assert res.stages[0].scores["accuracy"] == pytest.approx(report["test"]["accuracy"])
    # The CSV still has its target column: predict matches the model's feature names and ignores it.
    got = predict_file(run / "compressed" / "model.onnx", tmp_path / "blobs.csv")
    assert set(got["prediction"]) <= {"cat", "dog", "eel"} and len(got) == 90


def _three_more_wrong(n: int, lost: int) -> tuple:
    """Outputs of a reference right on every sample and a step wrong on ``lost`` of them (2 classes)."""
    y = np.arange(n) % 2
    reference = np.eye(2)[y].astype(np.float32)
    step = reference.copy()
    step[:lost] = np.eye(2)[1 - y[:lost]]
    return from_arrays(np.zeros((n, 1), np.float32), y, task="classification"), reference, step


def test_the_accuracy_budget_does_not_decide_on_the_noise_of_a_small_validation_part() -> None:
    from autoarch.compress.schedule import drop_margin, metric_drop

    # issue #12: 216 validation images, 3 more wrong = 1.39 points, over a 1-point budget by the drop alone
    data, reference, step = _three_more_wrong(216, 3)
    drop = metric_drop("accuracy", 1.0, 1 - 3 / 216)
    margin = drop_margin("accuracy", data, reference, step, 0.95)
    assert drop == pytest.approx(1.389, abs=1e-3) and 0.9 < margin < 1.8  # 1.645 x sqrt(3) / 216 x 100 = 1.32
    assert drop <= 1.0 + margin and drop_margin("accuracy", data, reference, step, None) == 0.0
    # the same share lost on 9,000 samples is no noise: the margin shrinks with the validation part
    big, big_reference, big_step = _three_more_wrong(9000, 125)
    assert drop_margin("accuracy", big, big_reference, big_step, 0.95) < 0.25
    # the bootstrap path of any other metric agrees with the accuracy shortcut's scale
    f1 = drop_margin("f1_macro", data, reference, step, 0.95)
    assert 0.5 * margin < f1 < 2 * margin
