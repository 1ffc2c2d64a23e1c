"""The bad-input matrix: every kind of bad input ends with one line and the right exit status, never a
traceback, and leaves every file as it was.

The cases run ``autoarch.cli.main`` in-process (the same guard as the console script, without ~3 s of imports
per case); a few real subprocesses check what only a process shows (a closed pipe, the interpreter's exit).
Each case asserts: the exit status, exactly one line on stderr that names the problem, no "Traceback", and a
world directory (data, models, run directories, the working directory) byte-identical afterwards: nothing
changed where files existed, nothing created where they did not.

Kinds already covered elsewhere (not repeated here): tests/test_cli.py ``_bad_inputs`` (10: missing file,
misspelled data set and option, unknown and wrong-task metric, text features, NaN features, a class rarer than
the folds, ``--cv 1``, ``--out`` a file) and ``test_argparse_errors_exit_2``; tests/test_predict.py (8: too many
features, missing columns, a .txt input, an ONNX without metadata, a junk .onnx, a missing input, an image or a
folder for a tabular model); tests/test_large_data.py (6: an image folder empty, of one class, of mixed sizes,
with a junk file, a test folder of other classes, a test file of other classes).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import optuna
import pandas as pd
import pytest
import torch

import autoarch
from autoarch.cli import main
from autoarch.compress import export_onnx, model_metadata
from autoarch.compress.export import set_metadata
from autoarch.data import from_arrays
from autoarch.evaluate import build_model
from autoarch.exceptions import AutoArchError
from autoarch.loaders import load_dataset
from autoarch.predict import Predictor, predict_file
from autoarch.search_spaces import MLPSpace

MLP = {"n_layers": 1, "width_0": 16, "connectivity": "plain", "activation": "relu", "dropout": 0.0,
       "batch_norm": False}
MARKER = "PWNED"
"""A file that the malicious pickles below would create if anything unpickled them."""


class _Evil:
    """Unpickling this runs code: it creates the marker file in the working directory."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (Path(MARKER),))


def _with_metadata(src: Path, dst: Path, **changes: str) -> None:
    proto = onnx.load(str(src))
    set_metadata(proto, changes)
    onnx.save_model(proto, str(dst))


def _run_dir(path: Path, data, arch: dict[str, Any] = MLP, **spec_changes: Any) -> Path:
    """A search's run directory as compress reads it: architecture.json (of ``arch``), winner.pt (of ``MLP``),
    report.json."""
    path.mkdir()
    model = build_model(MLPSpace(), MLP, data)
    spec = {"space": "mlp", "architecture": arch, "input_shape": list(data.input_shape),
            "n_outputs": data.n_outputs, "task": data.task, "classes": data.classes, **spec_changes}
    (path / "architecture.json").write_text(json.dumps(spec))
    torch.save(model.state_dict(), path / "winner.pt")
    (path / "report.json").write_text(json.dumps(IRIS_REPORT))
    return path


