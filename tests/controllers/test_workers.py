"""Two real worker processes optimize one SQLite study: every trial is accounted for, and each controller
builds its parents / policy from the shared storage (from the other worker's trials too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

N_TRIALS = 16  # per worker (SQLite write locks make two workers slow: ~0.1 s a trial)

# A worker: waits until both workers are up (so that they really run side by side), then optimizes.
WORKER = """
import pathlib, sys, time
import optuna
from autoarch.controllers import make_sampler

storage, name, controller, worker, ready = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
optuna.logging.set_verbosity(optuna.logging.WARNING)
pathlib.Path(ready, worker).touch()
deadline = time.monotonic() + 60
while len(list(pathlib.Path(ready).iterdir())) < 2 and time.monotonic() < deadline:
    time.sleep(0.01)

def objective(trial):
    trial.set_user_attr("worker", worker)
    n = trial.suggest_int("n_layers", 1, 3)
    widths = [trial.suggest_categorical(f"width_{i}", [8, 16, 32, 64]) for i in range(n)]
    op = trial.suggest_categorical("op", ["conv1", "conv3", "pool"])
    time.sleep(0.02)  # a (very) short training
    return sum(widths) / 64 + (op == "conv3") - abs(n - 2)

sampler = make_sampler(controller, seed=int(worker), n_trials=2 * {n})
study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
study.optimize(objective, n_trials={n})
""".replace("{n}", str(N_TRIALS))


def _two_workers(tmp_path: Path, controller: str) -> optuna.Study:
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    # Create the study before the workers start: two workers creating one fresh database race.
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    ready = tmp_path / "ready"
    ready.mkdir()
    root = Path(__file__).resolve().parents[2]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, storage, "s", controller, str(w), str(ready)],
                              cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in (1, 2)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    return optuna.load_study(study_name="s", storage=storage)


@pytest.mark.parametrize("controller", ["evolution", "reinforce"])
def test_two_processes_share_one_study(tmp_path: Path, controller: str) -> None:
    study = _two_workers(tmp_path, controller)
    trials = study.get_trials()
    assert len(trials) == 2 * N_TRIALS
    assert sorted(t.number for t in trials) == list(range(2 * N_TRIALS))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    by = {t.number: t.user_attrs["worker"] for t in trials}
    assert sorted(by.values()).count("1") == N_TRIALS
    # The workers really ran side by side: their trials interleave.
    assert sum(by[i] != by[i + 1] for i in range(2 * N_TRIALS - 1)) >= 4

    if controller == "evolution":
        children = [t for t in trials if "evolution:parent" in t.system_attrs]
        assert children, "the population never filled up"
        parents = {t.number: t.system_attrs["evolution:parent"] for t in children}
        assert all(p < c for c, p in parents.items())
        # Some child's parent was created by the other worker: the population is the shared one.
        assert any(by[p] != by[c] for c, p in parents.items())
    else:
        # A trial's policy was built from more completed trials than its own worker had made:
        # the other worker's trials were replayed too.
        for t in trials:
            assert 0 <= t.system_attrs["reinforce:history"] <= t.number
        own_before = {t.number: sum(by[j] == by[t.number] for j in range(t.number)) for t in trials}
        assert any(t.system_attrs["reinforce:history"] > own_before[t.number] for t in trials)
