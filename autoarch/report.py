"""A readable ``report.md`` from the report dictionary of a run."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from autoarch.objectives import Objective
from autoarch.runreport import CompressionInfo, RunReport, as_report

__all__ = ["render_markdown"]


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1024:.1f} KiB" if n_bytes < 1024 ** 2 else f"{n_bytes / 1024 ** 2:.2f} MiB"


def _front_section(report: RunReport) -> list[str]:
    """The Pareto front of a multi-objective search (none for one objective)."""
    front = report.front
    if not front:
        return []
    names = front["objectives"]
    header = ["trial", *[f"{n} ({Objective(n).unit})" if Objective(n).unit else n for n in names], "architecture",
              "shipped"]
    def cell(name: str, value: float) -> str:
        return f"{int(value):,}" if name in ("params", "macs") else _num(value, 4)

    rows = [[p["trial"], *[cell(n, p["values"][n]) for n in names], p["summary"],
             "yes" if p["trial"] == front["picked"] else ""] for p in front["points"]]
    shipped = (f"`{front['pick']}` shipped trial {front['picked']};" if front["pick"].startswith("autoarch export")
               else f"`--pick {front['pick']}` chose trial {front['picked']};")
    return ["## Pareto front", "",
            f"{len(rows)} non-dominated trials (objectives {', '.join(names)}; costs measured before training, on "
            f"the untrained candidate exported and quantized to int8). {shipped} "
            "`autoarch export RUN_DIR --trial N` ships any other point. Also in `pareto.csv`.",
            "", _table(header, rows), ""]


def _compression_line(comp: CompressionInfo) -> str:
    """What pruning did: a one-shot channel ratio (the search's ``--prune``; every report before the ``compress``
    option), or a target pruned in steps within a budget."""
    pr = comp.pruning or {}
    timing = ("ONNX Runtime latency is on 1 thread, the least median of six rounds of at least 30 runs "
              "(in a fresh process).")
    if pr.get("max_drop") is None:
        checked = (f" {pr['stop_reason'][:1].upper()}{pr['stop_reason'][1:]} (validation: {pr['validation']})."
                   if pr.get("check") or pr.get("finetune_stop") else "")
        return (f"Structural pruning ratio {comp.prune_ratio} (share of channels/units removed from every hidden "
                f"layer), {comp.finetune_epochs} fine-tuning epochs.{checked} {timing}")
    target = pr["target"]
    return (f"Pruned toward keeping {target['keep']:g} of the {target['kind']} in up to {pr['steps_planned']} steps "
            f"({pr['finetune_epochs']} fine-tuning epochs each), within {pr['max_drop']} {pr['drop_unit']} of "
            f"validation {pr['metric']} beyond the noise margin; validation: {pr['validation']}. "
            f"{pr['stop_reason'][:1].upper()}{pr['stop_reason'][1:]}; kept step {pr['kept_step']} (target "
            f"{'reached' if pr['target_reached'] else 'NOT reached'}). {timing}")


def render_markdown(report: RunReport | dict[str, Any], board: pd.DataFrame) -> str:
    """``report.md``: the run, its best architecture and scores, the compression stages, the leaderboard."""
    report = as_report(report)
    data, srch, best, comp = report.data, report.search, report.best, report.compression
    metric = srch.metric
    plain = Objective(metric).metric
    states = ", ".join(f"{n} {k.lower()}" for k, n in srch.trial_states.items())
    out = [
        f"# autoarch report: {data.name}",
        "",
        f"- Task: {data.task}, input shape {tuple(data.input_shape)}, {data.n_samples} samples "
        f"({data.n_train} for the search, {data.n_test} held out and never seen by it)",
        *([f"- Table encoding (inside the model, fitted on each fold's training rows): {data.encoding}"]
          if data.encoding else []),
        f"- Search: space `{srch.space}`, controller `{srch.controller}`, objective `{metric}` by "
        f"{srch.validation or str(srch.cv) + '-fold'} validation, {srch.trials_text} "
        f"({states}), "
        f"{srch.seconds_this_run:.0f} s in this run, seed {srch.seed}, device {srch.device}",
        *([f"- Multi-fidelity over data: during the search each candidate trained on at most "
           f"{srch.search_samples:,} samples of its fold's training part (--search-samples); the winner was "
           f"retrained on the whole training split"] if srch.search_samples else []),
        "",
        *_front_section(report),
        "## Best architecture",
        "",
        f"Trial {best.trial}: **{best.summary}**" + (f": {best.picked}" if best.picked else ""),
        "",
        _table(["parameter", "value"], [[k, v] for k, v in {**best.architecture, **best.training}.items()]),
        "",
        (f"Not retrained: {best.retrain['skipped']} ({best.retrain['samples']} samples)."
         if best.retrain.get("skipped") else
         f"Retrained on the whole training split for {best.retrain_epochs} epochs (the median early-stopping "
         "epoch of its folds), the learning rate annealed to zero (cosine) over them."),
        *(["", f"Not the best trial: {best.retrain['substituted']}."] if best.retrain.get("substituted") else []),
        "",
        "## Scores",
        "",
        _table(["metric", f"CV mean ± std ({srch.validation or str(srch.cv) + '-fold'})",
                "held-out (winner before compression)"],
               [[k, f"{_num(m)} ± {_num(s)}", _num(report.test.get(k))] for k, (m, s) in best.cv.items()]),
        "",
        "## Compression",
        "",
        _compression_line(comp),
        "",
        _table(["stage", "params", "MACs", "size", "latency b1 (ms)", "latency b64 (ms)", f"held-out {plain}"],
               [[r.stage, _num(r.params), _num(r.macs), _size(r.bytes),
                 _num(r.latency_b1_ms, 3), _num(r.latency_b64_ms, 3), _num(r.scores.get(plain))]
                for r in comp.stages]),
        "",
        "### Verification",
        "",
        "```json",
        json.dumps(comp.verification, indent=2),
        "```",
    ]
    if not comp.verification.get("int8_faster_than_fp32_b64", True):
        out += ["", "**Warning:** the int8 model is not faster than the fp32 model at batch 64 on this machine."]
    top = board.head(10)
    if not top.empty:
        value_col = f"cv_{plain}_mean"
        out += ["", "## Leaderboard (top 10)", "",
                _table(["trial", "state", metric, f"CV {plain}", "params", "seconds", "architecture"],
                       [[r["trial"], r["state"], _num(r["value"]), _num(r.get(value_col)), _num(r["params"]),
                         _num(r["seconds"], 1), r["architecture"]] for _, r in top.iterrows()])]
    failed = board[board["state"] == "FAIL"] if not board.empty else board
    if not failed.empty:
        out += ["", "## Failed trials", "",
                _table(["trial", "reason"], [[r["trial"], r["reason"]] for _, r in failed.iterrows()])]
    out += ["", "Files: `architecture.json`, `model.pt` (final state_dict; `autoarch.load(DIR)`), `winner.pt` "
            "(before pruning), `model.onnx`, `model.int8.onnx`, `leaderboard.csv`, `report.json`, `study.db` "
            "(optuna).", ""]
    return "\n".join(out)
