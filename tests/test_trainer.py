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
    # the returned weights are the best epoch's, not the last one's
    losses = [r["val_loss"] for r in res.history]
    out = predict(model, Xv, as_numpy=False)
    restored = torch.nn.functional.cross_entropy(out, torch.as_tensor(yv).long()).item()
    assert restored == pytest.approx(losses[res.best_epoch - 1], rel=1e-5)
    assert restored < losses[-1] - 1e-4


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


def _pixel_data(n: int = 64, seed: int = 0):
    """uint8 images (n, 1, 10, 10) whose class is a bright row, and the same pixels as a float32 Dataset."""
    from autoarch.data import Dataset

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.integers(0, 80, size=(n, 1, 10, 10), dtype=np.uint8)
    X[np.arange(n), 0, 2 + 5 * y, :] = 255
    return (Dataset(X=X, y=y, task="classification", classes=[0, 1]),
            Dataset(X=X.astype(np.float32), y=y, task="classification", classes=[0, 1]))


CNN_ARCH = {"n_stages": 1, "channels_0": 8, "n_convs_0": 1, "kernel_0": 3, "connectivity": "plain",
            "pooling": "max", "activation": "relu", "dropout": 0.0, "batch_norm": True, "head_pool": 1,
            "head_units": 0}


def test_build_model_standardizes_uint8_pixels_as_their_float32_values() -> None:
    from autoarch.evaluate import build_model
    from autoarch.model import fit_standardizer
    from autoarch.search_spaces import CNNSpace

    as_uint8, as_float = _pixel_data()
    for a, b in zip(fit_standardizer(as_uint8.X), fit_standardizer(as_float.X), strict=True):
        assert a.dtype == np.float32 and np.array_equal(a, b)
    m8, m32 = (build_model(CNNSpace(), CNN_ARCH, d) for d in (as_uint8, as_float))
    assert torch.equal(m8.mean, m32.mean) and torch.equal(m8.std, m32.std)
    assert 0 < float(m8.mean) < 255 and float(m8.std) > 1  # raw 0..255 statistics, not 0..1


def test_fit_on_uint8_images_gives_the_weights_of_float32_images() -> None:
    from autoarch.evaluate import build_model
    from autoarch.search_spaces import CNNSpace
    from autoarch.search_spaces.augment import Augment

    (train8, train32), (val8, val32) = _pixel_data(), _pixel_data(24, seed=1)
    seen: list[torch.dtype] = []
    augment = Augment(flip=True, shift=0.1, rotate=10.0, color=0.2)

    def recording(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.dtype)
        return augment(x)

    states, histories = [], []
    for train, val in ((train8, val8), (train32, val32)):
        torch.manual_seed(0)
        model = build_model(CNNSpace(), CNN_ARCH, train)
        res = fit(model, train.X, train.y, "classification", TrainConfig(batch_size=16, patience=10), seed=3,
                  epochs=3, X_val=val.X, y_val=val.y, augment=recording)
        states.append(model.state_dict())
        histories.append(res.history)
        np.testing.assert_array_equal(predict(model, val8.X), predict(model, val32.X))
    assert set(seen) == {torch.float32}  # augmentation gets float batches, never uint8
    assert histories[0] == histories[1]
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
