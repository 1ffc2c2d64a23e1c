"""Structural pruning with torch-pruning (DepGraph): whole channels / units are removed, so the model really
gets smaller and faster, and residual adds, dense concatenations and batch norm stay consistent. LSTM / GRU /
plain RNN layers are pruned by the custom pruner of :mod:`autoarch.compress.recurrent` (hidden units, gate
blocks together) and embeddings by torch-pruning's own."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch_pruning as tp
from torch import nn

from autoarch._compat import batch_norm_base, overrides_round_to
from autoarch.compress.config import IMPORTANCES
from autoarch.compress.recurrent import (
    ROOT_TYPES,
    RecurrentImportance,
    custom_pruners,
    kept_whole,
    traced_as_one_op,
    traced_input,
)
from autoarch.exceptions import ConfigError, SpaceError, did_you_mean

__all__ = ["IMPORTANCES", "PruningHistory", "PrunedCopy", "prune", "prune_to", "replay_pruning", "dependency_graph",
           "count_macs_params", "count_params", "has_batch_norm"]

PruningHistory = list[tuple[str, bool, list[int]]]
"""torch-pruning's record of what was removed: (module name, output channels?, indices); JSON-serialisable."""

Gradients = Callable[[nn.Module], None]
"""Fills ``.grad`` of a model's parameters (a backward pass on training data), for Taylor importance."""

# Global pruning may not empty a layer: keep at least 20% of every group's channels.
MAX_LAYER_RATIO = 0.8


def _importance(name: str) -> tp.importance.Importance:
    """torch-pruning's importance ``name``, with recurrent layers counted (:class:`RecurrentImportance`)."""
    if name in ("l1", "l2"):
        p = 1 if name == "l1" else 2
        return RecurrentImportance(tp.importance.GroupMagnitudeImportance(p=p),
                                   tp.importance.GroupMagnitudeImportance(p=p, normalizer=None), p=p)
    if name == "bn_scale":
        return tp.importance.BNScaleImportance()
    if name == "taylor":
        return RecurrentImportance(tp.importance.GroupTaylorImportance(),
                                   tp.importance.GroupTaylorImportance(normalizer=None), taylor=True)
    raise ConfigError(f"pruning importance must be one of {IMPORTANCES}, but got {name!r}."
                      f"{did_you_mean(name, IMPORTANCES)}")


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, batch_norm_base()) for m in model.modules())


def count_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


@overrides_round_to
class _Pruner(tp.pruner.BasePruner):
    """torch-pruning's pruner whose ``round_to`` never empties a layer. torch-pruning rounds the channels kept
    *down* to a multiple, which for a layer narrower than two multiples would remove every channel; here the
    kept count is rounded down (``rounding="down"``, the iterative schedule's steps) or to the nearest multiple
    (``"nearest"``, a one-shot ratio stays close to what was asked), never below one multiple."""

    rounding = "down"

    def round_channels(self, n_pruned: int, current_channels: int, round_to: int) -> int:
        keep = current_channels - n_pruned
        if self.rounding == "nearest":
            rounded = int(round(keep / round_to)) * round_to
        else:
            rounded = keep - keep % round_to
        rounded = min(max(rounded, min(round_to, current_channels)), current_channels)
        return max(current_channels - rounded, 0)


def prune(model: nn.Module, example_input: torch.Tensor, ratio: float, importance: str = "l2",
          global_pruning: bool = False, gradients: Gradients | None = None, round_to: int | None = None,
          rounding: str = "down") -> PruningHistory:
    """Remove ``ratio`` of the channels (convolutions), units (linear and recurrent layers) or dimensions
    (embeddings) of every prunable group, in place.

    The output layer (``model.head``) keeps its outputs; so do recurrent layers of more than one layer or
    direction in one module (:func:`autoarch.compress.recurrent.prunable_cell`). Channels coupled by a residual
    add or a concatenation are pruned together (torch-pruning's dependency groups). With ``global_pruning`` the
    same overall ratio is spread by importance across layers (none loses more than 80%) instead of uniformly.

    Args:
        importance: ``l1``, ``l2`` (weight magnitude), ``bn_scale`` (batch-norm scale) or ``taylor``
            (|weight x gradient|; needs ``gradients``).
        gradients: fills the parameters' ``.grad`` (a backward pass on training data); Taylor only.
        round_to: keep channel counts multiples of this (a layer narrower than it is left alone): ONNX
            Runtime's convolutions are measured up to 2.4x slower on unaligned counts (34 vs 32 channels).
        rounding: ``down`` (remove at least ``ratio``) or ``nearest`` (the multiple nearest to what ``ratio``
            keeps) when ``round_to`` is given.

    Returns:
        The pruning history, which :func:`replay_pruning` applies to a freshly built model.

    Raises:
        ConfigError: bad ratio or importance, ``bn_scale`` on a model without batch norm, ``taylor`` without
            ``gradients``.
    """
    if not 0.0 <= ratio < 1.0:
        raise ConfigError(f"the pruning ratio must be in [0, 1), but got {ratio}.")
    imp = _importance(importance)
    if importance == "bn_scale" and not has_batch_norm(model):
        raise ConfigError("importance 'bn_scale' ranks channels by their batch-norm scale, but this model has no "
                          "batch norm; use importance 'l2' or 'taylor'.")
    if importance == "taylor" and gradients is None:
        raise ConfigError("importance 'taylor' needs gradients on training data; pass gradients=..., or use 'l2'.")
    if ratio == 0.0:
        return []
    model.eval()
    if importance == "taylor":
        assert gradients is not None
        model.zero_grad(set_to_none=True)
        gradients(model)
    with traced_as_one_op(model):
        pruner = _Pruner(
            model, traced_input(model, example_input), importance=imp, pruning_ratio=ratio,
            global_pruning=global_pruning,
            max_pruning_ratio=MAX_LAYER_RATIO if global_pruning else 1.0,
            ignored_layers=[model.head, *kept_whole(model)], round_to=round_to if round_to and round_to > 1 else None,
            customized_pruners=custom_pruners(model), root_module_types=list(ROOT_TYPES),
        )
    if rounding not in ("down", "nearest"):
        raise ConfigError(f"rounding must be 'down' or 'nearest', but got {rounding!r}.")
    dead = [name for name, module in model.named_modules()
            if isinstance(module, ROOT_TYPES) and module not in pruner.DG.module2node]
    if dead:  # its input may be pruned while it is not: the next forward pass would fail
        raise SpaceError(f"layers {dead[:3]} compute but never reach the network's output (a branch no input "
                         "choice reads?), so structured pruning cannot shrink them consistently; remove the unused "
                         "branch from the network, or ship it without pruning (--prune 0).")
    pruner.rounding = rounding
    pruner.step()
    model.zero_grad(set_to_none=True)
    return [(name, bool(out), [int(i) for i in idx]) for name, out, idx in pruner.pruning_history()]


