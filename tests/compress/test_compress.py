from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from autoarch.compress import (
    CompressConfig,
    Stage,
    check_onnx,
    compact_names,
    compress,
    count_macs_params,
    export_onnx,
    prune,
    quantize,
    quantize_int8,
    read_metadata,
    replay_pruning,
    run_onnx,
    session,
)
from autoarch.compress.quantize import choose_int8, pools_as_depthwise, pools_before_activations, stem_nodes
from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.exceptions import ConfigError
from autoarch.loaders import load_dataset
from autoarch.search_spaces import CNNSpace
from autoarch.trainer import TrainConfig, fit

ARCH = {"n_stages": 2, "channels_0": 32, "n_convs_0": 2, "kernel_0": 3, "channels_1": 64, "n_convs_1": 1,
        "kernel_1": 3, "connectivity": "residual", "pooling": "max", "activation": "relu", "dropout": 0.1,
        "batch_norm": True}


@pytest.fixture(scope="module")
def trained():
    data = load_dataset("digits")
    train, test = train_test_split(data, 0.2, seed=0)
    torch.manual_seed(0)
    model = build_model(CNNSpace(), ARCH, train)
    cfg = TrainConfig(lr=3e-3, batch_size=64)
    fit(model, train.X, train.y, "classification", cfg, epochs=4)
    return model.eval(), train, test, cfg


def test_prune_ratio_zero_is_a_no_op_and_bad_ratio_errors(trained) -> None:
    model = trained[0]
    x = torch.zeros(2, 1, 8, 8)
    assert prune(model, x, 0.0) == []
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        prune(model, x, 1.0)


def test_pruning_shrinks_params_and_macs_and_replays(trained) -> None:
    import copy

    model, train, test, _ = trained
    x = torch.as_tensor(test.X[:8])
    pruned = copy.deepcopy(model)
    history = prune(pruned, x[:2], 0.5)
    macs0, params0 = count_macs_params(model, x)
    macs1, params1 = count_macs_params(pruned, x)
    assert params1 < 0.5 * params0 and macs1 < 0.5 * macs0
    rebuilt = replay_pruning(build_model(CNNSpace(), ARCH, train), x[:2], history)
    rebuilt.load_state_dict(pruned.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), pruned(x))


def test_export_and_int8_quantization(trained, tmp_path) -> None:
    model, train, test, _ = trained
    x = torch.as_tensor(train.X[:2])
    fp32 = export_onnx(model, x, tmp_path / "m.onnx", metadata={"classes": "[0, 1]"})
    assert check_onnx(fp32)["checker"] == "ok"
    assert read_metadata(fp32)["classes"] == "[0, 1]"
    out = run_onnx(session(fp32), test.X)
    np.testing.assert_allclose(out, model(torch.as_tensor(test.X)).detach().numpy(), atol=1e-4)
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", train.X[:128])
    assert check_onnx(int8)["checker"] == "ok"
    assert read_metadata(int8)["classes"] == "[0, 1]"
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size
    agree = (run_onnx(session(int8), test.X).argmax(1) == out.argmax(1)).mean()
    assert agree > 0.95
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def _ops(path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_unpadded_average_pools_become_depthwise_convolutions_that_compute_the_same(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.AvgPool2d((2, 4)), nn.ReLU(),
                          nn.AvgPool2d(3, stride=1, padding=1),  # padded: left as it is
                          nn.AdaptiveAvgPool2d(2), nn.Flatten()).eval()
    x = torch.randn(5, 1, 8, 8)
    path = export_onnx(model, x[:2], tmp_path / "m.onnx")
    onnx.shape_inference.infer_shapes_path(str(path))  # channel counts, as the quantizer's pre-processing gives
    before = run_onnx(session(path), x.numpy())
    assert _ops(path).count("AveragePool") == 3
    assert pools_as_depthwise(path) == 2
    assert _ops(path).count("AveragePool") == 1 and _ops(path).count("Conv") == 3
    assert check_onnx(path)["checker"] == "ok"
    np.testing.assert_allclose(run_onnx(session(path), x.numpy()), before, rtol=1e-5, atol=1e-6)
    # an AveragePool without ``strides`` moves by 1 (ONNX's default), as its convolution must
    pool = onnx.helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2])
    graph = onnx.helper.make_graph([pool], "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT,
                                                                                    [None, 3, 4, 4])],
                                   [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), tmp_path / "p.onnx")
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 4)).astype(np.float32)
    before = run_onnx(session(tmp_path / "p.onnx"), x)
    assert before.shape == (2, 3, 3, 3) and pools_as_depthwise(tmp_path / "p.onnx") == 1
    np.testing.assert_allclose(run_onnx(session(tmp_path / "p.onnx"), x), before, rtol=1e-5, atol=1e-6)


