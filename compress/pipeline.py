"""The compression stage: prune → fine-tune → ONNX fp32 → int8 → verify, one report row per stage.

:func:`compress_model` is the one-shot version the search runs on its winner; :func:`compress` is the
standalone stage (iterative pruning within an accuracy budget measured on data held back from the training
split). Both export, quantize and verify the same way.
"""

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

from autoarch.compress.config import CompressConfig
from autoarch.compress.export import check_onnx, export_onnx, model_metadata
from autoarch.compress.pruning import PruningHistory, count_macs_params, prune
from autoarch.compress.quantize import choose_int8
from autoarch.compress.runtime import isolated_latency_ms, latency_ms, peak_memory, run_onnx, session
from autoarch.compress.schedule import prune_iteratively
from autoarch.data import Dataset, train_test_split
from autoarch.exceptions import ConfigError
from autoarch.metrics import check_metric, compute_metrics, default_metric
from autoarch.objectives import Objective
from autoarch.trainer import TrainConfig, fit, predict, resolve_device

__all__ = ["CompressionResult", "compress_model", "compress"]

logger = logging.getLogger(__name__)


@dataclass
class CompressionResult:
    """What the compression stage produced and measured.

    Attributes:
        model: the final torch model (pruned and fine-tuned when pruning was asked for).
        pruning_history: torch-pruning's record, to rebuild the pruned model from its architecture.
        stages: one row per stage (torch fp32, torch pruned, ONNX fp32 unpruned, ONNX fp32, ONNX int8): params,
            MACs, bytes, held-out metrics and, for ONNX files, checker, opset, parity, latency at batch 1 and
            64 and inference peak memory.
        verification: checker results, parity figures, the int8 decision and ``warnings``.
        onnx_path, int8_path: the files written.
        steps: the iterative pruning schedule, one row per step (standalone stage only).
        pruning: the schedule's target, budget, stop reason and kept step (standalone stage only).
    """

    model: nn.Module
    pruning_history: PruningHistory
    stages: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    onnx_path: Path | None = None
    int8_path: Path | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    pruning: dict[str, Any] = field(default_factory=dict)

    def summary(self, fallback_dir: str | Path | None = None) -> str:
        """What ``autoarch compress`` prints: the schedule's stop reason and kept step, one line per pruning step
        and per stage, and where the files are (``fallback_dir`` when no ONNX file was written)."""
        pr = self.pruning
        plain = Objective(pr["metric"]).metric
        lines = [f"pruning: {pr['stop_reason']}; kept step {pr['kept_step']} "
                 f"(target keep {pr['target']['keep']:g} of {pr['target']['kind']}: "
                 f"{'reached' if pr['target_reached'] else 'NOT reached'})"]
        for s in self.steps:
            over = "" if s["within_budget"] else "  over budget"
            lines.append(f"  step {s['step']}: {s['params']:>9,} params {s['macs']:>12,} MACs  val {plain} "
                         f"{s[f'val_{plain}']:.4f}  drop {s['drop']:.2f}{over}")
        for row in self.stages:
            lat = (f"  b1 {row['latency_b1_ms']:.3f} ms  b64 {row['latency_b64_ms']:.3f} ms"
                   if "latency_b64_ms" in row else "")
            lines.append(f"  {row['stage']:<20} {row['params']:>9,} params  {row['bytes'] / 1024:>8.1f} KiB  "
                         f"held-out {plain} {row[plain]:.4f}{lat}")
        if self.verification.get("warnings"):
            lines.append(f"{len(self.verification['warnings'])} warning(s) above; see compression.md")
        out_dir = self.onnx_path.parent if self.onnx_path is not None else fallback_dir
        lines.append(f"written to {out_dir}  (compression.md, model.onnx, model.int8.onnx, model.pt)")
        return "\n".join(lines)


def _scores(data: Dataset, output: np.ndarray) -> dict[str, float]:
    return compute_metrics(data.task, data.y, output, data.n_outputs)


def _state_bytes(model: nn.Module) -> int:
    return int(sum(t.numel() * t.element_size() for t in model.state_dict().values()))


