"""``report.html``: the run as charts, one self-contained page (plotly, its JavaScript embedded; no server, no
network) built from the report dictionary and the study.

Charts: the search history (every trial, the best so far; stopped and failed trials marked; its first objective),
the Pareto front of a multi-objective search (every completed trial against the first two objectives), parameter
importances (optuna's evaluator), the fold spread of the top candidates, the compression stages, and the
held-out confusion matrix (classification) or residuals (regression). ``autoarch report RUN_DIR`` rebuilds it.
"""

from __future__ import annotations

import html
import json
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from autoarch.compress.rows import Stage
from autoarch.objectives import Objective
from autoarch.pareto import STOPPED_AT
from autoarch.runreport import RunReport, as_report

__all__ = ["render_html"]

logger = logging.getLogger(__name__)

_BEST, _DONE, _STOPPED, _FAILED = "#1f77b4", "#7fa7cf", "#ff7f0e", "#d62728"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _first(trial: Any) -> float | None:
    """The trial's first objective value when finite (``trial.value`` raises on a multi-objective study)."""
    values = trial.values
    return float(values[0]) if values and values[0] is not None and math.isfinite(values[0]) else None


def _score(trial: Any) -> tuple[float | None, str]:
    """The value a trial is drawn at and its kind: complete (its value), stopped (its last reported value; with
    several objectives, its first objective where Pareto early stopping stopped it)."""
    state = trial.state.name
    if state == "COMPLETE" and _first(trial) is not None:
        return _first(trial), "complete"
    value = None
    if trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    elif STOPPED_AT in trial.user_attrs:
        value = trial.user_attrs[STOPPED_AT]["values"][0]
    if value is not None and math.isfinite(value):
        return float(value), "stopped"
    return None, "failed" if state == "FAIL" else ("rejected" if trial.user_attrs.get("rejected") else "other")


def _history(trials: Sequence[Any], metric: str) -> Any:
    import plotly.graph_objects as go

    groups: dict[str, tuple[list[int], list[float], list[str]]] = {}
    drawn: list[float] = []
    for t in trials:
        value, kind = _score(t)
        reason = t.user_attrs.get("pruned_reason") or t.user_attrs.get("fail_reason") or t.user_attrs.get(
            "stopped_reason") or ""
        label = t.user_attrs.get("warm_start") or ""
        if value is not None:
            drawn.append(value)
        x, y, text = groups.setdefault(kind, ([], [], []))
        x.append(t.number)
        y.append(value if value is not None else math.nan)
        text.append(f"trial {t.number} {label} {reason}".strip())
    floor = min(drawn) if drawn else 0.0
    fig = go.Figure()
    styles = {"complete": ("complete", _DONE, "circle"),
              "stopped": ("stopped early (last reported score)", _STOPPED, "triangle-down"),
              "failed": ("failed (drawn at the lowest score)", _FAILED, "x"),
              "rejected": ("rejected before training (drawn at the lowest score)", "#999999", "line-ns-open")}
    for kind, (name, color, symbol) in styles.items():
        if kind not in groups:
            continue
        x, y, text = groups[kind]
        y = [floor if math.isnan(v) else v for v in y]
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=f"{name}: {len(x)}", text=text,
                                 hovertemplate="%{text}<br>%{y:.4f}<extra></extra>",
                                 marker={"color": color, "symbol": symbol, "size": 8}))
    done = sorted((t.number, _first(t)) for t in trials if t.state.name == "COMPLETE" and _first(t) is not None)
    if done:
        best, xs, ys = -math.inf, [], []
        for number, value in done:
            best = max(best, value)
            xs.append(number)
            ys.append(best)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="best so far", line={"color": _BEST, "shape": "hv"}))
    fig.update_layout(title="Search history", xaxis_title="trial", yaxis_title=metric)
    return fig


def _importances(study: Any) -> tuple[Any | None, str]:
    import optuna
    import plotly.graph_objects as go

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 3:
        return None, f"Parameter importances need at least 3 completed trials ({len(complete)} here)."
    target = None
    if len(study.directions) > 1:  # importances for the first objective; the evaluator's target is minimised
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        target = lambda t: sign * t.values[0]  # noqa: E731
    try:
        with warnings.catch_warnings():  # PED-ANOVA warns whenever a target is given: the sign above is right
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
            importances = optuna.importance.get_param_importances(study, target=target)
    except Exception as exc:  # optuna's evaluators raise several kinds on degenerate studies
        return None, f"Parameter importances could not be computed ({type(exc).__name__}: {exc})."
    if not importances:
        return None, "No parameter was shared by every completed trial, so no importance can be computed."
    names = list(importances)[::-1]
    fig = go.Figure(go.Bar(x=[importances[n] for n in names], y=names, orientation="h", marker_color=_BEST))
    fig.update_layout(title="Parameter importances (optuna's default evaluator, over the parameters every completed "
                            "trial has)",
                      xaxis_title="importance", height=max(300, 22 * len(names) + 120))
    return fig, ""


