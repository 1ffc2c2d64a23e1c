"""The crash matrix (issue #15): a real tiny search killed with SIGKILL at each phase in turn (the test hook
``$AUTOARCH_TEST_KILL_AT``, :func:`autoarch.rundir.crash_point`), rerun until it finishes, then checked: exit 0, the
exact trial count with none lost or repeated, and one consistent set of outputs.

The kills are chained through one run directory (each rerun resumes where the last was killed): a separate
search per phase would cost a full finish (export, int8) each, minutes on a 2-core machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
from optuna.trial import TrialState

import autoarch
from autoarch import rundir
from autoarch.predict import Predictor

PHASES = ["trial", "retrain", "prune", "export", "write:model.int8.onnx", "write:report.json", "commit"]


def _search(out, kill_at: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != rundir.KILL_ENV}
    if kill_at is not None:
        env[rundir.KILL_ENV] = kill_at
    args = ["search", "iris", "--trials", "3", "--cv", "2", "--epochs", "2", "--patience", "1", "--finetune-epochs",
            "1", "--calibration-samples", "32", "--prune", "0.3", "--out", str(out), "--quiet"]
    return subprocess.run([sys.executable, "-m", "autoarch.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def _finished(out) -> list[tuple[int, str, float | None]]:
    """The trials that count toward --trials (completed, or pruned by early stopping), as stored."""
    trials = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}").trials
    return [(t.number, t.state.name, t.value) for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


def test_a_search_killed_at_every_phase_finishes_with_nothing_lost(tmp_path) -> None:
    out = tmp_path / "run"
    budget = None
    for phase in PHASES:
        proc = _search(out, phase)
        assert proc.returncode == -signal.SIGKILL, (phase, proc.returncode, proc.stderr[-2000:])
        if phase == "trial":
            assert [n for n, _, _ in _finished(out)] == [0]  # killed right after the first trial was stored
            continue
        budget = budget or _finished(out)
        assert [n for n, _, _ in budget] == [0, 1, 2]  # resumed with the two left
        assert _finished(out) == budget, phase  # never redone, never one more
    proc = _search(out, None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _finished(out) == budget
    manifest = rundir.read_manifest(out)
    assert manifest is not None
    assert set(rundir.read_outputs(out, manifest["files"])) == set(manifest["files"])  # every file checks out
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging or temporary file left
    model = autoarch.load(out)
    assert model is not None
    labels, _ = Predictor(out / "model.int8.onnx").predict([[5.1, 3.5, 1.4, 0.2]])
    assert labels[0] in ("setosa", "versicolor", "virginica")


def test_a_search_killed_in_the_middle_of_a_trial_redoes_it_and_leaves_nothing_running(tmp_path) -> None:
    """Killed after a trial's first epoch and rerun at once (inside the 20 s heartbeat grace period): the rerun
    trains the three trials, and before its report it fails the one left RUNNING (about 20 s of waiting)."""
    out = tmp_path / "run"
    proc = _search(out, "epoch")
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.RUNNING]
    proc = _search(out, None)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states[0] == TrialState.FAIL  # the interrupted trial: not counted, not left running
    assert rundir.read_manifest(out) is not None and autoarch.load(out) is not None
