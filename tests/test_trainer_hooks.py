from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from autoarch.trainer import TrainConfig, fit, predict


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 3)).astype(np.float32) + y[:, None]
    return X, y


class _Recorder:
    """An augment callable that records each call and returns its input."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
        self.shapes.append(tuple(x.shape))
        return x


def _expected_batches(n: int, batch_size: int) -> list[int]:
    sizes = [min(batch_size, n - start) for start in range(0, n, batch_size)]
    return [s for s in sizes if s >= 2 or n == 1]


@pytest.mark.parametrize(("n", "batch_size"), [(10, 4), (9, 4), (8, 4), (5, 8), (1, 4)])
def test_augment_is_called_once_per_training_batch(n: int, batch_size: int) -> None:
    X, y = _data(n)
    aug = _Recorder()
    cfg = TrainConfig(batch_size=batch_size, schedule="constant")
    res = fit(nn.Linear(3, 2), X, y, "classification", cfg, epochs=3, augment=aug)
    per_epoch = _expected_batches(n, batch_size)
    assert res.epochs_run == 3
    assert len(aug.shapes) == 3 * len(per_epoch)
    assert sorted(aug.shapes) == sorted([(s, 3) for s in per_epoch] * 3)
    assert len(per_epoch) == (math.ceil(n / batch_size) - (n % batch_size == 1 and n > 1))


def test_augment_never_sees_validation_or_prediction_batches() -> None:
    X, y = _data(12)
    Xv, yv = _data(7, seed=1)
    aug = _Recorder()
    cfg = TrainConfig(batch_size=5, patience=100)
    model = nn.Linear(3, 2)
    res = fit(model, X, y, "classification", cfg, epochs=4, X_val=Xv, y_val=yv, augment=aug)
    assert res.epochs_run == 4
    assert len(aug.shapes) == 4 * 3  # batches of 5, 5, 2 per epoch; no validation batch of 7
    assert (7, 3) not in aug.shapes
    predict(model, Xv)
    assert len(aug.shapes) == 12


def test_the_augmented_batch_is_what_the_model_trains_on() -> None:
    """Zeroed inputs give zero weight gradients: with Adam and no decay, only the bias moves."""
    X, y = _data(16)
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    w0, b0 = model.weight.detach().clone(), model.bias.detach().clone()
    cfg = TrainConfig(optimizer="adam", lr=0.05, weight_decay=0.0, l1=0.0, batch_size=4)
    fit(model, X, y, "classification", cfg, epochs=2, augment=torch.zeros_like)
    torch.testing.assert_close(model.weight.detach(), w0, rtol=0, atol=0)
    assert not torch.allclose(model.bias.detach(), b0)
    # without the augmentation, the same training moves the weights
    torch.manual_seed(0)
    plain = nn.Linear(3, 2)
    fit(plain, X, y, "classification", cfg, epochs=2)
    assert not torch.allclose(plain.weight.detach(), w0)


def test_val_scorer_metrics_are_recorded_each_epoch_and_seen_by_on_epoch() -> None:
    X, y = _data(20)
    Xv, yv = _data(6, seed=2)
    received: list[np.ndarray] = []
    seen: list[tuple[int, dict]] = []
    mismatch: list[int] = []
    model = nn.Linear(3, 2)

    def scorer(logits: np.ndarray) -> dict[str, float]:
        received.append(logits.copy())
        return {"acc": float((logits.argmax(1) == yv).mean()), "calls": np.int64(len(received))}

    def on_epoch(epoch: int, record: dict) -> None:
        seen.append((epoch, dict(record)))
        # the scorer saw this epoch's validation logits of the model being trained
        if not np.allclose(received[-1], predict(model, Xv), atol=1e-6):
            mismatch.append(epoch)

    cfg = TrainConfig(lr=0.05, batch_size=8, patience=100)
    res = fit(model, X, y, "classification", cfg, epochs=3, X_val=Xv, y_val=yv, val_scorer=scorer,
              on_epoch=on_epoch)
    assert len(received) == 3
    for logits in received:
        assert logits.shape == (6, 2) and logits.dtype == np.float32
    assert not mismatch
    assert [r["epoch"] for r in res.history] == [1, 2, 3]
    for i, record in enumerate(res.history):
        assert set(record) == {"epoch", "train_loss", "val_loss", "val_acc", "val_calls"}
        assert record["val_calls"] == i + 1 and type(record["val_calls"]) is float
        assert record["val_acc"] == pytest.approx(float((received[i].argmax(1) == yv).mean()))
    assert [e for e, _ in seen] == [1, 2, 3]
    assert [r for _, r in seen] == res.history


def test_without_validation_data_no_val_keys_and_no_scorer_calls() -> None:
    X, y = _data(12)
    calls: list[int] = []
    records: list[dict] = []

    def scorer(logits: np.ndarray) -> dict[str, float]:
        calls.append(1)
        return {"acc": 1.0}

    res = fit(nn.Linear(3, 2), X, y, "classification", TrainConfig(batch_size=4), epochs=2, val_scorer=scorer,
              on_epoch=lambda e, r: records.append(dict(r)))
    assert not calls
    assert len(res.history) == 2
    for record in res.history + records:
        assert not [k for k in record if k.startswith("val_")]


def test_val_scorer_for_regression_gets_the_model_output() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 3)).astype(np.float32)
    y = X.sum(1).astype(np.float32)
    got: list[tuple[int, ...]] = []

    def scorer(out: np.ndarray) -> dict[str, float]:
        got.append(out.shape)
        return {"mae": float(np.abs(out.reshape(-1) - y[:5]).mean())}

    res = fit(nn.Linear(3, 1), X, y, "regression", TrainConfig(batch_size=8, patience=100), epochs=2,
              X_val=X[:5], y_val=y[:5], val_scorer=scorer)
    assert got == [(5, 1), (5, 1)]
    assert all(r["val_mae"] >= 0 for r in res.history)


def test_stop_at_ends_training_with_the_best_validated_epoch() -> None:
    import time

    from autoarch.exceptions import TimeLimitError

    torch.manual_seed(0)
    X, y = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32), np.arange(64) % 2
    stop_at = time.monotonic() + 0.3

    def slow(epoch: int, record: dict) -> None:
        time.sleep(0.4)  # epoch 1 ends after the soft deadline

    res = fit(nn.Linear(4, 2), X, y, "classification", TrainConfig(max_epochs=5, patience=5), X_val=X[:16],
              y_val=y[:16], on_epoch=slow, stop_at=stop_at)
    assert res.stopped_at_deadline and res.epochs_run == 1 and res.best_epoch == 1
    with pytest.raises(TimeLimitError):  # nothing validated yet: no model to score
        fit(nn.Linear(4, 2), X, y, "classification", TrainConfig(max_epochs=5), X_val=X[:16], y_val=y[:16],
            stop_at=time.monotonic() - 1)


class _Scripted:
    """A val_scorer whose accuracy follows a script, one value per epoch, whatever the model does."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls = 0

    def __call__(self, out: np.ndarray) -> dict[str, float]:
        self.calls += 1
        return {"accuracy": self.scores[self.calls - 1]}


