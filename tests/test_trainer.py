from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from autoarch.exceptions import ConfigError, TrainingError
from autoarch.trainer import TrainConfig, fit, predict, resolve_device


def _blobs(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 4)).astype(np.float32) + y[:, None] * 2.0
    return X, y


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_every_optimizer_learns(optimizer: str) -> None:
    X, y = _blobs()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    cfg = TrainConfig(optimizer=optimizer, lr=0.01, momentum=0.9, batch_size=32, l1=1e-5)
    fit(model, X, y, "classification", cfg, epochs=10)
    assert (predict(model, X).argmax(1) == y).mean() > 0.9


def test_nan_loss_is_a_training_error() -> None:
    X, y = _blobs()
    X[0, 0] = np.nan
    with pytest.raises(TrainingError, match="lower learning rate"):
        fit(nn.Linear(4, 2), X, y, "classification", TrainConfig(batch_size=256), epochs=1)


def test_early_stopping_keeps_the_best_epoch() -> None:
    X, y = _blobs(seed=1)
    Xv, yv = _blobs(60, seed=2)
    yv = 1 - yv  # validation loss rises as the model learns: the best epoch is the first
    model = nn.Linear(4, 2)
    res = fit(model, X, y, "classification", TrainConfig(lr=0.05, max_epochs=30, patience=3), X_val=Xv, y_val=yv)
    assert res.best_epoch < res.epochs_run <= res.best_epoch + 3
    assert res.epochs_run < 30


def test_same_seed_same_weights() -> None:
    X, y = _blobs()
    weights = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(4, 2)
        fit(model, X, y, "classification", TrainConfig(), seed=5, epochs=3)
        weights.append(model.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_cuda_without_gpu_is_a_clear_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="--device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"
