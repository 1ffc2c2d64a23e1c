"""Finishing a search: the winner chosen within the budget, retrained, compressed, exported and reported, the
run directory's files written; :func:`load` and :func:`rebuild_report` read a finished run back."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState
from torch import nn

from autoarch import __version__
from autoarch.budget import (
    affordable_best,
    epoch_bar,
    epochs_per_sample_second,
    finish_overhead,
    retrain_epochs,
    short_finetune,
)
from autoarch.compress import CompressionResult, compress
from autoarch.config import SearchConfig
from autoarch.data import Dataset
from autoarch.evaluate import build_model, describe_cv, retrain
from autoarch.exceptions import DataError, LimitsUnmetError, SearchFailedError
from autoarch.metrics import compute_metrics
from autoarch.model import Model
from autoarch.objectives import Objective, resolve_objectives
from autoarch.outcome import guarded_test_detail, limits_unmet, no_trial_completed
from autoarch.pareto import front_trials, parse_pick, pick_point
from autoarch.rundir import KEEP_DIR, Generation, copy_file, crash_point
from autoarch.runfiles import SCHEMA_VERSION, ArchitectureSpec, read_model, read_report
from autoarch.runreport import BestTrial, CompressionInfo, DataInfo, RunReport, SearchInfo
from autoarch.search_spaces import SearchSpace, space_ref
from autoarch.study import STUDY_NAME, open_storage, redact, run_storage_url
from autoarch.tables import TableEncoder, table_schema
from autoarch.trainer import TrainConfig, predict
from autoarch.trials import leaderboard

logger = logging.getLogger(__name__)


@dataclass
class SearchResult:
    """The outcome of :func:`search`.

    Attributes:
        architecture: the winner's architecture (plain values).
        training: the winner's training hyperparameters.
        cv_scores: ``{metric: (mean, std)}`` over the folds of the winning trial.
        test_scores: every metric of the retrained winner (before pruning) on the held-out split.
        model: the final (pruned, fine-tuned) torch model; its input is raw features.
        leaderboard: one row per trial, best first.
        compression: the compression stages, verification and files.
        out_dir: the run directory.
        study: the optuna study.
    """

    architecture: dict[str, Any]
    training: dict[str, Any]
    cv_scores: dict[str, tuple[float, float]]
    test_scores: dict[str, float]
    model: nn.Module
    leaderboard: pd.DataFrame
    compression: CompressionResult
    out_dir: Path
    study: optuna.Study
    report: dict[str, Any] = field(default_factory=dict)

    def export(self, path: str | Path, int8: bool = False) -> Path:
        """Copy the verified ONNX model (fp32, or int8 with ``int8=True``) to ``path``."""
        source = self.compression.int8_path if int8 else self.compression.onnx_path
        assert source is not None
        return copy_file(source, path)

    def summary(self) -> str:
        """What ``autoarch search`` prints at the end: the winner, its CV and held-out scores, one line per
        compression stage and the run directory."""
        rep = self.report
        metric = rep["search"]["metric"]
        plain = Objective(metric).metric
        mean, std = self.cv_scores[plain]
        front = rep.get("front")
        lines = [f"Pareto front: {len(front['points'])} trials (pareto.csv); shipped trial {front['picked']}, "
                 f"{rep['best']['picked']}"] if front else []
        lines += [f"{'shipped' if front else 'best'}: {rep['best']['summary']}",
                 f"CV {plain}: {mean:.4f} ± {std:.4f}   held-out {plain}: {self.test_scores[plain]:.4f}"]
        pr = self.compression.pruning
        if self.compression.steps:  # a target pruned in steps (the compress option)
            lines.append(f"compression: {pr['stop_reason']}; kept step {pr['kept_step']} (target keep "
                         f"{pr['target']['keep']:g} of {pr['target']['kind']}: "
                         f"{'reached' if pr['target_reached'] else 'NOT reached'})")
        elif pr.get("check"):  # the one-shot pruning, checked on a held-back part
            lines.append(f"pruning: {pr['stop_reason']}")
        for row in self.compression.stages:
            lat = f"  b64 {row.latency_b64_ms:.2f} ms" if row.latency_b64_ms is not None else ""
            lines.append(f"  {row.stage:<20} {row.params:>9,} params  {row.bytes / 1024:>8.1f} KiB  "
                         f"{plain} {row.scores[plain]:.4f}{lat}")
        predicted = rep["best"].get("int8_cost_before_training")
        shipped = self.compression.stage("onnx int8")
        if predicted and shipped and shipped.latency_b1_ms is not None:
            lines.append(f"int8 before training: {predicted['int8_kb']:.1f} KB, {predicted['latency_b1_ms']:.4f} ms "
                         f"at batch 1; shipped: {shipped.bytes / 1024:.1f} KB, {shipped.latency_b1_ms:.4f} ms")
        lines.append(f"run directory: {self.out_dir}  (report.md, model.onnx, model.int8.onnx)")
        return "\n".join(lines)


def finish_run(study: optuna.Study, space: SearchSpace, dataset: Dataset, train: Dataset, test: Dataset,
            cfg: SearchConfig, metric: str, device: torch.device, out_dir: Path | None, search_seconds: float,
            job_deadline: float | None = None, progress: bool = False,
            objectives: tuple[Objective, ...] = (), trial: int | None = None) -> SearchResult:
    """Retrain, compress, export and report the winner: the best trial, or with several ``objectives`` the
    ``--pick`` point of the Pareto front, or trial number ``trial`` (``autoarch export``)."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        unmet = limits_unmet(trials, cfg)
        if unmet:
            raise LimitsUnmetError(unmet)
        raise SearchFailedError(no_trial_completed(trials, cfg))
    objectives = objectives or resolve_objectives(metric)
    compression = cfg.compression
    one_shot = compression.target[0] == "channels"
    finetune_epochs = cfg.finetune_budget
    front = front_trials(complete, objectives) if len(objectives) > 1 else []
    chosen, pick_note = None, None
    if trial is not None:
        chosen = next((t for t in complete if t.number == trial), None)
        if chosen is None:
            shown = ", ".join(str(t.number) for t in complete[:20]) + (", ..." if len(complete) > 20 else "")
            raise DataError(f"trial {trial} of the study did not complete; give one of the completed trials "
                            f"({shown})")
        pick_note = EXPORTED
    elif front:
        chosen, pick_note = pick_point(front, objectives, parse_pick(cfg.pick))
        logger.info("Pareto front: %d of %d completed trials; --pick %s: trial %d, %s", len(front), len(complete),
                    cfg.pick, chosen.number, pick_note)
    factor = cfg.finetune_factor  # the checked one-shot pruning may fine-tune twice, each on part of the split
    best, substitute = affordable_best(study, complete, len(train), finetune_epochs, job_deadline, out_dir,
                                        cfg.timeout, chosen=chosen, factor=factor)
    arch = dict(best.user_attrs["architecture"])
    tcfg = TrainConfig(**best.user_attrs["training"])
    epochs = retrain_epochs(best)
    per = epochs_per_sample_second(best, torch.get_num_threads())
    kept = None if out_dir is None else out_dir / KEEP_DIR / f"trial_{best.number}.pt"
    kept = kept if kept is not None and kept.is_file() else None
    retrained: dict[str, Any] = {"epochs": epochs, "samples": len(train)}
    if substitute:
        retrained["substituted"] = substitute
    model = None
    if job_deadline is not None and per is not None:
        fit_epochs = int((job_deadline - time.time() - finish_overhead(cfg.timeout)) / (per * len(train)))
        short = short_finetune(finetune_epochs, epochs) if finetune_epochs else 0
        # A holdout model is shipped when the retrain and a short fine-tune do not fit; a fold model (trained on
        # less: (k-1)/k of the split) only when the retrain alone does not, else the retrain is cut short.
        if kept is not None and (epochs + short * factor if isinstance(cfg.cv, float) else epochs) > fit_epochs:
            # No time to retrain: ship the model the trial trained (its holdout or last fold's fit part only).
            finetune_epochs = min(finetune_epochs, max(short, int(fit_epochs / factor))) if finetune_epochs else 0
            model = build_model(space, arch, train)
            model.load_state_dict(torch.load(kept, map_location="cpu", weights_only=True))
            model = model.eval()
            part = "holdout" if isinstance(cfg.cv, float) else "last fold's"
            retrained = {"epochs": 0, "samples": best.user_attrs.get("n_fit"),
                         "skipped": f"{epochs} retrain epochs did not fit in what is left of --timeout; the model "
                                    f"trial {best.number} trained on its {part} fit part is shipped"}
            logger.info("budget: %s", retrained["skipped"])
        elif epochs + finetune_epochs * factor > fit_epochs:
            planned = (epochs, finetune_epochs)
            finetune_epochs = (min(finetune_epochs, max(short, int((fit_epochs - epochs) / factor)))
                               if finetune_epochs else 0)
            epochs = max(1, min(epochs, fit_epochs - math.ceil(finetune_epochs * factor)))
            retrained["epochs"] = epochs
            logger.info("budget: %d retrain and %d fine-tune epochs fit in what is left of --timeout (planned %d "
                        "and %d)", epochs, finetune_epochs, *planned)
    if model is None:
        crash_point("retrain")
        logger.info("retraining trial %d on the whole training split (%d samples, %d epochs)", best.number,
                    len(train), epochs)
        with epoch_bar("retrain", epochs, progress) as on_epoch:
            model = retrain(space, arch, tcfg, train, epochs, seed=cfg.seed, device=device, on_epoch=on_epoch)
    test_scores = compute_metrics(test.task, test.y, predict(model, test.X), test.n_outputs)

    files_dir = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="autoarch-"))
    description = _describe(space, arch, dataset, metric)
    metadata = {"autoarch_version": __version__, "task": dataset.task, "classes": json.dumps(dataset.classes),
                "input_shape": json.dumps(list(dataset.input_shape)),
                # without a text model's token table: the metadata's 'text' has the kept vocabulary
                "architecture": json.dumps({k: v for k, v in description.items() if k != "text"}),
                "metric": metric}
    # Every output is staged and put in place at once (rundir.Generation): a kill while a finished run
    # directory is rewritten never leaves new files beside old ones unnoticed.
    gen = Generation(files_dir, writer="search")
    try:
        if one_shot:  # the budget may have shortened the fine-tune
            compression = replace(compression, finetune_epochs=max(1, finetune_epochs))
        pruned = one_shot and compression.target[1] < 1
        # early stopping then the fine-tune on the whole split: how many epochs is known only as it goes
        bar_total = None if compression.finetune_stop else compression.finetune_epochs
        with epoch_bar("fine-tune", bar_total if pruned else 0, progress and pruned) as on_epoch:
            comp = compress(model, train, test, gen.staging, train_config=tcfg, metric=metric, metadata=metadata,
                            config=compression, on_stage=_on_stage, on_epoch=on_epoch)
    except BaseException:
        gen.discard()
        raise
    description["pruning_history"] = comp.pruning_history
    shipped = comp.int8_path if comp.int8_path is not None else comp.onnx_path
    board = leaderboard(study, space, objectives)
    cv_scores = {k[3:-5]: (best.user_attrs[k], best.user_attrs[k[:-5] + "_std"])
                 for k in best.user_attrs if k.startswith("cv_") and k.endswith("_mean")}
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    record = RunReport(
        schema_version=SCHEMA_VERSION, autoarch_version=__version__,
        data=DataInfo(name=dataset.name, task=dataset.task, input_shape=list(dataset.input_shape),
                      n_samples=len(dataset), n_train=len(train), n_test=len(test), classes=dataset.classes,
                      # How `autoarch compress` reloads the data: a built-in name or an absolute file path.
                      source=(study.user_attrs.get("spec") or {}).get("data"),
                      encoding=TableEncoder(dataset.columns).describe() if dataset.columns else None),
        search=SearchInfo(space=space.name, controller=cfg.controller, metric=metric,
                          objectives=[o.to_dict() for o in objectives], cv=cfg.cv, validation=describe_cv(cfg.cv),
                          early_stop=cfg.early_stop, augment=cfg.augment, held_out=cfg.test,
                          trials_requested=None if cfg.until_timeout else cfg.trial_budget,
                          trial_states={k: v for k, v in counts.items() if v},
                          fidelity=_fidelity_counts(trials), search_samples=cfg.search_samples,
                          seconds_this_run=search_seconds, seed=cfg.seed, device=str(device)),
        best=BestTrial(trial=best.number, picked=pick_note, warm_start=best.user_attrs.get("warm_start"),
                       architecture=arch, summary=space.describe(arch), training=tcfg.to_dict(),
                       retrain_epochs=retrained["epochs"], retrain=retrained, retrain_schedule="cosine",
                       cv={k: list(v) for k, v in cv_scores.items()},
                       int8_cost_before_training=best.user_attrs.get("int8_cost")),
        front=front_report(front, objectives, space, cfg.pick if trial is None else f"autoarch export --trial {trial}",
                           best.number) if front else None,
        test=test_scores, test_detail=guarded_test_detail(test, shipped),
        compression=CompressionInfo(
            prune_ratio=round(1 - comp.pruning["target"]["keep"], 12) if one_shot else None,
            finetune_epochs=comp.pruning["finetune_epochs"], pruning=comp.pruning, steps=comp.steps or None,
            stages=comp.stages, verification=comp.verification),
        config={**asdict(cfg), "space": space_ref(space), "storage": redact(cfg.storage)},
    )
    report = record.to_dict()
    with gen:
        if out_dir is not None:
            from autoarch.html_report import render_html
            from autoarch.report import render_markdown

            gen.write_json("architecture.json", description)
            gen.save_state_dict("model.pt", comp.model)
            gen.save_state_dict("winner.pt", model)  # before pruning: what `autoarch compress` starts from
            gen.write_text("leaderboard.csv", board.to_csv(index=False))
            if front:
                numbers = [t.number for t in front]
                gen.write_text("pareto.csv", board[board["trial"].isin(numbers)].assign(
                    picked=lambda f: f["trial"] == best.number).to_csv(index=False))
            gen.write_json("report.json", report, default=_json_default)
            gen.write_text("report.md", render_markdown(record, board))
            try:
                page = render_html(record, study)
            except Exception as exc:  # a chart must never cost the run its outputs
                logger.warning("report.html was not written (%s: %s); `autoarch report %s` retries it",
                               type(exc).__name__, exc, out_dir)
            else:
                gen.write_text("report.html", page)
        gen.commit()
    comp.onnx_path = files_dir / "model.onnx"
    comp.int8_path = None if comp.int8_path is None else files_dir / comp.int8_path.name
    if out_dir is not None:
        shutil.rmtree(out_dir / KEEP_DIR, ignore_errors=True)  # the trial models served the finish only
    return SearchResult(architecture=arch, training=tcfg.to_dict(), cv_scores=cv_scores, test_scores=test_scores,
                        model=comp.model, leaderboard=board, compression=comp, out_dir=files_dir, study=study,
                        report=report)


