"""A contract test suite every search space must pass (in the spirit of ``optuna.testing.pytest_samplers``).

Subclass :class:`SearchSpaceContract` in a test module and override the ``space`` and ``input_shape``
fixtures (``extremes`` for hand-picked architectures; ``make_inputs`` and ``statistics`` where the space does
not take real-valued features standardised by the model, such as token ids)::

    class TestMySpace(SearchSpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace()

Each test runs on ``N_SAMPLED`` architectures drawn at random plus the extremes. It needs pytest.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch

from autoarch._compat import batch_norm_base
from autoarch.compress import (
    CompressConfig,
    check_onnx,
    export_onnx,
    prune,
    prune_iteratively,
    replay_pruning,
    run_onnx,
    session,
)
from autoarch.data import from_arrays, from_padded_sequences
from autoarch.model import Model
from autoarch.search_spaces import Architecture, SearchSpace
from autoarch.trainer import TrainConfig

__all__ = ["SearchSpaceContract", "sample_architectures", "N_SAMPLED"]

N_SAMPLED = 30
N_OUTPUTS = 3


def sample_architectures(space: SearchSpace, n: int, seed: int = 0) -> list[Architecture]:
    """``n`` architectures drawn by optuna's random sampler."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    archs = []
    for _ in range(n):
        trial = study.ask()
        archs.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return archs


Inputs = Callable[[int], torch.Tensor]
"""``make_inputs(n)``: ``n`` samples of the space's input shape."""


def _model(space: SearchSpace, arch: Architecture, input_shape: tuple[int, ...], seed: int = 0,
           statistics: tuple[float, float] = (0.5, 2.0)) -> Model:
    torch.manual_seed(seed)
    net = space.build(arch, input_shape, N_OUTPUTS)
    stat_shape = (input_shape[0], 1, 1) if len(input_shape) == 3 else input_shape
    mean, std = statistics
    return Model(net, np.full(stat_shape, mean, np.float32), np.full(stat_shape, std, np.float32)).eval()


