"""Temporal convolutional networks for numeric sequences: masked channels -> blocks of 1-D convolutions (batch
norm, activation, plain or residual) -> pooling over the valid steps only -> head.

Recurrent networks learn slowly on long series: on OSULeaf (427 steps) the rnn space's candidates were all still
at chance level after 4 epochs (BENCHMARKS.md). The fully convolutional network of Wang et al. (2017, three
convolution blocks of 128-256-128 channels, kernels 8-5-3, global average pooling) is the standard strong
baseline on the UCR archive; this space contains a network of that shape (odd kernels: 7-5-3) as its warm start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from autoarch.exceptions import SpaceError
from autoarch.search_spaces._base import Architecture, SearchSpace, activation
from autoarch.search_spaces.rnn import MaskedChannels

__all__ = ["Conv1DSpace", "Conv1DNet", "KERNELS", "POOLINGS", "LONG_SEQUENCE"]

KERNELS = (3, 5, 7)
POOLINGS = ("mean", "max")
LONG_SEQUENCE = 100
"""``--space auto`` gives sequences of more steps than this the conv1d space (recurrent networks learn too slowly
over hundreds of steps), shorter ones the rnn space."""


class Conv1DNet(nn.Module):
    """``(n, T, channels + 1)`` (the last channel the validity mask) -> ``n_blocks`` of Conv1d (same length, odd
    kernel) + BatchNorm + activation, residual (add; a 1x1 projection where widths differ) or plain -> pooling over
    the valid steps (masked ``mean`` or ``max``) -> optional hidden dense layer -> ``head``.

    Every block's output is zeroed on the padded steps, so a padded series gives the same output as the series
    alone (a convolution's zero padding beyond its end is what the padding then holds), up to batch norm's
    training-time batch statistics."""

    def __init__(self, channels_in: int, widths: Sequence[int], kernels: Sequence[int], connectivity: str,
                 act: str, dropout: float, pooling: str, head_width: int, n_outputs: int) -> None:
        super().__init__()
        self.connectivity, self.pooling = connectivity, pooling
        self.channels = MaskedChannels(channels_in)
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        fan_in = channels_in
        for width, kernel in zip(widths, kernels, strict=True):
            self.blocks.append(nn.Sequential(nn.Conv1d(fan_in, width, kernel, padding=kernel // 2, bias=False),
                                             nn.BatchNorm1d(width), activation(act)))
            if connectivity == "residual":
                self.skips.append(nn.Identity() if fan_in == width else nn.Conv1d(fan_in, width, 1, bias=False))
            fan_in = width
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        features = fan_in
        if head_width > 0:
            self.hidden = nn.Sequential(nn.Linear(features, head_width), activation(act), self.drop)
            features = head_width
        else:
            self.hidden = nn.Identity()
        self.head = nn.Linear(features, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        valid = (x[:, :, -1] > 0.5).to(x.dtype).unsqueeze(1)  # (n, 1, T)
        h = self.channels(x).transpose(1, 2)  # (n, C, T), padded steps zero
        for i, block in enumerate(self.blocks):
            out = block(h)
            if self.connectivity == "residual":
                out = out + self.skips[i](h)
            h = out * valid
        if self.pooling == "max":
            pooled = h.masked_fill(valid < 0.5, -1e4).amax(dim=2)
        else:
            pooled = h.sum(dim=2) / valid.sum(dim=2).clamp(min=1.0)
        return self.head(self.hidden(self.drop(pooled)))


class Conv1DSpace(SearchSpace):
    """1-D convolutional networks over numeric sequences.

    Searches 1-``max_blocks`` convolution blocks with the width (channels) and odd kernel of each, plain or
    residual connections, the activation, dropout, masked mean or max pooling over time, and an optional hidden
    dense layer in the head; plus the training hyperparameters every space has.
    """

    name = "conv1d"
    input_kinds = ("sequence",)
    input_kind = "sequence"

    def __init__(self, max_blocks: int = 3, widths: Sequence[int] = (16, 32, 64, 128, 256),
                 activations: Sequence[str] = ("relu", "gelu", "elu")) -> None:
        self.max_blocks = max_blocks
        self.widths = tuple(widths)
        self.activations = tuple(activations)

    def suggest(self, trial: optuna.Trial) -> Architecture:
        n_blocks = trial.suggest_int("n_blocks", 1, self.max_blocks)
        arch: Architecture = {"n_blocks": n_blocks}
        for i in range(n_blocks):
            arch[f"width_{i}"] = trial.suggest_categorical(f"width_{i}", self.widths)
            arch[f"kernel_{i}"] = trial.suggest_categorical(f"kernel_{i}", KERNELS)
        arch["connectivity"] = trial.suggest_categorical("connectivity", ("plain", "residual"))
        arch["activation"] = trial.suggest_categorical("activation", self.activations)
        arch["dropout"] = trial.suggest_float("dropout", 0.0, 0.5, step=0.05)
        arch["pooling"] = trial.suggest_categorical("pooling", POOLINGS)
        arch["head_width"] = trial.suggest_categorical("head_width", (0, 64, 128))
        return arch

    def build(self, arch: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
        self._require(arch, "n_blocks", "connectivity", "activation", "dropout", "pooling", "head_width")
        n_blocks = int(arch["n_blocks"])
        if n_blocks < 1:
            raise SpaceError(f"n_blocks must be >= 1, but got {n_blocks}.")
        self._require(arch, *(f"{k}_{i}" for i in range(n_blocks) for k in ("width", "kernel")))
        if len(input_shape) != 2 or int(input_shape[1]) < 2:
            raise SpaceError(f"the conv1d space takes sequences of shape (T, channels + 1) with at least one channel "
                             f"besides the mask, but got {tuple(input_shape)}.")
        kernels = [int(arch[f"kernel_{i}"]) for i in range(n_blocks)]
        if any(k < 1 or k % 2 == 0 for k in kernels):
            raise SpaceError(f"kernels must be odd (the output keeps the input's length), but got {kernels}.")
        if arch["pooling"] not in POOLINGS:
            raise SpaceError(f"pooling must be one of {POOLINGS}, but got {arch['pooling']!r}.")
        if arch["connectivity"] not in ("plain", "residual"):
            raise SpaceError(f"connectivity must be 'plain' or 'residual', but got {arch['connectivity']!r}.")
        return Conv1DNet(int(input_shape[1]) - 1, [int(arch[f"width_{i}"]) for i in range(n_blocks)], kernels,
                         arch["connectivity"], arch["activation"], float(arch["dropout"]), arch["pooling"],
                         int(arch["head_width"]), n_outputs)

    def grid(self) -> dict[str, list[Any]]:
        grid: dict[str, list[Any]] = {"n_blocks": list(range(1, self.max_blocks + 1))}
        for i in range(self.max_blocks):
            grid[f"width_{i}"] = [self.widths[1], self.widths[-2]]
            grid[f"kernel_{i}"] = [3, 7]
        grid.update({"connectivity": ["plain", "residual"], "activation": ["relu"], "dropout": [0.0, 0.2],
                     "pooling": list(POOLINGS), "head_width": [0]})
        return grid

    def warm_starts(self) -> list[tuple[str, Architecture]]:
        """The UCR archive's fully convolutional baseline (Wang et al. 2017): blocks of 128, 256 and 128 channels
        with kernels 7, 5 and 3 (theirs 8, 5, 3), global average pooling, a linear head, Adam at 1e-3."""
        return [("fcn-128-256-128", {"n_blocks": 3, "width_0": 128, "kernel_0": 7, "width_1": 256, "kernel_1": 5,
                                     "width_2": 128, "kernel_2": 3, "connectivity": "plain", "activation": "relu",
                                     "dropout": 0.0, "pooling": "mean", "head_width": 0, "lr": 1e-3})]

    def describe(self, arch: Mapping[str, Any]) -> str:
        blocks = "-".join(f"{arch[f'width_{i}']}k{arch[f'kernel_{i}']}" for i in range(int(arch["n_blocks"])))
        head = f" head {arch['head_width']}" if arch["head_width"] else ""
        return (f"conv1d {blocks} {arch['connectivity']} {arch['activation']} {arch['pooling']} pool, "
                f"dropout={arch['dropout']:.2f}{head}")
