"""The deployable model: input standardisation, the searched network, and the target's scale."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["Model", "TextEncoder", "fit_standardizer", "model_from_state", "net_input_shape",
           "net_arch", "text_arch"]


def fit_standardizer(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of ``X``: per feature for tabular data, per channel (shape ``(C, 1, 1)``) for images.

    Both are accumulated in ``float64`` whatever ``X``'s dtype, so ``uint8`` pixels give exactly the statistics of
    the same pixels as ``float32``. Sequences ``(n, T, channels + 1)`` (:mod:`autoarch.sequences`) get per-channel
    statistics over their valid steps only, shape ``(1, channels + 1)``, and the mask channel mean 0 and std 1, so
    it passes through unchanged."""
    if X.ndim == 3:
        valid = X[:, :, -1] > 0.5
        steps = X[valid].astype(np.float64)  # (valid steps, channels + 1)
        mean, std = steps.mean(axis=0), steps.std(axis=0)
        mean[-1], std[-1] = 0.0, 1.0
        std = np.where(std < 1e-8, 1.0, std)
        return mean[None].astype(np.float32), std[None].astype(np.float32)
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


class TextEncoder(nn.Module):
    """Token ids of the data set's token table (:mod:`autoarch.text`) -> the model's vocabulary ids.

    :meth:`fit` keeps the ``vocab_size`` most frequent tokens of the rows it is given (a CV fold's training part;
    ties by table order) that occur at least ``min_count`` times; they become ids ``2..``, every other token 1
    (out of vocabulary), padding stays 0. In the graph it is one lookup (``remap[x]``).
    The graph takes ids of the data set's table; :meth:`metadata` gives a predictor the kept tokens with those
    ids (any other token is 1), so the metadata carries the kept tokens only, not the whole table.
    """

    def __init__(self, table: tuple[str, ...] | list[str], vocab_size: int, min_count: int | None = None) -> None:
        from autoarch.text import MIN_COUNT

        super().__init__()
        self.table = tuple(table)
        self.vocab_size = int(vocab_size)
        self.min_count = MIN_COUNT if min_count is None else int(min_count)
        remap = torch.ones(len(self.table) + 2, dtype=torch.int64)
        remap[0] = 0
        self.register_buffer("remap", remap)

    def fit(self, X: np.ndarray) -> TextEncoder:
        counts = np.bincount(np.asarray(X, dtype=np.int64).ravel(), minlength=len(self.table) + 2)
        counts[:2] = 0
        order = np.argsort(-counts, kind="stable")
        keep = [int(i) for i in order[:self.vocab_size] if counts[i] >= self.min_count]
        remap = torch.ones(len(self.table) + 2, dtype=torch.int64)
        remap[0] = 0
        remap[keep] = torch.arange(2, 2 + len(keep), dtype=torch.int64)
        self.remap.copy_(remap)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.remap.numpy()[np.asarray(X, dtype=np.int64)].astype(np.float32)

    def vocabulary(self) -> list[str]:
        """The kept tokens in id order (``vocabulary()[i]`` is id ``i + 2``)."""
        remap = self.remap.numpy()
        kept = np.flatnonzero(remap >= 2)
        kept = kept[np.argsort(remap[kept])]
        return [self.table[i - 2] for i in kept]

    def metadata(self, max_length: int) -> dict:
        """What a predictor needs to turn raw text into this model's input (ONNX metadata ``text``): the kept
        tokens and their ids in the data set's table, the length, the token rule."""
        from autoarch.text import OOV, PAD, TOKEN_RULE

        remap = self.remap.numpy()
        kept = np.flatnonzero(remap >= 2)
        return {"vocabulary": [self.table[i - 2] for i in kept], "ids": [int(i) for i in kept],
                "max_length": int(max_length), "lowercase": True, "token_rule": TOKEN_RULE, "pad": PAD,
                "oov": OOV}

    def describe(self) -> str:
        return (f"text: {int((self.remap >= 2).sum())} of {len(self.table)} tokens kept (top {self.vocab_size}, "
                f"seen >= {self.min_count} times in the training part), the rest out of vocabulary")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.remap[x.long()].to(x.dtype)


def net_input_shape(spec: dict) -> list[int]:
    """The input shape the network of ``architecture.json``'s ``spec`` is built for: the encoded width of a table
    with categories or missing cells, else the data's input shape."""
    return [int(spec["encoded_width"])] if spec.get("columns") else list(spec["input_shape"])


def text_arch(arch: dict, n_tokens: int) -> dict:
    """``arch`` with its ``vocab_size`` cut to the ``n_tokens`` of the data set's token table: no embedding rows
    for tokens a vocabulary can never hold."""
    if "vocab_size" not in arch:
        return dict(arch)
    return {**arch, "vocab_size": min(int(arch["vocab_size"]), int(n_tokens))}


def net_arch(spec: dict) -> dict:
    """The architecture the network of ``architecture.json``'s ``spec`` is built from (:func:`text_arch` for
    text)."""
    text = spec.get("text")
    return text_arch(spec["architecture"], len(text["table"])) if text else dict(spec["architecture"])


def model_from_state(net: nn.Module, state: dict[str, torch.Tensor], columns: list | None = None,
                     text: dict | None = None) -> Model:
    """A :class:`Model` around ``net`` with the buffers of the saved ``state`` (load the state into it after any
    pruning is replayed); ``columns`` is ``architecture.json``'s table schema, ``text`` its token table."""
    from autoarch.tables import TableEncoder, columns_from_json

    schema = columns_from_json(columns)
    encoder: nn.Module | None = None if schema is None else TableEncoder(schema)
    if text is not None:
        encoder = TextEncoder(text["table"], int(text["vocab_size"]), text.get("min_count"))
    return Model(net, state["mean"].numpy(), state["std"].numpy(), encoder=encoder)

