"""The compression stage, one pipeline: prune toward a target → fine-tune → ONNX fp32 → int8 → verify, one typed
:class:`~autoarch.compress.stages.Stage` row per model.

The target decides how :func:`compress` prunes: a channel target (``target_channels``, what a search runs on its
winner, ``--prune``) removes a share of every hidden layer's channels in one shot and fine-tunes on the whole
training split; a parameter, MAC or latency target prunes in steps within an accuracy budget measured on data held
back from the training split (``autoarch compress``). Both export, quantize and verify with the same steps
(:mod:`autoarch.compress.stages`).
"""

from __future__ import annotations

import copy
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch.compress.config import CompressConfig
from autoarch.compress.export import export_onnx, model_metadata
from autoarch.compress.pruning import PruningHistory, prune
from autoarch.compress.rows import Stage
from autoarch.compress.runtime import latency_ms, session
from autoarch.compress.schedule import (
    drop_margin,
    finetune_config,
    metric_drop,
    prune_iteratively,
    taylor_gradients,
)
from autoarch.compress.stages import export_stage, quantize_stage, torch_stage, verify
from autoarch.data import Dataset, train_test_split
from autoarch.exceptions import DataError
from autoarch.metrics import check_metric, compute_metrics, default_metric
from autoarch.objectives import Objective
from autoarch.trainer import TrainConfig, fit, predict, resolve_device

__all__ = ["CompressionResult", "compress"]

logger = logging.getLogger(__name__)


@dataclass
class CompressionResult:
    """What the compression stage produced and measured.

    Attributes:
        model: the final torch model (pruned and fine-tuned when pruning was asked for).
        pruning_history: torch-pruning's record, to rebuild the pruned model from its architecture.
        stages: one :class:`~autoarch.compress.stages.Stage` per model (torch fp32, torch pruned, ONNX fp32
            unpruned, ONNX fp32, ONNX int8): params, MACs, bytes, held-out scores and, for ONNX files, checker,
            opset, parity, latency at batch 1 and 64 and inference peak memory.
        verification: checker results, parity figures, the int8 decision and ``warnings``.
        onnx_path, int8_path: the files written.
        steps: the pruning schedule, one row per step (targets pruned in steps within a budget).
        pruning: the target, budget, validation data, stop reason and kept step.
    """

    model: nn.Module
    pruning_history: PruningHistory
    stages: list[Stage] = field(default_factory=list)
    verification: dict[str, Any] = field(default_factory=dict)
    onnx_path: Path | None = None
    int8_path: Path | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    pruning: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> Stage | None:
        """The stage called ``name`` (``"onnx int8"``, ...), or None."""
        return next((s for s in self.stages if s.stage == name), None)

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
            lat = (f"  b1 {row.latency_b1_ms:.3f} ms  b64 {row.latency_b64_ms:.3f} ms"
                   if row.latency_b1_ms is not None and row.latency_b64_ms is not None else "")
            lines.append(f"  {row.stage:<20} {row.params:>9,} params  {row.bytes / 1024:>8.1f} KiB  "
                         f"held-out {plain} {row.scores[plain]:.4f}{lat}")
        if self.verification.get("warnings"):
            lines.append(f"{len(self.verification['warnings'])} warning(s) above; see compression.md")
        out_dir = self.onnx_path.parent if self.onnx_path is not None else fallback_dir
        lines.append(f"written to {out_dir}  (compression.md, model.onnx, model.int8.onnx, model.pt)")
        return "\n".join(lines)


