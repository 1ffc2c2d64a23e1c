from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from autoarch.exceptions import SpaceError
from autoarch.search_spaces._base import ACTIVATIONS, CONNECTIVITY, Architecture, SearchSpace, activation

__all__ = ["MLPSpace", "MLP"]


class _Block(nn.Module):
    def __init__(self, n_in: int, n_out: int, act: str, batch_norm: bool, dropout: float) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out, bias=not batch_norm)
        self.norm = nn.BatchNorm1d(n_out) if batch_norm else nn.Identity()
        self.act = activation(act)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.linear(x))))


class MLP(nn.Module):
    """Fully connected network with plain, residual (add) or dense (concatenate) connections.

    - plain: ``h_i = block_i(h_{i-1})``
    - residual: ``h_i = block_i(h_{i-1}) + skip_i(h_{i-1})``; ``skip_i`` is the identity when widths match,
      else a bias-free linear projection.
    - dense: ``h_1 = block_1(x)``, ``h_i = block_i(concat(h_1, ..., h_{i-1}))`` and the head reads
      ``concat(h_1, ..., h_L)``. The concatenation grows one block at a time (``z = concat(z, block(z))``) and
      leaves the raw input out: the two forms torch-pruning's dependency graph prunes correctly (measured: with
      the input in the concatenation, or the same tensors concatenated twice, pruned shapes no longer match).
    """

    def __init__(self, n_in: int, widths: Sequence[int], n_outputs: int, connectivity: str, act: str,
                 batch_norm: bool, dropout: float) -> None:
        super().__init__()
        self.connectivity = connectivity
        self.blocks = nn.ModuleList()
        self.skips = nn.ModuleList()
        fan_in = n_in
        for i, width in enumerate(widths):
            self.blocks.append(_Block(fan_in, width, act, batch_norm, dropout))
            if connectivity == "residual":
                self.skips.append(nn.Identity() if fan_in == width else nn.Linear(fan_in, width, bias=False))
            fan_in = fan_in + width if connectivity == "dense" and i > 0 else width
        head_in = fan_in
        self.head = nn.Linear(head_in, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self.connectivity == "dense":
            x = self.blocks[0](x)
            for block in self.blocks[1:]:
                x = torch.cat([x, block(x)], dim=1)
            return self.head(x)
        for i, block in enumerate(self.blocks):
            x = block(x) + self.skips[i](x) if self.connectivity == "residual" else block(x)
        return self.head(x)


class MLPSpace(SearchSpace):
    """Multi-layer perceptrons for tabular data (any input is flattened).

    Searches depth (``n_layers``), the width of every layer (``width_i``), connectivity (plain, residual,
    dense), activation, dropout and batch norm.

    Args:
        max_layers: the largest depth.
        widths: the widths a layer can take.
        activations: the activations to choose from.
    """

    name = "mlp"
    input_kinds = ("tabular", "image")

    def __init__(self, max_layers: int = 4, widths: Sequence[int] = (16, 32, 64, 128, 256, 512),
                 activations: Sequence[str] = tuple(ACTIVATIONS)) -> None:
        self.max_layers = max_layers
        self.widths = tuple(widths)
        self.activations = tuple(activations)

    def suggest(self, trial: optuna.Trial) -> Architecture:
        n_layers = trial.suggest_int("n_layers", 1, self.max_layers)
        arch: Architecture = {"n_layers": n_layers}
        for i in range(n_layers):
            arch[f"width_{i}"] = trial.suggest_categorical(f"width_{i}", self.widths)
        arch["connectivity"] = trial.suggest_categorical("connectivity", CONNECTIVITY)
        arch["activation"] = trial.suggest_categorical("activation", self.activations)
        arch["dropout"] = trial.suggest_float("dropout", 0.0, 0.5, step=0.05)
        arch["batch_norm"] = trial.suggest_categorical("batch_norm", (False, True))
        return arch

    def build(self, arch: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
        self._require(arch, "n_layers", "connectivity", "activation", "dropout", "batch_norm")
        n_layers = int(arch["n_layers"])
        if n_layers < 1:
            raise SpaceError(f"n_layers must be >= 1, but got {n_layers}.")
        self._require(arch, *(f"width_{i}" for i in range(n_layers)))
        if arch["connectivity"] not in CONNECTIVITY:
            raise SpaceError(f"connectivity must be one of {CONNECTIVITY}, but got {arch['connectivity']!r}.")
        n_in = 1
        for s in input_shape:
            n_in *= int(s)
        widths = [int(arch[f"width_{i}"]) for i in range(n_layers)]
        return MLP(n_in, widths, n_outputs, arch["connectivity"], arch["activation"], bool(arch["batch_norm"]),
                   float(arch["dropout"]))

    def grid(self) -> dict[str, list[Any]]:
        grid: dict[str, list[Any]] = {"n_layers": list(range(1, self.max_layers + 1))}
        coarse = sorted({self.widths[0], self.widths[len(self.widths) // 2], self.widths[-1]})
        grid.update({f"width_{i}": coarse for i in range(self.max_layers)})
        grid.update({"connectivity": list(CONNECTIVITY), "activation": ["relu", "gelu"], "dropout": [0.0, 0.2],
                     "batch_norm": [False, True]})
        return grid

    def describe(self, arch: Mapping[str, Any]) -> str:
        widths = "-".join(str(arch[f"width_{i}"]) for i in range(int(arch["n_layers"])))
        return (f"MLP {widths} {arch['connectivity']} {arch['activation']} dropout={arch['dropout']:.2f}"
                f"{' bn' if arch['batch_norm'] else ''}")
