"""Structural pruning with torch-pruning (DepGraph): whole channels / units are removed, so the model really
gets smaller and faster, and residual adds, dense concatenations and batch norm stay consistent."""

from __future__ import annotations

from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from autoarch.exceptions import ConfigError

__all__ = ["IMPORTANCES", "prune", "replay_pruning", "count_macs_params"]

IMPORTANCES = ("l1", "l2", "bn_scale")

PruningHistory = list[tuple[str, bool, list[int]]]
"""torch-pruning's record of what was removed: (module name, output channels?, indices); JSON-serialisable."""


def _importance(name: str) -> tp.importance.Importance:
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    raise ConfigError(f"pruning importance must be one of {IMPORTANCES}, but got {name!r}.")


def prune(model: nn.Module, example_input: torch.Tensor, ratio: float, importance: str = "l2",
          global_pruning: bool = False) -> PruningHistory:
    """Remove ``ratio`` of the channels (convolutions) or units (linear layers) of every prunable group, in place.

    The output layer (``model.head``) keeps its outputs. Channels coupled by a residual add or a concatenation
    are pruned together (torch-pruning's dependency groups). With ``global_pruning`` the same overall ratio is
    spread by importance across layers instead of uniformly.

    Returns:
        The pruning history, which :func:`replay_pruning` applies to a freshly built model.
    """
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"the pruning ratio must be in [0, 1), but got {ratio}.")
    if ratio == 0.0:
        return []
    model.eval()
    pruner = tp.pruner.BasePruner(
        model, example_input, importance=_importance(importance), pruning_ratio=ratio,
        global_pruning=global_pruning, ignored_layers=[model.head],
    )
    pruner.step()
    return [(name, bool(out), [int(i) for i in idx]) for name, out, idx in pruner.pruning_history()]


def replay_pruning(model: nn.Module, example_input: torch.Tensor, history: list[Any]) -> nn.Module:
    """Apply a recorded pruning ``history`` to ``model`` (built from the same architecture), in place."""
    if history:
        graph = tp.DependencyGraph().build_dependency(model, example_input)
        graph.load_pruning_history([(str(n), bool(o), [int(i) for i in idx]) for n, o, idx in history])
    return model


def count_macs_params(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """Multiply-accumulates of one sample and parameter count (torch-pruning's counter)."""
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example_input[:1])
    model.train(was_training)
    return int(macs), int(params)