def _export(unpruned: nn.Module, final: nn.Module, pruned: bool, calibration_pool: Dataset, test: Dataset,
            out_dir: Path, metadata: Mapping[str, str], config: CompressConfig, metric: str,
            measure_memory: bool, notify: Callable[[str], None]) -> CompressionResult:
    """The torch rows, then ONNX fp32 (the unpruned network too when pruned), int8 and the checks: the stages
    of :mod:`autoarch.compress.stages` in order, the files in ``out_dir``."""
    plain = Objective(metric).metric
    example = torch.as_tensor(calibration_pool.X[:2], dtype=torch.float32)
    bench_X = test.X[:64]
    stages = [torch_stage("torch fp32", unpruned, example, test)]
    if pruned:
        stages.append(torch_stage("torch pruned", final, example, test))
    meta = {**model_metadata(final, task=test.task, classes=test.classes, input_shape=test.input_shape,
                             feature_names=test.feature_names), **dict(metadata)}
    shipped = stages[-1]  # the final model's torch row: its params and MACs are the files'
    notify("export")
    extra: dict[str, Any] = {}
    if pruned:
        with tempfile.TemporaryDirectory() as tmp:
            row, _ = export_stage("onnx fp32 unpruned", unpruned, example, Path(tmp) / "unpruned.onnx", meta, test,
                                  bench_X, params=stages[0].params, macs=stages[0].macs,
                                  measure_memory=measure_memory)
        extra["onnx_fp32_unpruned"] = {"checker": row.checker, "opset": row.opset,
                                       "max_abs_diff_vs_torch": row.max_abs_diff_vs_torch}
        stages.append(row)
    onnx_path = out_dir / "model.onnx"
    fp32, fp32_out = export_stage("onnx fp32", final, example, onnx_path, meta, test, bench_X,
                                  params=shipped.params, macs=shipped.macs, measure_memory=measure_memory)
    stages.append(fp32)
    int8 = int8_out = decision = None
    calibration = 0
    if config.int8 != "none":
        notify("int8")
        rng = np.random.default_rng(config.seed)
        calib = calibration_pool.X[rng.permutation(len(calibration_pool))[:config.calibration_samples]]
        calibration = len(calib)
        int8, decision, int8_out = quantize_stage(fp32, onnx_path, out_dir / "model.int8.onnx", calib, test,
                                                  bench_X, predict(final, test.X), mode=config.int8,
                                                  measure_memory=measure_memory)
        stages.append(int8)
    verification = {**extra, **verify(fp32, fp32_out, int8, int8_out, decision, metric=plain, task=test.task,
                                      calibration_samples=calibration)}
    return CompressionResult(model=final, pruning_history=[], stages=stages, verification=verification,
                             onnx_path=onnx_path, int8_path=None if int8 is None else out_dir / "model.int8.onnx")


