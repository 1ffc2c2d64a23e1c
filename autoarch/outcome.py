"""What a search has to say besides its model: why it ended with nothing to ship (:func:`no_trial_completed`,
:func:`limits_unmet`: one line naming the cause and the fix), and what the shipped ONNX model predicts on the
held-out split (:func:`test_detail`, the report's confusion matrix or residuals)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from autoarch.budget import n_done_of
from autoarch.config import SearchConfig
from autoarch.data import Dataset
from autoarch.trials import trial_costs

__all__ = ["no_trial_completed", "limits_unmet", "test_detail", "guarded_test_detail", "RESIDUAL_POINTS"]

logger = logging.getLogger(__name__)


def no_trial_completed(trials: list[optuna.trial.FrozenTrial], cfg: SearchConfig) -> str:
    """Why a search ended without a completed trial, and what to change (one line)."""
    trials = [t for t in trials if t.state != TrialState.WAITING]  # queued (warm starts, retries), never started
    reasons = [t.user_attrs["fail_reason"] for t in trials if t.user_attrs.get("fail_reason")]
    stopped = sum("stopped_reason" in t.user_attrs for t in trials)
    rejected = [t.user_attrs.get("pruned_reason", "") for t in trials if t.user_attrs.get("rejected")]
    pruned = sum(t.state == TrialState.PRUNED and not t.user_attrs.get("rejected") for t in trials)
    timeout = f"--timeout ({cfg.timeout:g} s)" if cfg.timeout is not None else "the deadline"
    if not trials:
        return (f"no trial started before {timeout} ran out; raise --timeout (the search needs at least one "
                "trial's training, and a reserve for the retrain and export).")
    if stopped and not reasons and not rejected:
        return f"no trial completed: {timeout} stopped {stopped} still training. Raise --timeout, or lower --epochs."
    parts = []
    timed_out = [r for r in reasons if "--trial-timeout" in r]
    if timed_out:
        parts.append(f"{len(timed_out)} ran past their time limit (--trial-timeout {cfg.trial_timeout:g} s): "
                     "raise it")
    if len(reasons) > len(timed_out):
        other = next(r for r in reasons if "--trial-timeout" not in r)
        parts.append(f"{len(reasons) - len(timed_out)} failed (the first: {other})")
    if rejected:
        flags = sorted({flag for r in rejected for flag in re.findall(r"--max-[a-z-]+", r)})
        limits = " / ".join(flags) if flags else "their estimated cost"
        parts.append(f"{len(rejected)} were rejected before training by {limits} (the first: {rejected[0]}): "
                     "loosen it")
    if pruned:
        parts.append(f"{pruned} were stopped early (--early-stop {cfg.early_stop}, chance level or divergence)")
    if stopped:
        parts.append(f"{stopped} were stopped still training by {timeout}")
    spent = not cfg.until_timeout and n_done_of(trials) >= cfg.trial_budget
    more = (f"; this study has used its --trials {cfg.trial_budget}: rerun with a higher --trials, or a new --out"
            if spent else "")
    return f"none of the {len(trials)} trials completed: " + "; ".join(parts) + more + "."


_LIMITS = {"--max-size-kb": ("int8_size", "int8 size", "KB"), "--max-latency-ms": ("latency", "int8 latency", "ms"),
           "--max-params": ("params", "parameters", ""), "--max-macs": ("macs", "MACs", "")}


def limits_unmet(trials: list[optuna.trial.FrozenTrial], cfg: SearchConfig) -> str | None:
    """When every trial that started was rejected before training by a --max-* limit, the line that says so with
    the smallest value seen of each limit named (None otherwise)."""
    started = [t for t in trials if t.state != TrialState.WAITING]
    reasons = [t.user_attrs.get("pruned_reason", "") for t in started]
    if not started or not all(t.user_attrs.get("rejected") and "--max-" in r for t, r in zip(started, reasons,
                                                                                            strict=True)):
        return None
    flags = [f for f in _LIMITS if any(f in r for r in reasons)]
    costs = [trial_costs(t.user_attrs, cfg.latency_batch) for t in started]
    seen = []
    for flag in flags:
        key, what, unit = _LIMITS[flag]
        values = [c[key] for c in costs if key in c]
        if values:
            smallest = min(values)
            shown = f"{smallest:.4g} {unit}".strip() if unit else f"{int(smallest):,}"
            seen.append(f"smallest {what} seen: {shown} ({flag} {getattr(cfg, flag[2:].replace('-', '_')):g})")
    return (f"no candidate meets {' / '.join(flags)}: all {len(started)} started were rejected before training"
            f"{' (' + '; '.join(seen) + ')' if seen else ''}. Loosen the limit, or search a space of smaller "
            "networks.")


RESIDUAL_POINTS = 2000
"""At most this many held-out (true, predicted) pairs are kept in ``report.json`` for the residual plot."""


def test_detail(test: Dataset, model_path: Path) -> dict[str, Any]:
    """What the shipped ONNX model predicts on the held-out split, for the report's charts: the confusion matrix and
    per-class precision, recall, F1 and support (classification), or a sample of (true, predicted) pairs."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from autoarch.compress.runtime import run_onnx, session

    out = run_onnx(session(model_path), test.X)
    detail: dict[str, Any] = {"model": model_path.name}
    if test.task == "classification":
        labels = list(range(test.n_outputs))
        pred = out.argmax(axis=1)
        precision, recall, f1, support = precision_recall_fscore_support(test.y, pred, labels=labels, zero_division=0)
        detail.update(labels=[str(c) for c in test.classes],
                      confusion_matrix=confusion_matrix(test.y, pred, labels=labels).tolist(),
                      per_class={str(c): {"precision": float(p), "recall": float(r), "f1": float(f),
                                          "support": int(n)}
                                 for c, p, r, f, n in zip(test.classes, precision, recall, f1, support, strict=True)})
    else:
        keep = np.random.default_rng(0).permutation(len(test))[:RESIDUAL_POINTS]
        detail.update(y_true=[float(v) for v in np.asarray(test.y, dtype=float)[keep]],
                      y_pred=[float(v) for v in out.reshape(len(test), -1)[keep, 0]])
    return detail


def guarded_test_detail(test: Dataset, shipped: Path | None) -> dict[str, Any] | None:
    """:func:`test_detail` of the shipped file, or None (logged) when it fails: a chart never costs a run."""
    if shipped is None:
        return None
    try:
        return test_detail(test, shipped)
    except Exception as exc:  # the report's charts must never cost the run its outputs
        logger.warning("the held-out confusion matrix / residuals were not computed (%s: %s)", type(exc).__name__, exc)
        return None