class SearchSpaceContract:
    """Every architecture builds, runs, round-trips through JSON, prunes and exports to ONNX."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        raise NotImplementedError("override the `space` fixture")

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        raise NotImplementedError("override the `input_shape` fixture")

    @pytest.fixture
    def extremes(self) -> list[Architecture]:
        return []

    @pytest.fixture
    def make_inputs(self, input_shape: tuple[int, ...]) -> Inputs:
        """Standard normal features (the default); override for token ids or masked sequences."""
        generator = torch.Generator().manual_seed(0)
        return lambda n: torch.randn(n, *input_shape, generator=generator)

    @pytest.fixture
    def statistics(self) -> tuple[float, float]:
        """The mean and scale the model standardises its inputs with; ``(0, 1)`` leaves them as they are."""
        return (0.5, 2.0)

    @pytest.fixture
    def architectures(self, space: SearchSpace, extremes: list[Architecture]) -> list[Architecture]:
        return sample_architectures(space, N_SAMPLED) + list(extremes)

    def test_suggest_gives_plain_json_values(self, architectures: list[Architecture]) -> None:
        assert len(architectures) >= N_SAMPLED
        for arch in architectures:
            assert json.loads(json.dumps(arch)) == arch

    def test_builds_and_runs_forward(self, space: SearchSpace, input_shape: tuple[int, ...],
                                     architectures: list[Architecture], make_inputs: Inputs,
                                     statistics: tuple[float, float]) -> None:
        x = make_inputs(4)
        for arch in architectures:
            out = _model(space, arch, input_shape, statistics=statistics)(x)
            assert out.shape == (4, N_OUTPUTS), space.describe(arch)
            assert torch.isfinite(out).all(), space.describe(arch)

    def test_json_round_trip_builds_the_same_network(self, space: SearchSpace, input_shape: tuple[int, ...],
                                                     architectures: list[Architecture], make_inputs: Inputs,
                                                     statistics: tuple[float, float]) -> None:
        x = make_inputs(3)
        for arch in architectures:
            a = _model(space, arch, input_shape, statistics=statistics)
            b = _model(space, json.loads(json.dumps(arch)), input_shape, seed=1, statistics=statistics)
            assert [(k, v.shape) for k, v in a.state_dict().items()] == \
                   [(k, v.shape) for k, v in b.state_dict().items()], space.describe(arch)
            b.load_state_dict(a.state_dict())
            torch.testing.assert_close(a(x), b(x))

    def test_prunes_with_torch_pruning(self, space: SearchSpace, input_shape: tuple[int, ...],
                                       architectures: list[Architecture], make_inputs: Inputs,
                                       statistics: tuple[float, float]) -> None:
        x = make_inputs(4)
        for arch in architectures:
            model = _model(space, arch, input_shape, statistics=statistics)
            before = sum(p.numel() for p in model.parameters())
            history = prune(model, x[:2], 0.4)
            after = sum(p.numel() for p in model.parameters())
            assert after < before, space.describe(arch)
            out = model(x)
            assert out.shape == (4, N_OUTPUTS), space.describe(arch)
            # The pruning history rebuilds the pruned network from the architecture alone.
            rebuilt = replay_pruning(_model(space, arch, input_shape, seed=7, statistics=statistics), x[:2],
                                     json.loads(json.dumps(history)))
            rebuilt.load_state_dict(model.state_dict())
            torch.testing.assert_close(rebuilt(x), out)

    def test_exports_to_onnx(self, space: SearchSpace, input_shape: tuple[int, ...],
                             architectures: list[Architecture], make_inputs: Inputs,
                             statistics: tuple[float, float]) -> None:
        x = make_inputs(5)
        models = [_model(space, arch, input_shape, statistics=statistics) for arch in architectures]
        with tempfile.TemporaryDirectory() as tmp:  # one network alone, as the search exports it
            path = export_onnx(models[0], x[:2], Path(tmp) / "0.onnx")
            assert check_onnx(path)["checker"] == "ok"
            got = run_onnx(session(path), x.numpy())  # batch 5 != export batch 2: dynamic batch
            np.testing.assert_allclose(got, models[0](x).detach().numpy(), atol=1e-4,
                                       err_msg=space.describe(architectures[0]))
        # every network, in one export (a failure names the culprit): batch 5 again
        _assert_export_together(models, x, [space.describe(a) for a in architectures])

    def test_iterative_compression_keeps_the_contract(self, space: SearchSpace, input_shape: tuple[int, ...],
                                                      architectures: list[Architecture], make_inputs: Inputs,
                                                      statistics: tuple[float, float]) -> None:
        """The standalone compression schedule on every architecture, cycling through the importance criteria
        and global / uniform pruning: strictly fewer parameters, output shape intact, finite outputs; the
        architecture + pruning record + state_dict, saved and reloaded with ``weights_only=True``, rebuild a
        network with identical outputs; and every pruned network exports to ONNX with matching outputs."""
        X = make_inputs(48).numpy()
        y = np.arange(48) % N_OUTPUTS
        if getattr(space, "input_kind", None) == "sequence":  # from_arrays reads (n, T, C) as images
            data = from_padded_sequences(X, y, task="classification")
        else:
            data = from_arrays(X, y, task="classification")
        fit_data, val_data = data.subset(np.arange(32)), data.subset(np.arange(32, 48))
        x = torch.as_tensor(X[:5])
        importances = ("l1", "l2", "taylor", "bn_scale")
        pruned_models = []
        for i, arch in enumerate(architectures):
            label = space.describe(arch)
            model = _model(space, arch, input_shape, statistics=statistics)
            norms = [m for m in model.modules() if isinstance(m, batch_norm_base())]
            for norm in norms:  # as after training: untrained scales are all 1, a tie for bn_scale
                norm.weight.data.uniform_(0.5, 1.5)
            importance = importances[i % 4]
            if importance == "bn_scale" and not norms:
                importance = "l2"
            config = CompressConfig(target_params=0.6, max_drop=100.0, steps=1, finetune_epochs=int(i % 5 == 0),
                                    round_to=1, importance=importance, global_pruning=bool(i % 2))
            result = prune_iteratively(model, fit_data, val_data, config=config,
                                       train_config=TrainConfig(batch_size=16), metric="accuracy")
            pruned = result.model.eval()
            n_before = sum(p.numel() for p in model.parameters())
            assert sum(p.numel() for p in pruned.parameters()) < n_before, (label, importance)
            out = pruned(x)
            assert out.shape == (5, N_OUTPUTS) and torch.isfinite(out).all(), label
            buffer = io.BytesIO()
            torch.save({"architecture": arch, "pruning_history": result.history, "state_dict": pruned.state_dict()},
                       buffer)
            buffer.seek(0)
            saved = torch.load(buffer, weights_only=True)
            rebuilt = replay_pruning(_model(space, saved["architecture"], input_shape, seed=7, statistics=statistics),
                                     x[:2], saved["pruning_history"])
            rebuilt.load_state_dict(saved["state_dict"])
            torch.testing.assert_close(rebuilt.eval()(x), out, rtol=0, atol=0, msg=label)
            pruned_models.append(pruned)
        _assert_export_together(pruned_models, x, [space.describe(a) for a in architectures])

    def test_grid_covers_every_suggested_parameter(self, space: SearchSpace, architectures: list[Any]) -> None:
        grid = space.grid()
        for arch in architectures:
            assert set(arch) <= set(grid), sorted(set(arch) - set(grid))


class _Together(torch.nn.Module):
    def __init__(self, models: list[torch.nn.Module]) -> None:
        super().__init__()
        self.models = torch.nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.models], dim=1)


def _assert_export_together(models: list[torch.nn.Module], x: torch.Tensor, labels: list[str]) -> None:
    """Export all ``models`` as one ONNX graph and compare each one's outputs in onnxruntime.

    One export instead of one per model: the dynamo exporter costs about a second a call (measured: 30 CNNs
    in 11 s together, 1 s each apart). When the joint export fails, the models are exported one by one to
    name the culprit.
    """
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = export_onnx(_Together(models).eval(), x[:2], Path(tmp) / "all.onnx")
        except Exception:
            for model, label in zip(models, labels, strict=True):
                try:
                    export_onnx(model, x[:2], Path(tmp) / "one.onnx")
                except Exception as exc:
                    raise AssertionError(f"the network of {label} does not export to ONNX: {exc}") from exc
            raise
        assert check_onnx(path)["checker"] == "ok"
        got = run_onnx(session(path), x.numpy())
    for i, (model, label) in enumerate(zip(models, labels, strict=True)):
        np.testing.assert_allclose(got[:, i], model(x).detach().numpy(), atol=1e-4, err_msg=label)