EXPORTED = "asked for by autoarch export"
"""Why an exported trial was shipped (``report.json``'s ``best.picked``)."""


def front_report(front: list[optuna.trial.FrozenTrial], objectives: tuple[Objective, ...], space: SearchSpace,
                 pick: str, picked: int) -> dict[str, Any]:
    """The Pareto front in ``report.json``: every non-dominated trial's plain objective values (best first
    objective first), its architecture in words, and the point shipped and by which rule (``--pick``, or the
    ``autoarch export`` that asked for it)."""
    return {"objectives": [o.name for o in objectives], "pick": pick, "picked": picked,
            "points": [{"trial": t.number,
                        "values": {o.name: o.plain(v) for o, v in zip(objectives, t.values, strict=True)},
                        "summary": space.describe(t.user_attrs["architecture"])} for t in front]}


def open_run_study(run: Path, report: RunReport | None, storage: str | None = None) -> optuna.Study:
    """The study of run directory ``run`` (its SQLite file, or ``storage``), named as its ``report`` records.

    Raises:
        DataError: no such storage, or no such study in it.
    """
    study_name = (report.config if report is not None else {}).get("study_name", STUDY_NAME)
    backend = open_storage(run_storage_url(run, storage), must_exist=True, retry=False)
    try:
        return optuna.load_study(study_name=study_name, storage=backend)
    except KeyError:
        raise DataError(f"the storage holds no study named {study_name!r}; give the --storage the search "
                        "used.") from None


