"""k-fold cross-validation of one candidate: splits from sklearn, metrics from sklearn.metrics.

Everything fitted from data (input standardisation, target scale, the early-stopping split) is fitted on the
training part of each fold only, so nothing of the validation fold leaks into training.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit, train_test_split
from torch import nn

from autoarch.data import Dataset
from autoarch.metrics import compute_metrics
from autoarch.model import Model, fit_standardizer, text_arch
from autoarch.search_spaces import SearchSpace
from autoarch.trainer import TrainConfig, fit, predict

__all__ = ["CVResult", "cross_validate", "build_model", "retrain", "EARLY_STOP_FRACTION", "n_folds", "describe_cv"]

EARLY_STOP_FRACTION = 0.1
"""Share of each fold's training part set aside to pick the early-stopping epoch."""


@dataclass
class CVResult:
    """Per-fold scores and best epochs of one candidate."""

    fold_scores: list[dict[str, float]] = field(default_factory=list)
    best_epochs: list[int] = field(default_factory=list)
    epochs_run: list[int] = field(default_factory=list)
    seconds: float = 0.0
    n_fit: int = 0
    """Samples each fold trained on (the last fold's)."""
    model: nn.Module | None = None
    stopped_at_deadline: bool = False

    def mean(self) -> dict[str, float]:
        return {k: float(np.nanmean([s[k] for s in self.fold_scores])) for k in self.fold_scores[0]}

    def std(self) -> dict[str, float]:
        return {k: float(np.nanstd([s[k] for s in self.fold_scores])) for k in self.fold_scores[0]}


def build_model(space: SearchSpace, arch: Mapping[str, Any], data: Dataset) -> Model:
    """The space's network wrapped with standardisation fitted on ``data`` (and, for a table with categories or
    missing cells, the :class:`~autoarch.tables.TableEncoder` fitted on it in front; for text, the
    :class:`~autoarch.model.TextEncoder` whose vocabulary is fitted on it, and no standardisation)."""
    encoder: Any = None
    X = data.X
    if data.input_kind == "text":
        from autoarch.model import TextEncoder

        if data.tokens is None:
            raise ValueError("a text Dataset needs its token table (Dataset.tokens)")
        encoder = TextEncoder(data.tokens, int(arch.get("vocab_size", 10000))).fit(data.X)
        net = space.build(text_arch(dict(arch), len(data.tokens)), tuple(int(d) for d in X.shape[1:]), data.n_outputs)
        width = X.shape[1]
        return Model(net, np.zeros(width, np.float32), np.ones(width, np.float32), encoder=encoder)
    if data.columns is not None:
        from autoarch.tables import TableEncoder

        encoder = TableEncoder(data.columns).fit(data.X)
        X = encoder.transform(data.X)
    net = space.build(arch, tuple(int(d) for d in X.shape[1:]), data.n_outputs)
    mean, std = fit_standardizer(X)
    if data.task == "regression":
        return Model(net, mean, std, float(data.y.mean()), float(data.y.std() or 1.0), encoder=encoder)
    return Model(net, mean, std, encoder=encoder)


def splitter(task: str, cv: int | float, seed: int) -> Any:
    """k-fold for an int ``cv`` (stratified for classification); one (stratified) holdout split that validates on
    a share ``cv`` of the data for a float ``cv`` in (0, 1)."""
    if isinstance(cv, float):
        holdout = StratifiedShuffleSplit if task == "classification" else ShuffleSplit
        return holdout(n_splits=1, test_size=cv, random_state=seed)
    cls = StratifiedKFold if task == "classification" else KFold
    return cls(n_splits=cv, shuffle=True, random_state=seed)


def n_folds(cv: int | float) -> int:
    return 1 if isinstance(cv, float) else int(cv)


def describe_cv(cv: int | float) -> str:
    return f"holdout {cv:.0%}" if isinstance(cv, float) else f"{cv}-fold"


def _strata(data: Dataset, idx: np.ndarray | None = None) -> np.ndarray | None:
    """The labels to stratify a split of ``data`` (rows ``idx``) by: classes, unless one has fewer than 2 rows."""
    if data.task != "classification":
        return None
    y = data.y if idx is None else data.y[idx]
    return None if np.bincount(y).min() < 2 else y


