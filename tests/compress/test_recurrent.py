"""Hidden-unit pruning of LSTM / GRU / plain RNN layers (issue #14): the custom torch-pruning pruner, its
coupling through the rnn space's bidirectional, residual and dense connections, and its importance."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch_pruning as tp
from torch import nn

from autoarch.compress.pruning import dependency_graph
from autoarch.compress.recurrent import ROOT_TYPES, RecurrentPruner, gates, kept_whole
from autoarch.search_spaces.rnn import RNNNet

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def _dead_rows(cell: nn.RNNBase, units: list[int]) -> None:
    """Zero every gate row of ``units``: such a unit's state stays 0 (LSTM: c' = f c + i g = c/2 from 0, h = 0;
    GRU: n = 0, h' = h/2 from 0; RNN: tanh(0) = 0), so it never reaches the other units or the output."""
    h = cell.hidden_size
    rows = [u + g * h for g in range(gates(cell)) for u in units]
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(cell, name)[rows] = 0


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_pruning_dead_hidden_units_keeps_every_other_unit_s_output(cell):
    torch.manual_seed(0)
    layer = CELLS[cell](5, 8, batch_first=True)
    dead = [1, 4, 6]
    _dead_rows(layer, dead)
    x = torch.randn(3, 7, 5)
    with torch.no_grad():
        before, _ = layer(x)
    RecurrentPruner().prune_out_channels(layer, dead)
    assert layer.hidden_size == 5 and layer.weight_hh_l0.shape == (gates(layer) * 5, 5)
    with torch.no_grad():
        after, _ = layer(x)
    keep = [i for i in range(8) if i not in dead]
    torch.testing.assert_close(after, before[:, :, keep])
    assert torch.count_nonzero(before[:, :, dead]) == 0  # the dead units were silent


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pruning_input_features_equals_zeroing_them(cell, bidirectional):
    torch.manual_seed(0)
    layer = CELLS[cell](6, 4, batch_first=True, bidirectional=bidirectional, num_layers=2)
    x = torch.randn(2, 5, 6)
    x[:, :, [0, 3]] = 0
    with torch.no_grad():
        before, _ = layer(x)
    RecurrentPruner().prune_in_channels(layer, [0, 3])
    assert layer.input_size == 4
    with torch.no_grad():
        after, _ = layer(x[:, :, [1, 2, 4, 5]])
    torch.testing.assert_close(after, before)


def test_only_one_layer_one_way_cells_lose_hidden_units():
    model = nn.ModuleList([nn.LSTM(3, 4), nn.GRU(4, 4, bidirectional=True), nn.RNN(4, 4, num_layers=2)])
    assert kept_whole(model) == [model[1], model[2]]
    with pytest.raises(ValueError, match="ignored_layers"):
        RecurrentPruner().prune_out_channels(model[1], [0])


def _zero(dep: tp.Dependency, idxs: list[int]) -> None:
    """Zero what pruning ``idxs`` by ``dep`` would remove (rows for out channels, columns for in channels)."""
    layer, out = dep.target.module, dep.handler.__name__ == "prune_out_channels"
    with torch.no_grad():
        if isinstance(layer, nn.RNNBase):
            if out:
                _dead_rows(layer, idxs)
            else:
                layer.weight_ih_l0[:, idxs] = 0
        elif isinstance(layer, nn.Linear):
            if out:
                layer.weight[idxs] = 0
                if layer.bias is not None:
                    layer.bias[idxs] = 0
            else:
                layer.weight[:, idxs] = 0
        elif isinstance(layer, nn.Embedding):
            layer.weight[:, idxs] = 0


ARCHS = [dict(cell=c, bidirectional=b, connectivity=k, pooling=p)
         for c, b, k, p in itertools.product(sorted(CELLS), [False, True], ["plain", "residual", "dense"],
                                             ["last", "mean", "max"])]


def _inputs(text: bool) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    if text:
        ids = torch.randint(1, 50, (4, 9), generator=generator)
        return torch.where(torch.arange(9) < torch.tensor([[9], [5], [2], [7]]), ids, 0).float()
    x = torch.randn(4, 9, 3, generator=generator)
    valid = (torch.arange(9) < torch.tensor([[9], [5], [2], [7]])).float()
    x[:, :, -1] = valid
    x[:, :, :-1] *= valid.unsqueeze(-1)
    return x


