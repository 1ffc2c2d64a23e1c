"""Scores of a fitted model, all from ``sklearn.metrics``.

Every metric is stored under its plain name (``mse`` is positive); the objective a search maximises is a
metric name, with ``neg_`` for errors (``neg_mse`` maximises ``-mse``), as in scikit-learn's scorers.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn import metrics as skm

from autoarch.config import OBJECTIVES as _OBJECTIVES
from autoarch.exceptions import ConfigError, did_you_mean
from autoarch.objectives import Objective

__all__ = ["CLASSIFICATION_METRICS", "REGRESSION_METRICS", "OBJECTIVES", "compute_metrics", "objective_value",
           "check_metric", "default_metric"]

CLASSIFICATION_METRICS = ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "roc_auc")
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
OBJECTIVES = _OBJECTIVES  # the names live in autoarch.config, which the CLI's parser reads without scikit-learn


def default_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "neg_rmse"


def check_metric(metric: str, task: str) -> None:
    """Raise a :class:`ConfigError` unless ``metric`` is an objective for ``task``."""
    if metric not in OBJECTIVES[task]:
        all_names = [m for names in OBJECTIVES.values() for m in names]
        hint = (f" ({metric!r} is a {'regression' if task == 'classification' else 'classification'} metric)"
                if metric in all_names else did_you_mean(metric, OBJECTIVES[task]))
        raise ConfigError(f"--metric for {task} must be one of {list(OBJECTIVES[task])}, but got {metric!r}.{hint}")


def objective_value(metric: str, scores: dict[str, float]) -> float:
    """The value to maximise: ``scores[metric]``, or ``-scores[name]`` for ``neg_name``."""
    return Objective(metric).value(scores)


def compute_metrics(task: str, y_true: np.ndarray, output: np.ndarray, n_classes: int = 0) -> dict[str, float]:
    """All metrics of ``task`` from the model's raw output (logits, or values for regression)."""
    if task == "regression":
        pred = output.reshape(-1).astype(np.float64)
        mse = skm.mean_squared_error(y_true, pred)
        return {"mse": float(mse), "rmse": math.sqrt(mse), "mae": float(skm.mean_absolute_error(y_true, pred)),
                "r2": float(skm.r2_score(y_true, pred)) if len(y_true) > 1 else float("nan")}
    logits = output.astype(np.float64)
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    labels = np.arange(n_classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision of a class never predicted counts as 0
        scores = {
            "accuracy": float(skm.accuracy_score(y_true, pred)),
            "precision_macro": float(skm.precision_score(y_true, pred, labels=labels, average="macro",
                                                         zero_division=0)),
            "recall_macro": float(skm.recall_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
            "f1_macro": float(skm.f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
            "f1_weighted": float(skm.f1_score(y_true, pred, labels=labels, average="weighted", zero_division=0)),
        }
    present = np.unique(y_true)
    if len(present) < 2 or len(present) < n_classes:
        scores["roc_auc"] = float("nan")  # undefined when the fold lacks a class
    elif n_classes == 2:
        scores["roc_auc"] = float(skm.roc_auc_score(y_true, proba[:, 1]))
    else:
        scores["roc_auc"] = float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    return scores
