"""int8 quantization with onnxruntime: static QDQ (per-channel weights, calibrated on training data), and
dynamic quantization where it measures faster."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

from autoarch.compress import timing
from autoarch.compress.config import INT8_MODES
from autoarch.compress.export import compact_names, drop_annotations, save_atomic, set_metadata
from autoarch.compress.runtime import latency_ms, session
from autoarch.exceptions import ConfigError
from autoarch.rundir import copy_file

__all__ = ["quantize_int8", "quantize_dynamic_int8", "choose_int8", "has_convolutions", "float_weights",
           "pools_as_depthwise", "stem_nodes", "pools_before_activations"]

logger = logging.getLogger(__name__)

STATIC = ("static QDQ: per-channel int8 weights, uint8 activations calibrated (min/max) on training samples; "
          "average pools as depthwise convolutions")
DYNAMIC = "dynamic: int8 weights, activations quantized at run time (MatMulInteger)"
STEM_CHANNELS = 4
"""A convolution reading at most this many channels (the image's 1 or 3, or a few more) is part of the stem that
``choose_int8`` tries in float: onnxruntime's int8 convolution of a one-channel input into 8 channels ran 5.4x as
long as the fp32 one (2,495 against 463 us at batch 64, a LeNet-like Fashion-MNIST network)."""
MONOTONE = ("Relu", "LeakyRelu", "Elu", "Selu", "Celu", "Sigmoid", "Tanh", "HardSigmoid", "Softplus")
"""Element-wise activations that never decrease (with an ``alpha`` >= 0 where they have one, as LeakyRelu's slope):
max-pooling commutes with them."""
FLOAT_STEM = (f"; the stem (every node before the first weighted one that reads more than {STEM_CHANNELS} channels) "
              "kept in float")


class _NotOnnxRuntime(logging.Filter):
    """onnxruntime's quantizer logs through the root logger (``logging.info('Quantization parameters for tensor
    ... not specified')``), which a CLI run shows at INFO: its lines go to ``--debug`` only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != "root" or "onnxruntime" not in record.pathname.replace(os.sep, "/") \
            or logging.getLogger("autoarch").isEnabledFor(logging.DEBUG)


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    root = logging.getLogger()
    quiet = _NotOnnxRuntime()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


class _Batches(CalibrationDataReader):
    def __init__(self, X: np.ndarray, batch_size: int = 32) -> None:
        self._batches = iter([{"x": X[i:i + batch_size].astype(np.float32)} for i in range(0, len(X), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _copy_metadata(fp32_path: str | Path, quantized: str, out_path: Path, method: str, short_names: bool) -> None:
    proto = onnx.load(quantized)
    source = onnx.load(str(fp32_path), load_external_data=False)
    del proto.metadata_props[:]
    proto.metadata_props.extend(source.metadata_props)
    set_metadata(proto, {"quantization": method})
    if short_names:
        compact_names(proto)
        drop_annotations(proto)
    save_atomic(proto, out_path)


WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN")


def _encoder_nodes(pre: str, fp32_path: str | Path) -> list[str]:
    """The nodes of a table model's encoder (:class:`~autoarch.tables.TableEncoder`: every node before the first
    weighted one), kept in float: its inputs hold NaN for missing cells and its outputs are 0/1 and codes, which
    calibration cannot range. Empty for any other model (metadata without ``columns``)."""
    source = onnx.load(str(fp32_path), load_external_data=False)
    if not any(p.key == "columns" for p in source.metadata_props):
        return []
    nodes = onnx.load(pre, load_external_data=False).graph.node
    first = next((i for i, n in enumerate(nodes) if n.op_type in WEIGHTED_OPS), len(nodes))
    return [n.name for n in nodes[:first] if n.name]


def pools_as_depthwise(path: str | Path) -> int:
    """Rewrite the ONNX file at ``path`` (in place) so that every unpadded ``AveragePool`` whose channel count is
    known becomes the depthwise ``Conv`` that computes the same thing (one ``1 / kernel size`` weight per
    position, ``group`` = channels), and return how many were rewritten.

    Quantized, an ``AveragePool`` becomes onnxruntime's ``QLinearAveragePool``, which dequantizes its input and
    pools in float (microsoft/onnxruntime PRs #6896, #8514), and onnxruntime fuses the Dequantize -> AveragePool ->
    Quantize left around a pool excluded from quantization into the same operator: on 12 random digits CNNs a
    model's int8 file ran up to 5x slower than its fp32 one (1498 against 292 us at batch 64), and the same
    model with the pools as depthwise convolutions (``QLinearConv``, int8 throughout) 470 us. The weights
    ``1 / k`` are exact in per-channel int8 (the scale is the weight / 127). Pools with padding, ``ceil_mode``,
    dilations or an unknown channel count are left as they are."""
    proto = onnx.load(str(path))
    graph = proto.graph
    channels = {}
    for info in [*graph.value_info, *graph.input]:
        dims = info.type.tensor_type.shape.dim
        if len(dims) >= 3 and dims[1].HasField("dim_value"):
            channels[info.name] = (len(dims), dims[1].dim_value)
    nodes, rewritten = [], 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = list(attrs.get("kernel_shape", []))
        rank, c = channels.get(node.input[0], (0, 0)) if node.op_type == "AveragePool" else (0, 0)
        if (c > 0 and kernel and rank == len(kernel) + 2 and not any(attrs.get("pads", []))
                and not attrs.get("ceil_mode", 0) and attrs.get("auto_pad", b"NOTSET") in (b"NOTSET", b"VALID")
                and all(d == 1 for d in attrs.get("dilations", []))):
            weight = f"{node.output[0]}_depthwise"
            graph.initializer.append(numpy_helper.from_array(
                np.full((c, 1, *kernel), 1.0 / float(np.prod(kernel)), dtype=np.float32), weight))
            nodes.append(helper.make_node("Conv", [node.input[0], weight], list(node.output), name=node.name,
                                          group=c, kernel_shape=kernel,
                                          strides=list(attrs.get("strides", [1] * len(kernel)))))
            rewritten += 1
        else:
            nodes.append(node)
    if rewritten:
        del graph.node[:]
        graph.node.extend(nodes)
        onnx.save(proto, str(path))
    return rewritten


def stem_nodes(path: str | Path) -> list[str]:
    """The names of the nodes of the ONNX file at ``path`` before its first weighted node (convolution, matrix
    product) that reads more than :data:`STEM_CHANNELS` channels: the stem of an image network, which works on the
    image's few channels. Empty when the first weighted node already reads more (or none has a known weight)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    for i, node in enumerate(graph.node):
        if node.op_type in WEIGHTED_OPS:
            weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
            if node.op_type in ("Conv", "ConvTranspose") and weight and len(weight) >= 3:
                group = next((a.i for a in node.attribute if a.name == "group"), 1)
                reads = weight[1] * group if node.op_type == "Conv" else weight[0]
            else:
                reads = STEM_CHANNELS + 1
            if reads > STEM_CHANNELS:
                stem = [n.name for n in graph.node[:i]]
                return stem if all(stem) else []  # the quantizer excludes nodes by name
    return []


def pools_before_activations(path: str | Path, names: list[str] | None = None) -> int:
    """Rewrite the ONNX file at ``path`` (in place) so that every ``MaxPool`` that reads the only use of a
    never-decreasing activation (:data:`MONOTONE`) runs before it: ``act(maxpool(x)) == maxpool(act(x))``, exactly,
    on a quarter of the values for a 2x2 pool. With ``names``, only nodes of that list are considered. Returns how
    many were moved.

    Why: onnxruntime moves a ``QuantizeLinear`` back across a ``MaxPool`` (its QDQ propagation), so a float stem
    ending in a max pool would pool uint8 values in NCHW layout, the slowest of its pools (1,078 against 127 us in
    float at batch 64, LeNet-like Fashion-MNIST network); it does not move it across an activation."""
    proto = onnx.load(str(path))
    graph = proto.graph
    keep = set(names) if names is not None else None
    nodes = list(graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    uses: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    outputs = {o.name for o in graph.output}
    moved, stale = 0, set()
    for p, pool in enumerate(nodes):
        a = producer.get(pool.input[0], -1) if pool.op_type == "MaxPool" and pool.input else -1
        act = nodes[a] if a >= 0 else None
        if (act is None or act.op_type not in MONOTONE or len(pool.output) != 1 or len(act.input) != 1
                or uses.get(act.output[0]) != 1 or act.output[0] in outputs
                or any(att.name == "alpha" and att.f < 0 for att in act.attribute)
                or (keep is not None and not {pool.name, act.name} <= keep)):
            continue
        x, mid, y = act.input[0], act.output[0], pool.output[0]
        pool.input[0], pool.output[0] = x, mid
        act.input[0], act.output[0] = mid, y
        nodes[a], nodes[p] = pool, act  # the pool in the activation's place: still in topological order
        stale.add(mid)  # now the pooled shape
        moved += 1
    if moved:
        del graph.node[:]
        graph.node.extend(nodes)
        infos = [info for info in graph.value_info if info.name not in stale]
        del graph.value_info[:]
        graph.value_info.extend(infos)
        onnx.save(proto, str(path))
    return moved


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray,
                  short_names: bool = True, float_stem: bool = False) -> Path:
    """Static int8 quantization (QDQ format, per-channel int8 weights, uint8 activations).

    Activation ranges are calibrated (min/max) on ``calibration``, a sample of *training* inputs. The graph is
    pre-processed (shape inference, optimisation) first, as onnxruntime recommends. The metadata of the fp32
    model is carried over (plus ``quantization``), and with ``short_names`` the quantizer's long tensor names
    are shortened (:func:`~autoarch.compress.export.compact_names`) and its inner shape annotations and unused
    opset imports dropped (:func:`~autoarch.compress.export.drop_annotations`). Average pools are quantized as
    depthwise convolutions (:func:`pools_as_depthwise`). With ``float_stem``, the nodes of :func:`stem_nodes` stay
    in float, a max pool there moved before its activation (:func:`pools_before_activations`). The output is
    written atomically.
    """
    def run(pre: str, quantized: str) -> None:
        pools_as_depthwise(pre)
        exclude = _encoder_nodes(pre, fp32_path)
        if float_stem:
            stem = stem_nodes(pre)
            pools_before_activations(pre, stem)
            exclude += stem
        quantize_static(pre, quantized, _Batches(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)

    return _quantize(fp32_path, out_path, "static", short_names, run)


def quantize_dynamic_int8(fp32_path: str | Path, out_path: str | Path, short_names: bool = True) -> Path:
    """Dynamic int8 quantization: int8 weights, activations quantized on the fly; no calibration data.

    Fast for Linear (MatMul/Gemm) layers; convolutions become much slower (measured 6-9x on CNNs), so
    :func:`choose_int8` only considers it for Linear-only models.
    """
    return _quantize(fp32_path, out_path, "dynamic", short_names,
                     lambda pre, quantized: quantize_dynamic(pre, quantized, weight_type=QuantType.QInt8))


def _quantize(fp32_path: str | Path, out_path: str | Path, method: str, short_names: bool,
              run: Callable[[str, str], None]) -> Path:
    """onnxruntime's pre-processing, then ``run(pre, quantized)`` (the quantizer, its log quieted), then the fp32
    file's metadata carried over and the result written atomically to ``out_path``."""
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quantized = os.path.join(tmp, "int8.onnx")
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=False)
        with _quiet_quantizer():
            run(pre, quantized)
        _copy_metadata(fp32_path, quantized, out_path, method, short_names)
    return out_path


def float_weights(path: str | Path) -> dict[str, int]:
    """Bytes of float weights (initializers of at least 64 values) that weighted operators of the ONNX file at
    ``path`` still read unquantized, by operator type: what int8 quantization left in float. onnxruntime's
    quantizers have an int8 LSTM (``DynamicQuantizeLSTM``, dynamic mode only: static QDQ leaves an LSTM in float)
    but none for ``GRU`` or ``RNN`` nodes, whose weights therefore stay fp32 while everything around them is
    quantized."""
    graph = onnx.load(str(path), load_external_data=False).graph
    floats = {init.name: int(np.prod(init.dims)) * 4 for init in graph.initializer
              if init.data_type == onnx.TensorProto.FLOAT and int(np.prod(init.dims)) >= 64}
    left: dict[str, int] = {}
    for node in graph.node:
        if node.op_type in WEIGHTED_OPS:
            size = sum(floats.get(name, 0) for name in node.input)
            if size:
                left[node.op_type] = left.get(node.op_type, 0) + size
    return left


def has_convolutions(path: str | Path) -> bool:
    graph = onnx.load(str(path), load_external_data=False).graph
    return any(node.op_type in ("Conv", "ConvTranspose") for node in graph.node)


def choose_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray, bench_X: np.ndarray,
                mode: str = "auto", repeats: int = 50, rounds: int = timing.ROUNDS) -> tuple[Path, dict[str, Any]]:
    """Quantize ``fp32_path`` to int8 with the method ``mode`` asks for, and say which and why.

    ``auto``: static QDQ for models with convolutions, with the stem in int8 or in float, whichever runs faster
    (:func:`_choose_stem`); for Linear-only models, both static and dynamic are built and timed at batch 64
    (1 thread, median of ``repeats``) and the faster is kept. Timings are the least median of ``rounds`` rounds
    (:func:`~autoarch.compress.timing.latencies`).

    Returns:
        ``(path, decision)``: ``decision`` has ``method`` (``static`` / ``dynamic``), ``reason``, the
        measured ``candidates`` when both were tried, and ``float_weights`` (:func:`float_weights`) when some
        weights stayed in float.
    """
    path, decision = _choose_int8(fp32_path, out_path, calibration, bench_X, mode, repeats, rounds)
    left = float_weights(path)
    if left:
        decision["float_weights"] = left
    return path, decision


def _choose_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray, bench_X: np.ndarray,
                 mode: str, repeats: int, rounds: int) -> tuple[Path, dict[str, Any]]:
    if mode not in INT8_MODES or mode == "none":
        raise ConfigError(f"int8 mode must be one of {[m for m in INT8_MODES if m != 'none']}, but got {mode!r}.")
    out_path = Path(out_path)
    conv = has_convolutions(fp32_path)
    if mode == "static":
        return quantize_int8(fp32_path, out_path, calibration), {
            "method": "static", "description": STATIC, "reason": "asked for (int8='static')"}
    if mode == "dynamic":
        reason = "asked for (int8='dynamic')"
        if conv:
            reason += "; the model has convolutions, which dynamic quantization makes slower"
        return quantize_dynamic_int8(fp32_path, out_path), {"method": "dynamic", "description": DYNAMIC,
                                                            "reason": reason}
    if conv:
        return _choose_stem(fp32_path, out_path, calibration, bench_X, repeats, rounds)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"static": quantize_int8(fp32_path, Path(tmp) / "static.onnx", calibration),
                 "dynamic": quantize_dynamic_int8(fp32_path, Path(tmp) / "dynamic.onnx")}
        timed = {name: latency_ms(session(p), bench_X, 64, repeats=repeats, rounds=rounds) for name, p in paths.items()}
        method = min(timed, key=lambda k: timed[k])
        other = "dynamic" if method == "static" else "static"
        copy_file(paths[method], out_path)
    return out_path, {
        "method": method, "description": STATIC if method == "static" else DYNAMIC,
        "reason": f"Linear-only model: both measured at batch 64 (1 thread, median of {repeats}); {method} "
                  f"{timed[method]:.4f} ms vs {other} {timed[other]:.4f} ms, kept the faster",
        "candidates": {name: {"latency_b64_ms": ms} for name, ms in timed.items()},
    }


def _choose_stem(fp32_path: str | Path, out_path: Path, calibration: np.ndarray, bench_X: np.ndarray,
                 repeats: int, rounds: int) -> tuple[Path, dict[str, Any]]:
    """A model with convolutions: static QDQ, and where it has a stem (:func:`stem_nodes`) the same with the stem
    in float, both timed at batch 1 and 64 (1 thread, median of ``repeats``); the float stem is kept when the
    geometric mean of its two time ratios is below 1."""
    reason = ("the model has convolutions: static QDQ (dynamic int8 is only tried on Linear-only models; it makes "
              "convolutions several times slower)")
    if not stem_nodes(fp32_path):
        return quantize_int8(fp32_path, out_path, calibration), {"method": "static", "description": STATIC,
                                                                 "reason": reason}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"int8 stem": quantize_int8(fp32_path, Path(tmp) / "int8.onnx", calibration),
                 "float stem": quantize_int8(fp32_path, Path(tmp) / "float.onnx", calibration, float_stem=True)}
        timed = {name: {f"latency_b{b}_ms": latency_ms(session(p), bench_X, b, repeats=repeats, rounds=rounds)
                        for b in (1, 64)}
                 for name, p in paths.items()}
        ratio = float(np.sqrt(np.prod([timed["float stem"][k] / timed["int8 stem"][k] for k in timed["int8 stem"]])))
        kept = "float stem" if ratio < 1.0 else "int8 stem"
        copy_file(paths[kept], out_path)
    times = "; ".join(f"{name} {t['latency_b1_ms']:.4f} / {t['latency_b64_ms']:.4f} ms" for name, t in timed.items())
    return out_path, {
        "method": "static", "description": STATIC + (FLOAT_STEM if kept == "float stem" else ""),
        "stem": kept.split()[0],
        "reason": f"{reason}; with the stem in int8 and in float, timed at batch 1 / 64 (1 thread, median of "
                  f"{repeats}): {times}; kept the {kept} (geometric mean of the ratios {ratio:.2f})",
        "candidates": timed,
    }
