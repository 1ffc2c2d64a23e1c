"""The compression stage: prune → fine-tune → ONNX fp32 → int8 → verify, one report row per stage."""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch.compress.export import check_onnx, export_onnx
from autoarch.compress.prune import PruningHistory, count_macs_params, prune
from autoarch.compress.quantize import quantize_int8
from autoarch.compress.runtime import latency_ms, run_onnx, session
from autoarch.data import Dataset
from autoarch.metrics import compute_metrics
from autoarch.trainer import TrainConfig, fit, predict

__all__ = ["CompressionResult", "compress_model"]

logger = logging.getLogger(__name__)


@dataclass
class CompressionResult:
    """What the compression stage produced and measured.

    Attributes:
        model: the final torch model (pruned and fine-tuned when pruning was asked for).
        pruning_history: torch-pruning's record, to rebuild the pruned model from its architecture.
        stages: one row per stage (torch fp32, torch pruned, ONNX fp32 unpruned, ONNX fp32, ONNX int8).
        verification: checker results and parity figures.
        onnx_path, int8_path: the files written.
    """

    model: nn.Module
    pruning_history: PruningHistory
    stages: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    onnx_path: Path | None = None
    int8_path: Path | None = None


def _scores(data: Dataset, output: np.ndarray) -> dict[str, float]:
    return compute_metrics(data.task, data.y, output, data.n_outputs)


def _ort_row(stage: str, path: Path, test: Dataset, params: int, macs: int, bench_X: np.ndarray
             ) -> tuple[dict[str, Any], np.ndarray]:
    sess = session(path, threads=1)
    out = run_onnx(sess, test.X)
    row = {"stage": stage, "params": params, "macs": macs, "bytes": path.stat().st_size,
           "latency_b1_ms": latency_ms(sess, bench_X, 1), "latency_b64_ms": latency_ms(sess, bench_X, 64),
           **_scores(test, out)}
    return row, out


def compress_model(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    out_dir: str | Path,
    *,
    train_config: TrainConfig,
    prune_ratio: float = 0.3,
    finetune_epochs: int = 10,
    calibration_samples: int = 256,
    importance: str = "l2",
    seed: int = 0,
    device: torch.device | str = "cpu",
    metadata: Mapping[str, str] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> CompressionResult:
    """Prune, fine-tune, export, quantize and verify ``model``; write ``model.onnx`` and ``model.int8.onnx``.

    Args:
        model: the trained model; it is not modified (pruning works on a copy).
        train: training data, for fine-tuning and int8 calibration.
        test: the held-out data every stage is scored on.
        out_dir: where the ONNX files are written.
        train_config: the winner's training hyperparameters; fine-tuning uses them with a quarter of the
            learning rate.
        prune_ratio: share of channels/units removed from every hidden layer; 0 skips pruning.
        finetune_epochs: epochs of fine-tuning after pruning.
        calibration_samples: training samples used to calibrate int8 activation ranges.
    """
    notify = on_stage or (lambda stage: None)
    out_dir = Path(out_dir)
    model = model.eval().cpu()
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    bench_X = test.X[:64]
    stages: list[dict[str, Any]] = []
    verification: dict[str, Any] = {}

    macs0, params0 = count_macs_params(model, example)
    stages.append({"stage": "torch fp32", "params": params0, "macs": macs0,
                   "bytes": sum(t.numel() * t.element_size() for t in model.state_dict().values()),
                   **_scores(test, predict(model, test.X))})

    final = model
    history: PruningHistory = []
    if prune_ratio > 0:
        notify("prune")
        final = copy.deepcopy(model)
        history = prune(final, example, prune_ratio, importance=importance)
        pruned_scores = _scores(test, predict(final, test.X))
        notify("fine-tune")
        cfg = replace(train_config, lr=train_config.lr / 4, schedule="cosine")
        fit(final, train.X, train.y, train.task, cfg, seed=seed, device=device, epochs=finetune_epochs)
        final = final.eval().cpu()
        macs1, params1 = count_macs_params(final, example)
        stages.append({"stage": "torch pruned", "params": params1, "macs": macs1,
                       "bytes": sum(t.numel() * t.element_size() for t in final.state_dict().values()),
                       **_scores(test, predict(final, test.X))})
        verification["pruned_before_finetune"] = pruned_scores
    macs, params = count_macs_params(final, example)

    notify("export")
    meta = dict(metadata or {})
    with tempfile.TemporaryDirectory() as tmp:
        if prune_ratio > 0:
            unpruned = export_onnx(model, example, Path(tmp) / "unpruned.onnx", meta)
            row, _ = _ort_row("onnx fp32 unpruned", unpruned, test, params0, macs0, bench_X)
            stages.append(row)
    onnx_path = export_onnx(final, example, out_dir / "model.onnx", meta)
    verification["onnx_fp32"] = check_onnx(onnx_path)
    row, fp32_out = _ort_row("onnx fp32", onnx_path, test, params, macs, bench_X)
    torch_out = predict(final, test.X)
    verification["onnx_fp32"]["max_abs_diff_vs_torch"] = float(np.max(np.abs(fp32_out - torch_out)))
    stages.append(row)

    notify("int8")
    rng = np.random.default_rng(seed)
    calib = train.X[rng.permutation(len(train))[:calibration_samples]]
    int8_path = quantize_int8(onnx_path, out_dir / "model.int8.onnx", calib)
    verification["onnx_int8"] = check_onnx(int8_path)
    verification["onnx_int8"]["calibration_samples"] = int(len(calib))
    verification["onnx_int8"]["method"] = "static QDQ, per-channel int8 weights, uint8 activations (MinMax)"
    row, int8_out = _ort_row("onnx int8", int8_path, test, params, macs, bench_X)
    if test.task == "classification":
        verification["onnx_int8"]["argmax_agreement_vs_fp32"] = float(
            np.mean(int8_out.argmax(axis=1) == fp32_out.argmax(axis=1)))
    else:
        verification["onnx_int8"]["max_abs_diff_vs_fp32"] = float(np.max(np.abs(int8_out - fp32_out)))
    stages.append(row)
    fp32_row = next(r for r in stages if r["stage"] == "onnx fp32")
    verification["int8_faster_than_fp32_b64"] = bool(row["latency_b64_ms"] < fp32_row["latency_b64_ms"])
    verification["int8_size_ratio"] = row["bytes"] / fp32_row["bytes"]
    logger.debug("compression stages: %s", json.dumps(stages, default=str))
    return CompressionResult(model=final, pruning_history=history, stages=stages, verification=verification,
                             onnx_path=onnx_path, int8_path=int8_path)
