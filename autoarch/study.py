"""The optuna study of a search and its storage: opening SQLite / PostgreSQL storages (heartbeats, damaged
files, redacted URLs), creating or resuming the study with its fingerprint, the pruner of ``--early-stop``, and
settling trials a dead process left RUNNING."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from autoarch._compat import fail_trial, heartbeat_enabled
from autoarch.data import Dataset
from autoarch.evaluate import n_folds
from autoarch.exceptions import ConfigError, DataError
from autoarch.objectives import Objective, directions

logger = logging.getLogger(__name__)

STUDY_NAME = "autoarch"
STUDY_FILE = "study.db"


HEARTBEAT_INTERVAL = 5
GRACE_PERIOD = 20
"""A RUNNING trial whose worker has sent no heartbeat for GRACE_PERIOD seconds is failed and retried."""


def redact(url: str | None) -> str | None:
    """``url`` with its password masked (``postgresql://user:***@host/db``), as it may be shown or stored."""
    if url is None or "://" not in url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a SQLAlchemy URL: mask whatever stands between ':' and '@'
        return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def _storage_file(url: str) -> Path | None:
    """The file behind a storage URL: the database of ``sqlite:///PATH`` or the log of a journal (``journal:PATH``
    or a ``.log``/``.journal`` path); None for a database server or in-memory SQLite."""
    if url.startswith("journal:"):
        return Path(url[len("journal:"):])
    if url.endswith((".log", ".journal")):
        return Path(url)
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(url).database
    except ArgumentError:  # a malformed URL: open_storage names it
        return None
    return None if database in (None, "", ":memory:") else Path(database)


def open_storage(url: str, *, must_exist: bool = False, retry: bool = True) -> optuna.storages.BaseStorage:
    """An optuna storage for ``url``: a SQLAlchemy URL (``sqlite:///run/study.db``, ``postgresql://...``,
    ``mysql+pymysql://...``) with heartbeats on, or a journal file (``journal:PATH`` or a ``.log`` path).

    ``retry=False`` fails a stale trial (a RUNNING trial whose worker stopped sending heartbeats) without
    queueing it again, as the search does once its budget is spent. ``must_exist`` (a worker joins a study, it
    never creates one) refuses a SQLite or journal file that does not exist instead of creating an empty one.
    Messages show the URL with its password masked (:func:`redact`).

    Raises:
        ConfigError: the storage cannot be opened (bad URL, server down, missing driver), or ``must_exist`` and
            its file does not exist.
    """
    file = _storage_file(url)
    if must_exist:
        if file is not None and not file.is_file():
            raise ConfigError(f"the storage file {str(file)!r} does not exist; give the --storage URL of the study "
                              "that 'autoarch search DATA --storage URL' created.")
    try:
        if file is not None and not url.startswith("sqlite"):  # a journal file
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(str(file)))
        engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
        with warnings.catch_warnings():  # heartbeats are "experimental" in optuna; we depend on them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_INTERVAL, grace_period=GRACE_PERIOD,
                heartbeat_stale_trial_callback=(optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                                                if retry else None),
            )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.replace(url, str(redact(url)))
        _refuse_damaged_sqlite(url, file, exc)
        raise ConfigError(f"cannot open the storage {redact(url)!r} ({first[:200]}); check the URL, the database "
                          "driver (e.g. pip install psycopg2-binary) and that the server is running.") from None


def _refuse_damaged_sqlite(url: str, file: Path | None, exc: Exception) -> None:
    """Name the file when SQLite cannot read an existing study file: it is damaged or not a study, and the
    generic advice (drivers, servers) would mislead."""
    import sqlalchemy

    if not isinstance(exc, sqlalchemy.exc.DatabaseError) or not url.startswith("sqlite"):
        return
    if file is not None and file.is_file():
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:100]
        raise DataError(f"{file} is not an optuna SQLite study ({reason}); move it away to start a new study "
                        "there, or give another --out (or --storage).") from None


def has_heartbeat(study: optuna.Study) -> bool:
    return heartbeat_enabled(study)


