"""A run's outputs: atomic, with the umask's mode, and replaced as one generation that readers check (issue #15,
items 1, 2 and 7)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import autoarch
from autoarch import rundir
from autoarch.cli import main
from autoarch.compress import CompressionResult, compress_run
from autoarch.exceptions import DataError
from autoarch.finish import SearchResult
from autoarch.predict import Predictor

TINY = dict(trials=3, cv=2, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0)
OUTPUTS = {"architecture.json", "model.pt", "winner.pt", "model.onnx", "model.int8.onnx", "leaderboard.csv",
           "report.json", "report.md", "report.html"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != "study.db"}


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    """A finished tiny search, written under umask 027 (so 0640 files: neither 0644 by chance nor 0600)."""
    out = tmp_path_factory.mktemp("rundir") / "iris"
    old = os.umask(0o027)
    try:
        autoarch.search("iris", out=out, **TINY)
    finally:
        os.umask(old)
    return out


@pytest.fixture
def run(iris_run, tmp_path):
    """A private copy of the finished run, to rewrite or damage."""
    copy = tmp_path / "iris"
    shutil.copytree(iris_run, copy)
    return copy


def test_outputs_get_the_umask_mode_and_one_manifest(iris_run) -> None:
    for name in OUTPUTS | {rundir.MANIFEST}:
        assert _mode(iris_run / name) == 0o640, name  # model.onnx was 0600 (tempfile.mkstemp)
    manifest = json.loads((iris_run / rundir.MANIFEST).read_text())
    assert set(manifest["files"]) == OUTPUTS  # the study changes during a search: not part of a generation
    for name, entry in manifest["files"].items():
        assert entry["size"] == (iris_run / name).stat().st_size
    assert rundir.read_outputs(iris_run, sorted(OUTPUTS)).keys() == OUTPUTS
    assert not [p for p in iris_run.iterdir() if p.name.startswith(".")]  # no staging or temporary file left


def test_search_result_export_is_atomic(tmp_path, monkeypatch) -> None:
    source = tmp_path / "model.onnx"
    source.write_bytes(b"new model " * 100)
    target = tmp_path / "shipped" / "model.onnx"
    target.parent.mkdir()
    target.write_bytes(b"the model in service")
    result = SearchResult(architecture={}, training={}, cv_scores={}, test_scores={}, model=nn.Identity(),
                          leaderboard=None, out_dir=tmp_path, study=None,
                          compression=CompressionResult(model=nn.Identity(), pruning_history=[], onnx_path=source))

    def killed_half_way(src, dst, **kwargs):
        Path(dst).write_bytes(Path(src).read_bytes()[:10])
        raise OSError("killed")

    monkeypatch.setattr(shutil, "copyfile", killed_half_way)
    with pytest.raises(OSError, match="killed"):
        result.export(target)
    assert target.read_bytes() == b"the model in service"
    assert os.listdir(target.parent) == ["model.onnx"]


def _rerun_failing_at(run: Path, name: str, monkeypatch, anywhere: bool = False) -> None:
    """Rerun the finished search with another --prune, failing (as a kill would stop it) when ``name`` is put in
    place in the run directory (``anywhere``: when a file ``name`` is renamed into place wherever it is written)."""
    real = os.replace

    def replace(src, dst):
        if Path(dst) == run / name or (anywhere and Path(dst).name == name):
            raise OSError("killed")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="killed"):
        autoarch.search("iris", out=run, **{**TINY, "prune": 0.5})
    monkeypatch.setattr(os, "replace", real)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_mixed_set_is_refused_in_one_line_by_every_reader(run, tmp_path, monkeypatch, capsys) -> None:
    # The case: a rerun into a finished run directory (another --prune) stopped half-way.
    _rerun_failing_at(run, "model.int8.onnx", monkeypatch)
    fix = f"rerun `autoarch search ... --out {run}`"
    with pytest.raises(DataError, match="does not belong to this run's outputs") as info:
        autoarch.load(run)
    assert fix in str(info.value) and len(str(info.value).splitlines()) == 1
    with pytest.raises(DataError, match=r"model\.int8\.onnx does not belong"):
        Predictor(run / "model.int8.onnx")
    with pytest.raises(DataError, match="does not belong"):
        compress_run(run)
    samples = tmp_path / "x.csv"
    samples.write_text("5.1,3.5,1.4,0.2\n")
    for args in (["predict", str(run / "model.int8.onnx"), str(samples)], ["compress", str(run)]):
        assert main([*args, "--quiet"]) == 2
        line = _one_line(capsys.readouterr().err)
        assert "does not belong to this run's outputs" in line and fix in line, line
    # Rerunning the same command finishes the set.
    autoarch.search("iris", out=run, **{**TINY, "prune": 0.5})
    assert json.loads((run / "report.json").read_text())["compression"]["prune_ratio"] == 0.5
    autoarch.load(run)
    Predictor(run / "model.int8.onnx")


def test_an_interrupted_rerun_keeps_the_previous_set_whole(run, monkeypatch) -> None:
    before = _snapshot(run)
    _rerun_failing_at(run, "report.md", monkeypatch, anywhere=True)  # the last output written
    assert _snapshot(run) == before
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    autoarch.load(run)
    _rerun_failing_at(run, rundir.MANIFEST, monkeypatch)  # every new file is complete; none is in place yet
    assert _snapshot(run) == before


def test_a_run_directory_without_manifest_still_loads(run) -> None:
    (run / rundir.MANIFEST).unlink()  # as an older autoarch wrote it
    autoarch.load(run)
    Predictor(run / "model.onnx")


def test_a_damaged_manifest_is_one_line(run) -> None:
    (run / rundir.MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match=r"manifest\.json cannot be read .*rerun the command that wrote"):
        autoarch.load(run)


def test_a_missing_output_the_manifest_names_is_reported(run) -> None:
    (run / "model.pt").unlink()
    with pytest.raises(DataError, match=r"model\.pt is missing from this run's outputs"):
        autoarch.load(run)


def test_a_model_the_manifest_does_not_name_is_predicted_unchecked(run) -> None:
    shutil.copyfile(run / "model.onnx", run / "mine.onnx")  # a user's copy, not a run output
    assert Predictor(run / "mine.onnx").classes == ["setosa", "versicolor", "virginica"]


def test_predictor_needs_neither_torch_nor_optuna(iris_run) -> None:
    code = (f"import sys; from autoarch.predict import Predictor; Predictor({str(iris_run / 'model.onnx')!r}); "
            "print(sorted({'torch', 'optuna'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_generation_replaces_its_writer_files_and_keeps_others(tmp_path) -> None:
    with rundir.Generation(tmp_path, writer="search") as gen:
        gen.write_text("report.json", "{}")
        gen.write_text("old.txt", "from the first search")
        gen.commit()
    with rundir.Generation(tmp_path, writer="compress") as gen:  # e.g. `autoarch compress --out` the run itself
        gen.write_text("compression.json", "{}")
        gen.commit()
    with rundir.Generation(tmp_path, writer="search") as gen:
        gen.save_state_dict("model.pt", nn.Linear(2, 1))
        gen.commit()
    assert sorted(os.listdir(tmp_path)) == ["compression.json", "manifest.json", "model.pt"]
    files = rundir.read_outputs(tmp_path, ["model.pt", "compression.json", "report.json"])
    assert set(files) == {"model.pt", "compression.json"}
    assert set(torch.load(tmp_path / "model.pt", weights_only=True)) == {"weight", "bias"}


def test_an_uncommitted_generation_changes_nothing(tmp_path) -> None:
    (tmp_path / "report.json").write_text("old")
    with pytest.raises(RuntimeError), rundir.Generation(tmp_path, writer="search") as gen:
        gen.write_text("report.json", "new")
        raise RuntimeError("the compression failed")
    assert os.listdir(tmp_path) == ["report.json"] and (tmp_path / "report.json").read_text() == "old"


def test_staging_left_by_a_killed_writer_is_removed(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{rundir.STAGING_PREFIX}{proc.stdout.strip()}-x"
    alive = tmp_path / f"{rundir.STAGING_PREFIX}1-x"  # pid 1 lives: another writer, still at work
    dead.mkdir(), alive.mkdir()
    with rundir.Generation(tmp_path, writer="search") as gen:
        gen.commit()
    assert not dead.exists() and alive.exists()
