from __future__ import annotations

import numpy as np

import autoarch.evaluate as ev
from autoarch.data import from_arrays
from autoarch.loaders import load_dataset
from autoarch.search_spaces import MLPSpace
from autoarch.trainer import TrainConfig

ARCH = {"n_layers": 1, "width_0": 16, "connectivity": "plain", "activation": "relu", "dropout": 0.0,
        "batch_norm": False}


def test_scaling_is_fitted_inside_each_fold_only(monkeypatch) -> None:
    # Unique first feature = sample id, so we can see which rows each standardiser was fitted on.
    rng = np.random.default_rng(0)
    X = np.column_stack([np.arange(90), rng.normal(size=90)]).astype(np.float32)
    data = from_arrays(X, np.arange(90) % 3, task="classification")
    seen: list[set[float]] = []
    original = ev.fit_standardizer

    def spy(X: np.ndarray):
        seen.append(set(X[:, 0].tolist()))
        return original(X)

    monkeypatch.setattr(ev, "fit_standardizer", spy)
    folds = list(ev.splitter("classification", 3, 0).split(data.X, data.y))
    ev.cross_validate(MLPSpace(), ARCH, TrainConfig(max_epochs=2), data, cv=3, seed=0)
    assert len(seen) == 3
    for fitted_on, (_, val_idx) in zip(seen, folds, strict=True):
        assert not fitted_on & set(data.X[val_idx, 0].tolist())


def test_cv_returns_every_metric_per_fold() -> None:
    data = load_dataset("iris")
    res = ev.cross_validate(MLPSpace(), ARCH, TrainConfig(max_epochs=3), data, cv=4, seed=0)
    assert len(res.fold_scores) == 4 and len(res.best_epochs) == 4
    assert set(res.mean()) == {"accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "roc_auc"}
    assert 0.0 <= res.mean()["accuracy"] <= 1.0 and res.std()["accuracy"] >= 0.0


def test_regression_cv_reports_errors_in_original_units() -> None:
    data = load_dataset("diabetes")
    res = ev.cross_validate(MLPSpace(), ARCH, TrainConfig(max_epochs=20, lr=0.01), data, cv=2, seed=0)
    mean = res.mean()
    assert set(mean) == {"mse", "rmse", "mae", "r2"}
    # A trivial predictor (the mean) has RMSE = std(y) ~ 77; a trained net does clearly better.
    assert mean["rmse"] < 0.95 * data.y.std()
