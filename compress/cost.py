"""What a candidate costs on the device, measured before it is trained (issue #13): its network exported to ONNX
and quantized to int8 as the pipeline ships it (:func:`~autoarch.compress.quantize.choose_int8`, ``auto``), then
the int8 file's size and its onnxruntime latency on this machine (1 thread, :mod:`~autoarch.compress.timing`, in
a fresh onnxruntime-only process as the pipeline's stage rows are:
:func:`~autoarch.compress.runtime.isolated_latency_ms`).

Neither depends on the weights' values, so the untrained network (calibrated on a sample of training inputs)
stands for the trained one, once its batch norm has trained-like statistics (:func:`like_trained`). The search's
winner ships pruned: with ``prune`` (:func:`shipped_pruning` of the
search's compression), the untrained network is first pruned the same way (one shot, the same share of every
layer's channels, counts rounded alike), so the figures are those of the network that ships, not an upper bound.

Example:
    >>> cost = int8_cost(model, train.X[:64], batches=(1, 64))  # doctest: +SKIP
    >>> cost["int8_kb"], cost["latency_b1_ms"]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch._compat import batch_norm_base
from autoarch.compress.config import CompressConfig
from autoarch.compress.export import export_onnx
from autoarch.compress.pruning import prune as prune_channels
from autoarch.compress.quantize import choose_int8
from autoarch.compress.runtime import isolated_latency_ms
from autoarch.exceptions import AutoArchError

__all__ = ["int8_cost", "shipped_pruning", "like_trained", "COST_REPEATS"]

COST_REPEATS = 30
"""Timed runs per batch size and round, at least (:func:`~autoarch.compress.timing.latencies`), as the
pipeline's stage rows."""


CHOICE_ROUNDS = 2
"""Timing rounds of :func:`~autoarch.compress.quantize.choose_int8` (a CNN's stem in int8 or float) before
training: each timing takes at least ``0.05 s`` a round whatever the model (:mod:`~autoarch.compress.timing`), and
with the six rounds of the shipped model's choice the two files' four timings were 1.4 of the 3.3 s (median) that
measuring a Fashion-MNIST candidate took."""


COST_VERSION = 5
"""How :func:`int8_cost` measures, recorded with every cost so that a study resumed across a change does not
reuse costs measured another way: 1, the whole untrained network; 2 (2026-12-07), pruned as it ships, batch norm
:func:`like_trained`, the model's metadata; 3, average pools quantized as depthwise convolutions
(:func:`~autoarch.compress.quantize.pools_as_depthwise`); 4, a CNN's stem in int8 or float, whichever ran faster
(:func:`~autoarch.compress.quantize.choose_int8`); 5, adaptive pooling with windows of different sizes exported as
matrix products (:func:`~autoarch.compress.export.uneven_pools_as_matmuls`)."""


def like_trained(model: nn.Module, seed: int = 0) -> nn.Module:
    """``model`` with the batch-norm statistics and shifts of a trained network (in place; returned). An untrained
    layer's (mean 0, variance 1, shift 0) folds into the convolution before it with an all-zero bias, which the
    int8 export leaves out: an 11.7 KB int8 file where the trained network of the same shape shipped 13.4 KB (12
    fewer tensors). The values are drawn (seeded); what is measured is their shapes."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, batch_norm_base()):
                if module.running_mean is not None:
                    module.running_mean.normal_(0.0, 0.1, generator=generator)
                    module.running_var.uniform_(0.5, 1.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)
    return model


def shipped_pruning(config: CompressConfig) -> tuple[float, int]:
    """``(ratio, round_to)`` of the pruning a search ships its winner with, as far as it is known before training:
    a channel target pruned uniformly (``--prune R``: ``(R, round_to)``). ``(0.0, 1)`` otherwise: other targets are
    reached by measuring the trained model, and global pruning spreads the ratio by the trained weights."""
    kind, keep = config.target
    if kind != "channels" or config.global_pruning:
        return 0.0, 1
    return round(1.0 - keep, 12), config.round_to


def measured_with(prune: float, round_to: int) -> dict[str, Any]:
    """What an :func:`int8_cost` asked to prune ``prune`` (rounded to ``round_to``) records as ``measured_with``: a
    cached cost is reused only where this is the same."""
    return {"version": COST_VERSION, "prune": prune, "round_to": round_to}


def int8_cost(model: nn.Module, sample: np.ndarray, *, batches: Sequence[int] = (1,), threads: int = 1,
              repeats: int = COST_REPEATS, prune: float = 0.0, round_to: int = 1,
              metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The int8 model of ``model`` (a copy, in eval mode): ``int8_kb`` (its ONNX file), ``int8_method`` (static /
    dynamic, as ``choose_int8`` decides), ``latency_b<N>_ms`` for every batch size in ``batches``, ``pruned`` (the
    ratio of channels removed first) and ``cost_seconds`` (how long measuring took). ``sample`` is a few raw
    training inputs: the example of the export and the int8 calibration data; ``metadata`` is what the shipped
    file will carry (:func:`~autoarch.compress.export.model_metadata`: a text model's tokenizer can be most of it).

    The copy's batch-norm layers get the statistics of a trained network first (:func:`like_trained`), and with
    ``prune`` > 0 it loses that share of every hidden layer's channels (kept counts rounded to the nearest multiple
    of ``round_to``), as the pipeline prunes a channel target; a network that cannot be pruned so is measured
    whole (``pruned`` 0), as it would ship."""
    started = time.perf_counter()
    sample = np.asarray(sample, dtype=np.float32)
    example = torch.as_tensor(sample[:2])
    net, pruned = like_trained(copy.deepcopy(model).cpu().eval()), 0.0
    if prune > 0:
        try:  # refuses (ConfigError, SpaceError) before it removes anything
            prune_channels(net, example, prune, round_to=round_to, rounding="nearest")
            pruned = prune
        except AutoArchError:
            pass
    with tempfile.TemporaryDirectory(prefix="autoarch-cost-") as tmp:
        fp32 = export_onnx(net, example, Path(tmp) / "model.onnx", metadata=metadata)
        path, decision = choose_int8(fp32, Path(tmp) / "model.int8.onnx", sample, sample, repeats=10,
                                     rounds=CHOICE_ROUNDS)
        cost: dict[str, Any] = {"int8_kb": round(path.stat().st_size / 1024, 3), "int8_method": decision["method"],
                                "pruned": pruned, "measured_with": measured_with(prune, round_to)}
        latency = isolated_latency_ms(path, sample, tuple(dict.fromkeys(batches)), threads=threads, repeats=repeats)
        cost.update({f"latency_b{batch}_ms": ms for batch, ms in latency.items()})
    cost["cost_seconds"] = round(time.perf_counter() - started, 3)
    return cost
