"""Compress a search run directory on its own: ``autoarch compress RUN_DIR`` and :func:`compress_run`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from autoarch.compress.config import CompressConfig
from autoarch.compress.pipeline import CompressionResult, compress
from autoarch.compress.rows import Stage, stage_rows
from autoarch.compress.stages import state_bytes
from autoarch.data import Dataset, from_arrays, train_test_split
from autoarch.evaluate import retrain
from autoarch.exceptions import DataError
from autoarch.loaders import BUILTIN_DATASETS, load_dataset, load_test, official_test
from autoarch.metrics import compute_metrics, default_metric
from autoarch.model import Model
from autoarch.objectives import Objective
from autoarch.rundir import Generation
from autoarch.runfiles import ArchitectureSpec, read_model, read_report
from autoarch.runreport import RunReport, as_report
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, predict, resolve_device

__all__ = ["compress_run", "load_run_model", "reload_data", "render_markdown"]

logger = logging.getLogger(__name__)

OUT_SUBDIR = "compressed"


def load_run_model(run_dir: str | os.PathLike[str], start: str = "auto"
                   ) -> tuple[Model, ArchitectureSpec, str, list[Any]]:
    """Rebuild the model compression starts from: ``winner.pt`` (the unpruned winner; any earlier pruning
    history is ignored) or ``model.pt`` (with ``architecture.json``'s pruning history replayed), through
    :func:`autoarch.runfiles.read_model`.

    Args:
        start: ``winner``, ``model`` or ``auto`` (``winner.pt`` when present, else ``model.pt``).

    Returns:
        ``(model, architecture spec, weights file name, pruning history already applied)``.

    Raises:
        DataError: ``architecture.json`` or the weights file is missing or does not fit.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run directory {str(run)!r} does not exist; give the --out directory of a search.")
    if start not in ("auto", "winner", "model"):
        raise DataError(f"start must be auto, winner or model, but got {start!r}.")
    name = "winner.pt" if start == "winner" or (start == "auto" and (run / "winner.pt").is_file()) else "model.pt"
    model, spec = read_model(run, name, replay=name == "model.pt")
    return model, spec, name, [] if name == "winner.pt" else list(spec.pruning_history)


def reload_data(report: RunReport | Mapping[str, Any] | None, data: Any = None, y: Any = None,
                target: str | None = None) -> tuple[Dataset, Dataset]:
    """The training and held-out splits of a run, rebuilt from ``report.json`` (data source, ``seed``,
    ``test_size``, ``max_samples``, and the held-out part the search used: its split, the data's official test
    set or the ``--test`` file) or from ``data`` given again (a name, a .csv/.npz path, a Dataset or an
    array with ``y``).

    Raises:
        DataError: the data cannot be found again; pass it explicitly.
    """
    report = as_report(report) if report is not None else None
    info = report.data.to_dict() if report is not None else {}
    config = report.config if report is not None else {}
    seed, test_size, max_samples = int(config.get("seed", 0)), float(config.get("test_size", 0.2)), \
        config.get("max_samples")
    task = info.get("task")
    source = info.get("source") or {}
    if data is None:
        if source.get("source"):
            data, target = source["source"], target or source.get("target")
        elif info.get("name") in BUILTIN_DATASETS:
            data = info["name"]
        else:
            raise DataError(f"cannot reload the data of this run ({info.get('name', 'unknown')!r} is not a built-in "
                            "data set and report.json records no file); pass it with --data FILE [--target COL].")
    if isinstance(data, Dataset):
        dataset = data
    elif isinstance(data, (str, os.PathLike)):
        dataset = load_dataset(str(data), target=target, task=task, max_samples=max_samples, seed=seed,
                               text_column=config.get("text_column"), max_length=config.get("max_length"))
    else:
        if y is None:
            raise DataError("data given as an array needs its targets y as well.")
        dataset = from_arrays(data, y, task=task)
        if max_samples is not None and len(dataset) > max_samples:
            dataset, _ = train_test_split(dataset, test_size=1 - max_samples / len(dataset), seed=seed)
    held_out = config.get("test")
    if held_out == "official" and isinstance(data, (str, os.PathLike)):  # fashion-mnist's t10k, a .ts _TEST file
        official = official_test(str(data))
        if official is not None:
            return dataset, official
    elif held_out not in (None, "split", "official"):  # the search's --test FILE
        return dataset, load_test(str(held_out), dataset, target=target)
    return train_test_split(dataset, test_size, seed)


def _check_same_data(report: RunReport, model: nn.Module, train: Dataset, test: Dataset, metric: str,
                     compare_scores: bool) -> None:
    expected = (report.data.n_train, report.data.n_test)
    if expected != (len(train), len(test)):
        raise DataError(f"the reloaded data gives {len(train)} training / {len(test)} held-out samples, but the run "
                        f"had {expected[0]} / {expected[1]}; pass the data the search used with --data.")
    plain = Objective(metric).metric
    recorded = report.test.get(plain)
    if compare_scores and recorded is not None:
        again = compute_metrics(test.task, test.y, predict(model, test.X), test.n_outputs)[plain]
        if not np.isclose(again, recorded, rtol=1e-6, atol=1e-9):
            raise DataError(f"the winner scores {plain} {again:.6f} on the reloaded held-out split, but "
                            f"{recorded:.6f} in report.json: not the same data or split; pass the data the search "
                            "used with --data (and the same --seed/--test-size were used by the search).")


def _retrain(spec: ArchitectureSpec, train: Dataset, config: CompressConfig, train_config: TrainConfig,
             epochs: int) -> Model:
    """The winner's architecture trained from scratch on the part of ``train`` that is not validation data
    (the split :func:`~autoarch.compress.compress` makes: same ``val_size`` and seed)."""
    fit_data, _ = train_test_split(train, config.val_size, seed=config.seed)
    space = get_space(spec.space, train.input_kind)
    return retrain(space, spec.architecture, train_config, fit_data, epochs, seed=config.seed,
                   device=resolve_device(config.device))


def _check_out(out: Path) -> None:
    """Refuse, before any work, an ``--out`` that cannot become a directory: a file, or a path below a file."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise DataError(f"--out {str(out)!r}: {str(path)!r} is a file, not a directory; give a directory "
                                "path.")
            return


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def compress_run(
    run_dir: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    data: Any = None,
    y: Any = None,
    target: str | None = None,
    start: str = "auto",
    on_stage: Callable[[str], None] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    measure_memory: bool = True,
    **options: Any,
) -> CompressionResult:
    """Compress the winner of a search run directory on its own and write the result next to it.

    Starts from ``winner.pt`` + ``architecture.json`` (the unpruned winner; the search's own pruning is
    ignored), or from ``model.pt`` when there is no ``winner.pt``. The data is reloaded and split exactly as
    the search split it (checked: the winner must score what ``report.json`` says on the held-out split).
    Pruning decisions use data held back from the training split only; since the winner was trained on that
    part too, its architecture is first retrained without it (``retrain=True``, the search's training
    settings and epochs; ``retrain=False`` prunes ``winner.pt`` itself), and the kept step is fine-tuned on
    the whole training split at the end. The winner stays the reference row ``torch fp32 winner``.

    Args:
        run_dir: a search's ``--out`` directory (or any directory with ``architecture.json`` + weights).
        out: where to write (default ``RUN_DIR/compressed``): ``architecture.json`` (with the new pruning
            history), ``model.pt``, ``model.onnx``, ``model.int8.onnx``, ``compression.json``,
            ``compression.md``. ``autoarch.load(out)`` rebuilds the pruned model.
        data, y, target: the data, when ``report.json`` cannot locate it (arrays, moved files).
        start: ``auto``, ``winner`` or ``model`` (see :func:`load_run_model`).
        **options: the fields of :class:`CompressConfig` (``target_macs``, ``max_drop``, ``importance``,
            ``global_pruning``, ``steps``, ``finetune_epochs``, ...); ``seed`` defaults to the run's seed.

    Raises:
        DataError: missing or mismatched files or data. ConfigError: bad options.

    Example:
        >>> from autoarch.compress import compress_run
        >>> result = compress_run("runs/digits", target_macs=0.25, max_drop=0.5)  # doctest: +SKIP
        >>> result.stage("onnx int8").latency_b64_ms  # doctest: +SKIP
    """
    run = Path(run_dir)
    if out is not None:
        _check_out(Path(out))
    report = read_report(run)
    if "seed" not in options and report is not None and "seed" in report.config:
        options["seed"] = int(report.config["seed"])
    config = CompressConfig.from_options(**options)
    model, spec, weights, old_history = load_run_model(run, start)
    one_shot = config.target[0] == "channels"
    if report is None and data is None:
        raise DataError(f"{run} has no report.json to reload the data from; pass the data with --data "
                        "(split with the default seed and test size).")
    train, test = reload_data(report, data, y, target)
    metric = (report.search.metric if report is not None else None) or spec.metric or default_metric(train.task)
    if report is not None:
        _check_same_data(report, model, train, test, metric, compare_scores=weights == "winner.pt")
    training = report.best.training if report is not None else None
    train_config = TrainConfig(**training) if training else TrainConfig()
    winner, started_from = model, weights
    # one shot: not retrained (its check fine-tunes a fairer reference itself, only when it is needed)
    if config.retrain and weights == "winner.pt" and training and not one_shot:
        epochs = int((report.best.retrain_epochs if report is not None else None) or train_config.max_epochs)
        model = _retrain(spec, train, config, train_config, epochs)
        started_from = (f"winner.pt's architecture, retrained from scratch for {epochs} epochs on the training "
                        f"split minus the validation part (retrain=True)")
    out_dir = Path(out) if out is not None else run / OUT_SUBDIR
    description = {k: v for k, v in spec.to_dict().items() if k != "pruning_history"}
    metadata = {"autoarch_version": str(spec.extra.get("autoarch_version", "")),
                "architecture": json.dumps(description), "metric": metric}
    # The outputs are staged and put in place as one generation (autoarch.rundir): an interrupted rerun never
    # leaves a new model.onnx beside an old compression.json unnoticed.
    gen = Generation(out_dir, writer="compress")
    try:
        result = compress(model, train, test, gen.staging, config=config, train_config=train_config,
                          metric=metric, metadata=metadata, on_stage=on_stage, on_step=on_step,
                          measure_memory=measure_memory)
    except BaseException:
        gen.discard()
        raise
    if model is not winner:  # what the search delivered, for comparison
        result.stages.insert(0, replace(result.stages[0], stage="torch fp32 winner", bytes=state_bytes(winner),
                                        scores=compute_metrics(test.task, test.y, predict(winner, test.X),
                                                               test.n_outputs)))
    history = old_history + result.pruning_history
    result.pruning_history = history
    new_spec = replace(spec, pruning_history=history).to_dict()
    summary = {"run_dir": str(run), "started_from": started_from, "data": report.data.name if report else None,
               "n_fit": result.pruning["n_fit"], "n_val": result.pruning["n_val"], "n_test": len(test),
               "config": {f: getattr(config, f) for f in config.__dataclass_fields__}, "pruning": result.pruning,
               "steps": result.steps, "stages": [row.to_dict() for row in result.stages],
               "verification": result.verification,
               "files": ["architecture.json", "model.pt", "model.onnx"]
               + (["model.int8.onnx"] if result.int8_path else [])}
    with gen:
        gen.write_json("architecture.json", new_spec, default=_json_default)
        gen.save_state_dict("model.pt", result.model)
        gen.write_json("compression.json", summary, default=_json_default)
        gen.write_text("compression.md", render_markdown(summary))
        gen.commit()
    result.onnx_path = out_dir / "model.onnx"
    result.int8_path = None if result.int8_path is None else out_dir / result.int8_path.name
    return result


def _cell(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(summary: dict[str, Any]) -> str:
    """``compression.md``: the schedule step by step, every stage side by side, the checks and warnings."""
    pr = summary["pruning"]
    metric = pr["metric"]
    plain = Objective(metric).metric
    target = pr["target"]
    lines = [f"# autoarch compression: {summary.get('data') or summary['run_dir']}", "",
             f"- Started from {summary['started_from']} (run `{summary['run_dir']}`)."]
    if pr["max_drop"] is None:  # a channel target: one shot, no budget
        if pr.get("check"):
            lines += [f"- Target: keep {target['keep']:g} of every hidden layer's channels, in one shot, kept only "
                      f"within {pr['check']['max_drop']:g} {Objective(metric).drop_unit} of validation {metric} "
                      f"beyond the noise margin; validation: {pr['validation']}.",
                      f"- Importance `{pr['importance']}`, {pr['finetune_epochs']} fine-tuning epochs.",
                      f"- Outcome: {pr['stop_reason']}.", ""]
        else:
            lines += [f"- Target: keep {target['keep']:g} of every hidden layer's channels, in one shot (no accuracy "
                      f"budget; validation: {pr['validation']}).",
                      f"- Importance `{pr['importance']}`, {pr['finetune_epochs']} fine-tuning epochs on the whole "
                      f"training split.", f"- Outcome: {pr['stop_reason']}.", ""]
    else:
        lines += [
            f"- Target: keep {target['keep']:g} of the {target['kind']}; budget: at most {pr['max_drop']} "
            f"{pr['drop_unit']} of validation {metric} lost beyond the noise margin (the one-sided "
            f"{pr.get('confidence')} bound of a paired bootstrap of the drop); validation = {pr['validation']}.",
            f"- Importance `{pr['importance']}`, {pr['scope']} pruning, {pr['steps_planned']} planned steps, "
            f"{pr['finetune_epochs']} fine-tuning epochs per step"
            + (f"; final fine-tune of the kept step: {pr['final_finetune']}." if pr.get("final_finetune") else "."),
            f"- Outcome: {pr['stop_reason']}; kept step {pr['kept_step']} "
            f"(target {'reached' if pr['target_reached'] else 'NOT reached'}).", "", "## Pruning steps", "",
            f"Drops are measured against a reference: the unpruned model fine-tuned exactly like every pruned "
            f"step (validation {plain} {pr[f'val_{plain}_reference']:.4f}; the model as given scores "
            f"{pr[f'val_{plain}_input']:.4f} there, having been trained on that data). Step 0 shows the reference.",
            ""]
        lat = any("latency_b64_ms" in s for s in summary["steps"])
        header = ["step", "channel ratio", "params", "MACs"] + (["ORT b64 ms"] if lat else []) + \
            [f"val {plain}", "drop", "noise margin", "within budget", "seconds"]
        lines.append(_table(header, [[s["step"], s["channel_ratio"], s["params"], s["macs"]]
                                     + ([s.get("latency_b64_ms")] if lat else [])
                                     + [s[f"val_{plain}"], s["drop"], s.get("margin"), s["within_budget"],
                                        s["seconds"]] for s in summary["steps"]]))
    lines += ["", "## Stages (held-out split, reported only)", "",
              _table(["stage", "params", "MACs", "bytes", "b1 ms", "b64 ms", "peak MB", "checker", "opset",
                      "parity", f"held-out {plain}"],
                     [[r.stage, r.params, r.macs, r.bytes, r.latency_b1_ms, r.latency_b64_ms, r.peak_memory_mb,
                       r.checker, r.opset, _parity_cell(r), r.scores.get(plain)]
                      for r in stage_rows(summary["stages"])]),
              "", "Latency: ONNX Runtime, 1 thread, the least median of six rounds of at least 30 runs. Peak MB: "
              "growth of the resident memory of a fresh onnxruntime process loading the file and running batch 64.",
              ""]
    int8 = summary["verification"].get("onnx_int8")
    if int8:
        lines += [f"int8: **{int8['decision']['method']}** ({int8['method']}); {int8['decision']['reason']}.", ""]
    for text in summary["verification"].get("warnings", []):
        lines += [f"**Warning:** {text}", ""]
    lines += ["### Verification", "", "```json", json.dumps(summary["verification"], indent=2, default=str), "```",
              "", "Files: " + ", ".join(f"`{f}`" for f in summary["files"]) + "; `autoarch.load(DIR)` rebuilds the "
              "pruned torch model, `autoarch predict model.onnx INPUT` runs the ONNX file without torch.", ""]
    return "\n".join(lines)


def _parity_cell(row: Stage) -> str:
    if row.argmax_agreement_vs_torch is not None:
        return f"argmax {row.argmax_agreement_vs_torch:.4f}"
    if row.max_abs_diff_vs_torch is not None:
        return f"max diff {row.max_abs_diff_vs_torch:.1e}"
    return "-"
