"""A contract test suite every search space must pass (in the spirit of ``optuna.testing.pytest_samplers``).

Subclass :class:`SearchSpaceContract` in a test module and override the ``space`` and ``input_shape``
fixtures (and ``extremes`` for hand-picked architectures)::

    class TestMySpace(SearchSpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace()

Each test runs on ``N_SAMPLED`` architectures drawn at random plus the extremes. It needs pytest.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from autoarch.compress import check_onnx, export_onnx, prune, replay_pruning, run_onnx, session
from autoarch.search_spaces import Architecture, SearchSpace

from autoarch.model import Model

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


def _model(space: SearchSpace, arch: Architecture, input_shape: tuple[int, ...], seed: int = 0) -> Model:
    torch.manual_seed(seed)
    net = space.build(arch, input_shape, N_OUTPUTS)
    stat_shape = (input_shape[0], 1, 1) if len(input_shape) == 3 else input_shape
    return Model(net, np.full(stat_shape, 0.5, np.float32), np.full(stat_shape, 2.0, np.float32)).eval()


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
    def architectures(self, space: SearchSpace, extremes: list[Architecture]) -> list[Architecture]:
        return sample_architectures(space, N_SAMPLED) + list(extremes)

    def test_suggest_gives_plain_json_values(self, architectures: list[Architecture]) -> None:
        assert len(architectures) >= N_SAMPLED
        for arch in architectures:
            assert json.loads(json.dumps(arch)) == arch

    def test_builds_and_runs_forward(self, space: SearchSpace, input_shape: tuple[int, ...],
                                     architectures: list[Architecture]) -> None:
        x = torch.randn(4, *input_shape)
        for arch in architectures:
            out = _model(space, arch, input_shape)(x)
            assert out.shape == (4, N_OUTPUTS), space.describe(arch)
            assert torch.isfinite(out).all(), space.describe(arch)

    def test_json_round_trip_builds_the_same_network(self, space: SearchSpace, input_shape: tuple[int, ...],
                                                     architectures: list[Architecture]) -> None:
        x = torch.randn(3, *input_shape)
        for arch in architectures:
            a = _model(space, arch, input_shape)
            b = _model(space, json.loads(json.dumps(arch)), input_shape, seed=1)
            assert [(k, v.shape) for k, v in a.state_dict().items()] == \
                   [(k, v.shape) for k, v in b.state_dict().items()], space.describe(arch)
            b.load_state_dict(a.state_dict())
            torch.testing.assert_close(a(x), b(x))

    def test_prunes_with_torch_pruning(self, space: SearchSpace, input_shape: tuple[int, ...],
                                       architectures: list[Architecture]) -> None:
        x = torch.randn(4, *input_shape)
        for arch in architectures:
            model = _model(space, arch, input_shape)
            before = sum(p.numel() for p in model.parameters())
            history = prune(model, x[:2], 0.4)
            after = sum(p.numel() for p in model.parameters())
            assert after < before, space.describe(arch)
            out = model(x)
            assert out.shape == (4, N_OUTPUTS), space.describe(arch)
            # The pruning history rebuilds the pruned network from the architecture alone.
            rebuilt = replay_pruning(_model(space, arch, input_shape, seed=7), x[:2],
                                     json.loads(json.dumps(history)))
            rebuilt.load_state_dict(model.state_dict())
            torch.testing.assert_close(rebuilt(x), out)

    def test_exports_to_onnx(self, space: SearchSpace, input_shape: tuple[int, ...],
                             architectures: list[Architecture]) -> None:
        x = torch.randn(5, *input_shape)
        with tempfile.TemporaryDirectory() as tmp:
            for i, arch in enumerate(architectures):
                model = _model(space, arch, input_shape)
                path = export_onnx(model, x[:2], Path(tmp) / f"{i}.onnx")
                assert check_onnx(path)["checker"] == "ok"
                got = run_onnx(session(path), x.numpy())  # batch 5 != export batch 2: dynamic batch
                np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4, err_msg=space.describe(arch))

    def test_grid_covers_every_suggested_parameter(self, space: SearchSpace, architectures: list[Any]) -> None:
        grid = space.grid()
        for arch in architectures:
            assert set(arch) <= set(grid), sorted(set(arch) - set(grid))