def _run(monitor: str | None, scores: list[float], patience: int = 2) -> tuple[object, list[dict], nn.Module]:
    torch.manual_seed(0)
    X, y = _data(64)
    model = nn.Linear(3, 2)
    states: list[dict] = []
    res = fit(model, X, y, "classification", TrainConfig(max_epochs=len(scores), patience=patience, lr=0.05),
              X_val=X[:32], y_val=y[:32], val_scorer=_Scripted(scores), monitor=monitor,
              on_epoch=lambda e, r: states.append({k: v.clone() for k, v in model.state_dict().items()}))
    return res, states, model


def test_monitor_keeps_the_epoch_of_the_best_metric_not_of_the_lowest_loss() -> None:
    scores = [0.50, 0.90, 0.70, 0.60, 0.65, 0.95]
    res, states, model = _run("accuracy", scores)
    # epoch 2 is the best score; epochs 3 and 4 are worse, so patience 2 stops after epoch 4
    assert res.best_epoch == 2 and res.epochs_run == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, states[1][key]), key
    # following the loss alone, this learnable problem's loss keeps falling: a later epoch is kept
    by_loss, _, _ = _run(None, scores, patience=6)
    assert by_loss.best_epoch > 2


def test_monitor_ties_are_broken_by_the_validation_loss() -> None:
    flat = [1.0] * 6  # a saturated metric (every early-stopping image right) must not freeze the best epoch
    res, _, _ = _run("accuracy", flat, patience=6)
    by_loss, _, _ = _run(None, flat, patience=6)
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == by_loss.best_epoch == 1 + int(np.argmin(losses))
    assert res.best_epoch > 1


def test_fit_trains_images_in_channels_last_and_returns_the_default_layout() -> None:
    torch.manual_seed(0)
    X = np.random.default_rng(0).uniform(0, 255, size=(16, 3, 8, 8)).astype(np.float32)
    y = np.arange(16) % 2
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    seen: list[bool] = []
    net[0].register_forward_pre_hook(
        lambda m, inp: seen.append(m.training and inp[0].is_contiguous(memory_format=torch.channels_last)))
    fit(net, X, y, "classification", TrainConfig(max_epochs=1, batch_size=8))
    assert seen and all(seen)  # every training batch in NHWC
    assert net[0].weight.is_contiguous()  # the returned model is in the default layout (pruning, export)
