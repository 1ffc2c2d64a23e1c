"""The deployable model: input standardisation, the searched network, and the target's scale."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Model", "fit_standardizer", "model_from_state", "net_input_shape"]


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
    """``net((encoder(x) - mean) / std) * y_std + y_mean``: preprocessing travels with the weights and into ONNX.

    The statistics are buffers fitted on the training data only (inside each CV fold during the search), so
    the exported model takes raw features and, for regression, returns targets in their original units. A table
    with text categories or missing cells has an ``encoder`` (:class:`~autoarch.tables.TableEncoder`) in front:
    the model then takes the table's codes, NaN for a missing cell.
    """

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray, y_mean: float = 0.0,
                 y_std: float = 1.0, encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.net = net
        self.encoder = encoder
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))
        self.register_buffer("y_mean", torch.tensor(float(y_mean)))
        self.register_buffer("y_std", torch.tensor(float(y_std)))

    @property
    def head(self) -> nn.Module:
        return self.net.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.encoder is not None:
            x = self.encoder(x)
        return self.net((x - self.mean) / self.std) * self.y_std + self.y_mean


def net_input_shape(spec: dict) -> list[int]:
    """The input shape the network of ``architecture.json``'s ``spec`` is built for: the encoded width of a table
    with categories or missing cells, else the data's input shape."""
    return [int(spec["encoded_width"])] if spec.get("columns") else list(spec["input_shape"])


def model_from_state(net: nn.Module, state: dict[str, torch.Tensor], columns: list | None = None) -> Model:
    """A :class:`Model` around ``net`` with the buffers of the saved ``state`` (load the state into it after any
    pruning is replayed); ``columns`` is ``architecture.json``'s table schema."""
    from autoarch.tables import TableEncoder, columns_from_json

    schema = columns_from_json(columns)
    encoder = None if schema is None else TableEncoder(schema)
    return Model(net, state["mean"].numpy(), state["std"].numpy(), encoder=encoder)