def _folds(trials: Sequence[Any], metric: str, plain: str) -> Any | None:
    import plotly.graph_objects as go

    complete = sorted((t for t in trials if t.state.name == "COMPLETE" and _first(t) is not None),
                      key=lambda t: -_first(t))[:10]
    if not complete:
        return None
    fig = go.Figure()
    for t in complete:
        name = f"trial {t.number}"
        folds = t.user_attrs.get("fold_scores")
        if folds:
            fig.add_trace(go.Box(y=folds, name=name, boxpoints="all", marker_color=_BEST, showlegend=False))
        else:
            mean, std = t.user_attrs.get(f"cv_{plain}_mean"), t.user_attrs.get(f"cv_{plain}_std") or 0.0
            fig.add_trace(go.Scatter(x=[name], y=[mean], mode="markers", marker_color=_BEST, showlegend=False,
                                     error_y={"type": "data", "array": [std]}))
    fig.update_layout(title="Validation scores of the top candidates, one point per fold", yaxis_title=metric)
    return fig


def _front(trials: Sequence[Any], front: Mapping[str, Any]) -> Any:
    """Every completed trial against the first two objectives (plain values), the front joined, the shipped
    point marked."""
    import plotly.graph_objects as go

    names = front["objectives"][:2]
    objectives = [Objective(n) for n in names]
    done = [t for t in trials if t.state.name == "COMPLETE" and t.values and all(map(math.isfinite, t.values))]
    on_front = {p["trial"] for p in front["points"]}
    fig = go.Figure()
    for label, members, color in (("dominated", [t for t in done if t.number not in on_front], _DONE),
                                  ("Pareto front", [t for t in done if t.number in on_front], _BEST)):
        members = sorted(members, key=lambda t: objectives[1].plain(t.values[1]))
        xs = [objectives[1].plain(t.values[1]) for t in members]
        fig.add_trace(go.Scatter(
            x=xs, y=[objectives[0].plain(t.values[0]) for t in members],
            mode="lines+markers" if label == "Pareto front" else "markers", name=f"{label}: {len(members)}",
            text=[f"trial {t.number}" for t in members], line={"shape": "hv"},
            hovertemplate="%{text}<br>" + names[1] + " %{x:.4g}<br>" + names[0] + " %{y:.4f}<extra></extra>",
            marker={"color": color, "size": 8}))
    picked = next((p for p in front["points"] if p["trial"] == front["picked"]), None)
    if picked is not None:
        fig.add_trace(go.Scatter(x=[picked["values"][names[1]]], y=[picked["values"][names[0]]], mode="markers",
                                 name=f"shipped: trial {picked['trial']} ("
                                      + (front["pick"] if front["pick"].startswith("autoarch export")
                                         else f"--pick {front['pick']}") + ")",
                                 marker={"color": _STOPPED, "size": 16, "symbol": "star"}))
    unit = objectives[1].unit
    fig.update_layout(title=f"Pareto front: {names[0]} against {names[1]} (before training for a cost)",
                      xaxis_title=f"{names[1]} ({unit})" if unit else names[1], yaxis_title=names[0])
    return fig


def _stages(stages: Sequence[Stage], plain: str) -> Any | None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    if not stages:
        return None
    names = [s.stage for s in stages]
    panels = [("size (KiB)", [s.bytes / 1024 for s in stages]),
              ("latency batch 1 (ms)", [s.latency_b1_ms for s in stages]),
              ("latency batch 64 (ms)", [s.latency_b64_ms for s in stages]),
              (f"held-out {plain}", [s.scores.get(plain) for s in stages])]
    fig = make_subplots(rows=1, cols=4, subplot_titles=[p[0] for p in panels])
    for i, (_, values) in enumerate(panels, 1):
        fig.add_trace(go.Bar(x=names, y=values, marker_color=_BEST, showlegend=False), row=1, col=i)
    fig.update_layout(title="Compression stages (ONNX Runtime, 1 thread)", height=420)
    return fig


def _confusion(detail: Mapping[str, Any]) -> Any:
    import plotly.graph_objects as go

    labels = [str(c) for c in detail["labels"]]
    matrix = detail["confusion_matrix"]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(title=f"Held-out confusion matrix ({detail['model']})", xaxis_title="predicted",
                      yaxis_title="true", yaxis_autorange="reversed", height=max(400, 40 * len(labels) + 150))
    return fig