IRIS_REPORT = {  # the sections every report.json has; the data (iris, seed 0) is what compress reloads
    "schema_version": 1, "config": {"seed": 0},
    "data": {"name": "iris", "task": "classification", "input_shape": [4], "n_samples": 150, "n_train": 120,
             "n_test": 30},
    "search": {"space": "mlp", "controller": "evolution", "metric": "accuracy"},
    "best": {"trial": 0, "architecture": MLP, "summary": "an MLP", "training": {}, "cv": {}},
    "compression": {"stages": []}}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """Every file the cases point at, made once: a tabular model and its edited copies, broken data files, run
    directories, study databases."""
    w = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    data = from_arrays(rng.normal(size=(40, 4)), np.array(["x", "y", "z", "x"] * 10), task="classification",
                       feature_names=["a", "b", "c", "d"])
    model = build_model(MLPSpace(), MLP, data).eval()
    meta = model_metadata(model, task=data.task, classes=data.classes, input_shape=data.input_shape,
                          feature_names=data.feature_names)
    export_onnx(model, torch.as_tensor(data.X[:2]), w / "model.onnx", meta)
    for name, changes in {"shape_text": {"input_shape": '"4"'}, "shape_bad": {"input_shape": "[2, 2]"},
                          "classes_text": {"classes": '"xyz"'}, "classes_few": {"classes": '["x", "y"]'},
                          "task_bad": {"task": "clustering"}, "names_few": {"feature_names": '["a"]'},
                          "shape_junk": {"input_shape": "[4"}}.items():
        _with_metadata(w / "model.onnx", w / f"{name}.onnx", **changes)
    frame = pd.DataFrame(data.X, columns=["a", "b", "c", "d"])
    frame.to_csv(w / "rows.csv", index=False)
    frame.assign(label=data.labels(data.y)).to_csv(w / "semi.csv", sep=";", index=False)
    frame.assign(a=["t"] * 40).to_csv(w / "text_rows.csv", index=False)
    frame.assign(a=np.nan).to_csv(w / "nan_rows.csv", index=False)
    (w / "empty.csv").write_text("")
    (w / "header.csv").write_text("a,b,label\n")
    (w / "latin1.csv").write_bytes("a,b,label\n1,2,caf\xe9\n".encode("latin-1") * 5)
    frame.assign(label=[None] * 5 + ["x"] * 35).to_csv(w / "nan_target.csv", index=False)
    (w / "notes.txt").write_text("1,2,3,4\n")

    np.savez(w / "ok.npz", X=data.X, y=data.y)
    (w / "trunc.npz").write_bytes((w / "ok.npz").read_bytes()[:300])
    np.savez(w / "objects.npz", X=np.array([_Evil(), 1.0], dtype=object), y=np.array([_Evil(), 1], dtype=object))
    (w / "pickle.npz").write_bytes(pickle.dumps({"X": _Evil()}))
    np.save(w / "single.npy", data.X)
    os.replace(w / "single.npy", w / "single.npz")
    np.savez(w / "strings.npz", X=np.array([["a", "b", "c", "d"]] * 4), y=np.arange(4))
    np.savez(w / "no_y.npz", X=data.X)
    np.savez(w / "two.npz", A=data.X, B=data.X)
    (w / "images" / "cat").mkdir(parents=True)

    iris = load_dataset("iris")
    good = _run_dir(w / "run", iris)
    (good / "afile").write_text("a file where a directory is expected")
    (_run_dir(w / "run_garbage", iris) / "winner.pt").write_bytes(rng.bytes(3000))
    torch.save({"mean": _Evil()}, _run_dir(w / "run_evil", iris) / "winner.pt")
    torch.save(torch.zeros(3), _run_dir(w / "run_tensor", iris) / "winner.pt")
    _run_dir(w / "run_negative", iris, arch={**MLP, "width_0": -4})
    (_run_dir(w / "run_json", iris) / "architecture.json").write_text('{"space": "mlp",')
    (_run_dir(w / "run_keys", iris) / "architecture.json").write_text('{"space": "mlp"}')
    torch.save(build_model(MLPSpace(), {**MLP, "width_0": 32}, iris).state_dict(),
               _run_dir(w / "run_mismatch", iris) / "winner.pt")
    _run_dir(w / "run_space", iris, space="transformer")
    _run_dir(w / "run_shape", iris, input_shape="4")

    for name, content in {"garbage": rng.bytes(5000), "malformed": b"SQLite format 3\x00" + rng.bytes(20000)}.items():
        (w / name).mkdir()
        (w / name / "study.db").write_bytes(content)
    (w / "studies").mkdir()
    optuna.create_study(study_name="other", storage=f"sqlite:///{w / 'studies' / 'other.db'}")
    return w