def rebuild_report(run_dir: str | os.PathLike[str], storage: str | None = None) -> Path:
    """Write ``report.html`` of a finished run again from its ``report.json`` and its study (the run directory's
    SQLite file, or ``storage`` for a study kept elsewhere), e.g. after more trials or with a newer autoarch.

    Raises:
        DataError: ``run_dir`` is not a finished run, or its study cannot be found.
    """
    from autoarch.html_report import render_html

    run = Path(run_dir)
    report = read_report(run)
    if report is None:
        raise DataError(f"{run} holds no finished run (no report.json); give the --out directory of a search that "
                        "finished.")
    study = open_run_study(run, report, storage)
    with Generation(run, writer="report") as gen:
        gen.write_text("report.html", render_html(report, study))
        gen.commit()
    return run / "report.html"


def _on_stage(stage: str) -> None:
    crash_point(stage)
    logger.info("compression: %s", stage)


def _fidelity_counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """How many trials ended after how many training epochs (all folds), e.g. ``{"1": 12, "3": 4, "20": 1}``."""
    counts: dict[int, int] = {}
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and "epochs_trained" in t.user_attrs:
            counts[int(t.user_attrs["epochs_trained"])] = counts.get(int(t.user_attrs["epochs_trained"]), 0) + 1
    return {str(k): counts[k] for k in sorted(counts)}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _describe(space: SearchSpace, arch: Mapping[str, Any], dataset: Dataset, metric: str) -> dict[str, Any]:
    """``architecture.json`` of the winner (its pruning history is added once compressed)."""
    spec = ArchitectureSpec(space=space_ref(space), architecture=dict(arch), input_shape=list(dataset.input_shape),
                            n_outputs=dataset.n_outputs, task=dataset.task, input_kind=dataset.input_kind,
                            classes=dataset.classes, feature_names=dataset.feature_names, metric=metric,
                            extra={"autoarch_version": __version__}, **table_schema(dataset),
                            **_text_schema(dataset, arch))
    return spec.to_dict()


def _text_schema(dataset: Dataset, arch: Mapping[str, Any]) -> dict[str, Any]:
    """``architecture.json``'s ``text`` entry (the token table, the vocabulary size and the length) for text."""
    if dataset.input_kind != "text" or dataset.tokens is None:
        return {}
    return {"text": {"table": list(dataset.tokens), "vocab_size": int(arch.get("vocab_size", 10000)),
                     "max_length": int(dataset.X.shape[1])}}


def load(run_dir: str | os.PathLike[str]) -> Model:
    """Rebuild the final model of a run directory from ``architecture.json`` and ``model.pt``
    (:func:`autoarch.runfiles.read_model`): the pruning history is replayed on the freshly built network before
    the weights (loaded with ``weights_only=True``) are put in; both files are checked against the run's
    ``manifest.json``, so that they come from one generation of the run's outputs.

    Raises:
        DataError: the directory lacks ``architecture.json`` or ``model.pt``, or they are not the files its
            manifest names (an interrupted write), or do not fit each other.
    """
    return read_model(run_dir, "model.pt")[0]