def _residuals(detail: Mapping[str, Any]) -> Any:
    import plotly.graph_objects as go

    y, pred = detail["y_true"], detail["y_pred"]
    fig = go.Figure(go.Scatter(x=pred, y=[a - b for a, b in zip(y, pred, strict=True)], mode="markers",
                               marker={"color": _BEST, "size": 5}))
    fig.add_hline(y=0.0, line_color="#444444")
    fig.update_layout(title=f"Held-out residuals ({detail['model']}; true - predicted)", xaxis_title="predicted",
                      yaxis_title="residual")
    return fig


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f2f2f2; }
.chart { margin: 1em 0 2em; }
.note { color: #666; font-style: italic; }
"""


def render_html(report: RunReport | Mapping[str, Any], study: Any) -> str:
    """The whole page for a run's ``report`` (``report.json``) and its optuna ``study``."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    report = as_report(report)
    data, srch, best, comp = report.data, report.search, report.best, report.compression
    metric = srch.metric
    plain = Objective(metric).metric
    trials = study.get_trials(deepcopy=False)
    parts: list[str] = []
    charts = 0

    def chart(fig: Any) -> None:
        nonlocal charts
        charts += 1
        parts.append(f'<div class="chart">{pio.to_html(fig, full_html=False, include_plotlyjs=False)}</div>')

    states = ", ".join(f"{n} {k.lower()}" for k, n in srch.trial_states.items())
    parts.append(f"<h1>autoarch report: {_esc(data.name)}</h1>")
    parts.append(f"<p>{_esc(data.task)}, input shape {_esc(tuple(data.input_shape))}, {data.n_train:,} "
                 f"samples for the search, {data.n_test:,} held out. Space <code>{_esc(srch.space)}</code>, "
                 f"controller <code>{_esc(srch.controller)}</code>, objective <code>{_esc(metric)}</code> by "
                 f"{_esc(srch.validation or srch.cv)} validation; {_esc(srch.trials_text)} "
                 f"({_esc(states)}), {srch.seconds_this_run:.0f} s.</p>")
    parts.append("<h2>Search</h2>")
    chart(_history(trials, metric))
    if report.front:
        chart(_front(trials, report.front))
    fig, note = _importances(study)
    if fig is not None:
        chart(fig)
    else:
        parts.append(f'<p class="note">{_esc(note)}</p>')
    folds = _folds(trials, metric, plain)
    if folds is not None:
        chart(folds)
    parts.append("<h2>Winner</h2>")
    warm = f" (warm start {_esc(best.warm_start)})" if best.warm_start else ""
    parts.append(f"<p>Trial {best.trial}{warm}: <b>{_esc(best.summary)}</b></p>")
    if best.retrain.get("substituted"):
        parts.append(f'<p class="note">Not the best trial: {_esc(best.retrain["substituted"])}.</p>')
    parts.append(_table(["parameter", "value"], [[k, v] for k, v in {**best.architecture, **best.training}.items()]))
    parts.append(_table(["metric", "validation mean ± std", "held-out (before compression)"],
                        [[k, f"{_fmt(m)} ± {_fmt(s)}", _fmt(report.test.get(k))] for k, (m, s) in best.cv.items()]))
    parts.append("<h2>Compression</h2>")
    rows = comp.stages
    stages = _stages(rows, plain)
    if stages is not None:
        chart(stages)
    parts.append(_table(["stage", "params", "MACs", "bytes", "latency b1 (ms)", "latency b64 (ms)",
                         f"held-out {plain}"],
                        [[s.stage, _fmt(s.params), _fmt(s.macs), _fmt(s.bytes), _fmt(s.latency_b1_ms, 3),
                          _fmt(s.latency_b64_ms, 3), _fmt(s.scores.get(plain))] for s in rows]))
    detail = report.test_detail
    if detail:
        parts.append("<h2>Held-out predictions</h2>")
        if "confusion_matrix" in detail:
            chart(_confusion(detail))
            per = detail.get("per_class") or {}
            parts.append(_table(["class", "precision", "recall", "f1", "support"],
                                [[c, _fmt(v["precision"]), _fmt(v["recall"]), _fmt(v["f1"]), v["support"]]
                                 for c, v in per.items()]))
        elif "y_true" in detail:
            chart(_residuals(detail))
    head = (f"<meta charset='utf-8'><title>autoarch report: {_esc(data.name)}</title><style>{_STYLE}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script>")
    logger.debug("report.html: %d charts", charts)
    body = "\n".join(parts)
    return f"<!DOCTYPE html>\n<html><head>{head}</head><body>\n{body}\n" \
           f"<script type='application/json' id='autoarch-charts'>{json.dumps(charts)}</script></body></html>\n"