def _snapshot(root: Path) -> dict[str, str]:
    """Every path below ``root`` with a hash of its bytes (directories too, so that nothing new hides)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


# (id, arguments with {w} for the world directory, exit status, a part of the message)
CLI_CASES = [
    # search: data files
    ("search-npz-truncated", ["search", "{w}/trunc.npz", "--out", "{w}/new"], 2, "trunc.npz: not a readable .npz"),
    ("search-npz-object-arrays", ["search", "{w}/objects.npz", "--out", "{w}/new"], 2, "does not unpickle"),
    ("search-npz-a-pickle", ["search", "{w}/pickle.npz", "--out", "{w}/new"], 2, "pickle.npz: not a readable .npz"),
    ("search-npz-single-npy", ["search", "{w}/single.npz", "--out", "{w}/new"], 2, "not an .npz archive"),
    ("search-npz-strings", ["search", "{w}/strings.npz", "--out", "{w}/new"], 2, "must be numeric"),
    ("search-npz-no-y", ["search", "{w}/no_y.npz", "--out", "{w}/new"], 2, "needs arrays 'X' and 'y'"),
    ("search-csv-semicolon-typo", ["search", "{w}/semi.csv", "--target", "lable", "--out", "{w}/new"], 2,
     "Did you mean 'label'"),
    ("search-csv-empty", ["search", "{w}/empty.csv", "--target", "label", "--out", "{w}/new"], 2, "empty"),
    ("search-csv-header-only", ["search", "{w}/header.csv", "--target", "label", "--out", "{w}/new"], 2,
     "no data rows"),
    ("search-csv-latin1", ["search", "{w}/latin1.csv", "--target", "label", "--out", "{w}/new"], 2, "encoding"),
    ("search-csv-nan-target", ["search", "{w}/nan_target.csv", "--target", "label", "--out", "{w}/new"], 2,
     "5 missing values"),
    ("search-csv-no-target", ["search", "{w}/rows.csv", "--out", "{w}/new"], 2, "needs --target"),
    ("search-txt-data", ["search", "{w}/notes.txt", "--out", "{w}/new"], 2, "unknown data"),
    # search: options
    ("search-target-on-builtin", ["search", "iris", "--target", "foo", "--out", "{w}/new"], 2,
     "'iris' is a built-in data set"),
    ("search-target-on-npz", ["search", "{w}/ok.npz", "--target", "foo", "--out", "{w}/new"], 2,
     "a .npz file whose targets are its array y"),
    ("search-target-on-folder", ["search", "{w}/images", "--target", "foo", "--out", "{w}/new"], 2,
     "a folder of images"),
    ("search-out-under-a-file", ["search", "iris", "--out", "{w}/run/afile/sub"], 2, "cannot write to --out"),
    ("search-test-missing", ["search", "iris", "--test", "{w}/missing.csv", "--out", "{w}/new"], 2,
     "does not exist"),
    ("search-cnn-for-tabular", ["search", "iris", "--space", "cnn", "--out", "{w}/new"], 2, "--space auto"),
    ("search-test-size", ["search", "iris", "--test-size", "1.5", "--out", "{w}/new"], 2, "'test_size'"),
    ("search-epochs-0", ["search", "iris", "--epochs", "0", "--out", "{w}/new"], 2, "--epochs: must be 'auto'"),
    ("search-workers-0", ["search", "iris", "--workers", "0", "--out", "{w}/new"], 2, "--workers"),
    ("search-workers-env", ["search", "iris", "--workers", "auto", "--out", "{w}/new"], 2, "$AUTOARCH_WORKERS"),
    # search: the run directory
    ("search-study-db-garbage", ["search", "iris", "--out", "{w}/garbage"], 2,
     "garbage/study.db is not an optuna SQLite study"),
    ("search-study-db-malformed", ["search", "iris", "--out", "{w}/malformed"], 2,
     "malformed/study.db is not an optuna SQLite study"),
    # predict: inputs
    ("predict-npz-truncated", ["predict", "{w}/model.onnx", "{w}/trunc.npz"], 2, "trunc.npz: not a readable .npz"),
    ("predict-npz-object-arrays", ["predict", "{w}/model.onnx", "{w}/objects.npz"], 2, "does not unpickle"),
    ("predict-npz-a-pickle", ["predict", "{w}/model.onnx", "{w}/pickle.npz"], 2, "not a readable .npz"),
    ("predict-npz-single-npy", ["predict", "{w}/model.onnx", "{w}/single.npz"], 2, "not an .npz archive"),
    ("predict-npz-strings", ["predict", "{w}/model.onnx", "{w}/strings.npz"], 2, "not numeric"),
    ("predict-npz-no-X", ["predict", "{w}/model.onnx", "{w}/two.npz"], 2, "needs an array 'X'"),
    ("predict-csv-empty", ["predict", "{w}/model.onnx", "{w}/empty.csv"], 2, "the file is empty"),
    ("predict-csv-text", ["predict", "{w}/model.onnx", "{w}/text_rows.csv"], 2, "must be numeric"),
    ("predict-csv-nan", ["predict", "{w}/model.onnx", "{w}/nan_rows.csv"], 2, "NaN"),
    ("predict-model-a-folder", ["predict", "{w}", "{w}/rows.csv"], 2, "does not exist"),
    # predict: the output
    ("predict-output-a-folder", ["predict", "{w}/model.onnx", "{w}/rows.csv", "-o", "{w}/run"], 2,
     "is a directory"),
    ("predict-output-under-a-file", ["predict", "{w}/model.onnx", "{w}/rows.csv", "-o", "{w}/rows.csv/p.csv"], 2,
     "rows.csv' is a file"),
    # predict: ONNX metadata that is malformed or disagrees with the graph
    ("predict-meta-shape-text", ["predict", "{w}/shape_text.onnx", "{w}/rows.csv"], 2, "'input_shape' must be a list"),
    ("predict-meta-shape-junk", ["predict", "{w}/shape_junk.onnx", "{w}/rows.csv"], 2, "'input_shape' must be a list"),
    ("predict-meta-shape-graph", ["predict", "{w}/shape_bad.onnx", "{w}/rows.csv"], 2,
     "disagrees with the graph's input"),
    ("predict-meta-classes-text", ["predict", "{w}/classes_text.onnx", "{w}/rows.csv"], 2, "'classes' must be a list"),
    ("predict-meta-classes-few", ["predict", "{w}/classes_few.onnx", "{w}/rows.csv"], 2,
     "names 2 labels, but the graph has 3 outputs"),
    ("predict-meta-task", ["predict", "{w}/task_bad.onnx", "{w}/rows.csv"], 2, "'task' must be"),
    ("predict-meta-feature-names", ["predict", "{w}/names_few.onnx", "{w}/rows.csv"], 2, "'feature_names'"),
    # compress
    ("compress-winner-garbage", ["compress", "{w}/run_garbage"], 2, "winner.pt is refused"),
    ("compress-winner-malicious", ["compress", "{w}/run_evil"], 2, "winner.pt is refused"),
    ("compress-winner-a-tensor", ["compress", "{w}/run_tensor"], 2, "not the state dict"),
    ("compress-winner-mismatch", ["compress", "{w}/run_mismatch"], 2, "does not fit the network"),
    ("compress-negative-width", ["compress", "{w}/run_negative"], 2, "does not build a network"),
    ("compress-shape-text", ["compress", "{w}/run_shape"], 2, "'input_shape' must be a list"),
    ("compress-unknown-space", ["compress", "{w}/run_space"], 2, "space must be one of"),
    ("compress-json-invalid", ["compress", "{w}/run_json"], 2, "is not valid JSON"),
    ("compress-json-keys", ["compress", "{w}/run_keys"], 2, "lacks ["),
    ("compress-run-missing", ["compress", "{w}/nowhere"], 2, "does not exist"),
    ("compress-out-a-file", ["compress", "{w}/run", "--out", "{w}/run/afile"], 2, "afile' is a file"),
    ("compress-out-under-a-file", ["compress", "{w}/run", "--out", "{w}/run/afile/sub"], 2, "afile' is a file"),
    ("compress-target-share", ["compress", "{w}/run", "--target-params", "1.5"], 2, "'target_params'"),
    # worker
    ("worker-storage-garbage", ["worker", "--storage", "sqlite:///{w}/garbage/study.db"], 2,
     "is not an optuna SQLite study"),
    ("worker-no-such-study", ["worker", "--storage", "sqlite:///{w}/studies/other.db", "--study", "mine"], 2,
     "no study 'mine'"),
    ("worker-foreign-study", ["worker", "--storage", "sqlite:///{w}/studies/other.db", "--study", "other"], 2,
     "not created by 'autoarch search'"),
]


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code)


@pytest.mark.parametrize("args, code, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_input_ends_with_one_line_and_changes_nothing(world, monkeypatch, capsys, args, code, message) -> None:
    monkeypatch.chdir(world)  # a stray write into the working directory shows in the snapshot too
    if "auto" in args:
        monkeypatch.setenv("AUTOARCH_WORKERS", "many")
    before = _snapshot(world)
    argv = [a.format(w=world) for a in args]
    assert _exit_code([*argv, "--quiet"]) == code, argv
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.match(r"autoarch( search)?: error: ", lines[0]), err  # argparse names the command
    assert message in lines[0] and "Traceback" not in err, err
    assert _snapshot(world) == before
    assert not (world / MARKER).exists()


API_CASES = [
    ("api-search-text-features", lambda w: autoarch.search(np.array([["a"]] * 10), np.arange(10) % 2),
     "must be numeric"),
    ("api-search-no-y", lambda w: autoarch.search(np.zeros((10, 2))), "targets y are missing"),
    ("api-search-unknown-option", lambda w: autoarch.search("iris", trails=3), "Did you mean 'trials'"),
    ("api-search-target-on-builtin", lambda w: autoarch.search("iris", target="foo"), "built-in data set"),
    ("api-load-npz-object-arrays", lambda w: load_dataset(str(w / "objects.npz")), "does not unpickle"),
    ("api-predictor-meta", lambda w: Predictor(w / "classes_few.onnx"), "names 2 labels"),
    ("api-predict-output-a-folder", lambda w: predict_file(w / "model.onnx", w / "rows.csv", output=w),
     "is a directory"),
    ("api-compress-run-malicious", lambda w: autoarch.compress.compress_run(w / "run_evil"), "is refused"),
    ("api-compress-out-a-file", lambda w: autoarch.compress.compress_run(w / "run", out=w / "run" / "afile"),
     "is a file"),
    ("api-load-missing", lambda w: autoarch.load(w / "nowhere"), "does not exist; give the --out directory"),
]


@pytest.mark.parametrize("call, message", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_bad_input_to_the_python_api_raises_one_autoarch_error(world, monkeypatch, call, message) -> None:
    monkeypatch.chdir(world)
    before = _snapshot(world)
    with pytest.raises(AutoArchError, match=message) as err:
        call(world)
    assert "\n" not in str(err.value)
    assert _snapshot(world) == before
    assert not (world / MARKER).exists()


# The guard around every command: whatever a command raises becomes one line.

@pytest.mark.parametrize("exc, code, message", [
    (RuntimeError("boom\nsecond line"), 1, "unexpected RuntimeError: boom (rerun with --debug"),
    (OSError(28, "No space left on device", "/full/p.csv"), 1, "'/full/p.csv': No space left on device"),
    (PermissionError(13, "Permission denied", "/ro/p.csv"), 2, "'/ro/p.csv': Permission denied"),
    (MemoryError(), 1, "out of memory"),
], ids=["runtime-error", "disk-full", "permission", "memory"])
def test_the_guard_turns_any_exception_into_one_line(world, monkeypatch, capsys, exc, code, message) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise exc

    monkeypatch.setattr("autoarch.predict.predict_csv", fail)
    argv = ["predict", str(world / "model.onnx"), str(world / "rows.csv")]
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"autoarch: error: {message}"), err
    with pytest.raises(type(exc)):
        main([*argv, "--debug"])


def _cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoarch.cli", *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def test_a_real_process_ends_with_one_line_or_a_traceback_under_debug(world) -> None:
    before = _snapshot(world)
    done = _cli("predict", str(world / "model.onnx"), str(world / "trunc.npz"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"autoarch: error: {world / 'trunc.npz'}: not a readable .npz file (File is "
                                        "not a zip file); save it with numpy.savez(path, X=X)."]
    debug = _cli("compress", str(world / "run_negative"), "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "does not build a network" in debug.stderr
    assert _snapshot(world) == before


def test_a_closed_pipe_ends_quietly(world, tmp_path) -> None:
    np.savez(tmp_path / "many.npz", X=np.zeros((30000, 4), dtype=np.float32))  # far more than a pipe buffers
    command = (f"{sys.executable} -m autoarch.cli predict {world / 'model.onnx'} {tmp_path / 'many.npz'} "
               f"2>{tmp_path / 'err.txt'} | head -1; echo \"status=${{PIPESTATUS[0]}}\"")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines() == ["prediction,proba_x,proba_y,proba_z", "status=141"], done.stdout
    assert (tmp_path / "err.txt").read_text() == ""


def test_a_space_that_needs_nni_without_nni_names_the_install_command(tmp_path, monkeypatch, capsys) -> None:
    """``--space module:Class`` where the module imports NNI and NNI is absent (the core never needs it)."""
    import importlib.util

    if importlib.util.find_spec("nni") is not None:
        pytest.skip("NNI is installed here (the nni extra's venv); tests/integrations/test_nni.py covers it")
    (tmp_path / "my_nni_space.py").write_text("import nni\n\nclass Space:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert _exit_code(["search", "iris", "--space", "my_nni_space:Space", "--quiet"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "needs NNI, which is not installed" in lines[0], err
    assert 'pip install -c constraints-nni.txt "autoarch[nni]"' in lines[0] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_nni_space.py"]
