"""ONNX export (``torch.onnx.export`` with the dynamo exporter) and checking."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from autoarch._compat import rnn_dynamic_steps
from autoarch.rundir import atomic_path

__all__ = ["export_onnx", "dynamic_steps", "check_onnx", "compact_names", "drop_annotations", "set_metadata",
           "read_metadata", "model_metadata", "WindowMeans2d", "uneven_pools_as_matmuls"]

logger = logging.getLogger(__name__)


def export_onnx(model: nn.Module, example_input: torch.Tensor, path: str | Path,
                metadata: Mapping[str, str] | None = None, short_names: bool = True) -> Path:
    """Export ``model`` to one ONNX file with a dynamic batch dimension (input ``x``, output ``y``), and for a
    model of LSTM / GRU layers (text or numeric sequences) a dynamic sequence length too (:func:`dynamic_steps`).

    With ``short_names`` (the default) the inner tensors and nodes are renamed ``t0``, ``n0``, ...
    (:func:`compact_names`) and the inner shape annotations are dropped (:func:`drop_annotations`); without,
    they keep the exporter's names (module paths) and shapes, handy for debugging.

    The example batch must have at least 2 samples (with 1, recurrent layers get a fixed batch). An integer
    example (``uint8`` pixels sliced from a :class:`~autoarch.data.Dataset`) is converted to ``float32``: the
    graph's input is the type of the example, and the model takes float32 raw values. The file is written
    atomically: a crash never leaves a half-written model behind.

    An adaptive average pooling whose windows differ in size is exported as two matrix products
    (:func:`uneven_pools_as_matmuls`, on a copy: ``model`` keeps its modules), except in a model exported with a
    dynamic sequence length.
    """
    path = Path(path)
    model = model.eval().cpu()
    if not example_input.is_floating_point():
        example_input = example_input.float()
    if example_input.shape[0] < 2:
        example_input = example_input.repeat(2, *([1] * (example_input.dim() - 1)))
    if not dynamic_steps(model):  # a dynamic sequence length would not fit fixed pooling matrices
        model = uneven_pools_as_matmuls(model, example_input)
    proto = None
    if dynamic_steps(model) and example_input.dim() >= 2:
        try:
            with rnn_dynamic_steps():
                proto = _export(model, example_input, steps=True)
        except Exception as exc:  # an exporter that cannot keep the axis: a fixed length still works
            logger.debug("export with a dynamic sequence length failed (%s); exporting at %d steps", exc,
                         example_input.shape[1])
    if proto is None:
        proto = _export(model, example_input, steps=False)
    _strip_debug_info(proto)
    if short_names:
        compact_names(proto)
        drop_annotations(proto)
    if metadata:
        set_metadata(proto, metadata)
    save_atomic(proto, path)
    return path


def _windows(size: int, out: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` windows of adaptive pooling from ``size`` to ``out`` (as torch computes them)."""
    return [((i * size) // out, -(-((i + 1) * size) // out)) for i in range(out)]


def _window_means(size: int, out: int) -> torch.Tensor:
    """``(out, size)``: row ``i`` averages window ``i`` of adaptive pooling from ``size`` to ``out``."""
    matrix = torch.zeros(out, size)
    for i, (start, end) in enumerate(_windows(size, out)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class WindowMeans2d(nn.Module):
    """``nn.AdaptiveAvgPool2d`` of a fixed ``(height, width)`` input as ``rows @ x @ cols``: the mean over a
    rectangle is the mean over its rows of the means over its columns, so the result is the same (to float
    rounding). Exported, it is two ``MatMul`` nodes; torch's exporter writes a pooling whose windows differ in size
    (7x7 to 4x4: windows of 2, 3, 3 and 2) as a dozen gathers and adds, which onnxruntime runs outside the int8
    kernels (BENCHMARKS.md, "Adaptive pooling heads")."""

    def __init__(self, size: tuple[int, int], output_size: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", _window_means(size[0], output_size[0]), persistent=False)
        self.register_buffer("cols", _window_means(size[1], output_size[1]).T.contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows @ (x @ self.cols)


def uneven_pools_as_matmuls(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """``model``, or a copy of it in which every ``nn.AdaptiveAvgPool2d`` whose windows differ in size at the
    input size it sees on ``example_input`` is a :class:`WindowMeans2d`. Pools with even windows (global pooling,
    sizes that divide) export as ``ReduceMean`` / ``AveragePool`` and stay, as does a pool module reached at two
    input sizes. The copy is only for an export with a fixed input size (only the batch dynamic: ``export_onnx``
    does not call this for a model it gives a dynamic sequence length), so the matrices fit every input the file
    accepts."""
    pools = {name: m for name, m in model.named_modules() if name and isinstance(m, nn.AdaptiveAvgPool2d)}
    if not pools:
        return model
    seen: dict[str, set[tuple[int, int]]] = {name: set() for name in pools}
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: seen[name].add(tuple(args[0].shape[-2:])))
             for name, m in pools.items()]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for hook in hooks:
            hook.remove()
    swaps: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    for name, sizes in seen.items():
        if len(sizes) != 1:
            continue
        size = next(iter(sizes))
        wanted = pools[name].output_size
        wanted = (wanted, wanted) if isinstance(wanted, int) else wanted
        out = tuple(s if o is None else int(o) for o, s in zip(wanted, size, strict=True))
        windows = [{end - start for start, end in _windows(s, o)} for s, o in zip(size, out, strict=True)]
        if any(len(lengths) > 1 for lengths in windows):
            swaps[name] = (size, out)
    if not swaps:
        return model
    model = copy.deepcopy(model)
    for name, (size, out) in swaps.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent), attr, WindowMeans2d(size, out))
    return model


def dynamic_steps(model: nn.Module) -> bool:
    """Whether ``export_onnx`` gives ``model`` a dynamic sequence length (input axis 1): a recurrent model whose
    recurrent layers are all LSTM or GRU (a plain ``nn.RNN`` is unrolled by the exporter, at a fixed length)."""
    cells = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    return bool(cells) and all(isinstance(m, nn.LSTM | nn.GRU) for m in cells)


def _export(model: nn.Module, example_input: torch.Tensor, *, steps: bool) -> onnx.ModelProto:
    axes = {0: torch.export.Dim("batch"), **({1: torch.export.Dim("steps")} if steps else {})}
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example_input.cpu(),), dynamo=True, external_data=False, input_names=["x"],
            output_names=["y"], dynamic_shapes=(axes,), verbose=False,
        )
    return program.model_proto


