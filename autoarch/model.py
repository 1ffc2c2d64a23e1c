"""The deployable model: input standardisation, the searched network, and the target's scale."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Model", "fit_standardizer"]


def fit_standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``X``: per feature for tabular data, per channel (shape ``(C, 1, 1)``) for images.

    Both are accumulated in ``float64`` whatever ``X``'s dtype, so ``uint8`` pixels give exactly the statistics of
    the same pixels as ``float32``."""
    axes = (0, 2, 3) if X.ndim == 4 else (0,)
    mean = X.mean(axis=axes, dtype=np.float64, keepdims=True)[0]
    std = X.std(axis=axes, dtype=np.float64, keepdims=True)[0]
    std = np.where(std < 1e-8, 1.0, std)
    return mean.astype(np.float32), std.astype(np.float32)


class Model(nn.Module):
    """``net((x - mean) / std) * y_std + y_mean``: preprocessing travels with the weights and into ONNX.

    The statistics are buffers fitted on the training data only (inside each CV fold during the search), so
    the exported model takes raw features and, for regression, returns targets in their original units.
    """

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray, y_mean: float = 0.0,
                 y_std: float = 1.0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    @property
    def head(self) -> nn.Module:
        return self.net.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std) * self.y_std + self.y_mean