def test_an_adaptive_pool_of_uneven_windows_exports_as_two_matmuls_that_compute_the_same(tmp_path) -> None:
    """7 to 4 (windows of 2, 3, 3, 2): torch's exporter writes gathers and adds, which onnxruntime runs slowly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.AdaptiveAvgPool2d((4, None)),  # 7x7 -> 4x7: uneven rows
                          nn.ReLU(), nn.AdaptiveAvgPool2d((2, 7)), nn.Flatten()).eval()  # 4x7 -> 2x7: even, stays
    x = torch.randn(5, 1, 9, 9)
    path = export_onnx(model, x[:2], tmp_path / "m.onnx")
    assert "Gather" not in _ops(path) and _ops(path).count("MatMul") == 2
    assert isinstance(model[1], nn.AdaptiveAvgPool2d)  # the caller's model keeps its modules
    np.testing.assert_allclose(run_onnx(session(path), x.numpy()), model(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    # the VGG-like warm start on 28x28 images: 7x7 feature maps into a 4x4 head
    vgg = dict(CNNSpace().warm_starts())["vgg-like"]
    net = CNNSpace().build(vgg, (1, 28, 28), 10).eval()
    images = torch.rand(3, 1, 28, 28)
    path = export_onnx(net, images[:2], tmp_path / "vgg.onnx")
    assert "Gather" not in _ops(path)
    np.testing.assert_allclose(run_onnx(session(path), images.numpy()), net(images).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


class _PooledLSTM(nn.Module):
    """An LSTM whose outputs (steps x 8 features) are pooled to 4 x 8: uneven windows at 7 steps."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.pool, self.head = nn.LSTM(3, 8, batch_first=True), nn.AdaptiveAvgPool2d((4, 8)), nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.rnn(x)[0].unsqueeze(1)).flatten(1))


def test_a_model_exported_with_a_dynamic_sequence_length_keeps_its_adaptive_pool(tmp_path) -> None:
    """Fixed pooling matrices would fit the example's length only (the export would lose its dynamic axis)."""
    torch.manual_seed(0)
    model = _PooledLSTM().eval()
    path = export_onnx(model, torch.randn(2, 7, 3), tmp_path / "m.onnx")
    for steps in (7, 10):
        x = torch.randn(3, steps, 3)
        np.testing.assert_allclose(run_onnx(session(path), x.numpy()), model(x).detach().numpy(), rtol=1e-5,
                                   atol=1e-6)


def test_int8_quantizes_average_pools_as_depthwise_convolutions(tmp_path) -> None:
    """onnxruntime's QLinearAveragePool pools in float (several times slower than the fp32 model's pool)."""
    data = load_dataset("digits")
    train, test = train_test_split(data, 0.2, seed=0)
    torch.manual_seed(0)
    model = build_model(CNNSpace(), {**ARCH, "pooling": "avg", "head_pool": 2}, train)
    fit(model, train.X, train.y, "classification", TrainConfig(lr=3e-3, batch_size=64), epochs=2)
    fp32 = export_onnx(model.eval(), torch.as_tensor(train.X[:2]), tmp_path / "m.onnx")
    assert _ops(fp32).count("AveragePool") == 2
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", train.X[:128])
    assert "AveragePool" not in _ops(int8)
    assert _ops(fp32) == _ops(tmp_path / "m.onnx")  # the fp32 file is not changed
    out = run_onnx(session(fp32), test.X)
    assert (run_onnx(session(int8), test.X).argmax(1) == out.argmax(1)).mean() > 0.95


