"""Device cost before training (issue #13 items 1-2): --max-latency-ms / --max-size-kb reject a candidate on its
int8 model, exported and timed before any training, cached per architecture in the study."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

import autoarch
import autoarch.compress.cost
from autoarch.exceptions import LimitsUnmetError

TINY = dict(cv=2, epochs=1, patience=1, prune=0.0, calibration_samples=16, seed=0, workers=1, warm_start=False)


def test_int8_cost_measures_the_file_it_would_ship_and_its_latency() -> None:
    from autoarch.compress.cost import int8_cost
    from autoarch.data import from_arrays
    from autoarch.evaluate import build_model
    from autoarch.search_spaces import get_space

    X = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    data = from_arrays(X, np.arange(64) % 3)
    space = get_space("mlp", "tabular")
    arch = space.suggest(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask())
    cost = int8_cost(build_model(space, arch, data), X, batches=(1, 4))
    assert cost["int8_method"] in ("static", "dynamic") and 0 < cost["int8_kb"] < 200
    assert cost["latency_b1_ms"] > 0 and cost["latency_b4_ms"] > 0 and cost["cost_seconds"] > 0


def test_the_cost_is_of_the_network_pruned_as_it_ships() -> None:
    from autoarch.compress.config import CompressConfig
    from autoarch.compress.cost import int8_cost, shipped_pruning
    from autoarch.compress.pruning import count_params
    from autoarch.data import from_arrays
    from autoarch.evaluate import build_model
    from autoarch.search_spaces import get_space

    X = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    data = from_arrays(X, np.arange(64) % 3)
    space = get_space("mlp", "tabular")
    arch = {"n_layers": 2, "width_0": 64, "width_1": 64, "activation": "relu", "dropout": 0.0, "batch_norm": False,
            "connectivity": "plain"}
    model = build_model(space, arch, data)
    params = count_params(model)
    whole = int8_cost(model, X)
    half = int8_cost(model, X, prune=0.5, round_to=8)
    assert whole["pruned"] == 0.0 and half["pruned"] == 0.5
    # half the hidden units of two 64-wide layers: the 64x64 weights shrink four-fold
    assert half["int8_kb"] < 0.6 * whole["int8_kb"], (half, whole)
    assert count_params(model) == params  # a copy was pruned
    assert shipped_pruning(CompressConfig(target_channels=0.85)) == (0.15, 8)
    assert shipped_pruning(CompressConfig(target_channels=1.0, round_to=4)) == (0.0, 4)
    # reached by measuring the trained model, or spread by its weights: not known before training
    assert shipped_pruning(CompressConfig(target_macs=0.5)) == (0.0, 1)
    assert shipped_pruning(CompressConfig(target_channels=0.85, global_pruning=True)) == (0.0, 1)


def test_an_untrained_network_with_batch_norm_costs_what_it_will_once_trained(tmp_path) -> None:
    import torch

    from autoarch.compress.cost import int8_cost
    from autoarch.compress.export import export_onnx
    from autoarch.compress.quantize import choose_int8
    from autoarch.evaluate import build_model
    from autoarch.loaders import load_dataset
    from autoarch.search_spaces import get_space
    from autoarch.trainer import TrainConfig, fit

    data = load_dataset("digits")
    space = get_space("cnn", data.input_kind)
    arch = dict(space.warm_starts())["vgg-like"]  # conv-BN-ReLU blocks
    model = build_model(space, arch, data)
    X = np.asarray(data.X[:64], dtype=np.float32)
    predicted = int8_cost(model, X)["int8_kb"]
    # the batch norm of an untrained network (mean 0, variance 1, shift 0) folds into all-zero biases, which
    # the export leaves out; trained, they are there
    fit(model, data.X[:256], data.y[:256], data.task, TrainConfig(max_epochs=1, batch_size=64), seed=0, epochs=1)
    fp32 = export_onnx(model.eval(), torch.as_tensor(X[:2]), tmp_path / "model.onnx")
    path, _ = choose_int8(fp32, tmp_path / "model.int8.onnx", X, X, repeats=1)
    assert abs(predicted / (path.stat().st_size / 1024) - 1) < 0.02, (predicted, path.stat().st_size / 1024)


def test_a_size_limit_rejects_candidates_before_training_and_records_their_cost(monkeypatch) -> None:
    import autoarch.budget

    # rejections that take time end the search after MIN_REJECT_STREAK of them (not REJECT_STREAK = 200)
    monkeypatch.setattr(autoarch.budget, "MIN_REJECT_STREAK", 3)
    monkeypatch.setattr(autoarch.budget, "REJECT_SECONDS", 0.0)
    with pytest.raises(LimitsUnmetError, match=r"no candidate meets --max-size-kb: all 3 started were rejected "
                                               r"before training \(smallest int8 size seen: \d+\.?\d* KB "
                                               r"\(--max-size-kb 0.5\)\)"):
        autoarch.search("iris", trials=2, max_size_kb=0.5, **TINY)
    result = autoarch.search("iris", trials=3, max_size_kb=10_000, **{**TINY, "prune": 0.25})
    for t in result.study.trials:
        assert t.user_attrs["int8_cost"]["int8_kb"] < 10_000 and "epochs_trained" in t.user_attrs
        assert t.user_attrs["int8_cost"]["pruned"] == 0.25  # measured as --prune ships it
    assert "int8_kb" in result.leaderboard.columns and "int8_latency_b1_ms" in result.leaderboard.columns
    predicted = result.report["best"]["int8_cost_before_training"]
    assert predicted == result.study.best_trial.user_attrs["int8_cost"]
    assert "int8 before training:" in result.summary()


def test_a_latency_limit_rejects_and_says_which(monkeypatch) -> None:
    import autoarch.budget

    monkeypatch.setattr(autoarch.budget, "REJECT_STREAK", 2)
    with pytest.raises(LimitsUnmetError, match=r"no candidate meets --max-latency-ms: .*smallest int8 latency seen: "
                                               r".* ms \(--max-latency-ms 1e-06\)"):
        autoarch.search("iris", trials=2, max_latency_ms=1e-6, latency_batch=4, **TINY)


def test_without_a_device_limit_nothing_is_measured(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("int8_cost measured without a device limit")

    monkeypatch.setattr(autoarch.compress.cost, "int8_cost", refuse)
    result = autoarch.search("iris", trials=2, **TINY)
    assert all("int8_cost" not in t.user_attrs for t in result.study.trials)
    assert "int8_kb" not in result.leaderboard.columns


def test_the_cost_of_an_architecture_is_measured_once_per_study(monkeypatch) -> None:
    calls = []
    real = autoarch.compress.cost.int8_cost

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(autoarch.compress.cost, "int8_cost", counted)
    result = autoarch.search("iris", trials=1, max_size_kb=10_000, **TINY)
    again = dict(result.study.trials[0].params, lr=1e-2)  # same architecture, other training
    result.study.enqueue_trial(again)
    from sklearn.datasets import load_iris

    from autoarch.config import SearchConfig
    from autoarch.data import from_arrays
    from autoarch.search_spaces import get_space
    from autoarch.trials import make_objective

    X, y = load_iris(return_X_y=True)
    cfg = SearchConfig(**{**TINY, "max_size_kb": 10_000, "search_samples": None})
    objective = make_objective(get_space("mlp", "tabular"), from_arrays(X.astype(np.float32), y), cfg, "accuracy",
                               autoarch.trainer.resolve_device("cpu"))
    result.study.optimize(objective, n_trials=1)
    assert len(calls) == 1
    # measured with what the shipped file carries: its preprocessing and classes
    assert {"preprocessing", "classes", "task"} <= set(calls[0]["metadata"]), calls[0]
    first, second = result.study.trials[0], result.study.trials[-1]
    assert second.user_attrs["int8_cost"] == first.user_attrs["int8_cost"]


def test_latency_is_measured_in_a_fresh_onnxruntime_only_process(tmp_path, monkeypatch, env_without) -> None:
    import torch

    import autoarch.compress.runtime as runtime
    from autoarch.compress.export import export_onnx

    path = export_onnx(torch.nn.Sequential(torch.nn.Linear(6, 4)), torch.zeros(2, 6), tmp_path / "m.onnx")

    def no_fallback(*args, **kwargs):
        raise AssertionError("measured in this process, not in the probe")

    monkeypatch.setattr(runtime, "session", no_fallback)  # the in-process fallback would fail the test
    for name, value in env_without("torch", "optuna", "sklearn").items():  # the probe cannot import torch
        monkeypatch.setenv(name, value)
    got = runtime.isolated_latency_ms(path, np.zeros((3, 6), np.float32), (1, 4), repeats=3, warmup=1)
    assert set(got) == {1, 4} and all(v > 0 for v in got.values())


def test_a_latency_is_the_fastest_round_of_calls_timed_for_a_while_as_well_as_a_count() -> None:
    import time

    from autoarch.compress import timing

    calls: list[str] = []
    start = time.perf_counter()

    def call(name: str) -> None:  # 0.1-0.2 ms, as a digits CNN at batch 1; ten times that while the machine is slow
        calls.append(name)
        now = time.perf_counter() - start
        time.sleep(0.002 if now < 0.15 or now > 0.45 else 0.0001)

    result = timing.latencies({"a": lambda: call("a"), "b": lambda: call("b")}, repeats=3, warmup=1)
    elapsed = time.perf_counter() - start
    # slow through the warm-up and the first round, and again from the fourth: the least round median is fast
    assert result["a"] < 0.001 and result["b"] < 0.001, result
    # every round lasts at least ROUND_SECONDS (3 calls of 0.1 ms would last a third of a millisecond) ...
    assert elapsed >= 2 * (timing.WARMUP_SECONDS + timing.ROUNDS * timing.ROUND_SECONDS)
    assert len(calls) > 10 * 2 * timing.ROUNDS * 3
    # ... and the two runs take turns, round by round
    turns = sum(1 for x, y in zip(calls[:-1], calls[1:], strict=True) if x != y)
    assert turns >= 2 * timing.ROUNDS - 1, turns


def test_a_cached_cost_is_reused_only_where_it_was_measured_the_same_way() -> None:
    """A study resumed after a change of how costs are measured, or with another --prune, measures again."""
    from autoarch.compress.cost import COST_VERSION, measured_with, shipped_pruning
    from autoarch.config import SearchConfig
    from autoarch.data import from_arrays
    from autoarch.evaluate import build_model
    from autoarch.search_spaces import get_space
    from autoarch.trials import device_cost

    X = np.random.default_rng(0).normal(size=(64, 10)).astype(np.float32)
    data = from_arrays(X, np.arange(64) % 3)
    space = get_space("mlp", "tabular")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    arch = space.suggest(study.ask())
    cfg = SearchConfig(**{**TINY, "prune": 0.25, "search_samples": None})
    same = measured_with(*shipped_pruning(cfg.compression))  # (0.25, 8)
    assert same["version"] == COST_VERSION
    fake = {"int8_kb": 1.0, "latency_b1_ms": 123.0, "int8_method": "static", "pruned": 0.25}
    for how in (None, {**same, "version": COST_VERSION - 1}, measured_with(0.5, same["round_to"]), same):
        cached = fake if how is None else {**fake, "measured_with": how}
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"architecture": arch, "int8_cost": cached}))
    trial = study.ask()
    assert device_cost(trial, arch, build_model(space, arch, data), data, cfg)["latency_b1_ms"] == 123.0
    study = optuna.create_study()
    for how in (None, {**same, "version": COST_VERSION - 1}, measured_with(0.5, same["round_to"])):
        cached = fake if how is None else {**fake, "measured_with": how}
        study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"architecture": arch, "int8_cost": cached}))
    cost = device_cost(study.ask(), arch, build_model(space, arch, data), data, cfg)
    assert cost["latency_b1_ms"] != 123.0 and cost["measured_with"] == same
