"""A user's own search space given by import path (``--space module:Class``): searched, recorded as that path,
and rebuilt by ``autoarch.load`` and ``autoarch compress`` (issue #12 item 4)."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

import autoarch
from autoarch.cli import main
from autoarch.exceptions import SpaceError
from autoarch.predict import Predictor
from autoarch.search_spaces import get_space, space_ref

MODULE = textwrap.dedent('''
    from autoarch.search_spaces import MLPSpace

    class TinyMLP(MLPSpace):
        """The MLP space cut to one or two narrow layers."""
        name = "tiny-mlp"

        def __init__(self):
            super().__init__(max_layers=2, widths=(8, 16))

    NOT_A_SPACE = 3
''')


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_spaces.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_spaces"
    sys.modules.pop("my_spaces", None)


def test_a_space_by_import_path_is_searched_recorded_and_reloaded(user_module, tmp_path):
    out = tmp_path / "run"
    assert main(["search", "iris", "--space", f"{user_module}:TinyMLP", "--trials", "2", "--cv", "2",
                 "--epochs", "2", "--workers", "1", "--out", str(out), "--quiet"]) == 0
    spec = json.loads((out / "architecture.json").read_text())
    assert spec["space"] == "my_spaces:TinyMLP"
    assert json.loads((out / "report.json").read_text())["config"]["space"] == "my_spaces:TinyMLP"
    assert spec["architecture"]["width_0"] in (8, 16)
    model = autoarch.load(out)
    predictor = Predictor(out / "model.onnx")
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(predictor.run(X), model(torch.as_tensor(X)).numpy(), rtol=1e-4, atol=1e-4)
    assert main(["compress", str(out), "--out", str(tmp_path / "c"), "--target-macs", "0.8", "--max-drop", "100",
                 "--steps", "1", "--finetune-epochs", "1", "--round-to", "1", "--quiet"]) == 0


def test_space_ref_names_built_ins_and_user_classes(user_module):
    assert space_ref(get_space("mlp")) == "mlp"
    assert space_ref(get_space(f"{user_module}:TinyMLP")) == "my_spaces:TinyMLP"


@pytest.mark.parametrize("path, message", [
    ("no_such_module_xyz:Space", "cannot import module 'no_such_module_xyz'"),
    ("my_spaces:Missing", "has no 'Missing'"),
    ("my_spaces:NOT_A_SPACE", "is not a SearchSpace subclass"),
])
def test_a_bad_import_path_is_one_line_exit_2(user_module, tmp_path, capsys, path, message):
    with pytest.raises(SpaceError, match=message):
        get_space(path)
    capsys.readouterr()
    assert main(["search", "iris", "--space", path, "--trials", "1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()