def _strip_debug_info(proto: onnx.ModelProto) -> None:
    """Drop the exporter's per-node stack traces and module paths: on small models they are most of the file
    (measured: 42 KB of a 288 KB CNN) and an edge device has no use for them. So is the graph-level record of
    torch.export's signature (``pkg.torch.export.*``: every parameter's module path, 2.9 KB of a 24 KB int8
    CNN, and stale once names are shortened)."""
    kept = [p for p in proto.graph.metadata_props if not p.key.startswith("pkg.torch.")]
    del proto.graph.metadata_props[:]
    proto.graph.metadata_props.extend(kept)
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            graphs.extend(attr.g for attr in node.attribute if attr.HasField("g"))
        for info in graph.value_info:
            del info.metadata_props[:]


def compact_names(proto: onnx.ModelProto) -> bool:
    """Give every node and every tensor but the graph's inputs and outputs a short name (``n0``, ``t0``, ...).

    The exporter's and the quantizer's names (``net.features.0.convs.0.0.weight_DequantizeLinear_Output``)
    each appear several times in the file: they were 20% of a 41 KB int8 CNN, more than its float scales and
    biases. Computation and the graph's interface (``x``, ``y``) are unchanged. Graphs with subgraphs (``If``,
    ``Loop``, ``Scan``), whose bodies may refer to outer names, are left as they are.

    Returns:
        whether the names were changed.
    """
    graph = proto.graph
    if _has_subgraphs(graph):
        return False
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        return names.setdefault(name, f"t{len(names)}")

    for tensor in graph.initializer:
        tensor.name = short(tensor.name)
    for tensor in graph.sparse_initializer:
        tensor.values.name = short(tensor.values.name)
        tensor.indices.name = short(tensor.indices.name)
    for i, node in enumerate(graph.node):
        node.name = f"n{i}"
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
    for info in graph.value_info:
        info.name = short(info.name)
    return True


def _has_subgraphs(graph: onnx.GraphProto) -> bool:
    """Whether a node holds a subgraph (``If``, ``Loop``, ``Scan``), whose body may refer to outer names."""
    return any(attr.HasField("g") or len(attr.graphs) for node in graph.node for attr in node.attribute)


def drop_annotations(proto: onnx.ModelProto) -> int:
    """Drop what a runtime does not need: the shapes of inner tensors (``value_info``; ONNX Runtime infers
    them again) and opset imports of domains no node uses (the quantizer declares nine). On an int8 CNN of
    13k parameters that is 0.9 of 24 KB. The graph's inputs and outputs keep their shapes.

    Returns:
        the number of entries removed.
    """
    if _has_subgraphs(proto.graph):
        return 0  # subgraphs have their own shapes and may use other domains; leave such files alone
    # As onnx_ir's RemoveUnusedOpsetsPass counts them (the default domain, nodes, functions), without its
    # round trip through the IR, which writes value_info for every tensor back.
    used = {"", "ai.onnx"} | {node.domain for node in proto.graph.node} | {f.domain for f in proto.functions}
    used |= {node.domain for f in proto.functions for node in f.node}
    removed = len(proto.graph.value_info)
    del proto.graph.value_info[:]
    keep = [op for op in proto.opset_import if op.domain in used]
    removed += len(proto.opset_import) - len(keep)
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    return removed


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter prints progress to stdout and INFO logs; keep the library's output clean."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def save_atomic(proto: onnx.ModelProto, path: Path) -> None:
    """``onnx.save_model`` to ``path`` atomically, with the umask's mode (:func:`autoarch.rundir.atomic_path`)."""
    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp))


