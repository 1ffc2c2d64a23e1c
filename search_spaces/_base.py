from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from autoarch.exceptions import SpaceError, did_you_mean

Architecture = dict[str, Any]
"""A JSON-serialisable mapping of plain values (ints, floats, strings, bools): the genotype of a network."""

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}
CONNECTIVITY = ("plain", "residual", "dense")


class InputFeatures(nn.Module):
    """Base of a parameter-free module that passes the network's input features on (its first layer reads them;
    a dense connection may concatenate them). It tells structural pruning their count, ``channels``, which
    torch-pruning cannot infer for a raw input inside a concatenation, and is never pruned itself
    (:mod:`autoarch.compress.recurrent`)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = int(channels)


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise SpaceError(
            f"activation must be one of {sorted(ACTIVATIONS)}, but got {name!r}.{did_you_mean(name, ACTIVATIONS)}"
        ) from None


class SearchSpace(abc.ABC):
    """A family of networks: how to sample an architecture and how to build it.

    Subclasses implement :meth:`suggest` (define-by-run through ``trial.suggest_*``; conditional parameters are
    fine) and :meth:`build`. The module :meth:`build` returns must expose its output layer as ``.head`` so that
    compression leaves the number of outputs alone.

    Example:
        >>> import optuna
        >>> from autoarch.search_spaces import MLPSpace
        >>> space = MLPSpace(max_layers=2)
        >>> arch = space.suggest(optuna.create_study().ask())
        >>> net = space.build(arch, input_shape=(4,), n_outputs=3)
    """

    name: str = "base"
    input_kinds: tuple[str, ...] = ()

    @abc.abstractmethod
    def suggest(self, trial: optuna.Trial) -> Architecture:
        """Sample an architecture with ``trial.suggest_*`` and return it as plain values."""

    @abc.abstractmethod
    def build(self, arch: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
        """Build the network of ``arch``; the same ``arch`` always gives the same network structure."""

    @abc.abstractmethod
    def grid(self) -> dict[str, list[Any]]:
        """A coarse, finite grid over every parameter :meth:`suggest` may ask for (for the grid controller)."""

    def augmentation(self, arch: Mapping[str, Any]) -> Any | None:
        """A callable that augments a training batch of raw inputs for ``arch``, or None (the default)."""
        return None

    def warm_starts(self) -> list[tuple[str, Architecture]]:
        """Named architectures the search evaluates first (references worth trying); none by default."""
        return []

    def _require(self, arch: Mapping[str, Any], *keys: str) -> None:
        missing = [k for k in keys if k not in arch]
        if missing:
            raise SpaceError(f"the {self.name} architecture misses {missing}; got keys {sorted(arch)}.")

    def describe(self, arch: Mapping[str, Any]) -> str:
        """A one-line human summary of ``arch``."""
        return ", ".join(f"{k}={v}" for k, v in arch.items())


def n_params(module: nn.Module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def check_input(x: torch.Tensor, expected_dims: int, name: str) -> None:
    if x.dim() != expected_dims:
        raise SpaceError(f"the {name} network expects {expected_dims}-d input, but got shape {tuple(x.shape)}.")