def test_a_max_pool_moves_before_a_never_decreasing_activation_and_computes_the_same(tmp_path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 1, 8, 8)
    for act, moves in ((nn.ReLU(), True), (nn.LeakyReLU(0.1), True), (nn.Tanh(), True),
                       (nn.GELU(), False), (nn.LeakyReLU(-0.5), False)):  # GELU and a negative slope: not monotone
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), act, nn.MaxPool2d(2), nn.Conv2d(4, 8, 3)).eval()
        path = export_onnx(model, x[:2], tmp_path / "m.onnx")
        onnx.shape_inference.infer_shapes_path(str(path))  # inner shapes, as the quantizer's pre-processing gives
        before = run_onnx(session(path), x.numpy())
        assert pools_before_activations(path) == int(moves)
        assert (_ops(path)[1] == "MaxPool") == moves, _ops(path)  # Conv, MaxPool, the activation, Conv
        onnx.shape_inference.infer_shapes(onnx.load(str(path)), strict_mode=True)  # no stale shape left
        np.testing.assert_allclose(run_onnx(session(path), x.numpy()), before, rtol=1e-6, atol=1e-6)
    # only the nodes named, when a list is given
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)).eval()
    path = export_onnx(model, x[:2], tmp_path / "m.onnx")
    assert pools_before_activations(path, names=[]) == 0 and _ops(path)[-1] == "MaxPool"


def test_the_stem_is_every_node_before_the_first_weighted_one_reading_more_than_four_channels(tmp_path) -> None:
    x = torch.randn(2, 1, 8, 8)
    lenet = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 8, 3), nn.Flatten()).eval()
    path = export_onnx(lenet, x, tmp_path / "m.onnx")
    nodes = onnx.load(str(path)).graph.node
    second = [i for i, n in enumerate(nodes) if n.op_type == "Conv"][1]
    assert stem_nodes(path) == [n.name for n in nodes[:second]] and len(stem_nodes(path)) >= 3
    wide = nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU()).eval()
    assert stem_nodes(export_onnx(wide, torch.randn(2, 8, 8, 8), tmp_path / "w.onnx")) == []


def test_int8_with_a_float_stem_keeps_the_stem_convolution_in_float(trained, tmp_path) -> None:
    model, train, test, _ = trained
    fp32 = export_onnx(model, torch.as_tensor(train.X[:2]), tmp_path / "m.onnx")
    out = run_onnx(session(fp32), test.X)
    quantized = {}
    for float_stem in (False, True):
        path = quantize_int8(fp32, tmp_path / f"{float_stem}.int8.onnx", train.X[:128], float_stem=float_stem)
        graph = onnx.load(str(path)).graph
        floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 4}
        first = next(n for n in graph.node if n.op_type == "Conv")
        quantized[float_stem] = first.input[1] not in floats  # its weight comes through a DequantizeLinear
        assert sum(n.op_type == "DequantizeLinear" for n in graph.node) > 3  # the rest is int8
        assert (run_onnx(session(path), test.X).argmax(1) == out.argmax(1)).mean() > 0.95
    assert quantized == {False: True, True: False}


def test_auto_int8_of_a_cnn_times_the_stem_in_int8_and_in_float_and_ships_the_faster(trained, tmp_path,
                                                                                     monkeypatch) -> None:
    model, train, _, _ = trained
    fp32 = export_onnx(model, torch.as_tensor(train.X[:2]), tmp_path / "m.onnx")
    float_first = {}
    for faster in ("float", "int8"):
        def fake_latency(path, X, batch, faster=faster, **timing):  # the faster file takes 1 ms, the other 2
            graph = onnx.load(str(path)).graph
            floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
            stem = "float" if next(n for n in graph.node if n.op_type == "Conv").input[1] in floats else "int8"
            return 1.0 if stem == faster else 2.0
        monkeypatch.setattr(quantize, "session", lambda path: path)  # the fake timing reads the file itself
        monkeypatch.setattr(quantize, "latency_ms", fake_latency)
        path, decision = choose_int8(fp32, tmp_path / f"{faster}.int8.onnx", train.X[:64], train.X[:64])
        assert decision["stem"] == faster and decision["method"] == "static"
        assert decision["candidates"][f"{faster} stem"] == {"latency_b1_ms": 1.0, "latency_b64_ms": 1.0}
        assert ("kept in float" in decision["description"]) == (faster == "float")
        graph = onnx.load(str(path)).graph
        floats = {i.name for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT}
        float_first[faster] = next(n for n in graph.node if n.op_type == "Conv").input[1] in floats
    assert float_first == {"float": True, "int8": False}