@pytest.mark.parametrize("text", [True, False], ids=["text", "sequence"])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "-".join(str(v) for v in a.values()))
def test_every_pruning_group_removes_exactly_what_it_couples(arch, text):
    """Zeroing everything one group removes leaves outputs that the pruned network reproduces exactly. A missed
    coupling (a consumer left with a column of a removed unit) fails on shapes; a wrong one (units of two
    layers, or the two halves of a bidirectional output, coupled by position) changes the outputs."""
    torch.manual_seed(0)
    net = RNNNet(50 if text else 0, 6 if text else 2, arch["cell"], [8, 10], arch["bidirectional"],
                 arch["connectivity"], 0.0, arch["pooling"], 4, "tanh", 3).eval()
    x = _inputs(text)
    graph = dependency_graph(net, x[:2])
    chosen = []
    for group in graph.get_all_groups(ignored_layers=[net.head, *kept_whole(net)], root_module_types=ROOT_TYPES):
        root = group[0].dep
        n = len(group[0].idxs)
        chosen.append((root.target.module, root.handler, list(range(0, n, 2))))
    covered = set()
    for module, handler, idxs in chosen:
        for dep, dep_idxs in graph.get_pruning_group(module, handler, idxs):
            _zero(dep, dep_idxs)
            if dep.handler.__name__ == "prune_out_channels":
                covered.add(dep.target.module)
    # every cell, the hidden layer of the head and the embedding lose units (each in some group)
    prunable = {m for m in net.modules() if isinstance(m, nn.RNNBase)} | {net.hidden[0]}
    prunable |= {net.embed} if text else set()
    assert prunable <= covered
    pruned = copy.deepcopy(net)
    with torch.no_grad():
        expected = net(x)
    graph = dependency_graph(pruned, x[:2])
    names = {m: n for n, m in net.named_modules()}
    modules = dict(pruned.named_modules())
    for module, handler, idxs in chosen:
        twin = modules[names[module]]
        graph.get_pruning_group(twin, getattr(graph.get_pruner_of_module(twin), handler.__name__), idxs).prune()
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in net.parameters()) * 0.6
    with torch.no_grad():
        torch.testing.assert_close(pruned(x), expected, rtol=1e-5, atol=1e-6)


def test_int8_says_which_recurrent_weights_stay_in_float(tmp_path):
    """onnxruntime quantizes LSTM (DynamicQuantizeLSTM) and the unrolled plain RNN's MatMuls, but has no int8 GRU:
    its weights are reported, to the byte, as left in float."""
    from autoarch.compress import export_onnx
    from autoarch.compress.quantize import float_weights, quantize_dynamic_int8

    x = torch.randint(1, 50, (2, 9)).float()
    left = {}
    for cell in sorted(CELLS):
        net = RNNNet(52, 16, cell, [24], False, "plain", 0.0, "last", 0, "relu", 3).eval()
        path = export_onnx(net, x, tmp_path / f"{cell}.onnx")
        left[cell] = float_weights(quantize_dynamic_int8(path, tmp_path / f"{cell}.int8.onnx"))
    gru = 3 * 24 * (16 + 24) * 4 + 2 * 3 * 24 * 4  # W, R and both biases of one GRU, fp32
    assert left == {"gru": {"GRU": gru}, "lstm": {}, "rnn": {}}


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_the_importance_counts_a_cell_s_own_weights(cell):
    """Units whose gate rows are tiny go first, although the head reads them with weights as large as any:
    torch-pruning's own importance sees only the head's columns (for two stacked cells, nothing at all)."""
    from autoarch.compress import prune

    torch.manual_seed(0)
    net = RNNNet(0, 2, cell, [16, 12], False, "plain", 0.0, "mean", 0, "relu", 2).eval()
    first, second = (layer.forward_cell for layer in net.layers)
    rows = [u + g * 16 for g in range(gates(first)) for u in (3, 7, 11, 12)]
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0"):
            getattr(first, name)[rows] *= 1e-3
        second.weight_ih_l0[:, [3, 7, 11, 12]] *= 1e-3  # the next layer reads them weakly too
    history = prune(net, _inputs(False)[:2], 0.25, importance="l2")
    removed = {name: idxs for name, out, idxs in history if out}
    assert sorted(removed["layers.0.forward_cell"]) == [3, 7, 11, 12]
    assert first.hidden_size == 12 and second.input_size == 12