def _torch_row(stage: str, model: nn.Module, example: torch.Tensor, test: Dataset) -> dict[str, Any]:
    macs, params = count_macs_params(model, example)
    return {"stage": stage, "params": params, "macs": macs, "bytes": _state_bytes(model),
            **_scores(test, predict(model, test.X))}


def _onnx_row(stage: str, path: Path, test: Dataset, params: int, macs: int, bench_X: np.ndarray,
              measure_memory: bool) -> tuple[dict[str, Any], np.ndarray]:
    sess = session(path, threads=1)
    out = run_onnx(sess, test.X)
    check = check_onnx(path)
    latency = isolated_latency_ms(path, bench_X, (1, 64))
    row: dict[str, Any] = {"stage": stage, "params": params, "macs": macs, "bytes": path.stat().st_size,
                           "latency_b1_ms": latency[1], "latency_b64_ms": latency[64],
                           "checker": check["checker"], "opset": check["opset"]}
    if measure_memory:
        row["peak_memory_mb"] = peak_memory(path, bench_X, 64).get("session_peak_mb")
    row.update(_scores(test, out))
    return row, out


def _parity(task: str, out: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    if task == "classification":
        return {"argmax_agreement": float(np.mean(out.argmax(axis=1) == reference.argmax(axis=1))),
                "max_abs_diff": float(np.max(np.abs(out - reference)))}
    return {"max_abs_diff": float(np.max(np.abs(out - reference)))}


def has_recurrent(model: nn.Module) -> bool:
    """Whether ``model`` has LSTM / GRU / RNN layers (torch-pruning cannot prune them: shared/DESIGN.md)."""
    return any(isinstance(m, nn.RNNBase) for m in model.modules())


def refuse_recurrent(model: nn.Module) -> None:
    """Raise :class:`ConfigError` for a model with recurrent layers: :func:`compress` prunes, and they cannot be
    pruned yet (a search exports and quantizes them unpruned)."""
    if has_recurrent(model):
        raise ConfigError("this model has recurrent layers (LSTM/GRU/RNN), which autoarch cannot prune yet; its "
                          "search already wrote the exported model.onnx and int8 model.int8.onnx (unpruned).")


def _export_stages(
    unpruned: nn.Module, final: nn.Module, pruned: bool, calibration_pool: Dataset, test: Dataset, out_dir: Path, *,
    metric: str, metadata: Mapping[str, str] | None, int8: str, calibration_samples: int, seed: int,
    measure_memory: bool, notify: Callable[[str], None],
) -> tuple[list[dict[str, Any]], dict[str, Any], Path, Path | None]:
    """Torch rows, then ONNX fp32 (unpruned when pruned, final) and int8, each verified; files in ``out_dir``."""
    plain = Objective(metric).metric
    example = torch.as_tensor(calibration_pool.X[:2], dtype=torch.float32)
    bench_X = test.X[:64]
    stages = [_torch_row("torch fp32", unpruned, example, test)]
    if pruned:
        stages.append(_torch_row("torch pruned", final, example, test))
    verification: dict[str, Any] = {}
    warnings: list[str] = []
    meta = {**model_metadata(final, task=test.task, classes=test.classes, input_shape=test.input_shape,
                             feature_names=test.feature_names), **dict(metadata or {})}
    macs, params = stages[-1]["macs"], stages[-1]["params"]

    notify("export")
    if pruned:
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(unpruned, example, Path(tmp) / "unpruned.onnx", meta)
            row, out = _onnx_row("onnx fp32 unpruned", path, test, stages[0]["params"], stages[0]["macs"], bench_X,
                                 measure_memory)
        row["max_abs_diff_vs_torch"] = float(np.max(np.abs(out - predict(unpruned, test.X))))
        verification["onnx_fp32_unpruned"] = {k: row[k] for k in ("checker", "opset", "max_abs_diff_vs_torch")}
        stages.append(row)
    onnx_path = export_onnx(final, example, out_dir / "model.onnx", meta)
    row, fp32_out = _onnx_row("onnx fp32", onnx_path, test, params, macs, bench_X, measure_memory)
    torch_out = predict(final, test.X)
    row["max_abs_diff_vs_torch"] = float(np.max(np.abs(fp32_out - torch_out)))
    verification["onnx_fp32"] = {k: row[k] for k in ("checker", "opset", "max_abs_diff_vs_torch")}
    if row["max_abs_diff_vs_torch"] > 1e-3:
        warnings.append(f"ONNX fp32 differs from torch by up to {row['max_abs_diff_vs_torch']:.2e}.")
    stages.append(row)
    fp32_row = row

    int8_path = None
    if int8 != "none":
        notify("int8")
        rng = np.random.default_rng(seed)
        calib = calibration_pool.X[rng.permutation(len(calibration_pool))[:calibration_samples]]
        int8_path, decision = choose_int8(onnx_path, out_dir / "model.int8.onnx", calib, bench_X, mode=int8)
        row, int8_out = _onnx_row("onnx int8", int8_path, test, params, macs, bench_X, measure_memory)
        parity = _parity(test.task, int8_out, torch_out)
        row["method"] = decision["method"]
        if "argmax_agreement" in parity:
            row["argmax_agreement_vs_torch"] = parity["argmax_agreement"]
        row["max_abs_diff_vs_torch"] = parity["max_abs_diff"]
        row[f"{plain}_delta_vs_fp32"] = float(row[plain] - fp32_row[plain])
        stages.append(row)
        keys = ("checker", "opset", "argmax_agreement_vs_torch", "max_abs_diff_vs_torch", f"{plain}_delta_vs_fp32")
        info = {k: row[k] for k in keys if k in row}
        info.update(calibration_samples=int(len(calib)) if decision["method"] == "static" else 0,
                    method=decision["description"], decision=decision)
        if test.task == "classification":
            info["argmax_agreement_vs_fp32"] = float(np.mean(int8_out.argmax(axis=1) == fp32_out.argmax(axis=1)))
        else:
            info["max_abs_diff_vs_fp32"] = float(np.max(np.abs(int8_out - fp32_out)))
        verification["onnx_int8"] = info
        for batch in (64, 1):
            faster = bool(row[f"latency_b{batch}_ms"] < fp32_row[f"latency_b{batch}_ms"])
            verification[f"int8_faster_than_fp32_b{batch}"] = faster
            if not faster:
                warnings.append(f"the int8 model ({decision['method']}) is NOT faster than fp32 at batch {batch}: "
                                f"{row[f'latency_b{batch}_ms']:.4f} ms vs {fp32_row[f'latency_b{batch}_ms']:.4f} ms "
                                "(1 thread); prefer model.onnx where latency matters.")
        verification["int8_size_ratio"] = row["bytes"] / fp32_row["bytes"]
        if row["bytes"] >= fp32_row["bytes"]:
            warnings.append(f"the int8 file ({row['bytes']:,} bytes) is not smaller than the fp32 one "
                            f"({fp32_row['bytes']:,} bytes): the model is too small for quantization to pay off.")
    verification["warnings"] = warnings
    for text in warnings:
        logger.warning(text)
    return stages, verification, onnx_path, int8_path


def compress_model(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    out_dir: str | Path,
    *,
    train_config: TrainConfig,
    prune_ratio: float = 0.15,
    finetune_epochs: int = 20,
    calibration_samples: int = 256,
    importance: str = "l2",
    seed: int = 0,
    device: torch.device | str = "cpu",
    metadata: Mapping[str, str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    int8: str = "auto",
    measure_memory: bool = True,
    round_to: int = 8,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> CompressionResult:
    """Prune (one shot), fine-tune, export, quantize and verify ``model``; write ``model.onnx`` and
    ``model.int8.onnx``. The search runs this on its winner; :func:`compress` is the standalone stage with
    an iterative schedule and an accuracy budget.

    Args:
        model: the trained model; it is not modified (pruning works on a copy).
        train: training data, for fine-tuning and int8 calibration.
        test: the held-out data every stage is scored on (no decision is taken on it).
        out_dir: where the ONNX files are written.
        train_config: the winner's training hyperparameters; fine-tuning uses them with a quarter of the
            learning rate.
        prune_ratio: share of channels/units removed from every hidden layer; 0 skips pruning. On the winners
            of ten digits searches, 0.15 scored best on validation data carved from the training splits (99.10%
            mean, against 98.89% unpruned and 98.72% at 0.3; ``benchmarks/prune_ratio.py``).
        round_to: the kept channel/unit counts are rounded to the nearest multiple of this (ONNX Runtime's
            convolutions are 1.5-2.4x slower on unaligned counts); 1 keeps exact counts. A layer of at most
            ``round_to`` channels is left alone.
        finetune_epochs: epochs of fine-tuning after pruning (cosine to zero). On the winners of ten digits
            searches pruned at 0.3, 20 epochs gave 99.29% held-out accuracy on average (2 seeds each) against
            99.00% for 10 (better in 12 of 20 pairs, worse in 2).
        calibration_samples: training samples used to calibrate int8 activation ranges.
        int8: ``auto``, ``static``, ``dynamic`` or ``none`` (see :class:`CompressConfig`).
        measure_memory: measure each ONNX file's inference peak memory (in a subprocess).
        on_epoch: called after every fine-tune epoch with its number and record (the CLI's progress bar).
    """
    notify = on_stage or (lambda stage: None)
    out_dir = Path(out_dir)
    model = model.eval().cpu()
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    final = model
    history: PruningHistory = []
    before: dict[str, float] = {}
    skipped = prune_ratio > 0 and has_recurrent(model)
    if skipped:
        logger.info("pruning skipped: recurrent layers (LSTM/GRU/RNN) are not pruned yet; the model is exported "
                    "and quantized unpruned")
        prune_ratio = 0.0
    if prune_ratio > 0:
        notify("prune")
        final = copy.deepcopy(model)
        history = prune(final, example, prune_ratio, importance=importance, round_to=round_to, rounding="nearest")
        before = _scores(test, predict(final, test.X))
        notify("fine-tune")
        cfg = replace(train_config, lr=train_config.lr / 4, schedule="cosine")
        fit(final, train.X, train.y, train.task, cfg, seed=seed, device=device, epochs=finetune_epochs,
            on_epoch=on_epoch)
        final = final.eval().cpu()
    metric = (metadata or {}).get("metric") or default_metric(train.task)
    stages, verification, onnx_path, int8_path = _export_stages(
        model, final, prune_ratio > 0, train, test, out_dir, metric=metric, metadata=metadata, int8=int8,
        calibration_samples=calibration_samples, seed=seed, measure_memory=measure_memory, notify=notify)
    if before:
        verification["pruned_before_finetune"] = before
    if skipped:
        verification["pruning_skipped"] = "recurrent layers are not pruned yet"
    return CompressionResult(model=final, pruning_history=history, stages=stages, verification=verification,
                             onnx_path=onnx_path, int8_path=int8_path)


def _fp32_latency(example: torch.Tensor, bench_X: np.ndarray, repeats: int = 50) -> Callable[[nn.Module], float]:
    """ONNX Runtime fp32 latency at batch 64 (1 thread) of a torch model, through a temporary export."""

    def measure(model: nn.Module) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, example, Path(tmp) / "m.onnx")
            return latency_ms(session(path), bench_X, 64, repeats=repeats)

    return measure


def compress(
    model: nn.Module,
    train: Dataset,
    test: Dataset,
    out_dir: str | Path,
    *,
    config: CompressConfig | None = None,
    train_config: TrainConfig | None = None,
    metric: str | None = None,
    metadata: Mapping[str, str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    measure_memory: bool = True,
) -> CompressionResult:
    """The standalone compression stage: iterative pruning within an accuracy budget, ONNX, int8, checks.

    ``config.val_size`` of ``train`` is held back (stratified, seeded) as validation data: every pruning
    decision is taken on it. The rest fine-tunes the pruned steps and calibrates int8. ``test`` (the held-out
    split) is only scored and reported.

    Args:
        model: the trained model (e.g. a search's ``winner.pt``); it is not modified.
        train: the training split.
        test: the held-out split, reported only.
        out_dir: where ``model.onnx`` and ``model.int8.onnx`` are written.
        config: target, budget, importance, steps, ... (:class:`CompressConfig`); defaults when None.
        train_config: the training hyperparameters fine-tuning starts from (a quarter of their learning rate).
        metric: the validation objective (``accuracy``, ``f1_macro``, ``neg_rmse``, ...); the task's default
            when None.
        metadata: extra ONNX metadata (``architecture``, ...).

    Example:
        >>> from autoarch.compress import CompressConfig, compress
        >>> result = compress(model, train, test, "out", config=CompressConfig(target_macs=0.25, max_drop=0.5))
        ... # doctest: +SKIP
    """
    config = config or CompressConfig()
    config.validate()
    metric = metric or default_metric(train.task)
    check_metric(metric, train.task)
    refuse_recurrent(model)
    device = resolve_device(config.device)
    notify = on_stage or (lambda stage: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fit_data, val_data = train_test_split(train, config.val_size, seed=config.seed)
    model = copy.deepcopy(model).eval().cpu()
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    kind, share = config.target
    latency = _fp32_latency(example, val_data.X[:64]) if kind == "latency" else None
    notify("prune")
    train_config = train_config or TrainConfig()
    pr = prune_iteratively(model, fit_data, val_data, config=config, train_config=train_config, metric=metric,
                           device=device, latency=latency, on_step=on_step)
    final_finetune = None
    if config.final_finetune and pr.kept_step > 0 and config.finetune_epochs > 0:
        # The step is chosen; the validation part has done its job and now trains the kept model too.
        notify("final fine-tune")
        ft = replace(train_config, lr=train_config.lr / 4, schedule="cosine")
        fit(pr.model, train.X, train.y, train.task, ft, seed=config.seed + 1000, device=device,
            epochs=config.finetune_epochs)
        pr.model = pr.model.cpu().eval()
        final_finetune = f"{config.finetune_epochs} epochs on the whole training split ({len(train)} samples)"
    stages, verification, onnx_path, int8_path = _export_stages(
        model, pr.model, pr.kept_step > 0, fit_data, test, out_dir, metric=metric,
        metadata={**dict(metadata or {}), "metric": metric, "compression": json.dumps(
            {"target": {"kind": kind, "keep": share}, "kept_step": pr.kept_step, "max_drop": config.max_drop,
             "importance": config.importance, "global_pruning": config.global_pruning})},
        int8=config.int8,
        calibration_samples=config.calibration_samples, seed=config.seed, measure_memory=measure_memory,
        notify=notify)
    plain = Objective(metric).metric
    pruning = {"target": {"kind": kind, "keep": share}, "target_reached": pr.target_reached,
               "max_drop": config.max_drop, "drop_unit": Objective(metric).drop_unit,
               "confidence": config.confidence, "metric": metric, "n_fit": len(fit_data), "n_val": len(val_data),
               "validation": f"{len(val_data)} samples held back from the training split "
                                               f"(val_size={config.val_size}, seed={config.seed})",
               "importance": config.importance, "scope": "global" if config.global_pruning else "uniform",
               "steps_planned": config.steps, "finetune_epochs": config.finetune_epochs,
               "kept_step": pr.kept_step, "stop_reason": pr.stop_reason, "final_finetune": final_finetune,
               f"val_{plain}_input": pr.steps[0][f"val_{plain}_before_finetune"],
               f"val_{plain}_reference": pr.steps[0][f"val_{plain}"],
               f"val_{plain}_kept": pr.steps[pr.kept_step][f"val_{plain}"]}
    if not pr.target_reached:
        verification["warnings"].insert(0, f"the {kind} target (keep {share:g}) was not reached within the "
                                           f"accuracy budget: {pr.stop_reason}; kept step {pr.kept_step}.")
    return CompressionResult(model=pr.model, pruning_history=pr.history, stages=stages, verification=verification,
                             onnx_path=onnx_path, int8_path=int8_path, steps=pr.steps, pruning=pruning)