def test_uint8_pixels_calibrate_and_feed_onnx_like_their_float32_values(trained, tmp_path) -> None:
    """Image Datasets hold 8-bit pixels as uint8: int8 calibration and ONNX feeds convert them to float32."""
    model, train, test, _ = trained
    calib32, test32 = train.X[:128], test.X
    calib8, test8 = calib32.astype(np.uint8), test32.astype(np.uint8)  # digits' pixels are integers 0..16
    assert np.array_equal(calib8, calib32) and np.array_equal(test8, test32)
    fp32 = export_onnx(model, torch.as_tensor(calib8[:2]), tmp_path / "m.onnx")  # a uint8 example
    assert session(fp32).get_inputs()[0].type == "tensor(float)"  # the graph still takes float32 raw pixels
    np.testing.assert_array_equal(run_onnx(session(fp32), test8), run_onnx(session(fp32), test32))
    int8_from_8 = quantize_int8(fp32, tmp_path / "a.int8.onnx", calib8)
    int8_from_32 = quantize_int8(fp32, tmp_path / "b.int8.onnx", calib32)
    assert int8_from_8.read_bytes() == int8_from_32.read_bytes()  # the same calibrated ranges
    np.testing.assert_array_equal(run_onnx(session(int8_from_8), test8), run_onnx(session(int8_from_32), test32))


def test_compact_names_keeps_the_computation_and_the_interface(trained, tmp_path) -> None:
    import onnx

    model, train, test, _ = trained
    fp32 = export_onnx(model, torch.as_tensor(train.X[:2]), tmp_path / "m.onnx")
    int8 = quantize_int8(fp32, tmp_path / "m.int8.onnx", train.X[:64])
    for path in (fp32, int8):  # both come out compacted
        proto = onnx.load(str(path))
        graph = proto.graph
        assert [v.name for v in graph.input] == ["x"] and [v.name for v in graph.output] == ["y"]
        assert all(len(t.name) <= 6 for t in graph.initializer) and all(len(n.name) <= 6 for n in graph.node)
        assert not graph.value_info  # inner shapes dropped, the interface's kept
        assert not any(p.key.startswith("pkg.torch.") for p in graph.metadata_props)  # the exporter's signature
        assert graph.input[0].type.tensor_type.shape.dim[0].dim_param
        assert {op.domain for op in proto.opset_import} <= {"", "ai.onnx"} | {n.domain for n in graph.node}
    long_fp32 = export_onnx(model, torch.as_tensor(train.X[:2]), tmp_path / "l.onnx", short_names=False)
    long_int8 = quantize_int8(long_fp32, tmp_path / "l.int8.onnx", train.X[:64], short_names=False)
    for path in (long_fp32, long_int8):  # short_names=False keeps the exporter's module paths and the shapes
        graph = onnx.load(str(path)).graph
        assert any(t.name.startswith("net.") for t in graph.initializer) and graph.value_info
    assert len(onnx.load(str(long_int8)).opset_import) > len(onnx.load(str(int8)).opset_import)
    assert int8.stat().st_size < long_int8.stat().st_size
    # long names (as the exporter and the quantizer write them) compacted: smaller, valid, the same outputs
    raw = onnx.load(str(int8))
    long = {t.name: f"net.features.{t.name}.weight_DequantizeLinear_Output" for t in raw.graph.initializer}
    for node in raw.graph.node:
        node.name = f"/net/features/{node.name}/{node.op_type}_quant"
        node.input[:] = [long.get(n, n) for n in node.input]
    for t in raw.graph.initializer:
        t.name = long[t.name]
    (tmp_path / "long.onnx").write_bytes(raw.SerializeToString())
    assert compact_names(raw)
    onnx.checker.check_model(raw, full_check=True)
    (tmp_path / "short.onnx").write_bytes(raw.SerializeToString())
    assert (tmp_path / "short.onnx").stat().st_size < (tmp_path / "long.onnx").stat().st_size
    np.testing.assert_array_equal(run_onnx(session(tmp_path / "short.onnx"), test.X),
                                  run_onnx(session(tmp_path / "long.onnx"), test.X))


