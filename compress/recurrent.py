"""Hidden-unit pruning of LSTM / GRU / plain RNN layers, as torch-pruning custom pruners.

torch-pruning 1.6 raises on ``nn.LSTM`` (its ``LSTMPruner`` slices the input weights along the wrong axis) and
skips ``nn.GRU`` / ``nn.RNN`` (shared/DESIGN.md). :class:`RecurrentPruner` is registered for all three, so
torch-pruning's dependency graph handles the coupling as for any layer: a cell's hidden units are pruned with
the next layer's inputs, the residual projection or identity they are added to, the dense concatenations they
are part of and the head that reads the pooled states; an embedding's dimensions with the first layer's inputs.

A cell's *hidden units* (its out channels) are pruned only for a one-layer, one-way cell without projections
(what :class:`autoarch.search_spaces.rnn.RNNNet` builds: a bidirectional layer there is two one-way cells): the
unit's row in every gate block of ``weight_ih`` / ``weight_hh`` / the biases goes together with its column of
``weight_hh``. Any other cell keeps its hidden units (:func:`kept_whole` lists them for ``ignored_layers``),
but its inputs can still be pruned.

:class:`RecurrentImportance` adds the recurrent weights to torch-pruning's group importance, which otherwise
counts only convolutions, linear layers and norms (a group of two stacked LSTMs would have no score at all).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from autoarch.search_spaces._base import InputFeatures

__all__ = ["RecurrentPruner", "RecurrentImportance", "custom_pruners", "ROOT_TYPES", "gates", "kept_whole",
           "prunable_cell", "traced_as_one_op", "traced_input"]

ROOT_TYPES = (tp.ops.TORCH_CONV, nn.Linear, nn.LSTM, nn.GRU, nn.RNN, nn.Embedding)
"""The layers whose out channels start a pruning group (torch-pruning's default: convolutions, linear, LSTM)."""


def gates(cell: nn.RNNBase) -> int:
    """Gate blocks stacked in a cell's weights: 4 (LSTM), 3 (GRU), 1 (plain RNN)."""
    return {"LSTM": 4, "GRU": 3}.get(cell.mode, 1)


def prunable_cell(cell: nn.RNNBase) -> bool:
    """Whether the hidden units of ``cell`` can be pruned (one layer, one way, no projection)."""
    return cell.num_layers == 1 and not cell.bidirectional and not getattr(cell, "proj_size", 0)


def kept_whole(model: nn.Module) -> list[nn.Module]:
    """What pruning must leave whole in ``model`` (for ``ignored_layers``): recurrent layers whose hidden units
    stay (see :func:`prunable_cell`) and the input features of :class:`InputFeatures` modules."""
    return [m for m in model.modules()
            if isinstance(m, InputFeatures) or (isinstance(m, nn.RNNBase) and not prunable_cell(m))]


def _keep(n: int, idxs: Sequence[int]) -> torch.Tensor:
    drop = set(int(i) for i in idxs)
    return torch.tensor([i for i in range(n) if i not in drop], dtype=torch.long)


def _slice(cell: nn.Module, name: str, index: torch.Tensor, dim: int) -> None:
    """Replace a parameter by its slice (``nn.RNNBase.__setattr__`` keeps the cell's flat weight list current)."""
    param = getattr(cell, name)
    sliced = nn.Parameter(param.data.index_select(dim, index.to(param.device)).clone(),
                          requires_grad=param.requires_grad)
    if param.grad is not None:
        sliced.grad = param.grad.index_select(dim, index.to(param.device)).clone()
    setattr(cell, name, sliced)


def _surrogate(cell: nn.RNNBase, x: torch.Tensor, hx: Any = None) -> tuple[torch.Tensor, Any]:
    """What a cell's forward is while a dependency graph is traced: one matrix product from the input features to
    the output features (the first rows of ``weight_ih``, once per direction), so the graph sees the cell as one
    operation with input and output channels, as it sees a linear layer. On CPU torch runs GRU and plain RNN cells
    step by step (unbind, gate splits, stack), and torch-pruning would map channels through those steps as if
    they were the network's own splits and concatenations."""
    hidden = cell.hidden_size
    weights = [cell.weight_ih_l0] + ([cell.weight_ih_l0_reverse] if cell.bidirectional else [])
    out = torch.cat([x @ w[:hidden].t() for w in weights], dim=-1)
    last = out.select(1 if cell.batch_first else 0, -1)
    h_n = last.reshape(last.shape[0], -1, hidden).transpose(0, 1).repeat(cell.num_layers, 1, 1)
    return out, ((h_n, h_n) if cell.mode == "LSTM" else h_n)


def traced_input(model: nn.Module, example: torch.Tensor) -> torch.Tensor:
    """The example input a dependency graph of ``model`` is traced with: ``example`` itself, or a copy that
    requires grad when ``model`` has :class:`InputFeatures` (torch-pruning traces through autograd, and the
    input features of a numeric sequence would otherwise have no graph node to count their channels at)."""
    if any(isinstance(m, InputFeatures) for m in model.modules()) and example.is_floating_point():
        return example.detach().clone().requires_grad_(True)
    return example


@contextlib.contextmanager
def traced_as_one_op(model: nn.Module) -> Iterator[None]:
    """Within this context, every recurrent layer of ``model`` computes :func:`_surrogate` instead of its
    recurrence; for building torch-pruning dependency graphs only (the weights are untouched)."""
    cells = [m for m in model.modules() if isinstance(m, nn.RNNBase)]
    for cell in cells:
        cell.forward = _surrogate.__get__(cell)  # an instance attribute shadows the class's forward
    try:
        yield
    finally:
        for cell in cells:
            del cell.forward


class RecurrentPruner(tp.pruner.function.BasePruningFunc):
    """torch-pruning pruner for ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``: out channels are hidden units (only for
    :func:`prunable_cell` cells), in channels are the input features of the first layer."""

    TARGET_MODULES = (nn.LSTM, nn.GRU, nn.RNN)

    def prune_out_channels(self, layer: nn.RNNBase, idxs: Sequence[int]) -> nn.Module:
        if not prunable_cell(layer):
            raise ValueError(f"cannot prune the hidden units of {layer} (more than one layer, bidirectional or "
                             "projected); pass it in ignored_layers.")
        hidden = layer.hidden_size
        keep = _keep(hidden, idxs)
        rows = torch.cat([keep + g * hidden for g in range(gates(layer))])
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            if hasattr(layer, name) and getattr(layer, name) is not None:
                _slice(layer, name, rows, 0)
        _slice(layer, "weight_hh_l0", keep, 1)
        layer.hidden_size = len(keep)
        return layer

    def prune_in_channels(self, layer: nn.RNNBase, idxs: Sequence[int]) -> nn.Module:
        keep = _keep(layer.input_size, idxs)
        for suffix in ("", "_reverse") if layer.bidirectional else ("",):
            _slice(layer, "weight_ih_l0" + suffix, keep, 1)
        layer.input_size = len(keep)
        return layer

    def get_out_channels(self, layer: nn.RNNBase) -> int:
        return layer.hidden_size * (2 if layer.bidirectional else 1)

    def get_in_channels(self, layer: nn.RNNBase) -> int:
        return layer.input_size


class InputFeaturesPruner(tp.pruner.function.BasePruningFunc):
    """Gives torch-pruning the channel count of an :class:`InputFeatures` module; it is never pruned."""

    TARGET_MODULES = (InputFeatures,)

    def prune_out_channels(self, layer: InputFeatures, idxs: Sequence[int]) -> nn.Module:
        raise ValueError(f"the input features of {layer} cannot be pruned; pass it in ignored_layers.")

    prune_in_channels = prune_out_channels

    def get_out_channels(self, layer: InputFeatures) -> int:
        return layer.channels

    def get_in_channels(self, layer: InputFeatures) -> int:
        return layer.channels


def custom_pruners(model: nn.Module) -> dict[type, tp.pruner.function.BasePruningFunc]:
    """``customized_pruners`` for every torch-pruning pruner and dependency graph autoarch builds on ``model``
    (torch-pruning looks a custom pruner up by a module's exact class, so each :class:`InputFeatures` subclass
    in the model is named)."""
    pruners: dict[type, tp.pruner.function.BasePruningFunc] = {cls: RecurrentPruner()
                                                               for cls in RecurrentPruner.TARGET_MODULES}
    pruners.update({type(m): InputFeaturesPruner() for m in model.modules() if isinstance(m, InputFeatures)})
    return pruners


class RecurrentImportance(tp.importance.Importance):
    """``base`` (a torch-pruning group importance) with the recurrent layers of a group counted too.

    A hidden unit of a cell scores ``sum |w|^p`` (magnitude) or ``sum |w * grad|`` (Taylor) over its rows in
    every gate block of ``weight_ih`` / ``weight_hh`` and its column of ``weight_hh``; an input feature of a
    cell over its column of ``weight_ih``. Each such term and ``raw`` (``base`` without normalisation, over the
    group's other layers) are averaged, then normalised by their mean as torch-pruning's default does. A group
    without recurrent layers gets ``base``'s score unchanged.
    """

    def __init__(self, base: tp.importance.Importance, raw: tp.importance.Importance, p: int = 2,
                 taylor: bool = False) -> None:
        self.base, self.raw, self.p, self.taylor = base, raw, p, taylor

    def _score(self, w: torch.Tensor) -> torch.Tensor:
        if self.taylor:
            if w.grad is None:
                return torch.zeros_like(w.data)
            return (w.data * w.grad).abs()
        return w.data.abs().pow(self.p)

    def _terms(self, group: tp.dependency.Group) -> list[tuple[torch.Tensor, list[int]]]:
        terms = []
        for i, (dep, idxs) in enumerate(group):
            layer = dep.target.module
            if not isinstance(layer, nn.RNNBase) or not isinstance(dep.handler.__self__, RecurrentPruner):
                continue
            root = group[i].root_idxs
            index = torch.tensor(list(idxs), dtype=torch.long, device=layer.weight_ih_l0.device)
            if dep.handler == dep.handler.__self__.prune_out_channels:
                hidden, n_gates = layer.hidden_size, gates(layer)
                score = torch.zeros(hidden, device=layer.weight_hh_l0.device)
                for name in ("weight_ih_l0", "weight_hh_l0"):
                    score += self._score(getattr(layer, name)).sum(1).view(n_gates, hidden).sum(0)
                score += self._score(layer.weight_hh_l0).sum(0)
            else:
                score = self._score(layer.weight_ih_l0).sum(0)
                if layer.bidirectional:
                    score = score + self._score(layer.weight_ih_l0_reverse).sum(0)
            terms.append((score[index], list(root)))
        return terms

    @torch.no_grad()
    def __call__(self, group: tp.dependency.Group) -> torch.Tensor | None:
        terms = self._terms(group)
        if not terms:
            return self.base(group)
        device = terms[0][0].device
        total, count = torch.zeros(len(group[0][1]), device=device), 0
        raw = self.raw(group)
        if raw is not None:
            total += raw.float().to(device)
            count += 1
        for score, root in terms:
            if any(r is None for r in root):
                continue
            total.scatter_add_(0, torch.tensor(root, dtype=torch.long, device=device), score.float())
            count += 1
        total /= max(count, 1)
        mean = total.mean()
        return total / mean if mean > 0 else total