def subsample(data: Dataset, idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` of the indices ``idx`` of ``data``, drawn stratified by class for classification (seeded), in their
    original order."""
    kept, _ = train_test_split(idx, train_size=n, random_state=seed, stratify=_strata(data, idx))
    return np.sort(kept)


def early_stopping_split(data: Dataset, seed: int) -> tuple[Dataset, Dataset | None]:
    """Split off :data:`EARLY_STOP_FRACTION` of ``data`` for early stopping, when there is enough data."""
    n_val = int(round(EARLY_STOP_FRACTION * len(data)))
    n_classes = data.n_outputs if data.task == "classification" else 1
    if n_val < max(5, n_classes) or len(data) - n_val < max(10, 2 * n_classes):
        return data, None
    fit_idx, val_idx = train_test_split(np.arange(len(data)), test_size=n_val, random_state=seed,
                                        stratify=_strata(data))
    return data.subset(fit_idx), data.subset(val_idx)


def cross_validate(
    space: SearchSpace,
    arch: Mapping[str, Any],
    cfg: TrainConfig,
    data: Dataset,
    *,
    cv: int | float = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
    on_fold: Callable[[int, dict[str, float]], None] | None = None,
    deadline: float | None = None,
    on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    stop_at: float | None = None,
    monitor: str | None = None,
    max_fit: int | None = None,
) -> CVResult:
    """Score ``arch`` trained with ``cfg`` by ``cv``-fold (stratified, for classification) cross-validation, or
    on one holdout split when ``cv`` is a float share in (0, 1).

    ``on_fold(i, scores)`` is called after each fold; ``on_epoch(fold, epoch, record)`` after each epoch, where
    ``record`` holds ``train_loss`` and every metric as ``val_<name>`` on the fold's early-stopping part
    (training data, never the validation fold), and for classification ``val_majority``, the accuracy of
    predicting its most frequent class. The search reports to optuna's pruners there;
    either may raise ``optuna.TrialPruned``. ``deadline`` (``time.monotonic()``) bounds the whole
    cross-validation. ``stop_at`` is the trainer's soft deadline (the search passes it for holdout validation:
    a candidate still training then is scored with its best epoch so far, ``CVResult.stopped_at_deadline``).
    ``monitor`` (a metric to maximise, e.g. ``"accuracy"``) picks each fold's best epoch on its early-stopping
    part (:func:`~autoarch.trainer.fit`); with None, or without ``on_epoch``, the validation loss does.
    The space's :meth:`~autoarch.search_spaces.SearchSpace.augmentation` is applied to the training batches of
    each fold. ``CVResult.model`` is the last fold's trained model (the holdout model, for one split).
    ``max_fit`` (``--search-samples``) trains each fold on a stratified, seeded subset of at most that many samples
    of its training part (the early-stopping part is carved from the subset); the validation fold stays whole.
    """
    result = CVResult()
    start = time.perf_counter()
    augment = space.augmentation(arch)
    for i, (train_idx, val_idx) in enumerate(splitter(data.task, cv, seed).split(data.X, data.y)):
        if max_fit is not None and len(train_idx) > max_fit:
            train_idx = subsample(data, train_idx, max_fit, seed + i)
        train, val = data.subset(train_idx), data.subset(val_idx)
        fit_part, stop_part = early_stopping_split(train, seed + i)
        torch.manual_seed(seed + i)
        model = build_model(space, arch, fit_part)
        scorer = None
        if on_epoch is not None and stop_part is not None:
            y_stop = stop_part.y

            def scorer(out: np.ndarray, y_stop: np.ndarray = y_stop) -> dict[str, float]:
                scores = compute_metrics(data.task, y_stop, out, data.n_outputs)
                if data.task == "classification":  # the accuracy of always predicting the most frequent class
                    scores["majority"] = float(np.bincount(y_stop).max() / len(y_stop))
                return scores

        res = fit(model, fit_part.X, fit_part.y, data.task, cfg, seed=seed + i, device=device,
                  X_val=None if stop_part is None else stop_part.X, y_val=None if stop_part is None else stop_part.y,
                  deadline=deadline, augment=augment, val_scorer=scorer, stop_at=stop_at,
                  monitor=monitor if scorer is not None else None,
                  on_epoch=None if on_epoch is None else (lambda e, rec, i=i: on_epoch(i, e, rec)))
        scores = compute_metrics(data.task, val.y, predict(model, val.X, device=device), data.n_outputs)
        result.fold_scores.append(scores)
        result.best_epochs.append(res.best_epoch)
        result.epochs_run.append(res.epochs_run)
        result.n_fit = len(fit_part)
        result.model = model
        result.stopped_at_deadline = result.stopped_at_deadline or res.stopped_at_deadline
        if on_fold is not None:
            on_fold(i, scores)
    result.seconds = time.perf_counter() - start
    return result


def retrain(space: SearchSpace, arch: Mapping[str, Any], cfg: TrainConfig, data: Dataset, epochs: int, *,
            seed: int = 0, device: torch.device | str = "cpu",
            on_epoch: Callable[[int, dict[str, float]], None] | None = None) -> Model:
    """Train ``arch`` from scratch on all of ``data`` for ``epochs`` epochs (the final model of a search).

    There is no validation split to pick the best epoch, so the learning rate is annealed to zero (cosine) over
    the epochs whatever the candidate's schedule: with a constant rate the last epoch lands anywhere on a noisy
    trajectory (digits, 24 retrains of constant-rate winners: 92.8-99.7% held-out, mean 97.7%, at their constant
    rate; 98.3-100%, mean 99.3%, annealed; ``benchmarks/retrain_schedule.py``, BENCHMARKS.md).
    """
    torch.manual_seed(seed)
    model = build_model(space, arch, data)
    fit(model, data.X, data.y, data.task, replace(cfg, schedule="cosine"), seed=seed, device=device, epochs=epochs,
        augment=space.augmentation(arch), on_epoch=on_epoch)
    return model.cpu().eval()


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