class PrunedCopy(NamedTuple):
    """What :func:`prune_to` returns."""

    model: nn.Module
    ratio: float
    history: PruningHistory
    value: float
    """``measure(model)``"""


def prune_to(model: nn.Module, example_input: torch.Tensor, measure: Callable[[nn.Module], float], goal: float,
             *, importance: str = "l2", global_pruning: bool = False, gradients: Gradients | None = None,
             round_to: int | None = None, max_ratio: float = MAX_LAYER_RATIO, iterations: int = 4) -> PrunedCopy:
    """Prune a copy of ``model`` just enough that ``measure(copy) <= goal``.

    Channel ratios 0.1, 0.2, ... are tried until one meets the goal, then the last interval is bisected
    ``iterations`` times (pruning is deterministic for given weights, so every try on a fresh copy ranks the
    channels the same way). The scan, rather than bisection from the start, is there because the measure need
    not be monotone in the ratio: torch-pruning leaves a layer alone rather than empty it, and measured
    latency jumps with channel counts. When no ratio meets the goal, the copy with the smallest measure is
    returned.

    Returns:
        The pruned copy, its channel ratio, its pruning history and its measure; ``model`` is not modified.
    """

    def attempt(ratio: float) -> PrunedCopy:
        candidate = copy.deepcopy(model)
        history = prune(candidate, example_input, ratio, importance, global_pruning, gradients, round_to)
        return PrunedCopy(candidate, ratio, history, float(measure(candidate)))

    tries: list[PrunedCopy] = []
    for step in range(1, int(round(max_ratio * 10)) + 1):
        tries.append(attempt(step / 10))
        if tries[-1].value <= goal:
            break
    best = tries[-1]
    if best.value > goal:  # the goal is out of reach: the smallest measure seen
        return min(tries, key=lambda t: (t.value, t.ratio))
    lo, hi = best.ratio - 0.1, best.ratio
    for _ in range(iterations):
        mid = (lo + hi) / 2
        candidate = attempt(mid)
        if candidate.value <= goal:
            hi, best = mid, candidate
        else:
            lo = mid
    return best


def dependency_graph(model: nn.Module, example_input: torch.Tensor) -> tp.DependencyGraph:
    """torch-pruning's dependency graph of ``model``, with autoarch's custom pruners (recurrent layers, input
    features) and its recurrent layers traced as one operation each (:mod:`autoarch.compress.recurrent`)."""
    with traced_as_one_op(model):
        return tp.DependencyGraph().build_dependency(model, traced_input(model, example_input),
                                                     customized_pruners=custom_pruners(model))


def replay_pruning(model: nn.Module, example_input: torch.Tensor, history: list[Any]) -> nn.Module:
    """Apply a recorded pruning ``history`` to ``model`` (built from the same architecture), in place.

    Histories of successive pruning steps can be concatenated: each record is applied to the network as the
    records before it left it.
    """
    if history:
        dependency_graph(model, example_input).load_pruning_history(
            [(str(n), bool(o), [int(i) for i in idx]) for n, o, idx in history])
    return model


def count_macs_params(model: nn.Module, example_input: torch.Tensor) -> tuple[int, int]:
    """Multiply-accumulates of one sample and parameter count (torch-pruning's counter)."""
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, example_input[:1])
    model.train(was_training)
    return int(macs), int(params)
