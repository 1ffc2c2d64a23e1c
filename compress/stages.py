"""The export side of compression as separate steps, each returning a typed
:class:`~autoarch.compress.rows.Stage`: a torch model scored (:func:`torch_stage`), exported to ONNX fp32
(:func:`export_stage`), quantized to int8 (:func:`quantize_stage`), and the files checked against each other
(:func:`verify`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch.compress.export import check_onnx, export_onnx
from autoarch.compress.pruning import count_macs_params
from autoarch.compress.quantize import choose_int8
from autoarch.compress.rows import Stage
from autoarch.compress.runtime import isolated_latency_ms, peak_memory, run_onnx, session
from autoarch.data import Dataset
from autoarch.metrics import compute_metrics
from autoarch.trainer import predict

__all__ = ["torch_stage", "export_stage", "quantize_stage", "verify", "state_bytes"]

logger = logging.getLogger(__name__)

def _scores(data: Dataset, output: np.ndarray) -> dict[str, float]:
    return compute_metrics(data.task, data.y, output, data.n_outputs)


def state_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s state dict (what ``model.pt`` holds, less the pickle framing)."""
    return int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))


def torch_stage(name: str, model: nn.Module, example: torch.Tensor, test: Dataset) -> Stage:
    """Score a torch model on ``test`` and count its parameters, MACs and bytes."""
    macs, params = count_macs_params(model, example)
    return Stage(stage=name, params=params, macs=macs, bytes=state_bytes(model),
                 scores=_scores(test, predict(model, test.X)))


def _measure_file(name: str, path: Path, test: Dataset, params: int, macs: int, bench_X: np.ndarray,
                  measure_memory: bool) -> tuple[Stage, np.ndarray]:
    out = run_onnx(session(path, threads=1), test.X)
    check = check_onnx(path)
    latency = isolated_latency_ms(path, bench_X, (1, 64))
    memory = peak_memory(path, bench_X, 64).get("session_peak_mb") if measure_memory else None
    return Stage(stage=name, params=params, macs=macs, bytes=path.stat().st_size, scores=_scores(test, out),
                 latency_b1_ms=latency[1], latency_b64_ms=latency[64], checker=str(check["checker"]),
                 opset=check["opset"], peak_memory_mb=memory), out  # type: ignore[arg-type]


def export_stage(name: str, model: nn.Module, example: torch.Tensor, path: Path, metadata: Mapping[str, str],
                 test: Dataset, bench_X: np.ndarray, *, params: int, macs: int,
                 measure_memory: bool = True) -> tuple[Stage, np.ndarray]:
    """Export ``model`` to ONNX fp32 at ``path`` (dynamic batch, ``metadata`` in the file), score it with ONNX
    Runtime on ``test``, time it and compare it with the torch model.

    Returns:
        ``(stage, output)``: the row and the file's held-out output (raw logits or values).
    """
    export_onnx(model, example, path, metadata)
    stage, out = _measure_file(name, path, test, params, macs, bench_X, measure_memory)
    stage.max_abs_diff_vs_torch = float(np.max(np.abs(out - predict(model, test.X))))
    return stage, out


def quantize_stage(fp32: Stage, fp32_path: Path, path: Path, calibration: np.ndarray, test: Dataset,
                   bench_X: np.ndarray, torch_out: np.ndarray, *, mode: str = "auto",
                   measure_memory: bool = True) -> tuple[Stage, dict[str, Any], np.ndarray]:
    """Quantize the fp32 file to int8 at ``path`` (``mode``: :func:`~autoarch.compress.quantize.choose_int8`),
    score and time it, and compare it with the torch model's output ``torch_out`` and with ``fp32``.

    Returns:
        ``(stage, decision, output)``: the row, which int8 method was used and why, the file's output.
    """
    path, decision = choose_int8(fp32_path, path, calibration, bench_X, mode=mode)
    stage, out = _measure_file("onnx int8", path, test, fp32.params, fp32.macs, bench_X, measure_memory)
    stage.method = decision["method"]
    if test.task == "classification":
        stage.argmax_agreement_vs_torch = float(np.mean(out.argmax(axis=1) == torch_out.argmax(axis=1)))
    stage.max_abs_diff_vs_torch = float(np.max(np.abs(out - torch_out)))
    return stage, decision, out