def test_a_channel_target_prunes_in_one_shot_and_reports_every_stage(trained, tmp_path) -> None:
    model, train, test, cfg = trained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    epochs: list[int] = []
    config = CompressConfig(target_channels=0.7, finetune_epochs=1, calibration_samples=64, finetune_stop=False)
    res = compress(model, train, test, tmp_path, train_config=cfg, config=config, measure_memory=False,
                   on_epoch=lambda epoch, record: epochs.append(epoch))
    stages = [r.stage for r in res.stages]
    assert stages == ["torch fp32", "torch pruned", "onnx fp32 unpruned", "onnx fp32", "onnx int8"]
    for row in res.stages:
        assert 0.0 <= row.scores["accuracy"] <= 1.0 and row.params > 0 and row.bytes > 0
    assert res.stages[1].params < res.stages[0].params
    # the shipped files are the pruned network, the unpruned file the input's
    assert res.stage("onnx fp32").params == res.stage("onnx int8").params == res.stage("torch pruned").params
    assert res.stage("onnx fp32").macs == res.stage("torch pruned").macs
    assert res.stage("onnx fp32 unpruned").params == res.stage("torch fp32").params
    # one shot, no budget, no early stopping: nothing held back, the whole split fine-tunes (one epoch, reported)
    assert res.steps == [] and res.pruning["n_val"] == 0 and res.pruning["n_fit"] == len(train)
    assert res.pruning["finetune_stop"] is None and res.pruning["finetune_epochs"] == 1
    assert res.pruning["target"] == {"kind": "channels", "keep": 0.7} and res.pruning["max_drop"] is None
    assert len(epochs) == 1 and "pruned_before_finetune" in res.verification
    # 0.3 of 32 and 64 channels, kept counts rounded to the nearest multiple of 8: 24 and 48
    convs = [m.out_channels for m in res.model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert set(convs) == {24, 48}
    assert res.verification["onnx_fp32"]["max_abs_diff_vs_torch"] < 1e-4
    assert res.verification["onnx_int8"]["calibration_samples"] == 64
    assert (tmp_path / "model.onnx").exists() and (tmp_path / "model.int8.onnx").exists()
    for k, v in model.state_dict().items():  # the input model is left untouched
        torch.testing.assert_close(v, before[k])


def _stopped(trained, tmp_path, monkeypatch, right: dict[int, int]):
    """A one-shot pruning whose early-stopped fine-tune sees, after epoch e, outputs that get ``right[e]`` of the
    held-back samples right (0 for epochs not named); every call of ``fit`` recorded."""
    model, train, test, cfg = trained
    import autoarch.compress.pipeline as pipeline

    calls: list[dict] = []
    starts: list[dict] = []
    real_fit = pipeline.fit

    def fit(m, X, y, task, tcfg, **kw):
        start = {k: v.clone() for k, v in m.state_dict().items()}
        if kw.get("val_scorer") is not None:
            scorer, y_val, epoch = kw["val_scorer"], kw["y_val"], iter(range(1, 100))

            def fake(out):
                hits = right.get(next(epoch), 0)
                logits = np.zeros_like(out)
                logits[np.arange(len(y_val)), (y_val + (np.arange(len(y_val)) >= hits)) % out.shape[1]] = 1.0
                return scorer(logits)

            kw["val_scorer"] = fake
        result = real_fit(m, X, y, task, tcfg, **kw)
        calls.append({"n": len(X), "epochs": kw.get("epochs"), "n_val": None if kw.get("X_val") is None
                      else len(kw["X_val"]), "ran": result.epochs_run, "lr": tcfg.lr})
        starts.append(start)
        return result

    monkeypatch.setattr(pipeline, "fit", fit)
    config = CompressConfig(target_channels=0.7, finetune_epochs=4, calibration_samples=32)
    res = compress(model, train, test, tmp_path, train_config=replace(cfg, patience=10), metric="accuracy",
                   config=config, measure_memory=False)
    return res, calls, starts


def test_a_channel_target_shortens_its_fine_tune_when_the_held_back_part_shows_the_longer_one_worse(
        trained, tmp_path, monkeypatch) -> None:
    _, train, _, cfg = trained
    n_val = round(0.15 * len(train))
    right = {1: n_val - 60, 2: n_val, 3: n_val - 60, 4: n_val - 60}
    res, calls, starts = _stopped(trained, tmp_path, monkeypatch, right)
    # at most 4 epochs on the split less its held-back 15%, validated after each: epoch 2 best, epoch 4 (the last)
    # 28 points below it, far beyond the noise; then the pruned model (not the early-stopped one) fine-tuned on the
    # whole split for 2 epochs, at the fine-tune's rate
    assert calls[0] == {"n": len(train) - n_val, "epochs": 4, "n_val": n_val, "ran": 4, "lr": cfg.lr / 4}
    assert calls[1] == {"n": len(train), "epochs": 2, "n_val": None, "ran": 2, "lr": cfg.lr / 4}
    assert len(calls) == 2 and res.pruning["finetune_epochs"] == 2 and res.pruning["kept_step"] == 1
    assert all(torch.equal(starts[1][k], v) for k, v in starts[0].items())  # both from the pruned weights
    stopping = res.pruning["finetune_stop"]
    assert stopping["best_epoch"] == 2 and stopping["epochs_run"] == 4 and stopping["epochs"] == 2
    assert stopping["val_accuracy_best"] == 1.0 and stopping["drop"] > stopping["margin"] > 0
    assert res.pruning["n_val"] == n_val and res.pruning["check"] is None
    assert "(2 epochs: best epoch 2 of 4 run" in res.pruning["validation"]
    assert res.pruning["validation"].endswith(f"then on all {len(train)} for 2 epochs")


def test_a_channel_target_keeps_its_whole_fine_tune_when_the_best_epoch_is_within_the_noise(
        trained, tmp_path, monkeypatch) -> None:
    _, train, _, _ = trained
    n_val = round(0.15 * len(train))
    # epoch 2 gets one held-back sample more right than the others: best, but not beyond the noise margin
    res, calls, _ = _stopped(trained, tmp_path, monkeypatch, {1: n_val - 10, 2: n_val - 9, 3: n_val - 10,
                                                             4: n_val - 10})
    stopping = res.pruning["finetune_stop"]
    assert stopping["best_epoch"] == 2 and 0 < stopping["drop"] <= stopping["margin"]
    assert stopping["epochs"] == 4 and calls[1]["epochs"] == 4 and res.pruning["finetune_epochs"] == 4


def test_a_class_with_one_training_sample_keeps_the_fixed_fine_tune_instead_of_failing(trained, tmp_path) -> None:
    model, train, test, cfg = trained
    keep = np.flatnonzero(train.y != 9)
    lone = train.subset(np.sort(np.concatenate([keep, np.flatnonzero(train.y == 9)[:1]])))
    config = CompressConfig(target_channels=0.7, finetune_epochs=1, calibration_samples=32)
    res = compress(model, lone, test, tmp_path, train_config=cfg, config=config, measure_memory=False)
    assert res.pruning["kept_step"] == 1 and res.pruning["finetune_stop"] is None
    assert res.pruning["n_val"] == 0 and res.pruning["n_fit"] == len(lone) and res.pruning["finetune_epochs"] == 1


def _checked(trained, tmp_path, **options):
    model, train, test, cfg = trained
    seen: list[str] = []
    epochs: list[int] = []
    config = CompressConfig(target_channels=0.5, finetune_epochs=1, calibration_samples=32, round_to=1, check=True,
                            **options)
    res = compress(model, train, test, tmp_path, train_config=cfg, metric="accuracy", config=config,
                   measure_memory=False, on_stage=seen.append, on_epoch=lambda epoch, record: epochs.append(epoch))
    return res, seen, epochs


def test_the_one_shot_pruning_is_checked_on_a_held_back_part_and_kept_within_max_drop(trained, tmp_path) -> None:
    _, train, _, _ = trained
    res, seen, epochs = _checked(trained, tmp_path, max_drop=100.0)
    check = res.pruning["check"]
    assert res.pruning["kept_step"] == 1 and res.stage("torch pruned") is not None
    assert res.stage("onnx fp32").params == res.stage("torch pruned").params < res.stage("torch fp32").params
    # 15% of the training split held back (stratified), the pruned model fine-tuned on the rest only
    assert check["n_val"] == res.pruning["n_val"] == round(0.15 * len(train))
    assert check["n_fit"] + check["n_val"] == len(train) and check["within_budget"]
    assert "val_accuracy_pruned" in check and "val_accuracy_reference" in check
    # within the budget against the unpruned model as given: no second fine-tune for a fairer reference; the
    # early-stopped fine-tune (one epoch) and then the one on the whole split (its best epoch: one)
    assert "fine-tune reference" not in seen and "reference_as_given" not in check and epochs == [1, 1]
    assert seen[seen.index("fine-tune"):seen.index("export")] == ["fine-tune", "fine-tune on the whole split"]
    assert "within --max-drop 100" in res.pruning["stop_reason"]


def test_a_one_shot_pruning_that_loses_more_than_max_drop_ships_the_unpruned_model(trained, tmp_path) -> None:
    model, *_ = trained
    res, seen, epochs = _checked(trained, tmp_path, max_drop=0.0, confidence=None)
    check = res.pruning["check"]
    # rejected against the model as given, then against the reference fine-tuned like the pruned model
    assert "fine-tune reference" in seen and "reference_as_given" in check
    assert check["reference"].startswith("the unpruned model fine-tuned") and not check["within_budget"]
    assert check["drop"] > 0 and res.pruning["kept_step"] == 0 and not res.pruning["target_reached"]
    assert res.pruning_history == [] and res.stage("torch pruned") is None
    assert res.stage("onnx fp32").params == res.stage("torch fp32").params
    shipped = res.model.state_dict()
    assert shipped.keys() == model.state_dict().keys()
    assert all(torch.equal(shipped[k], v) for k, v in model.state_dict().items())
    assert res.pruning["stop_reason"].startswith("not pruned: removing 0.5 of every hidden layer's channels lost")
    assert "the unpruned model is shipped" in res.verification["warnings"][0]


@pytest.mark.parametrize(("rounding", "kept"), [("down", {16, 40}), ("nearest", {24, 48})])
def test_prune_rounds_kept_channels_to_multiples(trained, rounding, kept) -> None:
    model, train, _, _ = trained
    net = build_model(CNNSpace(), ARCH, train)
    net.load_state_dict(model.state_dict())
    prune(net, torch.zeros(2, 1, 8, 8), 0.3, round_to=8, rounding=rounding)
    assert {m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)} == kept


