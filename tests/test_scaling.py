"""Many workers, storages, crash safety, early stopping and resource guards (real processes, real kill -9)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

import autoarch
import autoarch.budget
from autoarch.exceptions import AutoArchError, ConfigError
from autoarch.search_spaces import MLPSpace
from autoarch.study import open_storage

TINY = dict(cv=2, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0, prune=0.0)
CLI_TINY = ["--cv", "2", "--epochs", "2", "--patience", "1", "--finetune-epochs", "1", "--calibration-samples",
            "32", "--prune", "0", "--quiet"]
POSTGRES = os.environ.get("AUTOARCH_TEST_POSTGRES_URL")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "autoarch.cli", *args]


def _counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    from autoarch.budget import counts_toward_budget

    return [t for t in study.trials if counts_toward_budget(t)]


def test_two_local_workers_share_one_study(tmp_path) -> None:
    result = autoarch.search("iris", out=tmp_path / "run", trials=6, workers=2, **TINY)
    counted = _counted(result.study)
    assert 6 <= len(counted) <= 7  # exact, or one over when both workers start a trial at the same instant
    assert all(t.state.name == "COMPLETE" for t in counted)
    assert len({t.number for t in counted}) == len(counted)


def _query(url: str, sql: str) -> list[tuple]:
    """Read the optuna tables without opening an optuna storage: opening one on a database that another process
    is creating races with it (both try to create the schema)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sqlalchemy.text(sql))]
    except sqlalchemy.exc.SQLAlchemyError:  # not created yet
        return []
    finally:
        engine.dispose()


def _wait_for(predicate, timeout: float = 180.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError("condition not reached")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(
    POSTGRES is None, reason="set AUTOARCH_TEST_POSTGRES_URL (.ci/run starts a PostgreSQL server)"))])