def verify(fp32: Stage, fp32_out: np.ndarray, int8: Stage | None = None, int8_out: np.ndarray | None = None,
           decision: Mapping[str, Any] | None = None, *, metric: str, task: str,
           calibration_samples: int = 0) -> dict[str, Any]:
    """Check the exported files against each other and say what a user must know: ONNX fp32 vs torch, int8 vs
    fp32 (held-out ``metric`` delta, agreement), whether int8 is faster at batch 1 and 64 and smaller. Sets
    ``int8.delta_vs_fp32``; returns the verification record with its ``warnings`` (also logged)."""
    verification: dict[str, Any] = {"onnx_fp32": {"checker": fp32.checker, "opset": fp32.opset,
                                                  "max_abs_diff_vs_torch": fp32.max_abs_diff_vs_torch}}
    warnings: list[str] = []
    if fp32.max_abs_diff_vs_torch is not None and fp32.max_abs_diff_vs_torch > 1e-3:
        warnings.append(f"ONNX fp32 differs from torch by up to {fp32.max_abs_diff_vs_torch:.2e}.")
    if int8 is not None and int8_out is not None and decision is not None:
        int8.delta_vs_fp32 = {metric: float(int8.scores[metric] - fp32.scores[metric])}
        info: dict[str, Any] = {"checker": int8.checker, "opset": int8.opset}
        if int8.argmax_agreement_vs_torch is not None:
            info["argmax_agreement_vs_torch"] = int8.argmax_agreement_vs_torch
        info["max_abs_diff_vs_torch"] = int8.max_abs_diff_vs_torch
        info[f"{metric}_delta_vs_fp32"] = int8.delta_vs_fp32[metric]
        info.update(calibration_samples=calibration_samples if decision["method"] == "static" else 0,
                    method=decision["description"], decision=dict(decision))
        if task == "classification":
            info["argmax_agreement_vs_fp32"] = float(np.mean(int8_out.argmax(axis=1) == fp32_out.argmax(axis=1)))
        else:
            info["max_abs_diff_vs_fp32"] = float(np.max(np.abs(int8_out - fp32_out)))
        verification["onnx_int8"] = info
        for batch, ms, fp32_ms in ((64, int8.latency_b64_ms, fp32.latency_b64_ms),
                                   (1, int8.latency_b1_ms, fp32.latency_b1_ms)):
            faster = bool(ms is not None and fp32_ms is not None and ms < fp32_ms)
            verification[f"int8_faster_than_fp32_b{batch}"] = faster
            if not faster:
                warnings.append(f"the int8 model ({decision['method']}) is NOT faster than fp32 at batch {batch}: "
                                f"{ms:.4f} ms vs {fp32_ms:.4f} ms (1 thread); prefer model.onnx where latency "
                                "matters.")
        left = decision.get("float_weights")
        if left:
            info["float_weights"] = dict(left)
            warnings.append("int8 left " + ", ".join(f"{n:,} bytes of {op} weights" for op, n in left.items())
                            + f" in float ({decision['method']} int8 does not quantize these operators; "
                            "onnxruntime has no int8 GRU or RNN operator at all).")
        verification["int8_size_ratio"] = int8.bytes / fp32.bytes
        if int8.bytes >= fp32.bytes:
            warnings.append(f"the int8 file ({int8.bytes:,} bytes) is not smaller than the fp32 one "
                            f"({fp32.bytes:,} bytes): the model is too small for quantization to pay off.")
    verification["warnings"] = warnings
    for text in warnings:
        logger.warning(text)
    return verification