def _prune_channels(model: nn.Module, train: Dataset, test: Dataset, keep: float, config: CompressConfig,
                    train_config: TrainConfig, metric: str, device: torch.device | str,
                    notify: Callable[[str], None], on_epoch: Callable[[int, dict[str, float]], None] | None
                    ) -> tuple[nn.Module, PruningHistory, dict[str, Any], dict[str, Any] | None,
                               dict[str, Any] | None]:
    """A channel target: one shot. Remove ``1 - keep`` of every hidden layer's channels (kept counts rounded to
    the nearest multiple of ``round_to``) and fine-tune.

    With ``config.finetune_stop`` (the default) the fine-tune's length is chosen by early stopping: the pruned
    model fine-tunes on the training split less ``config.val_size`` (held back, stratified, seeded) for at most
    ``config.finetune_epochs`` epochs, validated after each (the search's metric, ties broken by the lower loss;
    ``train_config.patience`` epochs without improvement end it), and then the pruned model is fine-tuned again
    from where pruning left it, on the whole split (annealed, like the winner's retrain): for the best epoch's
    count when the last epoch run scored below it by more than the noise margin there, else for all
    ``finetune_epochs``. A fixed length suits no modality: on digits 20 epochs beat 10, on airline tweets a GRU
    winner lost 2.7 points in a 19-epoch fine-tune and gained 0.8 in a 3-epoch one (BENCHMARKS.md).

    With ``config.check`` (off by default) the pruned model, fine-tuned on the rest, is compared on the held-back
    part with the unpruned model and kept only when it loses at most ``config.max_drop`` of the validation metric
    beyond the noise margin (:func:`~autoarch.compress.schedule.drop_margin`); otherwise the unpruned model is
    returned. It is first compared with the unpruned model as given, which has trained on the held-back part and
    is flattered there; only when that comparison fails is the unpruned model fine-tuned on the rest exactly like
    the pruned one and the check repeated against it. It measures what pruning costs, not what the fine-tune does
    to the model: on airline tweets it passed a pruning whose 19-epoch fine-tune cost 2.7 points held out, the
    reference having lost as much (BENCHMARKS.md). With neither, the pruned model fine-tunes on the whole of
    ``train`` for ``config.finetune_epochs`` epochs.

    Returns the model (``model`` itself when not pruned), its pruning history, records for the verification, the
    check's record and the early stopping's (each None when not done)."""
    ratio = round(1.0 - keep, 12)
    record: dict[str, Any] = {}
    if ratio <= 0:
        return model, [], record, None, None
    notify("prune")
    stop = config.finetune_stop and config.finetune_epochs > 0
    fit_data, val_data = train, None
    if config.check or stop:
        try:
            fit_data, val_data = train_test_split(train, config.val_size, seed=config.seed)
        except DataError:
            if config.check:
                raise
            # a class with one training sample cannot be held back: the fine-tune keeps its fixed length
            logger.info("fine-tune: a class has one training sample, so nothing is held back to choose the "
                        "length; %d epochs on the whole split", config.finetune_epochs)
            stop = False
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    pruned = copy.deepcopy(model)
    gradients = taylor_gradients(fit_data, config.seed) if config.importance == "taylor" else None
    history = prune(pruned, example, ratio, importance=config.importance, global_pruning=config.global_pruning,
                    gradients=gradients, round_to=config.round_to, rounding="nearest")
    record["pruned_before_finetune"] = compute_metrics(test.task, test.y, predict(pruned, test.X), test.n_outputs)
    plain = Objective(metric).metric
    tune = finetune_config(train_config)

    def finetune(m: nn.Module, data: Dataset, epochs: int,
                 epoch_hook: Callable[[int, dict[str, float]], None] | None) -> nn.Module:
        if epochs > 0:
            fit(m, data.X, data.y, data.task, tune, seed=config.seed, device=device, epochs=epochs,
                on_epoch=epoch_hook)
        return m.eval().cpu()

    def finetune_stopped(m: nn.Module, epoch_hook: Callable[[int, dict[str, float]], None] | None
                         ) -> tuple[nn.Module, dict[str, Any]]:
        """Fine-tune on the fit part, early-stopped on the held-back part: the best epoch's weights and the
        length chosen. That is the best epoch only when the last epoch run scored below it by more than the
        held-back part can tell from noise (:func:`drop_margin`, at ``config.confidence``), else the whole
        ``finetune_epochs``: on 30 OSULeaf series early stopping chose 2 of 20 epochs by noise, and the pruned
        model scored 0.47 held out where 20 epochs gave 0.56."""
        outs: list[np.ndarray] = []

        def scorer(out: np.ndarray) -> dict[str, float]:
            outs.append(out)
            return compute_metrics(val_data.task, val_data.y, out, val_data.n_outputs)

        res = fit(m, fit_data.X, fit_data.y, fit_data.task, tune, seed=config.seed, device=device,
                  epochs=config.finetune_epochs, X_val=val_data.X, y_val=val_data.y, val_scorer=scorer,
                  monitor=None if Objective(metric).lower_is_better else plain, on_epoch=epoch_hook)
        best, last = outs[res.best_epoch - 1], outs[res.epochs_run - 1]
        score = {k: res.history[epoch - 1][f"val_{plain}"]
                 for k, epoch in (("best", res.best_epoch), ("last", res.epochs_run))}
        drop = metric_drop(metric, score["best"], score["last"])
        margin = drop_margin(metric, val_data, best, last, config.confidence, config.seed)
        shorter = res.best_epoch < config.finetune_epochs and drop > margin + 1e-9
        return m.eval().cpu(), {
            "n_fit": len(fit_data), "n_val": len(val_data), "max_epochs": config.finetune_epochs,
            "epochs_run": res.epochs_run, "best_epoch": res.best_epoch, "patience": train_config.patience,
            f"val_{plain}_best": score["best"], f"val_{plain}_last": score["last"], "drop": drop, "margin": margin,
            "epochs": res.best_epoch if shorter else config.finetune_epochs}

    if config.finetune_epochs > 0:
        notify("fine-tune")
    stopping: dict[str, Any] | None = None
    if stop:
        tuned, stopping = finetune_stopped(copy.deepcopy(pruned), on_epoch)
    else:
        tuned = finetune(pruned, fit_data, config.finetune_epochs, on_epoch)
    check: dict[str, Any] | None = None
    if config.check:
        pruned_out = predict(tuned, val_data.X)
        pruned_score = compute_metrics(val_data.task, val_data.y, pruned_out, val_data.n_outputs)[plain]

        def compare(reference: nn.Module) -> dict[str, Any]:
            ref_out = predict(reference, val_data.X)
            ref_score = compute_metrics(val_data.task, val_data.y, ref_out, val_data.n_outputs)[plain]
            drop = metric_drop(metric, ref_score, pruned_score)
            margin = drop_margin(metric, val_data, ref_out, pruned_out, config.confidence, config.seed)
            return {f"val_{plain}_reference": ref_score, "drop": drop, "margin": margin,
                    "within_budget": bool(drop <= config.max_drop + margin + 1e-9)}

        check = {"n_fit": len(fit_data), "n_val": len(val_data), f"val_{plain}_pruned": pruned_score,
                 "reference": "the unpruned model as given (it has trained on the held-back part)", **compare(model)}
        if not check["within_budget"] and config.finetune_epochs > 0:
            notify("fine-tune reference")
            check["reference_as_given"] = {k: check[k] for k in (f"val_{plain}_reference", "drop", "margin")}
            reference = (finetune_stopped(copy.deepcopy(model), None)[0] if stop
                         else finetune(copy.deepcopy(model), fit_data, config.finetune_epochs, None))
            check.update(compare(reference),
                         reference="the unpruned model fine-tuned on the rest exactly like the pruned one")
        if not check["within_budget"]:
            return model, [], record, check, stopping
    if stopping is None:
        return tuned, history, record, check, None
    # The length is chosen; the held-back part has done its job and now trains the pruned model too.
    notify("fine-tune on the whole split")
    final = finetune(pruned, train, stopping["epochs"], on_epoch)
    return final, history, record, check, stopping


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
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    measure_memory: bool = True,
) -> CompressionResult:
    """Compress ``model``: prune toward ``config``'s target, fine-tune, export to ONNX, quantize to int8, verify.

    A channel target (``target_channels``, the search's ``--prune``) prunes in one shot without a budget: nothing
    is held back, the pruned model fine-tunes on the whole of ``train``. Any other target (parameters, MACs,
    latency) prunes in ``config.steps`` steps within ``config.max_drop``: ``config.val_size`` of ``train`` is held
    back (stratified, seeded) as validation data and every pruning decision is taken on it; the rest fine-tunes
    the pruned steps and calibrates int8. ``test`` (the held-out split) is only scored and reported.

    Args:
        model: the trained model (a search's winner, ``winner.pt``); it is not modified.
        train: the training split.
        test: the held-out split, reported only.
        out_dir: where ``model.onnx`` and ``model.int8.onnx`` are written.
        config: target, budget, importance, steps, int8, ... (:class:`CompressConfig`); defaults when None.
        train_config: the training hyperparameters fine-tuning starts from (a quarter of their learning rate,
            cosine to zero).
        metric: the validation objective (``accuracy``, ``f1_macro``, ``neg_rmse``, ...); the task's default
            when None.
        metadata: extra ONNX metadata (``architecture``, ...).
        on_stage: called with each stage's name as it starts (``prune``, ``fine-tune``, ``export``, ``int8``).
        on_step: called with each pruning step's row (targets pruned in steps).
        on_epoch: called after every epoch of a channel target's fine-tune (a progress bar).
        measure_memory: measure each ONNX file's inference peak memory (in a subprocess).

    Example:
        >>> from autoarch.compress import CompressConfig, compress
        >>> result = compress(model, train, test, "out", config=CompressConfig(target_macs=0.25, max_drop=0.5))
        ... # doctest: +SKIP
    """
    config = config or CompressConfig()
    config.validate()
    metric = metric or default_metric(train.task)
    check_metric(metric, train.task)
    kind, share = config.target
    device = resolve_device(config.device)
    notify = on_stage or (lambda stage: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = copy.deepcopy(model).eval().cpu()
    train_config = train_config or TrainConfig()
    described = {"target": {"kind": kind, "keep": share}, "importance": config.importance,
                 "global_pruning": config.global_pruning}
    scope = "global" if config.global_pruning else "uniform"
    if kind == "channels":
        final, history, record, check, stopping = _prune_channels(model, train, test, share, config, train_config,
                                                                  metric, device, notify, on_epoch)
        pruned = final is not model
        plain = Objective(metric).metric
        held = check or stopping
        parts = []
        if stopping is not None:
            parts.append(f"choose the fine-tune's length by early stopping ({stopping['epochs']} epochs: best epoch "
                         f"{stopping['best_epoch']} of {stopping['epochs_run']} run, the last "
                         f"{stopping['drop']:.2f} {Objective(metric).drop_unit} below it, noise margin "
                         f"{stopping['margin']:.2f}; at most {stopping['max_epochs']})")
        if check is not None:
            parts.append("check the one-shot pruning")
        if held is None:
            validation = "none: a channel target without the check prunes in one shot, without an accuracy budget"
        else:
            validation = (f"{held['n_val']} samples held back from the training split (val_size={config.val_size}, "
                          f"seed={config.seed}) {' and '.join(parts)}; the pruned model fine-tuned on the other "
                          f"{held['n_fit']}" + ("" if stopping is None or not pruned else
                                                f", then on all {len(train)} for {stopping['epochs']} epochs"))
        if check is not None and not pruned:
            stop_reason = (f"not pruned: removing {1 - share:g} of every hidden layer's channels lost "
                           f"{check['drop']:.2f} {Objective(metric).drop_unit} of validation {plain} against "
                           f"{check['reference']}, more than --max-drop {config.max_drop:g} plus the noise margin "
                           f"of {check['margin']:.2f}; the unpruned model is shipped")
        elif pruned:
            stop_reason = f"one shot: {1 - share:g} of every hidden layer's channels removed" + (
                "" if check is None else f" (validation {plain} {check[f'val_{plain}_pruned']:.4f} vs "
                f"{check[f'val_{plain}_reference']:.4f} for {check['reference']}: within --max-drop "
                f"{config.max_drop:g})")
        else:
            stop_reason = "not pruned: the target keeps every channel"
        tried = share < 1
        epochs = config.finetune_epochs if stopping is None else stopping["epochs"]
        pruning: dict[str, Any] = {
            **described, "target_reached": pruned or not tried, "max_drop": None, "metric": metric,
            "n_fit": len(train) if held is None else held["n_fit"],
            "n_val": 0 if held is None else held["n_val"], "validation": validation,
            "check": None if check is None else {**check, "max_drop": config.max_drop,
                                                 "confidence": config.confidence},
            "finetune_stop": stopping,
            "scope": scope, "steps_planned": 1,
            "finetune_epochs": epochs if tried and pruned else (config.finetune_epochs if tried else 0),
            "kept_step": int(pruned), "stop_reason": stop_reason}
        calibration_pool, steps = train, []
    else:
        fit_data, val_data = train_test_split(train, config.val_size, seed=config.seed)
        example = torch.as_tensor(train.X[:2], dtype=torch.float32)
        latency = _fp32_latency(example, val_data.X[:64]) if kind == "latency" else None
        notify("prune")
        pr = prune_iteratively(model, fit_data, val_data, config=config, train_config=train_config, metric=metric,
                               device=device, latency=latency, on_step=on_step)
        final_finetune = None
        if config.final_finetune and pr.kept_step > 0 and config.finetune_epochs > 0:
            # The step is chosen; the validation part has done its job and now trains the kept model too.
            notify("final fine-tune")
            fit(pr.model, train.X, train.y, train.task, finetune_config(train_config), seed=config.seed + 1000,
                device=device, epochs=config.finetune_epochs)
            pr.model = pr.model.cpu().eval()
            final_finetune = f"{config.finetune_epochs} epochs on the whole training split ({len(train)} samples)"
        final, history, record, pruned = pr.model, pr.history, {}, pr.kept_step > 0
        plain = Objective(metric).metric
        pruning = {**described, "target_reached": pr.target_reached,
                   "max_drop": config.max_drop, "drop_unit": Objective(metric).drop_unit,
                   "confidence": config.confidence, "metric": metric, "n_fit": len(fit_data),
                   "n_val": len(val_data),
                   "validation": f"{len(val_data)} samples held back from the training split "
                                 f"(val_size={config.val_size}, seed={config.seed})",
                   "scope": scope, "steps_planned": config.steps, "finetune_epochs": config.finetune_epochs,
                   "kept_step": pr.kept_step, "stop_reason": pr.stop_reason, "final_finetune": final_finetune,
                   f"val_{plain}_input": pr.steps[0][f"val_{plain}_before_finetune"],
                   f"val_{plain}_reference": pr.steps[0][f"val_{plain}"],
                   f"val_{plain}_kept": pr.steps[pr.kept_step][f"val_{plain}"]}
        calibration_pool, steps = fit_data, pr.steps
    meta = {**dict(metadata or {}), "metric": metric, "compression": json.dumps(
        {**described, "kept_step": pruning["kept_step"], "max_drop": pruning["max_drop"]})}
    result = _export(model, final, pruned, calibration_pool, test, out_dir, meta, config, metric, measure_memory,
                     notify)
    result.verification.update(record)
    if not pruning["target_reached"]:
        result.verification["warnings"].insert(0, f"the {kind} target (keep {share:g}) was not reached within the "
                                                  f"accuracy budget: {pruning['stop_reason']}; kept step "
                                                  f"{pruning['kept_step']}.")
    result.pruning_history, result.steps, result.pruning = history, steps, pruning
    return result
