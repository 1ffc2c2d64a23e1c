from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from autoarch.exceptions import ConfigError
from autoarch.metrics import check_metric, compute_metrics, objective_value


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    logits = rng.normal(size=(60, 3)) + np.eye(3)[y] * 1.5
    scores = compute_metrics("classification", y, logits, 3)
    pred = logits.argmax(1)
    assert scores["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert scores["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert scores["roc_auc"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))


def test_binary_roc_auc_and_missing_class() -> None:
    y = np.array([0, 1, 0, 1])
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.5, 0.0], [1.0, 0.0]])
    assert compute_metrics("classification", y, logits, 2)["roc_auc"] == pytest.approx(0.75)
    assert np.isnan(compute_metrics("classification", np.array([0, 0]), logits[:2], 2)["roc_auc"])


def test_regression_metrics_and_objective_sign() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    out = np.array([[1.5], [2.0], [2.0], [4.0]])
    scores = compute_metrics("regression", y, out)
    assert scores["mse"] == pytest.approx(skm.mean_squared_error(y, out[:, 0]))
    assert scores["rmse"] == pytest.approx(np.sqrt(scores["mse"]))
    assert scores["r2"] == pytest.approx(skm.r2_score(y, out[:, 0]))
    assert objective_value("neg_mae", scores) == pytest.approx(-scores["mae"])
    assert objective_value("r2", scores) == scores["r2"]


def test_metric_must_fit_the_task() -> None:
    check_metric("f1_macro", "classification")
    with pytest.raises(ConfigError, match="is a regression metric"):
        check_metric("neg_mse", "classification")
    with pytest.raises(ConfigError, match="Did you mean 'accuracy'"):
        check_metric("acuracy", "classification")