def test_prune_rounding_must_be_known(trained) -> None:
    model, train, _, _ = trained
    net = build_model(CNNSpace(), ARCH, train)
    with pytest.raises(ConfigError, match="rounding must be 'down' or 'nearest'"):
        prune(net, torch.zeros(2, 1, 8, 8), 0.3, round_to=8, rounding="up")


def test_a_channel_target_of_one_exports_and_quantizes_unpruned(trained, tmp_path) -> None:
    model, train, test, cfg = trained
    res = compress(model, train, test, tmp_path, train_config=cfg, measure_memory=False,
                   config=CompressConfig(target_channels=1.0, calibration_samples=32))
    assert [r.stage for r in res.stages] == ["torch fp32", "onnx fp32", "onnx int8"]
    assert res.pruning_history == [] and res.pruning["kept_step"] == 0
    with pytest.raises(ConfigError, match="target_channels"):
        CompressConfig(target_channels=0.0).validate()


def test_stage_rows_round_trip_through_the_report_format() -> None:
    row = {"stage": "onnx int8", "params": 10, "macs": 20, "bytes": 30, "latency_b1_ms": 0.1,
           "latency_b64_ms": 2.0, "checker": "ok", "opset": 18, "peak_memory_mb": None, "accuracy": 0.9,
           "f1_macro": 0.8, "method": "static", "argmax_agreement_vs_torch": 0.99, "max_abs_diff_vs_torch": 0.01,
           "accuracy_delta_vs_fp32": -0.01}
    stage = Stage.from_dict(row)
    assert stage.scores == {"accuracy": 0.9, "f1_macro": 0.8} and stage.delta_vs_fp32 == {"accuracy": -0.01}
    assert stage.latency_b1_ms == 0.1 and stage.method == "static" and stage.is_onnx
    assert stage.to_dict() == {k: v for k, v in row.items() if v is not None}
    torch_row = Stage.from_dict({"stage": "torch fp32", "params": 1, "macs": 2, "bytes": 3, "rmse": 0.5})
    assert not torch_row.is_onnx and torch_row.to_dict() == {"stage": "torch fp32", "params": 1, "macs": 2,
                                                             "bytes": 3, "rmse": 0.5}