def test_a_worker_process_joins_a_study_in_the_storage(tmp_path, backend: str) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else POSTGRES
    study = f"joined-{uuid.uuid4().hex[:8]}"
    # Enough trials that the search is still running when the worker has started (a worker imports torch first).
    search = subprocess.Popen(_cli("search", "wine", "--trials", "40", "--storage", url, "--study", study,
                                   "--out", str(tmp_path / "run"), *CLI_TINY), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (study,) in _query(url, "SELECT study_name FROM studies"))
    time.sleep(1.0)  # let the search finish setting up the study
    worker = subprocess.run(_cli("worker", "--storage", url, "--study", study, "--quiet"), capture_output=True,
                            text=True, timeout=300)
    out, err = search.communicate(timeout=300)
    assert search.returncode == 0, err
    assert worker.returncode == 0, worker.stderr
    joined = int(worker.stdout.split("evaluated ")[1].split()[0])
    counted = _counted(optuna.load_study(study_name=study, storage=open_storage(url)))
    assert 40 <= len(counted) <= 41
    assert joined >= 1  # the worker really took part
    assert (tmp_path / "run" / "model.int8.onnx").exists()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_kill_9_then_rerun_resumes_without_losing_or_repeating_trials(tmp_path) -> None:
    out = tmp_path / "run"
    cmd = _cli("search", "iris", "--trials", "8", "--out", str(out), *CLI_TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    storage = f"sqlite:///{out / 'study.db'}"

    _wait_for(lambda: _query(storage, "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'") >= [(2,)])
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.params, t.value) for t in
              optuna.load_study(study_name="autoarch", storage=storage).trials if t.state.name == "COMPLETE"}
    assert before and not (out / "report.json").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    study = optuna.load_study(study_name="autoarch", storage=storage)
    after = {t.number: (t.params, t.value) for t in study.trials if t.state.name == "COMPLETE"}
    assert {n: after[n] for n in before} == before  # nothing lost, nothing re-evaluated
    assert len(_counted(study)) == 8  # the exact budget
    assert not list(out.glob(".*.tmp"))
    model = autoarch.load(out)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_bad_rerun_damages_nothing(tmp_path) -> None:
    out = tmp_path / "run"
    autoarch.search("iris", out=out, trials=2, **TINY)
    hashes = _hashes(out)
    proc = subprocess.run(_cli("search", "iris", "--trials", "2", "--out", str(out), "--cv", "3", "--quiet"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "other settings" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert {k: v for k, v in _hashes(out).items() if k != "study.db"} == \
           {k: v for k, v in hashes.items() if k != "study.db"}
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 2


def test_early_stopping_prunes_poor_candidates() -> None:
    result = autoarch.search("wine", trials=14, early_stop="median", controller="random", **{**TINY, "cv": 3})
    states = [t.state.name for t in result.study.trials]
    assert "PRUNED" in states and "COMPLETE" in states
    pruned = [t for t in result.study.trials if t.user_attrs.get("pruned_reason", "").startswith("--early-stop")]
    assert pruned
    assert all(t.user_attrs["pruned_reason"].startswith("--early-stop median after") for t in pruned)
    # a step per epoch: stopped before the last epoch of the last fold
    assert all(max(t.intermediate_values) < 3 * TINY["epochs"] for t in pruned)


def test_size_limits_reject_candidates_before_training() -> None:
    result = autoarch.search("iris", trials=10, max_params=2000, controller="random", **TINY)
    rejected = [t for t in result.study.trials if t.user_attrs.get("rejected")]
    assert rejected, "some random MLPs exceed 2,000 parameters"
    for t in rejected:
        assert t.state.name == "PRUNED"
        assert t.user_attrs["params"] > 2000 and "> --max-params 2,000" in t.user_attrs["pruned_reason"]
        assert "seconds" not in t.user_attrs and not t.intermediate_values  # never trained
    assert len(result.study.trials) - len(rejected) == 10  # rejected candidates do not count toward --trials
    for t in result.study.trials:
        if t.state.name == "COMPLETE":
            assert t.user_attrs["params"] <= 2000


def test_trial_timeout_fails_candidates_cleanly() -> None:
    with pytest.raises(AutoArchError, match="time limit"):
        autoarch.search("iris", trials=2, trial_timeout=1e-6, **TINY)


def test_timeout_stops_a_trial_still_training(tmp_path) -> None:
    # 100,000 epochs would take hours: --timeout must stop the running trial, not only the start of new ones.
    options = {**TINY, "epochs": 100_000, "patience": 100_000}
    with pytest.raises(AutoArchError, match=r"no trial completed: --timeout \(8 s\) stopped 1 still training"):
        autoarch.search("iris", out=tmp_path / "run", trials=2, timeout=8, workers=1, **options)
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    (trial,) = study.trials
    assert trial.state.name == "FAIL" and "fail_reason" not in trial.user_attrs  # not counted: a resume redoes it
    assert "stopped at --timeout" in trial.user_attrs["stopped_reason"]


class _HungrySpace(MLPSpace):
    def build(self, arch, input_shape, n_outputs):
        if arch["batch_norm"]:
            raise MemoryError("cannot allocate 40 GiB")
        return super().build(arch, input_shape, n_outputs)


def test_out_of_memory_fails_the_candidate_not_the_search() -> None:
    result = autoarch.search("iris", trials=6, space=_HungrySpace(max_layers=3), controller="random", **TINY)
    failed = [t for t in result.study.trials if t.state.name == "FAIL"]
    assert failed and all(t.user_attrs["fail_reason"].startswith("MemoryError") for t in failed)
    assert any(t.state.name == "COMPLETE" for t in result.study.trials)


def test_unreachable_storage_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="cannot open the storage"):
        autoarch.search("iris", trials=1, storage="postgresql://nobody@127.0.0.1:9/none", **TINY)


def test_workers_need_a_shared_study() -> None:
    with pytest.raises(ConfigError, match="needs a shared study"):
        autoarch.search("iris", trials=2, workers=2, **TINY)


@pytest.mark.parametrize(("workers", "env", "shared", "device", "expected"), [
    ("auto", "3", True, "cpu", 3),
    ("auto", "8", True, "cpu", 5),  # never more workers than trials
    ("auto", "3", False, "cpu", 1),  # an in-memory study cannot be shared between processes
    ("auto", "3", True, "cuda", 1),  # one GPU: one worker
    (2, "3", True, "cpu", 2),  # an explicit number wins
])
def test_workers_auto_resolution(monkeypatch, workers, env, shared, device, expected) -> None:
    import torch

    from autoarch.budget import resolve_workers

    monkeypatch.setenv("AUTOARCH_WORKERS", env)
    got = resolve_workers(workers, trials=5, shared=shared, device=torch.device(device))
    assert got == expected


def test_workers_auto_defaults_to_the_usable_cores(monkeypatch) -> None:
    import torch

    from autoarch.budget import resolve_workers

    monkeypatch.delenv("AUTOARCH_WORKERS")
    expected = min(len(os.sched_getaffinity(0)), 100)
    assert resolve_workers("auto", trials=100, shared=True, device=torch.device("cpu")) == expected


def test_a_bad_workers_environment_variable_is_a_clear_error(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("AUTOARCH_WORKERS", "two")
    with pytest.raises(ConfigError, match=r"AUTOARCH_WORKERS must be a positive integer"):
        autoarch.search("iris", out=tmp_path / "run", trials=2, **TINY)
    assert not (tmp_path / "run" / "study.db").exists()


def test_the_cli_rejects_a_bad_workers_value(tmp_path) -> None:
    proc = subprocess.run(_cli("search", "iris", "--workers", "0", "--out", str(tmp_path / "r"), *CLI_TINY),
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "--workers" in proc.stderr and "'auto' or a positive integer" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_random_search_gives_trial_n_the_same_candidate_whatever_the_workers(tmp_path) -> None:
    one = autoarch.search("iris", out=tmp_path / "one", controller="random", trials=6, workers=1, **TINY)
    two = autoarch.search("iris", out=tmp_path / "two", controller="random", trials=6, workers=2, **TINY)
    params = lambda study: {t.number: t.params for t in study.trials if t.number < 6}  # noqa: E731
    assert params(one.study) == params(two.study)


def _children(pid: int) -> set[int]:
    kids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.add(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_workers_of_a_killed_search_stop_after_their_trial(tmp_path) -> None:
    out = tmp_path / "run"
    cmd = _cli("search", "iris", "--trials", "500", "--workers", "2", "--out", str(out), *CLI_TINY)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    storage = f"sqlite:///{out / 'study.db'}"
    workers: set[int] = set()
    try:
        _wait_for(lambda: _query(storage, "SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'") >= [(2,)])
        workers = {k for k in _children(proc.pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()}
        assert len(workers) == 1  # the second worker process
        os.kill(proc.pid, signal.SIGKILL)  # the search only, as `kill -9 PID` would
        proc.wait()
        _wait_for(lambda: not any(_alive(k) for k in workers), timeout=60)
    finally:
        for k in workers:
            if _alive(k):
                os.kill(k, signal.SIGKILL)
    assert _query(storage, "SELECT COUNT(*) FROM trials")[0][0] < 500


def test_the_search_does_not_start_a_trial_over_the_budget_when_a_worker_finishes_meanwhile(monkeypatch) -> None:
    """A local worker finishes the last trial and exits between the search's reads of the study: the search
    must see that trial as finished, not start one more (41 of 40 trials were seen before the fix)."""
    from optuna.trial import TrialState

    from autoarch import runner

    def trials(n_complete: int, n_running: int) -> list[optuna.trial.FrozenTrial]:
        return ([optuna.trial.create_trial(value=0.5) for _ in range(n_complete)]
                + [optuna.trial.create_trial(state=TrialState.RUNNING) for _ in range(n_running)])

    class Study:
        """The other worker's trial runs until the first read of the study; then it is complete and the worker
        gone."""

        def __init__(self) -> None:
            self.reads = 0
            self.started = 0

        def get_trials(self, deepcopy: bool = False, states=None) -> list[optuna.trial.FrozenTrial]:
            self.reads += 1
            snapshot = trials(3, 1) if self.reads == 1 else trials(4, 0)
            return [t for t in snapshot if states is None or t.state in states]

        def optimize(self, *args, **kwargs) -> None:
            self.started += 1

    study = Study()
    monkeypatch.setattr(optuna.storages, "fail_stale_trials", lambda study: None)
    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    alive = iter([True] + [False] * 10)
    ran = autoarch.budget.run_until_budget(study, lambda trial: 0.0, 4, None, [], workers_alive=lambda: next(alive))
    assert ran == 0 and study.started == 0