def open_study(storage: optuna.storages.BaseStorage, name: str, fingerprint: dict[str, Any],
                spec: dict[str, Any], sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
                where: str, objectives: Sequence[Objective] = (Objective("accuracy"),)) -> optuna.Study:
    """Create or resume the study ``name``: one direction per objective; a resumed study must have been made on
    the same data (``data_sha256``) and settings (``fingerprint``)."""
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=directions(objectives),
                                pruner=pruner, load_if_exists=True)
    saved = study.user_attrs.get("config")
    if saved is None:
        study.set_user_attr("config", fingerprint)
        study.set_user_attr("spec", spec)
    elif saved.get("data_sha256") != fingerprint.get("data_sha256"):
        def source(fp: dict[str, Any], sp: dict[str, Any] | None) -> str:
            name = ((sp or {}).get("data") or {}).get("source") or fp.get("data")
            digest = fp.get("data_sha256") or "not recorded"
            return f"{name} ({fp.get('n_samples')} samples, sha256 {digest[:12]})"

        raise ConfigError(
            f"{where} holds a study of other data: it was made on {source(saved, study.user_attrs.get('spec'))}, "
            f"this run gives {source(fingerprint, spec)}; use another --out (or --study) for this data."
        )
    elif saved != fingerprint:
        diff = {k: (saved.get(k), fingerprint.get(k)) for k in set(saved) | set(fingerprint)
                if saved.get(k) != fingerprint.get(k)}
        changes = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(diff.items()))
        raise ConfigError(
            f"{where} holds a study made with other settings ({changes}); rerun with the same options to resume, "
            "or use another --out (or --study)."
        )
    return study


def primary_best(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """``study.best_trial`` by the first objective, in its direction, for any number of objectives (optuna's
    raises on a multi-objective study); ValueError when no trial completed."""
    if len(study.directions) == 1:
        return study.best_trial
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and np.isfinite(t.values[0])]
    if not done:
        raise ValueError("no trial completed")
    sign = 1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1.0
    return max(done, key=lambda t: (sign * t.values[0], -t.number))


def make_pruner(name: str, cv: int | float, epochs: int = 20) -> optuna.pruners.BasePruner:
    """The optuna pruner of ``--early-stop``. A step is an epoch (fold ``i``'s epoch ``e`` is step
    ``i * epochs + e``), the value the objective metric on the fold's early-stopping part after that epoch:
    successive halving promotes a third of the candidates at 1, 3, 9, ... epochs."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs * n_folds(cv), reduction_factor=3)
    return optuna.pruners.NopPruner()


def fail_running(study: optuna.Study) -> None:
    """Without heartbeats (journal or in-memory storage) a RUNNING trial found at start-up was left by an
    interrupted run of this same command: mark it failed (interrupted) so that it is redone."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        fail_trial(study, trial)
        logger.info("trial %d was left running by an interrupted run; it will be redone", trial.number)


def settle_running(study_name: str, url: str) -> None:
    """Before the report: wait (up to the heartbeat grace period) for the RUNNING trials this search did not run
    — left by an interrupted run of the same command, or running on another machine — and fail those whose
    worker is gone, without queueing them again (the budget is spent). A trial whose worker still sends
    heartbeats stays RUNNING, as it is."""
    storage = open_storage(url, retry=False)
    study = optuna.load_study(study_name=study_name, storage=storage)
    if not has_heartbeat(study):
        return  # journal storage: fail_running handled them at start-up
    end, said = time.time() + GRACE_PERIOD + HEARTBEAT_INTERVAL, False
    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        if not running or time.time() >= end:
            break
        if not said:
            logger.info("waiting up to %d s for trial(s) %s: left running by an interrupted run, or running on "
                        "another machine", GRACE_PERIOD + HEARTBEAT_INTERVAL, running)
            said = True
        time.sleep(min(1.0, HEARTBEAT_INTERVAL))


DIGEST_SLICE_VALUES = 1 << 22
"""How many ``uint8`` values :func:`data_digest` converts to ``float32`` at a time (16 MB)."""


def data_digest(dataset: Dataset) -> str:
    """SHA-256 of the inputs and targets (values, shapes and dtypes): the identity of the data a study is run
    on, which a file's name and row count are not (the same CSV with shuffled labels has both).

    ``uint8`` pixels are hashed as the ``float32`` values they stand for (converted a slice at a time), so the
    digest does not depend on the storage: a study made when images were held as ``float32`` resumes on them."""
    digest = hashlib.sha256()
    for array in (dataset.X, dataset.y):
        array = np.ascontiguousarray(array)
        if array.dtype == np.uint8:  # X only: y is int64 or float32
            digest.update(f"{np.dtype(np.float32).str}{array.shape}".encode())
            step = max(1, DIGEST_SLICE_VALUES // max(1, int(np.prod(array.shape[1:]))))
            for start in range(0, len(array), step):
                digest.update(memoryview(array[start:start + step].astype(np.float32)).cast("B"))
            continue
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def run_storage_url(run_dir: str | os.PathLike[str], storage: str | None = None) -> str:
    """The storage of a run's study: ``storage`` when given, else the run directory's SQLite file.

    Raises:
        DataError: no ``storage`` and no ``study.db`` in ``run_dir``.
    """
    if storage is not None:
        return storage
    run = Path(run_dir)
    if not (run / STUDY_FILE).is_file():
        raise DataError(f"{run} has no {STUDY_FILE}: give the --out directory of a search, or --storage URL for a "
                        "study kept elsewhere.")
    return f"sqlite:///{run / STUDY_FILE}"
