"""What a candidate costs on the device, measured before it is trained (issue #13): its network exported to ONNX
and quantized to int8 as the pipeline ships it (:func:`~autoarch.compress.quantize.choose_int8`, ``auto``), then
the int8 file's size and its onnxruntime latency on this machine (1 thread, median of ``repeats``, in a fresh
onnxruntime-only process as the pipeline's stage rows are: :func:`~autoarch.compress.runtime.isolated_latency_ms`).

Neither depends on the weights' values, so the untrained network (calibrated on a sample of training inputs)
stands for the trained one; the search's pruning only makes the shipped model smaller and faster than this.

Example:
    >>> cost = int8_cost(model, train.X[:64], batches=(1, 64))  # doctest: +SKIP
    >>> cost["int8_kb"], cost["latency_b1_ms"]  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch.compress.export import export_onnx
from autoarch.compress.quantize import choose_int8
from autoarch.compress.runtime import isolated_latency_ms

__all__ = ["int8_cost", "COST_REPEATS"]

COST_REPEATS = 30
"""Timed runs per batch size (after 5 warm-up runs); the median is kept, as the pipeline's stage rows do."""


def int8_cost(model: nn.Module, sample: np.ndarray, *, batches: Sequence[int] = (1,), threads: int = 1,
              repeats: int = COST_REPEATS) -> dict[str, Any]:
    """The int8 model of ``model`` (eval mode, weights as they are): ``int8_kb`` (its ONNX file), ``int8_method``
    (static / dynamic, as ``choose_int8`` decides), ``latency_b<N>_ms`` for every batch size in ``batches`` and
    ``cost_seconds`` (how long measuring took). ``sample`` is a few raw training inputs: the example of the
    export and the int8 calibration data."""
    started = time.perf_counter()
    sample = np.asarray(sample, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="autoarch-cost-") as tmp:
        fp32 = export_onnx(model.eval().cpu(), torch.as_tensor(sample[:2]), Path(tmp) / "model.onnx")
        path, decision = choose_int8(fp32, Path(tmp) / "model.int8.onnx", sample, sample, repeats=10)
        cost: dict[str, Any] = {"int8_kb": round(path.stat().st_size / 1024, 3), "int8_method": decision["method"]}
        latency = isolated_latency_ms(path, sample, tuple(dict.fromkeys(batches)), threads=threads, repeats=repeats)
        cost.update({f"latency_b{batch}_ms": ms for batch, ms in latency.items()})
    cost["cost_seconds"] = round(time.perf_counter() - started, 3)
    return cost
