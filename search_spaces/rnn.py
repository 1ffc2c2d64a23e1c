"""Recurrent networks for text (embedding -> LSTM / GRU / plain RNN layers -> masked pooling -> head) and for
numeric sequences (the same without the embedding: the layers read the channels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import torch
from torch import nn

from autoarch.exceptions import SpaceError
from autoarch.search_spaces._base import CONNECTIVITY, Architecture, InputFeatures, SearchSpace, activation

__all__ = ["RNNSpace", "RNNNet", "CELLS", "POOLINGS"]

CELLS: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
POOLINGS = ("last", "mean", "max")


def _reverse_within_length(h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``h`` (n, T, d) with each row's first ``lengths[i]`` steps reversed and its padding left in place."""
    steps = torch.arange(h.shape[1], device=h.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return h.gather(1, index.unsqueeze(-1).expand(-1, -1, h.shape[2]))


def _cat_features(parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(parts, dim=2)`` for (n, T, d) tensors, done on dimension 1 of their transposes: the same values,
    but torch-pruning's dependency graph maps concatenated channels only on dimension 1 (for any other it couples
    every input of the concatenation with every other)."""
    return torch.cat([p.transpose(1, 2) for p in parts], dim=1).transpose(1, 2)


class MaskedChannels(InputFeatures):
    """A numeric sequence ``(n, T, channels + 1)`` -> its channels with the padded steps zeroed (the last channel
    is the validity mask)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = x[:, :, -1:] > 0.5
        return x[:, :, :-1] * mask.to(x.dtype)


class _Recurrent(nn.Module):
    """One recurrent layer; bidirectional as two one-way cells, the backward one reading each text reversed
    *within its length*, so padding (always at the end) never reaches a valid step in either direction (a
    ``bidirectional=True`` cell on padded input would start its backward pass on the padding)."""

    def __init__(self, cell: str, n_in: int, hidden: int, bidirectional: bool) -> None:
        super().__init__()
        self.forward_cell = CELLS[cell](n_in, hidden, batch_first=True)
        self.backward_cell = CELLS[cell](n_in, hidden, batch_first=True) if bidirectional else None
        self.out_features = hidden * (2 if bidirectional else 1)

    def forward(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.forward_cell(h)
        if self.backward_cell is None:
            return out
        back, _ = self.backward_cell(_reverse_within_length(h, lengths))
        return _cat_features([out, _reverse_within_length(back, lengths)])


class RNNNet(nn.Module):
    """Token ids ``(n, T)`` (0 = padding, right-padded; given as floats, cast here) -> embedding -> recurrent
    layers with plain, residual (add, a bias-free projection where widths differ) or dense (each layer reads the
    concatenation of the embedding and every earlier layer's output) connections -> pooling over the valid steps
    only (``last`` valid step, masked ``mean`` or ``max``) -> optional hidden dense layer -> ``head``.

    With ``n_embeddings=0`` it reads numeric sequences instead: ``(n, T, channels + 1)``, the last channel the
    validity mask (:mod:`autoarch.sequences`), and ``embedding_dim`` is the channel count.

    ``grad_clip`` is the gradient-norm clip the trainer applies to this network (0: none).
    """

    def __init__(self, n_embeddings: int, embedding_dim: int, cell: str, hiddens: Sequence[int],
                 bidirectional: bool, connectivity: str, dropout: float, pooling: str, head_width: int,
                 head_activation: str, n_outputs: int, grad_clip: float = 0.0) -> None:
        super().__init__()
        self.connectivity, self.pooling, self.grad_clip = connectivity, pooling, float(grad_clip)
        self.embed = nn.Embedding(n_embeddings, embedding_dim, padding_idx=0) if n_embeddings > 0 else None
        self.channels = MaskedChannels(embedding_dim) if n_embeddings == 0 else None
        self.layers = nn.ModuleList()
        self.skips = nn.ModuleList()
        fan_in, total = embedding_dim, embedding_dim
        for hidden in hiddens:
            layer = _Recurrent(cell, total if connectivity == "dense" else fan_in, hidden, bidirectional)
            self.layers.append(layer)
            if connectivity == "residual":
                self.skips.append(nn.Identity() if fan_in == layer.out_features
                                  else nn.Linear(fan_in, layer.out_features, bias=False))
            fan_in = layer.out_features
            total += layer.out_features
        features = total if connectivity == "dense" else fan_in
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        if head_width > 0:
            self.hidden = nn.Sequential(nn.Linear(features, head_width), activation(head_activation), self.drop)
            features = head_width
        else:
            self.hidden = nn.Identity()
        self.head = nn.Linear(features, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels is not None:  # numeric sequences: channels, then the mask
            mask = x[:, :, -1] > 0.5
            h = self.channels(x)
        else:
            ids = x.long()
            mask = ids != 0
            h = self.embed(ids)
        lengths = mask.sum(dim=1).clamp(min=1)
        seen = [h]
        for i, layer in enumerate(self.layers):
            inp = _cat_features(seen) if self.connectivity == "dense" else seen[-1]
            out = layer(self.drop(inp), lengths)
            if self.connectivity == "residual":
                out = out + self.skips[i](seen[-1])
            seen.append(out)
        out = _cat_features(seen) if self.connectivity == "dense" else seen[-1]
        valid = mask.unsqueeze(-1)
        if self.pooling == "mean":
            pooled = (out * valid.to(out.dtype)).sum(dim=1) / lengths.unsqueeze(1).to(out.dtype)
        elif self.pooling == "max":
            pooled = out.masked_fill(~valid, -1e4).max(dim=1).values
        else:
            index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[2])
            pooled = out.gather(1, index).squeeze(1)
        return self.head(self.hidden(self.drop(pooled)))


class RNNSpace(SearchSpace):
    """Recurrent networks over token ids (text) or numeric sequences.

    Searches the cell (LSTM, GRU, plain RNN), 1-``max_layers`` recurrent layers with hidden units per layer,
    bidirectional or not, connectivity (plain, residual, dense), dropout, pooling (last, mean, max; padding never
    counts), an optional hidden dense layer in the head with its activation, the embedding size, the vocabulary
    size (fitted inside each fold's training part: :class:`autoarch.model.TextEncoder`) and gradient clipping.

    The vocabulary size is read by :func:`autoarch.evaluate.build_model` (``arch["vocab_size"]``); the network
    has ``vocab_size + 2`` embeddings (0 padding, 1 out of vocabulary). With ``input_kind="sequence"`` (what
    :func:`~autoarch.search_spaces.get_space` passes for sequence data) there is no embedding, so neither the
    embedding size nor the vocabulary size is searched.
    """

    name = "rnn"
    input_kinds = ("text", "sequence")
    chance_epochs = 4
    """Epochs before a candidate still at chance level is stopped (the search's default is 2): on 120 short
    reviews the textbook LSTM at Adam 1e-3 was still at 0.51 after 3 epochs and at 0.59 after 8."""

    def __init__(self, max_layers: int = 2, hiddens: Sequence[int] = (32, 64, 128),
                 embedding_dims: Sequence[int] = (32, 64, 128), vocab_sizes: Sequence[int] = (2000, 5000, 10000),
                 activations: Sequence[str] = ("relu", "gelu", "tanh"), input_kind: str = "text") -> None:
        if input_kind not in self.input_kinds:
            raise SpaceError(f"the rnn space takes {' or '.join(self.input_kinds)} input, but got {input_kind!r}.")
        self.input_kind = input_kind
        self.max_layers = max_layers
        self.hiddens = tuple(hiddens)
        self.embedding_dims = tuple(embedding_dims)
        self.vocab_sizes = tuple(vocab_sizes)
        self.activations = tuple(activations)

    def suggest(self, trial: optuna.Trial) -> Architecture:
        arch: Architecture = {"cell": trial.suggest_categorical("cell", tuple(CELLS))}
        n_layers = trial.suggest_int("n_layers", 1, self.max_layers)
        arch["n_layers"] = n_layers
        for i in range(n_layers):
            arch[f"hidden_{i}"] = trial.suggest_categorical(f"hidden_{i}", self.hiddens)
        arch["bidirectional"] = trial.suggest_categorical("bidirectional", (False, True))
        arch["connectivity"] = trial.suggest_categorical("connectivity", CONNECTIVITY)
        arch["dropout"] = trial.suggest_float("dropout", 0.0, 0.5, step=0.05)
        arch["pooling"] = trial.suggest_categorical("pooling", POOLINGS)
        arch["head_width"] = trial.suggest_categorical("head_width", (0, 32, 64, 128))
        arch["head_activation"] = trial.suggest_categorical("head_activation", self.activations)
        if self.input_kind == "text":
            arch["embedding_dim"] = trial.suggest_categorical("embedding_dim", self.embedding_dims)
            arch["vocab_size"] = trial.suggest_categorical("vocab_size", self.vocab_sizes)
        arch["grad_clip"] = trial.suggest_categorical("grad_clip", (0.0, 1.0, 5.0))
        return arch

    def build(self, arch: Mapping[str, Any], input_shape: Sequence[int], n_outputs: int) -> nn.Module:
        sequence = "vocab_size" not in arch and len(input_shape) == 2
        self._require(arch, "cell", "n_layers", "bidirectional", "connectivity", "dropout", "pooling",
                      "head_width", "head_activation", *(() if sequence else ("embedding_dim", "vocab_size")))
        if arch["cell"] not in CELLS:
            raise SpaceError(f"cell must be one of {sorted(CELLS)}, but got {arch['cell']!r}.")
        if arch["pooling"] not in POOLINGS:
            raise SpaceError(f"pooling must be one of {POOLINGS}, but got {arch['pooling']!r}.")
        if arch["connectivity"] not in CONNECTIVITY:
            raise SpaceError(f"connectivity must be one of {CONNECTIVITY}, but got {arch['connectivity']!r}.")
        n_layers = int(arch["n_layers"])
        if n_layers < 1:
            raise SpaceError(f"n_layers must be >= 1, but got {n_layers}.")
        self._require(arch, *(f"hidden_{i}" for i in range(n_layers)))
        if sequence:  # (T, channels + 1): the channels feed the first layer directly
            n_embeddings, width = 0, int(input_shape[1]) - 1
            if width < 1:
                raise SpaceError(f"a sequence input needs at least one channel besides the mask, but got shape "
                                 f"{tuple(input_shape)}.")
        elif len(input_shape) != 1:
            raise SpaceError(f"the rnn space takes token ids of shape (max_length,) or sequences of shape (T, "
                             f"channels + 1), but got {tuple(input_shape)}.")
        else:
            n_embeddings, width = int(arch["vocab_size"]) + 2, int(arch["embedding_dim"])
        return RNNNet(n_embeddings, width, arch["cell"],
                      [int(arch[f"hidden_{i}"]) for i in range(n_layers)], bool(arch["bidirectional"]),
                      arch["connectivity"], float(arch["dropout"]), arch["pooling"], int(arch["head_width"]),
                      arch["head_activation"], n_outputs, float(arch.get("grad_clip", 0.0)))

    def grid(self) -> dict[str, list[Any]]:
        grid: dict[str, list[Any]] = {"cell": list(CELLS), "n_layers": list(range(1, self.max_layers + 1))}
        grid.update({f"hidden_{i}": [self.hiddens[0], self.hiddens[-1]] for i in range(self.max_layers)})
        grid.update({"bidirectional": [False, True], "connectivity": ["plain", "residual"], "dropout": [0.0, 0.3],
                     "pooling": list(POOLINGS), "head_width": [0, 64], "head_activation": ["relu"],
                     "grad_clip": [1.0]})
        if self.input_kind == "text":
            grid.update({"embedding_dim": [self.embedding_dims[len(self.embedding_dims) // 2]],
                         "vocab_size": [self.vocab_sizes[len(self.vocab_sizes) // 2]]})
        return grid

    def warm_starts(self) -> list[tuple[str, Architecture]]:
        """A textbook sentiment LSTM: 64-d embedding, one 64-unit layer, its last state, a linear head, trained
        with Adam at 3e-3 (on 120 short reviews, 8 epochs: 0.59 held-out at 1e-3, 0.78 at 3e-3)."""
        arch = {"cell": "lstm", "n_layers": 1, "hidden_0": 64, "bidirectional": False, "connectivity": "plain",
                "dropout": 0.2, "pooling": "last", "head_width": 0, "head_activation": "relu", "grad_clip": 1.0,
                "lr": 3e-3}
        if self.input_kind == "text":
            arch.update({"embedding_dim": 64, "vocab_size": 5000})
        return [("lstm-1x64", arch)]

    def describe(self, arch: Mapping[str, Any]) -> str:
        hiddens = "-".join(str(arch[f"hidden_{i}"]) for i in range(int(arch["n_layers"])))
        head = f" head {arch['head_width']} {arch['head_activation']}" if arch["head_width"] else ""
        embed = f"embed {arch['embedding_dim']} vocab {arch['vocab_size']}, " if "vocab_size" in arch else ""
        return (f"{'bi' if arch['bidirectional'] else ''}{arch['cell'].upper()} {hiddens} {arch['connectivity']} "
                f"{arch['pooling']} pool, {embed}dropout={arch['dropout']:.2f}{head}")
