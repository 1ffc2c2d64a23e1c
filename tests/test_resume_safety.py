"""Resume and storage safety (issue #15): a study resumes on the same data only, rejected candidates do not use
up a run directory, interrupted trials do not stay RUNNING, storage passwords never reach a file or a message, a
worker never creates a database, and a storage that cannot be opened leaves nothing behind."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

import autoarch
import autoarch.budget
import autoarch.finish
import autoarch.loaders
import autoarch.study
import autoarch.trials
from autoarch import runner
from autoarch.config import SearchConfig
from autoarch.exceptions import AutoArchError, ConfigError, LimitsUnmetError

TINY = dict(trials=2, cv=2, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0, workers=1)
SECRET = "hunter2-not-a-real-password"


def _iris_csv(path, shuffle: bool = False):
    path.parent.mkdir(parents=True, exist_ok=True)
    X, y = autoarch.loaders.load_dataset("iris").X, autoarch.loaders.load_dataset("iris").y
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    frame["label"] = np.random.default_rng(1).permutation(y) if shuffle else y
    frame.to_csv(path, index=False)
    return path


def test_resume_on_other_data_with_the_same_name_and_length_is_refused(tmp_path) -> None:
    out = tmp_path / "run"
    first = _iris_csv(tmp_path / "a" / "data.csv")
    autoarch.search(first, target="label", out=out, **TINY)
    report = (out / "report.json").read_bytes()
    second = _iris_csv(tmp_path / "b" / "data.csv", shuffle=True)
    with pytest.raises(ConfigError, match="other data") as err:
        autoarch.search(second, target="label", out=out, **{**TINY, "trials": 3})
    message = str(err.value)
    assert str(first) in message and str(second) in message, message  # names both sources
    assert (out / "report.json").read_bytes() == report
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 2  # nothing of the second data set got in
    # the same data again resumes
    again = autoarch.search(first, target="label", out=out, **{**TINY, "trials": 3})
    assert sum(t.state == TrialState.COMPLETE for t in again.study.trials) == 3


def test_data_digest_sees_the_values_not_just_the_shape() -> None:
    data = autoarch.loaders.load_dataset("iris")
    shuffled = dataclasses.replace(data, y=data.y[::-1].copy())
    assert autoarch.study.data_digest(data) == autoarch.study.data_digest(autoarch.loaders.load_dataset("iris"))
    assert autoarch.study.data_digest(data) != autoarch.study.data_digest(shuffled)


def test_data_digest_of_uint8_pixels_is_that_of_their_float32_values(monkeypatch) -> None:
    """A study made when images were held as float32 resumes on the same images held as uint8."""
    import hashlib

    pixels = np.random.default_rng(0).integers(0, 256, size=(40, 1, 6, 6), dtype=np.uint8)
    as_float = autoarch.data.from_arrays(pixels.astype(np.float32), np.arange(40) % 2)
    as_uint8 = dataclasses.replace(as_float, X=pixels)
    old = hashlib.sha256()  # the digest as it was computed before uint8 storage
    for array in (as_float.X, as_float.y):
        old.update(f"{array.dtype.str}{array.shape}".encode())
        old.update(memoryview(array).cast("B"))
    assert autoarch.study.data_digest(as_uint8) == autoarch.study.data_digest(as_float) == old.hexdigest()
    monkeypatch.setattr(autoarch.study, "DIGEST_SLICE_VALUES", 50)  # one sample (36 values) per slice: the same digest
    assert autoarch.study.data_digest(as_uint8) == old.hexdigest()
    changed = pixels.copy()
    changed[-1, 0, -1, -1] ^= 1
    assert autoarch.study.data_digest(dataclasses.replace(as_float, X=changed)) != old.hexdigest()


def test_rejected_candidates_do_not_use_up_the_trials_of_a_run_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(autoarch.budget, "REJECT_STREAK", 12)
    out = tmp_path / "run"
    # the limit is bad input (exit 2), but the study is kept: a looser limit resumes it
    with pytest.raises(LimitsUnmetError, match=r"no candidate meets --max-params: all 12 started .*smallest "
                                               r"parameters seen: \d+ \(--max-params 10\)"):
        autoarch.search("iris", out=out, max_params=10, **TINY)
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{out / 'study.db'}")
    assert len(study.trials) == 12 and all(t.user_attrs.get("rejected") for t in study.trials)
    result = autoarch.search("iris", out=out, **TINY)  # looser limit: trains two candidates
    assert sum(t.state == TrialState.COMPLETE for t in result.study.trials) == 2


def test_a_spent_budget_of_failed_trials_names_the_limit_and_the_way_out() -> None:
    cfg = SearchConfig(trials=2, trial_timeout=5.0)
    now = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={
        "fail_reason": "the trial ran past its time limit in epoch 3 (--trial-timeout 5 s); raise the limit"})
    message = autoarch.outcome.no_trial_completed([now, now], cfg)
    assert "2 ran past their time limit (--trial-timeout 5 s): raise it" in message
    assert "used its --trials 2: rerun with a higher --trials, or a new --out" in message


def test_a_timeout_too_short_for_any_trial_says_so(monkeypatch) -> None:
    # The set-up between the deadline and the first trial can take under 1 ms on a fast machine (seen in CI):
    # let it take 20 ms, so that the 1 ms budget has surely run out before the first trial could start.
    warm_start = autoarch.trials.queue_warm_starts
    monkeypatch.setattr(runner, "queue_warm_starts", lambda *a, **k: (time.sleep(0.02), warm_start(*a, **k))[1])
    with pytest.raises(AutoArchError, match=r"no trial started before --timeout \(0.001 s\) ran out; raise --timeout"):
        autoarch.search("iris", timeout=0.001, **TINY)


def test_an_interrupted_trial_does_not_stay_running(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(autoarch.study, "GRACE_PERIOD", 2)
    monkeypatch.setattr(autoarch.study, "HEARTBEAT_INTERVAL", 1)
    out = tmp_path / "run"
    autoarch.search("iris", out=out, **TINY)
    # A trial left RUNNING by a killed run, its last heartbeat just now (inside the grace period).
    storage = autoarch.study.open_storage(f"sqlite:///{out / 'study.db'}")
    study = optuna.load_study(study_name="autoarch", storage=storage)
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    result = autoarch.search("iris", out=out, **{**TINY, "trials": 3})
    states = [t.state for t in result.study.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states.count(TrialState.COMPLETE) == 3 and states.count(TrialState.FAIL) == 1
    report = json.loads((out / "report.json").read_text())
    assert "RUNNING" not in report["search"]["trial_states"]
    assert "RUNNING" not in pd.read_csv(out / "leaderboard.csv")["state"].tolist()


def test_storage_passwords_never_reach_a_file_or_a_log(tmp_path, monkeypatch, caplog) -> None:
    db = tmp_path / "shared.db"
    real = autoarch.study.open_storage
    for module in (runner, autoarch.study):  # the search opens it, and settles its trials through the study module
        monkeypatch.setattr(module, "open_storage", lambda url, **kw: real(f"sqlite:///{db}", **kw))
    out = tmp_path / "run"
    caplog.set_level(logging.INFO, logger="autoarch")
    autoarch.search("iris", out=out, storage=f"postgresql://nas:{SECRET}@db-host/nas", **TINY)
    for path in out.iterdir():
        if path.is_file() and path.suffix in (".json", ".md", ".csv"):
            assert SECRET not in path.read_text(), path.name
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["storage"] == "postgresql://nas:***@db-host/nas"
    study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{db}")
    assert SECRET not in json.dumps(study.user_attrs)
    assert SECRET not in caplog.text


def test_a_storage_error_masks_the_password_and_leaves_no_run_directory(tmp_path) -> None:
    out = tmp_path / "new-run"
    with pytest.raises(ConfigError, match="cannot open the storage") as err:
        autoarch.search("iris", out=out, storage=f"postgresql://nas:{SECRET}@127.0.0.1:1/nas", **TINY)
    assert SECRET not in str(err.value) and "***" in str(err.value)
    assert not out.exists()


def test_redact_masks_only_the_password() -> None:
    assert autoarch.study.redact(f"postgresql://nas:{SECRET}@db-host:5432/nas") == "postgresql://nas:***@db-host:5432/nas"
    assert autoarch.study.redact("sqlite:///runs/x/study.db") == "sqlite:///runs/x/study.db"
    assert autoarch.study.redact("journal:runs/x/study.log") == "journal:runs/x/study.log"
    assert autoarch.study.redact(None) is None


def test_a_worker_never_creates_a_database(tmp_path) -> None:
    typo = tmp_path / "typo.db"
    with pytest.raises(ConfigError, match="does not exist"):
        runner.run_worker(f"sqlite:///{typo}")
    assert not typo.exists()
    with pytest.raises(ConfigError, match="does not exist"):
        runner.run_worker(f"journal:{tmp_path / 'typo.log'}")
    assert not (tmp_path / "typo.log").exists()


def test_stale_wait_is_bounded_by_the_grace_period(tmp_path, monkeypatch) -> None:
    """A trial whose worker still sends heartbeats is left RUNNING, after at most the grace period."""
    monkeypatch.setattr(autoarch.study, "GRACE_PERIOD", 2)
    monkeypatch.setattr(autoarch.study, "HEARTBEAT_INTERVAL", 1)
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = autoarch.study.open_storage(url)
    study = optuna.create_study(study_name="autoarch", storage=storage)
    trial = study.ask()
    start = time.time()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial._trial_id)
            time.sleep(0.3)

    thread = threading.Thread(target=beat)
    thread.start()
    try:
        autoarch.study.settle_running("autoarch", url)
    finally:
        stop.set()
        thread.join()
    assert 2.5 <= time.time() - start < 10
    assert optuna.load_study(study_name="autoarch", storage=url).trials[0].state == TrialState.RUNNING


def test_a_second_search_on_the_same_run_directory_is_refused(tmp_path) -> None:
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "run"
    out.mkdir()
    held = os.open(out, os.O_RDONLY)  # as a first search, still running, holds it
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(ConfigError, match="in use by another autoarch search"):
            autoarch.search("iris", out=out, **TINY)
        assert not list(out.iterdir())  # refused before the study is opened; nothing written
    finally:
        os.close(held)
    result = autoarch.search("iris", out=out, **TINY)  # the lock is released: it runs
    assert sum(t.state == TrialState.COMPLETE for t in result.study.trials) == 2


@pytest.mark.parametrize("url", ["journal:{d}/s.log", "{d}/s.journal", "sqlite:///{d}/s.db"])
def test_open_storage_creates_a_search_study_in_a_file(tmp_path, url) -> None:
    url = url.format(d=tmp_path)
    optuna.create_study(study_name="autoarch", storage=autoarch.study.open_storage(url))
    assert len(list(tmp_path.iterdir())) == 1  # the file behind the URL, where the URL says
    assert optuna.get_all_study_names(autoarch.study.open_storage(url, must_exist=True)) == ["autoarch"]
