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


def test_a_users_own_sampler_is_a_controller_by_import_path(tmp_path, monkeypatch) -> None:
    import optuna

    seeds, asked = [], []
    original_init, original_ask = optuna.samplers.QMCSampler.__init__, optuna.samplers.QMCSampler.sample_independent

    def init(self, *args, seed=None, **kwargs):
        seeds.append(seed)
        original_init(self, *args, seed=seed, **kwargs)

    def sample_independent(self, *args, **kwargs):
        asked.append(args[2])  # the parameter's name
        return original_ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.samplers.QMCSampler, "__init__", init)
    monkeypatch.setattr(optuna.samplers.QMCSampler, "sample_independent", sample_independent)
    result = autoarch.search("iris", controller="optuna.samplers:QMCSampler", out=tmp_path / "run", workers=1,
                             **TINY)
    assert seeds and all(isinstance(s, int) for s in seeds) and asked  # built with the search's seed, and asked
    assert result.report["search"]["controller"] == "optuna.samplers:QMCSampler"
    assert any(t.state.name == "COMPLETE" for t in result.study.trials)


@pytest.mark.parametrize(("path", "named"), [
    ("no_such_module:Sampler", "cannot import module 'no_such_module'"),
    ("optuna.samplers:NoSuchSampler", "has no 'NoSuchSampler'"),
    ("optuna.study:Study", "is not a BaseSampler subclass; give a subclass of optuna.samplers.BaseSampler"),
    ("evolutoin", "Did you mean 'evolution'?"),
])
def test_a_controller_that_is_not_a_sampler_is_one_line_and_exit_2(tmp_path, capsys, path, named) -> None:
    from autoarch.cli import main

    assert main(["search", "iris", "--controller", path, "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert not (tmp_path / "run").exists()
