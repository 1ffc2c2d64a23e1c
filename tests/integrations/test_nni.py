"""An NNI 3.0 model space as an autoarch search space (autoarch.integrations.nni, issue #16).

These tests need the ``nni`` extra (their own venv in .ci/run: ``pip install -c constraints-nni.txt -e
".[nni,dev]"``); without NNI they are skipped (tests/test_bad_input.py checks the one line a user gets then).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from torch import nn

nni = pytest.importorskip("nni")

from nni.mutable import ExpressionConstraint  # noqa: E402
from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableLinear, Repeat  # noqa: E402

import autoarch  # noqa: E402
from autoarch.exceptions import SpaceError  # noqa: E402
from autoarch.integrations.nni import NNISpace  # noqa: E402
from autoarch.search_spaces import get_space, space_ref  # noqa: E402
from autoarch.search_spaces.testing import SearchSpaceContract, sample_architectures  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))
from nni_digits import DigitsCNNSpace  # noqa: E402

REF = "nni_digits:DigitsCNNSpace"


class TestDigitsCNNSpace(SearchSpaceContract):
    """The example's NNI space passes the whole contract suite (30 sampled architectures): every rule applies to
    a network NNI froze, so none is skipped."""

    @pytest.fixture
    def space(self) -> NNISpace:
        return NNISpace(DigitsCNNSpace)

    @pytest.fixture
    def input_shape(self) -> tuple[int, ...]:
        return (1, 8, 8)


class Mixed(ModelSpace, label_prefix="m"):
    """One of every mapped mutable: a plain and a non-plain choice, a bounded quantized float, InputChoice with
    and without n_chosen, a Repeat depth whose blocks hold their own choices, and a choice nested inside one
    LayerChoice candidate only."""

    def __init__(self, input_shape: tuple[int, ...] = (6,), n_outputs: int = 2) -> None:
        super().__init__()
        width = nni.choice("width", [4, 8])
        self.pair = nni.choice("pair", [(1, 2), (3, 4)])  # not a plain value: searched by index
        self.add_mutable(self.pair)
        self.scale = nni.quniform("scale", 0.5, 2.0, 0.5)
        self.add_mutable(self.scale)
        self.scale_value = nni.mutable.ensure_frozen(self.scale)
        self.pair_value = nni.mutable.ensure_frozen(self.pair)
        self.stem = MutableLinear(input_shape[0], width)
        self.blocks = Repeat(lambda i: LayerChoice({
            "lin": MutableLinear(width, width),
            "wide": nn.Sequential(MutableLinear(width, nni.choice(f"inner{i}", [3, 5])), nn.ReLU(),
                                  MutableLinear(nni.choice(f"inner{i}", [3, 5]), width)),
        }, label=f"op{i}"), (1, 2), label="depth")
        self.one = InputChoice(3, n_chosen=2, reduction="sum", label="one")
        self.any = InputChoice(2, n_chosen=None, reduction="sum", label="any")
        self.head = MutableLinear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.stem(x)) * self.scale_value
        b = self.blocks(s)
        x = self.one([s, b, s + b])
        extra = self.any([b, s + b])  # None when no input is chosen
        return self.head(x if extra is None else x + extra)


def _suggest(space: NNISpace, **fixed) -> dict:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(fixed)
    return space.suggest(study.ask())


def test_every_mapped_mutable_becomes_a_plain_optuna_parameter() -> None:
    space = NNISpace(Mixed)
    arch = _suggest(space, **{"m/depth": 2, "m/op0": "wide", "m/op1": "lin"})
    assert json.loads(json.dumps(arch)) == arch
    assert all(type(k) is str for k in arch)  # NNI's labels are a str subclass that torch.load rejects
    assert arch["m/pair"] in (0, 1)  # a tuple choice by index
    assert arch["m/one"] in ("0,1", "0,2", "1,2")  # n_chosen=2 of 3: one choice over the subsets
    assert {"m/any/0", "m/any/1"} <= set(arch)  # no n_chosen: a bool per input
    sample = space.sample(arch)
    assert sample["m/pair"] in ((1, 2), (3, 4))
    assert sample["m/scale"] in (0.5, 1.0, 1.5, 2.0)  # quantized as NNI does
    assert len(sample["m/one"]) == 2
    grid = space.grid()
    assert grid["m/one"] == ["0,1", "0,2", "1,2"] and grid["m/pair"] == [0, 1] and grid["m/scale"] == [0.5, 1.25, 2.0]


def test_only_the_labels_the_chosen_network_builds_are_suggested() -> None:
    """A block Repeat leaves out is never built, so its labels are not suggested. (A choice inside a
    LayerChoice candidate is: NNI builds every candidate before the LayerChoice picks one.)"""
    space = NNISpace(Mixed)
    shallow = _suggest(space, **{"m/depth": 1, "m/op0": "lin"})
    assert "m/op1" not in shallow and "m/inner1" not in shallow and "m/inner0" in shallow
    deep = _suggest(space, **{"m/depth": 2, "m/op0": "wide", "m/op1": "wide"})
    assert {"m/op1", "m/inner0", "m/inner1"} <= set(deep)
    net = space.build(deep, (6,), 2)
    assert net(torch.randn(3, 6)).shape == (3, 2)
    inner = [m for m in net.modules() if isinstance(m, nn.Linear) and m.out_features in (3, 5)]
    assert len(inner) == 2  # both wide blocks were built, each with its own inner width
    assert net.head is net.body.head


def test_the_sample_is_the_one_nni_freezes_to_the_same_network() -> None:
    space = NNISpace(DigitsCNNSpace)
    for arch in sample_architectures(space, 5, seed=3):
        ours = space.build(arch, (1, 8, 8), 10)
        theirs = DigitsCNNSpace().freeze(space.sample(arch))
        assert [(k, v.shape) for k, v in ours.body.state_dict().items()] == \
               [(k, v.shape) for k, v in theirs.state_dict().items()]


def test_an_import_path_gives_the_space_and_the_run_records_it_again() -> None:
    space = get_space(REF, "image")
    assert isinstance(space, NNISpace) and space_ref(space) == REF
    assert space_ref(get_space(space_ref(space), "image")) == REF


class Unbounded(ModelSpace, label_prefix="u"):
    def __init__(self) -> None:
        super().__init__()
        self.add_mutable(nni.normal("noise", 0.0, 1.0))
        self.head = nn.Linear(2, 2)


class Constrained(ModelSpace, label_prefix="c"):
    def __init__(self) -> None:
        super().__init__()
        a = nni.choice("a", [1, 2])
        self.add_mutable(ExpressionConstraint(a > 1, label="a_gt_1"))
        self.head = MutableLinear(2, a)


class NoHead(ModelSpace, label_prefix="n"):
    def __init__(self, n_outputs: int = 2) -> None:
        super().__init__()
        self.fc = MutableLinear(4, nni.choice("w", [5, 6]))


@pytest.mark.parametrize(("cls", "words"), [
    (Unbounded, "no finite low and high"),
    (Constrained, "ExpressionConstraint, which autoarch does not map"),
])
def test_a_mutable_autoarch_does_not_map_is_named_in_one_line(cls: type, words: str) -> None:
    with pytest.raises(SpaceError, match=words) as info:
        NNISpace(cls)
    assert "\n" not in str(info.value)


def test_a_network_without_a_head_or_an_output_layer_is_refused() -> None:
    space = NNISpace(NoHead)
    with pytest.raises(SpaceError, match="no .head and no nn.Linear with 2 outputs"):
        space.build(_suggest(space), (4,), 2)


def test_the_core_does_not_import_nni() -> None:
    code = ("import sys, autoarch, autoarch.cli, autoarch.runner, autoarch.compress, autoarch.predict\n"
            "from autoarch.search_spaces import get_space\n"
            "get_space('cnn', 'image'); get_space('mlp')\n"
            "assert 'nni' not in sys.modules, sorted(m for m in sys.modules if m.startswith('nni'))\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("controller", ["evolution", "reinforce", "random", "tpe", "grid"])
def test_every_controller_searches_the_nni_space(controller: str, tmp_path: Path) -> None:
    result = autoarch.search("digits", space=NNISpace(DigitsCNNSpace), controller=controller, trials=3, cv=2,
                             epochs=1, max_samples=400, prune=0.0, out=tmp_path / "run", seed=0, workers=1)
    finished = result.leaderboard[result.leaderboard["state"] == "COMPLETE"]
    assert len(finished) == 3
    assert all(k.startswith("digits/") for k in result.architecture if "/" in k)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES), "AUTOARCH_WORKERS": "1"}
    return subprocess.run([sys.executable, "-m", "autoarch.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=900)


def test_cli_search_resume_workers_prune_int8_predict_and_reload(tmp_path: Path) -> None:
    """``autoarch search digits --space module:NNIClass`` from the CLI: two workers, pruning and int8, a resumed
    run adding trials, ``autoarch predict`` on the int8 file, ``autoarch compress`` and ``autoarch.load``."""
    run = tmp_path / "run"
    common = ["search", "digits", "--space", REF, "--cv", "2", "--epochs", "2", "--max-samples", "600",
              "--prune", "0.3", "--out", str(run), "--seed", "0"]
    first = _cli(*common, "--trials", "3", "--workers", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "is found to be not a nn.Module" not in first.stderr  # NNI's import warning is silenced
    again = _cli(*common, "--trials", "5", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["config"]["space"] == REF
    board = (run / "leaderboard.csv").read_text().splitlines()[1:]
    states = [row.split(",")[1] for row in board]
    assert len(states) == 5 and set(states) <= {"COMPLETE", "PRUNED"}, states  # 3, then 2 more on resume
    assert (run / "model.int8.onnx").is_file()
    stages = {s["stage"]: s for s in report["compression"]["stages"]}
    assert stages["torch pruned"]["params"] < stages["torch fp32"]["params"]
    assert stages["onnx int8"]["checker"] == "ok" and stages["onnx int8"]["argmax_agreement_vs_torch"] > 0.9
    from autoarch.loaders import load_dataset

    images = load_dataset("digits").X[:8]
    np.savez(tmp_path / "images.npz", X=images)
    pred = _cli("predict", str(run / "model.int8.onnx"), str(tmp_path / "images.npz"), cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr[-2000:]
    assert len([line for line in pred.stdout.splitlines() if line.strip()]) >= 8
    model = autoarch.load(run)
    with torch.no_grad():
        assert model(torch.as_tensor(images, dtype=torch.float32)).shape == (8, 10)
    recompressed = _cli("compress", str(run), "--target-params", "0.6", "--max-drop", "100", "--steps", "1",
                        "--finetune-epochs", "1", "--out", str(tmp_path / "again"), cwd=tmp_path)
    assert recompressed.returncode == 0, recompressed.stderr[-2000:]
    assert (tmp_path / "again" / "model.int8.onnx").is_file()


def test_the_example_ships_a_verified_int8_model(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / "nni_digits.py"), "--trials", "2", "--cv", "2",
                           "--epochs", "1", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                          env={**os.environ, "AUTOARCH_WORKERS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "best NNI sample:" in proc.stdout and "held-out accuracy" in proc.stdout
    assert (tmp_path / "run" / "model.int8.onnx").is_file()
