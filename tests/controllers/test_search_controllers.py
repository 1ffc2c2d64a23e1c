"""The new controllers drive a real (tiny) ``autoarch.search``, and the CLI offers every controller."""

from __future__ import annotations

import pytest

import autoarch
from autoarch.cli import build_parser
from autoarch.controllers import CONTROLLERS

TINY = dict(trials=2, cv=2, epochs=1, patience=1, finetune_epochs=1, calibration_samples=32, seed=0, prune=0.0)


@pytest.mark.parametrize("controller", ["reinforce", "nsga2"])
def test_search_runs_with_the_controller(controller: str) -> None:
    result = autoarch.search("iris", controller=controller, **TINY)
    assert len(result.study.trials) == 2
    assert any(t.state.name == "COMPLETE" for t in result.study.trials)


def test_the_cli_offers_every_controller() -> None:
    parser = build_parser()
    for name in CONTROLLERS:
        assert parser.parse_args(["search", "iris", "--controller", name]).controller == name