def check_onnx(path: str | Path) -> dict[str, object]:
    """Run ``onnx.checker.check_model(full_check=True)``; return the opset and the result."""
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    return {"checker": "ok", "opset": opset}


def set_metadata(proto: onnx.ModelProto, metadata: Mapping[str, str]) -> None:
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            prop = proto.metadata_props.add()
            prop.key, prop.value = key, str(value)


def read_metadata(path: str | Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _floats(tensor: torch.Tensor) -> list[Any]:
    return [float(v) for v in tensor.detach().cpu().reshape(-1)] if tensor.numel() > 1 else float(tensor.item())


def model_metadata(model: nn.Module, *, task: str, classes: Sequence[Any], input_shape: Sequence[int],
                   feature_names: Sequence[str] | None = None) -> dict[str, str]:
    """The metadata that makes an ONNX file self-describing, as ``{key: JSON text}``.

    Keys: ``task``, ``classes`` (the original labels, index = output column), ``input_shape`` (one sample,
    without the batch), ``input_dtype``, ``feature_names`` (tabular columns, in input order, or null),
    ``output`` (``logits`` or ``value``) and ``preprocessing``: the standardisation that the graph itself
    applies (``(x - mean) / std`` with per-feature or per-channel ``mean`` / ``std``, and for regression the
    output scale), so raw features go in; for a table with categories or missing cells, ``columns``: each
    column's name, categorical ``levels`` (code = index), ``other`` and ``missing``; for a text model
    ``input_kind`` ``text`` and ``text`` (the tokenizer); for numeric sequences (an input shape ``(steps,
    channels + 1)``, :mod:`autoarch.sequences`) ``input_kind`` ``sequence`` and ``sequence`` (``max_length``,
    ``channels``, where the mask is). The search adds
    ``architecture``, ``metric`` and the version; quantization adds ``quantization``.
    """
    prep: dict[str, Any] = {"applied_inside_model": True, "feed": "raw features, float32"}
    if hasattr(model, "mean") and hasattr(model, "std"):
        mean, std = model.mean, model.std
        axis = {3: "channel", 2: "sequence channel (the mask channel has mean 0, std 1)"}.get(mean.dim(), "feature")
        prep["standardize"] = {"formula": "(x - mean) / std", "shape": list(mean.shape), "axis": axis,
                               "mean": _floats(mean), "std": _floats(std)}
    if task == "regression" and hasattr(model, "y_mean"):
        prep["output_scale"] = {"formula": "net(x) * y_std + y_mean", "y_mean": float(model.y_mean),
                                "y_std": float(model.y_std)}
    encoder = getattr(model, "encoder", None)
    text = encoder is not None and hasattr(encoder, "vocabulary")
    if text:
        prep = {"applied_inside_model": True, "encode": encoder.describe(),
                "feed": "token ids, float32 (n, max_length), right-padded with 0: the tokens of each text by "
                        "'token_rule' after lower-casing, each the id 'text' gives it, 1 for any other token"}
    elif len(input_shape) == 2:  # numeric sequences (autoarch.sequences): (steps, channels + the mask)
        prep["feed"] = ("sequences, float32 (n, steps, channels + 1): each sample's channels right-padded with 0 "
                        "after its length, the last channel 1 on a valid step and 0 on padding")
    elif encoder is not None:
        prep["feed"] = ("table codes, float32: a numeric column's value, a categorical column's index into its "
                        "'levels' (see 'columns'), NaN for a missing cell")
        prep["encode"] = encoder.describe()
    shape = [int(s) for s in input_shape]
    meta = {"task": task, "classes": json.dumps(list(classes)), "input_shape": json.dumps(shape),
            "input_dtype": "float32", "feature_names": json.dumps(list(feature_names) if feature_names else None),
            "output": "logits" if task == "classification" else "value", "preprocessing": json.dumps(prep)}
    if text:  # the one "feature" of a text model is the column of texts, named in 'text'
        meta["input_kind"] = "text"
        meta["feature_names"] = json.dumps(None)
        meta["text"] = json.dumps({**encoder.metadata(shape[0]),
                                   "column": str(feature_names[0]) if feature_names else "text"})
    elif len(shape) == 2:
        meta["input_kind"] = "sequence"
        meta["sequence"] = json.dumps({"max_length": shape[0], "channels": shape[1] - 1, "mask": "last channel",
                                       "padding": "right, zeros"})
    elif encoder is not None:
        meta["columns"] = json.dumps([c.to_json() for c in encoder.columns])
    return meta
