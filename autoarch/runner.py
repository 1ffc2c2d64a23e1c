"""The search: data → optuna study (controller = sampler) → k-fold CV per candidate → winner → compression.

Example:
    >>> import autoarch
    >>> result = autoarch.search("iris", trials=4, cv=3, epochs=5, out="runs/iris")  # doctest: +SKIP
    >>> result.test_scores["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState
from torch import nn

from autoarch import __version__
from autoarch._compat import fail_trial, heartbeat_enabled
from autoarch.compress import CompressionResult, compress_model, count_macs_params, replay_pruning
from autoarch.compress.pipeline import has_recurrent
from autoarch.config import (
    AUGMENT_MIN_SIDE,
    LARGE_DATA,
    SearchConfig,
    resolve_augment,
    resolve_cv,
    resolve_search_samples,
)
from autoarch.controllers import make_sampler
from autoarch.data import (
    BUILTIN_DATASETS,
    Dataset,
    frame_dataset,
    from_arrays,
    load_dataset,
    load_test,
    official_test,
    train_test_split,
)
from autoarch.evaluate import build_model, cross_validate, describe_cv, n_folds, retrain
from autoarch.exceptions import AutoArchError, ConfigError, DataError, SearchFailedError, TimeLimitError, did_you_mean
from autoarch.metrics import check_metric, compute_metrics, default_metric, objective_value
from autoarch.model import Model, model_from_state, net_arch, net_input_shape, spec_input_kind
from autoarch.rundir import Generation, copy_file, crash_point, read_outputs, save_state_dict
from autoarch.search_spaces import SearchSpace, get_space, space_ref
from autoarch.tables import TableEncoder, table_schema
from autoarch.trainer import TrainConfig, predict, resolve_device, suggest_training, training_grid

__all__ = ["SearchConfig", "SearchResult", "search", "run_worker", "load", "leaderboard", "open_storage",
           "make_pruner"]

logger = logging.getLogger(__name__)

STUDY_NAME = "autoarch"
STUDY_FILE = "study.db"
KEEP_DIR = ".trial-models"
"""Run-directory folder of the best trials' holdout models while a search runs (removed when it finishes)."""
# Options that change what a trial means: a study can only be resumed with the same values.
_FINGERPRINT_KEYS = ("space", "metric", "cv", "seed", "epochs", "patience", "test_size", "max_samples", "test",
                     "image_size", "augment", "search_samples")
CHANCE_EPOCHS = 2
"""A classifier whose accuracy on its early-stopping data is still within :data:`CHANCE_MARGIN` of the majority
class after this many epochs (a space's ``chance_epochs`` where it sets one: recurrent nets start slower) is
stopped (a sigmoid/SGD candidate of a Fashion-MNIST search trained 921 s at 10%)."""
CHANCE_MARGIN = 0.02
DIVERGENCE = 3.0
"""A candidate whose epoch training loss exceeds this multiple of its first epoch's is stopped as diverging."""
DIVERGENCE_BATCHES = 4
"""The divergence rule applies only when an epoch has at least this many batches of the fold's training part: a
first epoch of one or two batches is no reference (on 4 training rows a candidate whose loss went 0.18 -> 2.9 in
epoch 2 finished with the best CV score of its search), and data that small is cheap to train to the end anyway."""
FINISH_OVERHEAD = 20.0
"""Seconds reserved under --timeout for export, int8 quantization and verification, besides retrain and fine-tune
(at most: see :func:`finish_overhead`)."""
OVERHEAD_SHARE = 0.05
"""A short --timeout reserves this share of it for export, int8 and verification instead of
:data:`FINISH_OVERHEAD`: on digits (--timeout 180) they took under 9 s with the retrain, and 20 s reserved cut
the retrain and fine-tune short while 15 s of the budget went unused."""
FULL_FINETUNE_SHARE = 0.1
"""The budget reserves the whole fine-tune (``--finetune-epochs``) when it is estimated at no more than this
share of --timeout, else a short one (a quarter of the retrain's epochs, at least 2): on digits a pruned winner
fine-tuned 4 epochs lost 1.9 points held-out, where 20 epochs cost about 10 s of 180."""


def finish_overhead(timeout: float | None) -> float:
    """Seconds of the finish besides training (export, int8, verification, reports) that --timeout reserves."""
    return FINISH_OVERHEAD if timeout is None else min(FINISH_OVERHEAD, max(5.0, OVERHEAD_SHARE * timeout))


def _planned_finetune(per: float, n_train: int, finetune_epochs: int, retrain_epochs: int,
                      timeout: float | None) -> int:
    """The fine-tune epochs the budget plans for: all of them when cheap (:data:`FULL_FINETUNE_SHARE`), else the
    short fine-tune the finish cuts them to when time is short."""
    if not finetune_epochs:
        return 0
    if timeout is not None and per * n_train * finetune_epochs <= FULL_FINETUNE_SHARE * timeout:
        return finetune_epochs
    return _short_finetune(finetune_epochs, retrain_epochs)
WARM_START_TRAINING = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "l1": 1e-8, "batch_size": 128,
                       "schedule": "cosine"}
"""The training of the warm-start candidates: Adam at its usual rate, light L2, cosine schedule; batches of 128
from :data:`~autoarch.config.LARGE_DATA` training samples on, of :data:`WARM_START_SMALL_BATCH` below."""
WARM_START_SMALL_BATCH = 32
"""On 958 digits per fold, batches of 128 are 8 steps an epoch: 3-fold CV of the LeNet-5-like network 0.946 with
128, 0.959 with 32; of the small ResNet 0.962 and 0.983 (20 epochs, Adam 1e-3)."""


@dataclass
class SearchResult:
    """The outcome of :func:`search`.

    Attributes:
        architecture: the winner's architecture (plain values).
        training: the winner's training hyperparameters.
        cv_scores: ``{metric: (mean, std)}`` over the folds of the winning trial.
        test_scores: every metric of the retrained winner (before pruning) on the held-out split.
        model: the final (pruned, fine-tuned) torch model; its input is raw features.
        leaderboard: one row per trial, best first.
        compression: the compression stages, verification and files.
        out_dir: the run directory.
        study: the optuna study.
    """

    architecture: dict[str, Any]
    training: dict[str, Any]
    cv_scores: dict[str, tuple[float, float]]
    test_scores: dict[str, float]
    model: nn.Module
    leaderboard: pd.DataFrame
    compression: CompressionResult
    out_dir: Path
    study: optuna.Study
    report: dict[str, Any] = field(default_factory=dict)

    def export(self, path: str | Path, int8: bool = False) -> Path:
        """Copy the verified ONNX model (fp32, or int8 with ``int8=True``) to ``path``."""
        source = self.compression.int8_path if int8 else self.compression.onnx_path
        assert source is not None
        return copy_file(source, path)


def _resolve_data(data: Any, y: Any, target: str | None, task: str | None, max_samples: int | None,
                  seed: int, image_size: int | None = None, on_bad_image: str = "fail",
                  text_column: str | None = None, max_length: int | None = None) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        if y is not None:
            raise ConfigError("give either a data set name / file, or arrays X and y, not both.")
        return load_dataset(str(data), target=target, task=task, max_samples=max_samples, seed=seed,
                            image_size=image_size, on_bad_image=on_bad_image, text_column=text_column,
                            max_length=max_length)
    if isinstance(data, pd.DataFrame) and text_column is not None:
        from autoarch.data import from_texts

        if target is None or text_column not in data.columns or target not in data.columns:
            raise ConfigError(f"search(DataFrame, text_column={text_column!r}) needs target=COLUMN, and both "
                              f"columns in the frame; its columns are {[str(c) for c in data.columns]}.")
        dataset = from_texts(data[text_column].tolist(), data[target].to_numpy(), task=task,
                             name="DataFrame", max_length=max_length, column=text_column)
    elif isinstance(data, pd.DataFrame):  # text categories and missing cells are encoded (autoarch.tables)
        dataset = frame_dataset(data, y, target, task)
    elif y is None:
        raise ConfigError("search(X, y): the targets y are missing.")
    else:
        dataset = from_arrays(data, y, task=task)
    if max_samples is not None and len(dataset) > max_samples:
        dataset, _ = train_test_split(dataset, test_size=1 - max_samples / len(dataset), seed=seed)
    return dataset


def _check_folds(train: Dataset, cv: int | float) -> None:
    if isinstance(cv, float):
        cv = 2  # a stratified holdout split needs two samples of each class
    if len(train) < 2 * cv:
        raise DataError(f"the training split has {len(train)} samples, too few for --cv {cv}; lower --cv or add data.")
    if train.task != "classification":
        return
    counts = np.bincount(train.y, minlength=len(train.classes))
    rare = [(train.classes[i], int(c)) for i, c in enumerate(counts) if c < cv]
    if rare:
        label, count = rare[0]
        raise DataError(
            f"class {label!r} has {count} sample(s) in the training split, fewer than the {cv} folds of --cv "
            f"{cv}; use --cv {max(2, min(c for _, c in rare))} or add samples of that class."
        )


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


def _has_heartbeat(study: optuna.Study) -> bool:
    return heartbeat_enabled(study)


def _open_study(storage: optuna.storages.BaseStorage, name: str, fingerprint: dict[str, Any],
                spec: dict[str, Any], sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
                where: str) -> optuna.Study:
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, direction="maximize",
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


THREAD_SPEEDUP = 1.35
"""How much faster the finish trains than a trial did when it has more torch threads (the trials of several
worker processes run one thread each): the least of three CNNs from 1 to 2 threads, 1.38-1.81x per batch
(``benchmarks/channels_last.py``, BENCHMARKS.md)."""


def _epochs_per_sample_second(trial: optuna.trial.FrozenTrial, threads: int | None = None) -> float | None:
    """Seconds one training sample-epoch cost in ``trial`` (its CV time over the epochs and samples it ran); with
    ``threads``, what it is expected to cost with that many torch threads (:data:`THREAD_SPEEDUP`)."""
    seconds, epochs, n_fit = (trial.user_attrs.get(k) for k in ("seconds", "epochs_run", "n_fit"))
    if not seconds or not epochs or not n_fit:
        return None
    per = float(seconds) / (sum(epochs) * n_fit)
    if threads is not None and threads > trial.user_attrs.get("threads", threads):
        per /= THREAD_SPEEDUP
    return per


EPOCH_SHARE = 0.25
"""Under --timeout, a candidate whose first epoch is estimated to take more than this share of the search time
left is rejected before training (a 195k-parameter Fashion-MNIST candidate spent a worker's last 10 minutes)."""
MIN_COST_SAMPLES = 3


def estimate_epoch_seconds(study: optuna.Study, macs: int) -> float | None:
    """Seconds one training epoch of a candidate of ``macs`` multiply-accumulates per sample is expected to take
    here: ``macs`` times the median seconds per epoch and MAC of the trials that trained (None before
    :data:`MIN_COST_SAMPLES` of them). Small networks cost more per MAC than large ones, so this errs high."""
    rates = [t.user_attrs["seconds"] / (t.user_attrs["epochs_trained"] * t.user_attrs["macs"])
             for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
             if t.user_attrs.get("epochs_trained") and t.user_attrs.get("macs") and t.user_attrs.get("seconds")]
    if len(rates) < MIN_COST_SAMPLES:
        return None
    return float(np.median(rates)) * macs


def finish_estimate(study: optuna.Study, n_train: int, finetune_epochs: int, retrain: bool = True,
                    threads: int | None = None, timeout: float | None = None) -> float | None:
    """Estimated seconds of the winner's retrain, fine-tune and compression, from the best trial's measured cost
    per sample-epoch (None before a trial completes), trained with ``threads`` torch threads, under a --timeout of
    ``timeout`` seconds. The fine-tune is counted whole when it is cheap (:func:`_planned_finetune`), else for a
    quarter of the retrain's epochs (at least 2), which is what the finish cuts it to when time is short."""
    try:
        best = study.best_trial
    except ValueError:
        return None
    per = _epochs_per_sample_second(best, threads)
    if per is None:
        return None
    epochs = _retrain_epochs(best)
    finetune = _planned_finetune(per, n_train, finetune_epochs, epochs, timeout)
    return finish_overhead(timeout) + per * n_train * (epochs * retrain + finetune)


def _short_finetune(finetune_epochs: int, retrain_epochs: int) -> int:
    return min(finetune_epochs, max(2, retrain_epochs // 4))


class _Budget:
    """``--timeout`` covers the whole job: the search ends early enough for the winner's retrain, fine-tune and
    compression, whose cost is estimated from the best trial so far (:func:`finish_estimate`). With
    ``retrain=False`` (holdout validation on all of the training part, the best trials' models kept) the retrain is
    not reserved: the finish retrains only if the time is left, and ships the kept holdout model otherwise.
    ``threads`` is what the finish trains with."""

    def __init__(self, job_deadline: float | None, n_train: int, finetune_epochs: int, retrain: bool = True,
                 threads: int | None = None, timeout: float | None = None) -> None:
        self.job_deadline = job_deadline
        self.n_train = n_train
        self.finetune_epochs = finetune_epochs
        self.retrain = retrain
        self.threads = threads
        self.timeout = timeout
        self._said: float | None = None
        # what export and int8 take, but never more than a quarter of a short --timeout
        self.overhead = finish_overhead(timeout) if job_deadline is None else max(0.0, min(finish_overhead(timeout),
                                                                         0.25 * (job_deadline - time.time())))

    def search_deadline(self, study: optuna.Study) -> float | None:
        if self.job_deadline is None:
            return None
        reserve = finish_estimate(study, self.n_train, self.finetune_epochs, retrain=self.retrain,
                                  threads=self.threads, timeout=self.timeout)
        if reserve is None:
            return self.job_deadline - self.overhead
        if self._said is None or abs(reserve - self._said) > 0.2 * self._said:
            self._said = reserve
            logger.info("budget: %.0f s of --timeout reserved for the winner's retrain, fine-tune and compression "
                        "(measured on the best trial so far); the search ends in %.0f s", reserve,
                        max(0.0, self.job_deadline - reserve - time.time()))
        return self.job_deadline - reserve


def _retrain_epochs(trial: optuna.trial.FrozenTrial) -> int:
    """The winner's retrain epochs: the median of its folds' best (early-stopping) epochs (1 when unrecorded)."""
    return max(1, int(round(float(np.median(trial.user_attrs.get("best_epochs") or [1])))))


def _affordable_best(study: optuna.Study, complete: list[optuna.trial.FrozenTrial], n_train: int,
                     finetune_epochs: int, job_deadline: float | None, out_dir: Path | None,
                     timeout: float | None = None) -> tuple[optuna.trial.FrozenTrial, str | None]:
    """The trial the finish retrains: the best one, unless its retrain (and a short fine-tune) no longer fits in
    what is left of ``--timeout`` — which happens when a costlier candidate becomes the best near the end of the
    search — and another of the completed trials' does; then the best of those (and why, for the report).

    Cutting the best trial's retrain instead loses more than the runner-up's score is below it: on digits a
    228k-parameter winner retrained 4 of its 18 epochs scored 97.50% on the held-out split, the same network
    retrained 18 epochs 98.89-99.17% (3 seeds). A best trial whose holdout model was kept is never replaced (the
    finish ships that model when no retrain fits)."""
    best = study.best_trial
    if job_deadline is None:
        return best, None
    if out_dir is not None and (out_dir / KEEP_DIR / f"trial_{best.number}.pt").is_file():
        return best, None
    threads = torch.get_num_threads()
    left = job_deadline - time.time() - finish_overhead(timeout)

    def cost(trial: optuna.trial.FrozenTrial) -> float | None:
        per = _epochs_per_sample_second(trial, threads)
        if per is None:
            return None
        epochs = _retrain_epochs(trial)
        return per * n_train * (epochs + _planned_finetune(per, n_train, finetune_epochs, epochs, timeout))

    needed = cost(best)
    if needed is None or needed <= left:
        return best, None
    ranked = sorted((t for t in complete if t.value is not None and math.isfinite(t.value)
                     and t.number != best.number), key=lambda t: -float(t.value))
    for trial in ranked:
        c = cost(trial)
        if c is not None and c <= left:
            note = (f"the best trial {best.number} ({best.value:.4f}) needs about {needed:.0f} s to retrain and "
                    f"fine-tune and {max(0.0, left):.0f} s are left of --timeout; trial {trial.number} "
                    f"({trial.value:.4f}), which fits, is retrained instead")
            logger.info("budget: %s", note)
            return trial, note
    return best, None


REJECT_STREAK = 200
"""A worker whose last this many candidates were all rejected before training (by --max-params / --max-macs or
their estimated epoch cost) stops: the limits leave nothing to train."""


def _counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    # A FAIL without our fail_reason was interrupted (Ctrl-C, kill -9): it is redone, not counted. A candidate
    # rejected before training costs nothing and is not counted either: a rerun with looser limits trains anew.
    if trial.state == TrialState.PRUNED:
        return not trial.user_attrs.get("rejected", False)
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def _fail_running(study: optuna.Study) -> None:
    """Without heartbeats (journal or in-memory storage) a RUNNING trial found at start-up was left by an
    interrupted run of this same command: mark it failed (interrupted) so that it is redone."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        fail_trial(study, trial)
        logger.info("trial %d was left running by an interrupted run; it will be redone", trial.number)


def _settle_running(study_name: str, url: str) -> None:
    """Before the report: wait (up to the heartbeat grace period) for the RUNNING trials this search did not run
    — left by an interrupted run of the same command, or running on another machine — and fail those whose
    worker is gone, without queueing them again (the budget is spent). A trial whose worker still sends
    heartbeats stays RUNNING, as it is."""
    storage = open_storage(url, retry=False)
    study = optuna.load_study(study_name=study_name, storage=storage)
    if not _has_heartbeat(study):
        return  # journal storage: _fail_running handled them at start-up
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


def _n_done(study: optuna.Study) -> int:
    return _n_done_of(study.get_trials(deepcopy=False))


def _n_done_of(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(_counts_toward_budget(t) for t in trials)


def _run_until_budget(study: optuna.Study, objective: Callable[[optuna.Trial], float], budget: int,
                      deadline: float | None | _Budget, callbacks: list[Callable[..., None]],
                      stopped: Callable[[], bool] | None = None, workers_alive: Callable[[], bool] | None = None
                      ) -> int:
    """Run trials one at a time until the study has ``budget`` finished trials (all workers together) or the
    deadline (``time.time()``) passes. Returns the number of trials this worker ran.

    A worker starts a trial only while finished plus running trials are fewer than ``budget``; when the rest of
    the budget is in flight elsewhere it leaves. The search's own process (``workers_alive`` given) must see the
    budget finished: it waits while its local workers live, and once they are gone it runs trials while fewer
    than ``budget`` are finished — a RUNNING trial may then belong to a dead process (with heartbeats optuna
    fails it after ``GRACE_PERIOD`` seconds and enqueues a retry with the same parameters; interrupted trials
    are never counted), so a study shared with remote workers can end over the budget by the trials in flight.
    """
    ran = 0
    streak = [0]  # candidates rejected before training in a row, by this worker

    def count_rejections(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        streak[0] = streak[0] + 1 if trial.user_attrs.get("rejected") else 0

    def ends() -> float | None:
        return deadline.search_deadline(study) if isinstance(deadline, _Budget) else deadline

    while ends() is None or time.time() < ends():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        # Whether the local workers live is asked *before* the snapshot (a worker that has exited has finished
        # its trial, so the snapshot shows it), and both counts come from one snapshot: otherwise a trial that
        # finishes in between is counted in neither and one more starts (seen: 41 of 40 in two of five runs).
        alive = workers_alive is not None and workers_alive()
        trials = study.get_trials(deepcopy=False)
        done = sum(_counts_toward_budget(t) for t in trials)
        if done >= budget or (stopped is not None and stopped()):
            break
        if done + sum(t.state == TrialState.RUNNING for t in trials) >= budget:
            if workers_alive is None:
                break  # a worker: the rest of the budget is in flight elsewhere
            if alive:
                time.sleep(0.5)  # the search: its workers are finishing the last trials
                continue
        if streak[0] >= REJECT_STREAK:
            logger.warning("the last %d candidates were all rejected before training (the last: %s); the search "
                           "stops: loosen --max-params / --max-macs, or raise --timeout", streak[0],
                           trials[-1].user_attrs.get("pruned_reason") if trials else "?")
            break
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[*callbacks, count_rejections],
                       gc_after_trial=False)
        ran += 1
    return ran


class _Progress:
    """A tqdm bar: trial n/N (every worker's trials), best so far, time left."""

    def __init__(self, total: int, done: int, deadline: float | None, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=not enabled,
                         dynamic_ncols=True)
        self._deadline = deadline

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs:
            logger.warning("trial %d failed: %s", trial.number, trial.user_attrs["fail_reason"])
        elif "stopped_reason" in trial.user_attrs:
            logger.info("trial %d: %s", trial.number, trial.user_attrs["stopped_reason"])
        self._bar.n = min(self._bar.total, _n_done(study))
        post = {}
        try:
            post["best"] = f"{study.best_value:.4f}"
        except ValueError:
            post["best"] = "-"
        if self._deadline is not None:
            post["timeout_in"] = f"{max(0.0, self._deadline - time.time()):.0f}s"
        self._bar.set_postfix(post)

    def close(self) -> None:
        self._bar.close()


@contextlib.contextmanager
def _epoch_bar(desc: str, total: int, enabled: bool) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """A tqdm bar over the epochs of one phase after the search (the retrain, the fine-tune): an ``on_epoch``
    callback for :func:`~autoarch.trainer.fit`, with the epoch's training loss."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="epoch", disable=not enabled, dynamic_ncols=True)

    def on_epoch(epoch: int, record: dict[str, float]) -> None:
        bar.update(1)
        if "train_loss" in record:
            bar.set_postfix(loss=f"{record['train_loss']:.4f}")

    try:
        yield on_epoch
    finally:
        bar.close()


def _make_objective(space: SearchSpace, train: Dataset, cfg: SearchConfig, metric: str,
                    device: torch.device, search_deadline: float | None | _Budget = None,
                    keep_dir: Path | None = None) -> Callable[[optuna.Trial], float]:
    """The trial function. ``search_deadline`` (``time.time()``, or the ``--timeout`` budget) also stops a trial
    still training when it passes: the trial is marked FAIL with a ``stopped_reason`` and does not count toward
    the budget (a resumed run starts another), so ``--timeout`` bounds the search, not just when trials start.

    After every epoch the objective metric on the fold's early-stopping part is reported to optuna (step
    ``fold * epochs + epoch``) so that the pruner of ``--early-stop`` can stop the candidate; a classifier still
    at chance level after :data:`CHANCE_EPOCHS` epochs, or a diverging one, is stopped too. Every trial records
    its fidelity: ``epochs_trained`` (all folds) and the folds it finished. The warm-start candidates are never
    pruned by ``--early-stop`` (they are the references), only by the chance and divergence checks.

    With holdout validation, ``--timeout`` ends a candidate still training as early stopping would: it is scored
    with its best epoch so far (``fidelity_note`` says so). With ``keep_dir``, the holdout model of a candidate
    that beats every completed one is saved there (``trial_<n>.pt``), so that the finish can ship it when the
    budget leaves no time to retrain it."""
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    plain = metric[4:] if metric.startswith("neg_") else metric

    def objective(trial: optuna.Trial) -> float:
        by_search = False  # whether --timeout (not --trial-timeout) is the limit that can stop this trial
        started = time.perf_counter()
        try:
            arch = space.suggest(trial)
            tcfg = suggest_training(trial, cfg.epochs, cfg.patience)
            trial.set_user_attr("architecture", arch)
            trial.set_user_attr("training", tcfg.to_dict())
            trial.set_user_attr("threads", torch.get_num_threads())
            macs, params = count_macs_params(build_model(space, arch, train), example)
            trial.set_user_attr("params", params)
            trial.set_user_attr("macs", macs)
            over = [f"{name} {value:,} > --max-{name} {limit:,}" for name, value, limit in
                    (("params", params, cfg.max_params), ("macs", macs, cfg.max_macs))
                    if limit is not None and value > limit]
            if over:  # rejected before any training
                trial.set_user_attr("pruned_reason", "; ".join(over))
                trial.set_user_attr("rejected", True)
                raise optuna.TrialPruned(over[0])
            ends = (search_deadline.search_deadline(trial.study) if isinstance(search_deadline, _Budget)
                    else search_deadline)
            epoch_cost = estimate_epoch_seconds(trial.study, macs)
            if ends is not None and epoch_cost is not None and epoch_cost > EPOCH_SHARE * (ends - time.time()):
                trial.set_user_attr("pruned_reason", f"one epoch would take about {epoch_cost:.0f} s (measured on "
                                                     f"earlier trials), more than {EPOCH_SHARE:.0%} of the "
                                                     f"{max(0.0, ends - time.time()):.0f} s left to the search")
                trial.set_user_attr("rejected", True)
                raise optuna.TrialPruned()
            first_loss: list[float] = []
            trained = [0]
            rows = _fold_rows(len(train), cfg.cv, cfg.search_samples)
            watch_divergence = rows >= DIVERGENCE_BATCHES * tcfg.batch_size

            def on_epoch(fold: int, epoch: int, record: dict[str, float]) -> None:
                trained[0] += 1
                trial.set_user_attr("epochs_trained", trained[0])
                crash_point("epoch")  # the crash tests' kill in the middle of a trial
                if fold == 0 and epoch == 1:
                    first_loss.append(record["train_loss"])
                elif watch_divergence and first_loss and record["train_loss"] > DIVERGENCE * first_loss[0]:
                    trial.set_user_attr("pruned_reason", f"diverging: training loss {record['train_loss']:.3g} in "
                                                         f"epoch {epoch}, {first_loss[0]:.3g} in the first")
                    raise optuna.TrialPruned()
                if f"val_{plain}" not in record:
                    return
                majority = record.get("val_majority")
                if (majority is not None and fold == 0 and epoch == getattr(space, "chance_epochs", CHANCE_EPOCHS)
                        and record["val_accuracy"] <= majority + CHANCE_MARGIN):
                    trial.set_user_attr("pruned_reason", f"at chance level after {epoch} epochs (accuracy "
                                                         f"{record['val_accuracy']:.3f}, majority class "
                                                         f"{majority:.3f})")
                    raise optuna.TrialPruned()
                trial.report(objective_value(metric, {k[4:]: v for k, v in record.items() if k.startswith("val_")}),
                             fold * cfg.epochs + epoch)
                if trial.should_prune() and "warm_start" not in trial.user_attrs:
                    trial.set_user_attr("pruned_reason", f"--early-stop {cfg.early_stop} after {trained[0]} "
                                                         f"epoch(s) (fold {fold + 1}, epoch {epoch})")
                    raise optuna.TrialPruned()

            trial_limit = None if cfg.trial_timeout is None else time.monotonic() + cfg.trial_timeout
            search_limit = None if ends is None else time.monotonic() + (ends - time.time())
            by_search = search_limit is not None and (trial_limit is None or search_limit <= trial_limit)
            soft = by_search and isinstance(cfg.cv, float)  # holdout: score what the deadline leaves
            result = cross_validate(space, arch, tcfg, train, cv=cfg.cv, seed=cfg.seed, device=device,
                                    on_epoch=on_epoch, monitor=None if metric.startswith("neg_") else plain,
                                    deadline=trial_limit if soft or not by_search else search_limit,
                                    stop_at=search_limit if soft else None, max_fit=cfg.search_samples)
        except optuna.TrialPruned:
            if "epochs_trained" in trial.user_attrs:  # it trained: what it cost informs the budget planner
                trial.set_user_attr("seconds", time.perf_counter() - started)
            raise
        except TimeLimitError as exc:
            if by_search:
                trial.set_user_attr("stopped_reason", f"{exc} and was stopped at --timeout "
                                                      f"({cfg.timeout:g} s); it does not count as a trial")
            else:
                trial.set_user_attr("fail_reason", f"{exc} (--trial-timeout {cfg.trial_timeout:g} s); raise the "
                                                   "limit or search smaller networks")
            raise
        except Exception as exc:  # MemoryError and CUDA out-of-memory included: the trial fails, the search goes on
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            raise
        mean, std = result.mean(), result.std()
        for name in mean:
            trial.set_user_attr(f"cv_{name}_mean", mean[name])
            trial.set_user_attr(f"cv_{name}_std", std[name])
        trial.set_user_attr("best_epochs", result.best_epochs)
        trial.set_user_attr("fold_scores", [objective_value(metric, f) for f in result.fold_scores])
        trial.set_user_attr("epochs_run", result.epochs_run)
        trial.set_user_attr("n_fit", result.n_fit)
        trial.set_user_attr("seconds", result.seconds)
        if result.stopped_at_deadline:
            trial.set_user_attr("fidelity_note", f"--timeout reached: scored with its best of "
                                                 f"{result.epochs_run[-1]} epoch(s)")
        value = objective_value(metric, mean)
        if not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"the {metric} score is {value} (undefined on these folds)")
            return float("nan")
        if keep_dir is not None and result.model is not None and isinstance(cfg.cv, float):
            done = [t.value for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
            if not done or value > max(done):
                keep_dir.mkdir(exist_ok=True)
                save_state_dict(result.model.cpu(), keep_dir / f"trial_{trial.number}.pt")
        return value

    return objective


def leaderboard(study: optuna.Study, space: SearchSpace | None = None) -> pd.DataFrame:
    """One row per trial: state, objective, CV metrics (mean and std), size, time, architecture, and why a trial
    failed or was pruned; best first."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        arch = t.user_attrs.get("architecture")
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "value": t.value}
        row.update({k: v for k, v in t.user_attrs.items() if k.startswith("cv_")})
        row["params"] = t.user_attrs.get("params")
        row["macs"] = t.user_attrs.get("macs")
        row["seconds"] = t.user_attrs.get("seconds")
        row["epochs_trained"] = t.user_attrs.get("epochs_trained")
        row["warm_start"] = t.user_attrs.get("warm_start", "")
        row["architecture"] = (space.describe(arch) if space is not None and arch else json.dumps(arch))
        row["training"] = json.dumps(t.user_attrs.get("training"))
        row["reason"] = (t.user_attrs.get("fail_reason") or t.user_attrs.get("pruned_reason")
                         or t.user_attrs.get("stopped_reason") or ("interrupted" if t.state == TrialState.FAIL else "")
                         or t.user_attrs.get("fidelity_note", ""))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["value", "trial"], ascending=[False, True], na_position="last").reset_index(drop=True)


@contextlib.contextmanager
def _run_dir_lock(out_dir: Path | None) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the run directory itself (no file is created) while a search writes it: a
    second search on the same ``--out`` is refused instead of racing the first to create the study (SQLite:
    "UNIQUE constraint failed"). Workers (``autoarch worker``, the search's own processes) do not take it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        fcntl = None  # type: ignore[assignment]
    if out_dir is None or fcntl is None:
        yield
        return
    fd = os.open(out_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out_dir} is in use by another autoarch search; wait for it to finish, or give "
                              "another --out (join a running search with 'autoarch worker').") from None
        yield
    finally:
        os.close(fd)


def _prepare_out(out: str | os.PathLike[str] | None) -> Path | None:
    if out is None:
        return None
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(path)!r} is a file, not a directory; give a directory path.")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write to --out {str(path)!r} ({exc.strerror}); choose a writable directory.") \
            from None
    return path


@dataclass
class _Context:
    """Everything a worker needs to evaluate trials: the data, its splits, the space and the options."""

    dataset: Dataset
    train: Dataset
    test: Dataset
    space: SearchSpace
    cfg: SearchConfig
    metric: str
    target: str | None
    keep_dir: Path | None = None
    """Where holdout models of the best trials are kept (the run directory's ``.trial-models``), or None."""
    finish_threads: int = 1
    """The torch threads the finish (retrain, fine-tune) runs with, for the budget planner."""
    data_sha256: str = ""
    """The content hash of the data (:func:`data_digest`): a study resumes on the same data only."""

    @property
    def fingerprint(self) -> dict[str, Any]:
        fp = {k: getattr(self.cfg, k) for k in _FINGERPRINT_KEYS}
        fp.update(space=self.space.name, metric=self.metric, data=self.dataset.name, n_samples=len(self.dataset),
                  task=self.dataset.task, target=self.target, data_sha256=self.data_sha256)
        return fp


def _prepare(data: Any, y: Any, target: str | None, task: str | None, options: Mapping[str, Any]) -> _Context:
    """Validate the options and the data (before any training) and split off the held-out set."""
    unknown = sorted(set(options) - set(SearchConfig.__dataclass_fields__))
    if unknown:
        hint = did_you_mean(unknown[0], SearchConfig.__dataclass_fields__)
        raise ConfigError(f"search() got unknown option {unknown[0]!r}.{hint}")
    cfg = SearchConfig(**options)
    cfg.validate()
    dataset = _resolve_data(data, y, target, task, cfg.max_samples, cfg.seed, cfg.image_size, cfg.on_bad_image,
                            cfg.text_column, cfg.max_length)
    augment = resolve_augment(cfg.augment, dataset.input_shape)
    space = get_space(cfg.space, dataset.input_kind, augment=augment == "search")
    metric = cfg.metric or default_metric(dataset.task)
    check_metric(metric, dataset.task)
    official = official_test(str(data)) if isinstance(data, str) and cfg.test is None else None
    if cfg.test not in (None, "split"):
        train, test = dataset, load_test(cfg.test, dataset, target=target, image_size=cfg.image_size,
                                         on_bad_image=cfg.on_bad_image)
    elif official is not None:
        train, test = dataset, official
    else:
        train, test = train_test_split(dataset, cfg.test_size, cfg.seed)
    cv = resolve_cv(cfg.cv, len(train))
    if cfg.cv == "auto" and isinstance(cv, float):
        logger.info("%d training samples: candidates are validated on one %.0f%% holdout split (--cv auto; give "
                    "--cv K for k-fold)", len(train), 100 * cv)
    early_stop = cfg.early_stop if cfg.early_stop != "auto" else ("halving" if isinstance(cv, float) else "median")
    search_samples = resolve_search_samples(cfg.search_samples, len(train))
    if search_samples is not None:
        logger.info("%d training samples: during the search each candidate trains on at most %d of its fold's "
                    "training part; the winner is retrained on all %d (--search-samples%s)", len(train),
                    search_samples, len(train), " auto; give all to train on everything"
                    if cfg.search_samples == "auto" else f" {search_samples}")
    cfg = replace(cfg, cv=cv, early_stop=early_stop, augment=augment, search_samples=search_samples,
                  test=cfg.test if cfg.test is not None else ("official" if official is not None else "split"))
    _check_folds(train, cfg.cv)
    if options.get("augment", "auto") == "auto" and dataset.input_kind == "image" and isinstance(cfg.space, str):
        logger.info("%s images: training augmentation is %s (--augment auto searches it from %d pixels a side)",
                    "x".join(map(str, dataset.input_shape[1:])), "searched" if augment == "search" else "off",
                    AUGMENT_MIN_SIDE)
    return _Context(dataset, train, test, space, cfg, metric, target, data_sha256=data_digest(dataset))


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


def _data_spec(data: Any, target: str | None, task: str | None) -> dict[str, Any] | None:
    """How a remote worker reloads the data: a built-in name or an absolute file path (arrays cannot travel)."""
    if not isinstance(data, (str, os.PathLike)):
        return None
    source = str(data)
    if source not in BUILTIN_DATASETS:
        source = str(Path(source).resolve())
    return {"source": source, "target": target, "task": task}


def _sampler(ctx: _Context, worker: int, done: int) -> optuna.samplers.BaseSampler:
    # Each worker, and a resumed run, continues with its own random stream; random search seeds per trial
    # number instead, so trial n gets the same candidate whatever the workers and resumes.
    grid = {**ctx.space.grid(), **training_grid()} if ctx.cfg.controller == "grid" else None
    seed = ctx.cfg.seed if ctx.cfg.controller == "random" else ctx.cfg.seed + 7919 * worker + done
    return make_sampler(ctx.cfg.controller, seed=seed, n_trials=ctx.cfg.trials, grid=grid)


def _worker_loop(ctx: _Context, storage: optuna.storages.BaseStorage, worker: int, deadline: float | None,
                 callbacks: list[Callable[..., None]] | None = None, stopped: Callable[[], bool] | None = None,
                 workers_alive: Callable[[], bool] | None = None) -> int:
    study = optuna.load_study(study_name=ctx.cfg.study_name, storage=storage)
    study.sampler = _sampler(ctx, worker, _n_done(study))
    study.pruner = make_pruner(ctx.cfg.early_stop, ctx.cfg.cv, ctx.cfg.epochs)
    # Holdout models are worth shipping only when they trained on the whole training part of the split.
    keep = ctx.keep_dir if isinstance(ctx.cfg.cv, float) and ctx.cfg.search_samples is None else None
    budget = (None if deadline is None else
              _Budget(deadline, len(ctx.train), ctx.cfg.finetune_epochs if ctx.cfg.prune > 0 else 0,
                      retrain=keep is None, threads=ctx.finish_threads, timeout=ctx.cfg.timeout))
    objective = _make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric, resolve_device(ctx.cfg.device),
                                search_deadline=budget, keep_dir=keep)
    return _run_until_budget(study, objective, ctx.cfg.trials, budget, callbacks or [], stopped, workers_alive)


WORKERS_ENV = "AUTOARCH_WORKERS"
"""Environment variable that sets how many workers ``--workers auto`` starts (default: the usable cores)."""


def resolve_workers(workers: int | str, *, trials: int, shared: bool, device: torch.device) -> int:
    """The number of local worker processes: ``workers`` itself, or for ``"auto"`` one per usable CPU core
    (``$AUTOARCH_WORKERS`` overrides), at most ``trials``; ``"auto"`` means one worker when the study cannot be
    shared between processes (in memory: no ``out`` and no ``storage``) or the device is a GPU."""
    if workers != "auto":
        return int(workers)
    if not shared or device.type != "cpu":
        return 1
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ConfigError(f"${WORKERS_ENV} must be a positive integer, but it is {env!r}; unset it or set it "
                              "to e.g. 1.")
        n = int(env)
    else:
        n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n, trials))


def _local_worker(ctx: _Context, url: str, worker: int, deadline: float | None, threads: int, parent: int,
                  warning_filters: list[Any]) -> None:
    """Entry point of a ``--workers`` child process (it shows the warnings its parent shows)."""
    warnings.filters[:] = warning_filters
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.basicConfig(level=logging.WARNING)
    # kill -9 of the search leaves its daemon children running: they stop after their trial once orphaned.
    _worker_loop(ctx, open_storage(url), worker, deadline, stopped=lambda: os.getppid() != parent)


def search(
    data: Any,
    y: Any = None,
    *,
    target: str | None = None,
    task: str | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **options: Any,
) -> SearchResult:
    """Search an architecture for ``data``, retrain the winner, compress it and write the run directory.

    Args:
        data: a built-in data set name (``"digits"``, ``"iris"``, ...), a ``.csv`` / ``.npz`` path, a
            :class:`~autoarch.data.Dataset`, a feature array (then give ``y``), or a pandas DataFrame (give
            ``target`` or ``y``; text columns and missing cells are encoded by the model, :mod:`autoarch.tables`).
        y: targets when ``data`` is an array (or a DataFrame of features only).
        target: the target column of a CSV file or a DataFrame.
        task: ``"classification"`` or ``"regression"``; inferred when None.
        out: the run directory (study database, models, reports); re-running with the same directory resumes
            the study. None keeps the study in memory (unless ``storage`` is given) and the files in a
            temporary directory.
        progress: show a progress bar on stderr.
        **options: the fields of :class:`~autoarch.config.SearchConfig` (``space``, ``controller``, ``metric``,
            ``cv``, ``trials``, ``timeout``, ``seed``, ``epochs``, ``patience``, ``test_size``, ``prune``,
            ``finetune_epochs``, ``calibration_samples``, ``max_samples``, ``device``, ``workers``,
            ``early_stop``, ``trial_timeout``, ``max_params``, ``max_macs``, ``storage``, ``study_name``).

    Raises:
        DataError, ConfigError, SpaceError: bad data or options (checked before any training).
        AutoArchError: every trial failed.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> result = search(X, y, trials=3, cv=3, epochs=5)  # doctest: +SKIP
    """
    ctx = _prepare(data, y, target, task, options)
    if out is not None:
        ctx = replace(ctx, keep_dir=Path(out) / KEEP_DIR)
    cfg = ctx.cfg
    device = resolve_device(cfg.device)
    workers = resolve_workers(cfg.workers, trials=cfg.trials, shared=out is not None or cfg.storage is not None,
                              device=device)
    if workers > 1 and out is None and cfg.storage is None:
        raise ConfigError("--workers > 1 needs a shared study: give --out DIR (SQLite file inside) or --storage URL.")
    cfg = replace(cfg, workers=workers)
    ctx = replace(ctx, cfg=cfg, finish_threads=torch.get_num_threads())
    # A storage that cannot be opened, or holds another study, must not leave a new, empty --out behind.
    storage = open_storage(cfg.storage) if cfg.storage is not None else None
    new_out = out is not None and not Path(out).exists()
    out_dir = _prepare_out(out)
    with _run_dir_lock(out_dir):
        url = cfg.storage or (f"sqlite:///{out_dir / STUDY_FILE}" if out_dir is not None else None)
        if storage is None:
            storage = open_storage(url) if url is not None else optuna.storages.InMemoryStorage()
        start = time.perf_counter()
        deadline = None if cfg.timeout is None else time.time() + cfg.timeout
        spec = {"data": _data_spec(data, target, task),
                "options": {**asdict(cfg), "space": space_ref(ctx.space), "storage": redact(cfg.storage)}}
        # The study is created here, before any worker starts (two processes creating one SQLite study race).
        try:
            study = _open_study(storage, cfg.study_name, ctx.fingerprint, spec, _sampler(ctx, 0, 0),
                                make_pruner(cfg.early_stop, cfg.cv, cfg.epochs), str(out_dir or redact(url)))
        except AutoArchError:
            if new_out and out_dir is not None and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise
        if not _has_heartbeat(study):
            _fail_running(study)
        _warm_start(study, ctx)
        done = _n_done(study)
        if done:
            logger.info("resuming the study in %s: %d of %d trials done", out_dir or redact(url), done, cfg.trials)
        if done < cfg.trials:
            children = []
            workers = min(workers, cfg.trials - done)
            if workers > 1:
                import multiprocessing

                logger.info("%d worker processes, one torch thread each", workers)
                mp = multiprocessing.get_context("spawn")
                children = [mp.Process(target=_local_worker, daemon=True,
                                       args=(ctx, url, i, deadline, 1, os.getpid(), list(warnings.filters)))
                            for i in range(1, workers)]
                for child in children:
                    child.start()
            threads = torch.get_num_threads()
            bar = _Progress(cfg.trials, done, deadline, progress)
            try:
                if workers > 1:
                    torch.set_num_threads(1)  # one thread per worker process
                _worker_loop(ctx, storage, 0, deadline, [bar, lambda study, trial: crash_point("trial")],
                             workers_alive=lambda: any(child.is_alive() for child in children))
                for child in children:
                    child.join()
                    if child.exitcode:
                        logger.warning("a worker process exited with status %s; its trial is retried", child.exitcode)
            finally:
                torch.set_num_threads(threads)
                bar.close()
                for child in children:
                    if child.is_alive():
                        child.terminate()
        if url is not None:
            _settle_running(cfg.study_name, url)
        study = optuna.load_study(study_name=cfg.study_name, storage=storage)
        return _finish(study, ctx.space, ctx.dataset, ctx.train, ctx.test, cfg, ctx.metric, device, out_dir,
                       time.perf_counter() - start, deadline, progress=progress)


def _warm_start(study: optuna.Study, ctx: _Context) -> None:
    """Queue the space's textbook networks (with :data:`WARM_START_TRAINING`) as the first trials of a new study,
    so that a search never ships worse than the reference it could have started from."""
    if not ctx.cfg.warm_start or ctx.cfg.controller == "grid" or study.user_attrs.get("warm_started"):
        return
    study.set_user_attr("warm_started", True)
    if study.get_trials(deepcopy=False):
        return  # a study made before warm starts existed
    training = dict(WARM_START_TRAINING)
    if len(ctx.train) < LARGE_DATA:
        training["batch_size"] = WARM_START_SMALL_BATCH
    for name, arch in ctx.space.warm_starts()[:ctx.cfg.trials]:
        # a space's warm start may carry its own training values (the rnn space's LSTM its learning rate)
        study.enqueue_trial({**training, **arch}, user_attrs={"warm_start": name})
        logger.info("warm start: trial %s is the %s network", len(study.get_trials(deepcopy=False)) - 1, name)


def run_worker(storage: str, study_name: str = STUDY_NAME, *, threads: int = 1, progress: bool = False) -> int:
    """Join the study ``study_name`` in ``storage`` and evaluate trials until its budget is spent.

    The study must have been created by :func:`search` (``autoarch search ... --storage URL``), which stored its
    options and how to load its data (a built-in data set, or a file at the same path on this machine).
    The search that created the study retrains and compresses the winner; workers only evaluate trials.

    Returns:
        The number of trials this worker evaluated.
    """
    store = open_storage(storage, must_exist=True)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        names = optuna.get_all_study_names(store)
        raise ConfigError(f"no study {study_name!r} in {redact(storage)}; the studies there are {names}. Start it with "
                          "'autoarch search DATA --storage URL --study NAME' first.") from None
    spec = study.user_attrs.get("spec")
    if spec is None or spec.get("data") is None:
        raise ConfigError(f"study {study_name!r} was not created by 'autoarch search' from a data set name or file, "
                          "so a worker cannot load its data; start it from a data set name or file.")
    options = {k: v for k, v in spec["options"].items() if k in SearchConfig.__dataclass_fields__}
    data = spec["data"]
    ctx = _prepare(data["source"], None, data["target"], data["task"], {**options, "workers": 1})
    if ctx.fingerprint != study.user_attrs.get("config"):
        raise DataError(f"the data this worker loaded from {data['source']!r} differs from the study's "
                        f"({len(ctx.dataset)} samples); give every machine the same file.")
    torch.set_num_threads(threads)
    deadline = None
    bar = _Progress(ctx.cfg.trials, _n_done(study), deadline, progress)
    try:
        return _worker_loop(ctx, store, 1 + os.getpid() % 1000, deadline, [bar])
    finally:
        bar.close()


def _no_trial_completed(trials: list[optuna.trial.FrozenTrial], cfg: SearchConfig) -> str:
    """Why a search ended without a completed trial, and what to change (one line)."""
    trials = [t for t in trials if t.state != TrialState.WAITING]  # queued (warm starts, retries), never started
    reasons = [t.user_attrs["fail_reason"] for t in trials if t.user_attrs.get("fail_reason")]
    stopped = sum("stopped_reason" in t.user_attrs for t in trials)
    rejected = [t.user_attrs.get("pruned_reason", "") for t in trials if t.user_attrs.get("rejected")]
    pruned = sum(t.state == TrialState.PRUNED and not t.user_attrs.get("rejected") for t in trials)
    timeout = f"--timeout ({cfg.timeout:g} s)" if cfg.timeout is not None else "the deadline"
    if not trials:
        return (f"no trial started before {timeout} ran out; raise --timeout (the search needs at least one "
                "trial's training, and a reserve for the retrain and export).")
    if stopped and not reasons and not rejected:
        return f"no trial completed: {timeout} stopped {stopped} still training. Raise --timeout, or lower --epochs."
    parts = []
    timed_out = [r for r in reasons if "--trial-timeout" in r]
    if timed_out:
        parts.append(f"{len(timed_out)} ran past their time limit (--trial-timeout {cfg.trial_timeout:g} s): "
                     "raise it")
    if len(reasons) > len(timed_out):
        other = next(r for r in reasons if "--trial-timeout" not in r)
        parts.append(f"{len(reasons) - len(timed_out)} failed (the first: {other})")
    if rejected:
        limits = "--max-params / --max-macs" if any("--max-" in r for r in rejected) else "their estimated cost"
        parts.append(f"{len(rejected)} were rejected before training by {limits} (the first: {rejected[0]}): "
                     "loosen it")
    if pruned:
        parts.append(f"{pruned} were stopped early (--early-stop {cfg.early_stop}, chance level or divergence)")
    if stopped:
        parts.append(f"{stopped} were stopped still training by {timeout}")
    spent = _n_done_of(trials) >= cfg.trials
    more = (f"; this study has used its --trials {cfg.trials}: rerun with a higher --trials, or a new --out"
            if spent else "")
    return f"none of the {len(trials)} trials completed: " + "; ".join(parts) + more + "."


def _finish(study: optuna.Study, space: SearchSpace, dataset: Dataset, train: Dataset, test: Dataset,
            cfg: SearchConfig, metric: str, device: torch.device, out_dir: Path | None, search_seconds: float,
            job_deadline: float | None = None, progress: bool = False) -> SearchResult:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        raise SearchFailedError(_no_trial_completed(trials, cfg))
    finetune_epochs = cfg.finetune_epochs if cfg.prune > 0 else 0
    best, substitute = _affordable_best(study, complete, len(train), finetune_epochs, job_deadline, out_dir,
                                        cfg.timeout)
    arch = dict(best.user_attrs["architecture"])
    tcfg = TrainConfig(**best.user_attrs["training"])
    epochs = _retrain_epochs(best)
    per = _epochs_per_sample_second(best, torch.get_num_threads())
    kept = None if out_dir is None else out_dir / KEEP_DIR / f"trial_{best.number}.pt"
    kept = kept if kept is not None and kept.is_file() else None
    retrained: dict[str, Any] = {"epochs": epochs, "samples": len(train)}
    if substitute:
        retrained["substituted"] = substitute
    model = None
    if job_deadline is not None and per is not None:
        fit_epochs = int((job_deadline - time.time() - finish_overhead(cfg.timeout)) / (per * len(train)))
        short = _short_finetune(finetune_epochs, epochs) if finetune_epochs else 0
        if kept is not None and epochs + short > fit_epochs:
            # No time to retrain: ship the holdout model the trial trained (on its fit part only).
            finetune_epochs = min(finetune_epochs, max(short, fit_epochs)) if finetune_epochs else 0
            model = build_model(space, arch, train)
            model.load_state_dict(torch.load(kept, map_location="cpu", weights_only=True))
            model = model.eval()
            retrained = {"epochs": 0, "samples": best.user_attrs.get("n_fit"),
                         "skipped": f"{epochs} retrain epochs did not fit in what is left of --timeout; the model "
                                    f"trial {best.number} trained on its holdout fit part is shipped"}
            logger.info("budget: %s", retrained["skipped"])
        elif epochs + finetune_epochs > fit_epochs:
            planned = (epochs, finetune_epochs)
            finetune_epochs = min(finetune_epochs, max(short, fit_epochs - epochs)) if finetune_epochs else 0
            epochs = max(1, min(epochs, fit_epochs - finetune_epochs))
            retrained["epochs"] = epochs
            logger.info("budget: %d retrain and %d fine-tune epochs fit in what is left of --timeout (planned %d "
                        "and %d)", epochs, finetune_epochs, *planned)
    if model is None:
        crash_point("retrain")
        logger.info("retraining trial %d on the whole training split (%d samples, %d epochs)", best.number,
                    len(train), epochs)
        with _epoch_bar("retrain", epochs, progress) as on_epoch:
            model = retrain(space, arch, tcfg, train, epochs, seed=cfg.seed, device=device, on_epoch=on_epoch)
    test_scores = compute_metrics(test.task, test.y, predict(model, test.X), test.n_outputs)

    files_dir = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="autoarch-"))
    description = _describe(space, arch, dataset, metric)
    metadata = {"autoarch_version": __version__, "task": dataset.task, "classes": json.dumps(dataset.classes),
                "input_shape": json.dumps(list(dataset.input_shape)),
                # without a text model's token table: the metadata's 'text' has the kept vocabulary
                "architecture": json.dumps({k: v for k, v in description.items() if k != "text"}),
                "metric": metric}
    # Every output is staged and put in place at once (rundir.Generation): a kill while a finished run
    # directory is rewritten never leaves new files beside old ones unnoticed.
    gen = Generation(files_dir, writer="search")
    try:
        pruned = cfg.prune > 0 and not has_recurrent(model)  # recurrent layers are exported unpruned
        with _epoch_bar("fine-tune", max(1, finetune_epochs) if pruned else 0, progress and pruned) as on_epoch:
            comp = compress_model(model, train, test, gen.staging, train_config=tcfg, prune_ratio=cfg.prune,
                                  finetune_epochs=max(1, finetune_epochs),
                                  calibration_samples=cfg.calibration_samples, seed=cfg.seed, device=device,
                                  metadata=metadata, on_stage=_on_stage, on_epoch=on_epoch)
    except BaseException:
        gen.discard()
        raise
    description["pruning_history"] = comp.pruning_history
    shipped = comp.int8_path if comp.int8_path is not None else comp.onnx_path
    board = leaderboard(study, space)
    cv_scores = {k[3:-5]: (best.user_attrs[k], best.user_attrs[k[:-5] + "_std"])
                 for k in best.user_attrs if k.startswith("cv_") and k.endswith("_mean")}
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    report = {
        "autoarch_version": __version__,
        "data": {"name": dataset.name, "task": dataset.task, "input_shape": list(dataset.input_shape),
                 "n_samples": len(dataset), "n_train": len(train), "n_test": len(test), "classes": dataset.classes,
                 # How `autoarch compress` reloads the data: a built-in name or an absolute file path.
                 "source": (study.user_attrs.get("spec") or {}).get("data"),
                 **({"encoding": TableEncoder(dataset.columns).describe()} if dataset.columns else {})},
        "search": {"space": space.name, "controller": cfg.controller, "metric": metric, "cv": cfg.cv,
                   "validation": describe_cv(cfg.cv), "early_stop": cfg.early_stop,
                   "augment": cfg.augment, "held_out": cfg.test,
                   "trials_requested": cfg.trials, "trial_states": {k: v for k, v in counts.items() if v},
                   "fidelity": _fidelity_counts(trials), "search_samples": cfg.search_samples,
                   "seconds_this_run": search_seconds, "seed": cfg.seed, "device": str(device)},
        "best": {"trial": best.number, "warm_start": best.user_attrs.get("warm_start"), "architecture": arch,
                 "summary": space.describe(arch),
                 "training": tcfg.to_dict(), "retrain_epochs": retrained["epochs"], "retrain": retrained,
                 "retrain_schedule": "cosine",
                 "cv": cv_scores},
        "test": test_scores,
        "test_detail": _guarded_test_detail(test, shipped),
        "compression": {"prune_ratio": cfg.prune, "finetune_epochs": finetune_epochs,
                        "stages": comp.stages, "verification": comp.verification},
        "config": {**asdict(cfg), "space": space_ref(space), "storage": redact(cfg.storage)},
    }
    with gen:
        if out_dir is not None:
            from autoarch.html_report import render_html
            from autoarch.report import render_markdown

            gen.write_json("architecture.json", description)
            gen.save_state_dict("model.pt", comp.model)
            gen.save_state_dict("winner.pt", model)  # before pruning: what `autoarch compress` starts from
            gen.write_text("leaderboard.csv", board.to_csv(index=False))
            gen.write_json("report.json", report, default=_json_default)
            gen.write_text("report.md", render_markdown(report, board))
            try:
                page = render_html(report, study)
            except Exception as exc:  # a chart must never cost the run its outputs
                logger.warning("report.html was not written (%s: %s); `autoarch report %s` retries it",
                               type(exc).__name__, exc, out_dir)
            else:
                gen.write_text("report.html", page)
        gen.commit()
    comp.onnx_path = files_dir / "model.onnx"
    comp.int8_path = None if comp.int8_path is None else files_dir / comp.int8_path.name
    if out_dir is not None:
        shutil.rmtree(out_dir / KEEP_DIR, ignore_errors=True)  # the trial models served the finish only
    return SearchResult(architecture=arch, training=tcfg.to_dict(), cv_scores=cv_scores, test_scores=test_scores,
                        model=comp.model, leaderboard=board, compression=comp, out_dir=files_dir, study=study,
                        report=report)


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


def rebuild_report(run_dir: str | os.PathLike[str], storage: str | None = None) -> Path:
    """Write ``report.html`` of a finished run again from its ``report.json`` and its study (the run directory's
    SQLite file, or ``storage`` for a study kept elsewhere), e.g. after more trials or with a newer autoarch.

    Raises:
        DataError: ``run_dir`` is not a finished run, or its study cannot be found.
    """
    from autoarch.html_report import render_html

    run = Path(run_dir)
    outputs = read_outputs(run, ["report.json"]) if run.is_dir() else {}
    if "report.json" not in outputs:
        raise DataError(f"{run} holds no finished run (no report.json); give the --out directory of a search that "
                        "finished.")
    report = json.loads(outputs["report.json"])
    study_name = (report.get("config") or {}).get("study_name", STUDY_NAME)
    backend = open_storage(run_storage_url(run, storage), must_exist=True, retry=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=backend)
    except KeyError:
        raise DataError(f"the storage holds no study named {study_name!r}; give the --storage the search "
                        "used.") from None
    with Generation(run, writer="report") as gen:
        gen.write_text("report.html", render_html(report, study))
        gen.commit()
    return run / "report.html"


RESIDUAL_POINTS = 2000
"""At most this many held-out (true, predicted) pairs are kept in ``report.json`` for the residual plot."""


def test_detail(test: Dataset, model_path: Path) -> dict[str, Any]:
    """What the shipped ONNX model predicts on the held-out split, for the report's charts: the confusion matrix and
    per-class precision, recall, F1 and support (classification), or a sample of (true, predicted) pairs."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    from autoarch.compress.runtime import run_onnx, session

    out = run_onnx(session(model_path), test.X)
    detail: dict[str, Any] = {"model": model_path.name}
    if test.task == "classification":
        labels = list(range(test.n_outputs))
        pred = out.argmax(axis=1)
        precision, recall, f1, support = precision_recall_fscore_support(test.y, pred, labels=labels, zero_division=0)
        detail.update(labels=[str(c) for c in test.classes],
                      confusion_matrix=confusion_matrix(test.y, pred, labels=labels).tolist(),
                      per_class={str(c): {"precision": float(p), "recall": float(r), "f1": float(f),
                                          "support": int(n)}
                                 for c, p, r, f, n in zip(test.classes, precision, recall, f1, support, strict=True)})
    else:
        keep = np.random.default_rng(0).permutation(len(test))[:RESIDUAL_POINTS]
        detail.update(y_true=[float(v) for v in np.asarray(test.y, dtype=float)[keep]],
                      y_pred=[float(v) for v in out.reshape(len(test), -1)[keep, 0]])
    return detail


def _guarded_test_detail(test: Dataset, shipped: Path | None) -> dict[str, Any] | None:
    if shipped is None:
        return None
    try:
        return test_detail(test, shipped)
    except Exception as exc:  # the report's charts must never cost the run its outputs
        logger.warning("the held-out confusion matrix / residuals were not computed (%s: %s)", type(exc).__name__, exc)
        return None


def _fold_rows(n: int, cv: int | float, search_samples: int | None) -> int:
    """About how many rows a candidate trains on in one fold: the training part of a k-fold split or a holdout
    split, at most ``--search-samples``."""
    rows = n - math.ceil(n / cv) if isinstance(cv, int) else int(n * (1.0 - cv))
    return rows if search_samples is None else min(rows, search_samples)


def _on_stage(stage: str) -> None:
    crash_point(stage)
    logger.info("compression: %s", stage)


def _fidelity_counts(trials: list[optuna.trial.FrozenTrial]) -> dict[str, int]:
    """How many trials ended after how many training epochs (all folds), e.g. ``{"1": 12, "3": 4, "20": 1}``."""
    counts: dict[int, int] = {}
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and "epochs_trained" in t.user_attrs:
            counts[int(t.user_attrs["epochs_trained"])] = counts.get(int(t.user_attrs["epochs_trained"]), 0) + 1
    return {str(k): counts[k] for k in sorted(counts)}


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _describe(space: SearchSpace, arch: Mapping[str, Any], dataset: Dataset, metric: str) -> dict[str, Any]:
    return {"autoarch_version": __version__, "space": space_ref(space), "architecture": dict(arch),
            "input_shape": list(dataset.input_shape), "n_outputs": dataset.n_outputs, "task": dataset.task,
            "classes": dataset.classes, "feature_names": dataset.feature_names, "metric": metric,
            "input_kind": dataset.input_kind, **table_schema(dataset), **_text_schema(dataset, arch)}


def _text_schema(dataset: Dataset, arch: Mapping[str, Any]) -> dict[str, Any]:
    """``architecture.json``'s ``text`` entry (the token table, the vocabulary size and the length) for text."""
    if dataset.input_kind != "text" or dataset.tokens is None:
        return {}
    return {"text": {"table": list(dataset.tokens), "vocab_size": int(arch.get("vocab_size", 10000)),
                     "max_length": int(dataset.X.shape[1])}}


def load(run_dir: str | os.PathLike[str]) -> Model:
    """Rebuild the final model of a run directory from ``architecture.json`` and ``model.pt``.

    The pruning history in ``architecture.json`` is replayed on the freshly built network before the weights
    (loaded with ``weights_only=True``) are put in.

    Both files are checked against the run's ``manifest.json`` (when it has one) and parsed from the bytes
    checked, so that they come from one generation of the run's outputs.

    Raises:
        DataError: the directory lacks ``architecture.json`` or ``model.pt``, or they are not the files its
            manifest names (an interrupted write).
    """
    run = Path(run_dir)
    files = read_outputs(run, ("architecture.json", "model.pt"))
    for name in ("architecture.json", "model.pt"):
        if name not in files:
            raise DataError(f"{run / name} is missing; give the --out directory of a finished search.")
    spec = json.loads(files["architecture.json"])
    space = get_space(spec["space"], spec_input_kind(spec))
    net = space.build(net_arch(spec), net_input_shape(spec), spec["n_outputs"])
    state = torch.load(io.BytesIO(files["model.pt"]), map_location="cpu", weights_only=True)
    model = model_from_state(net, state, spec.get("columns"), spec.get("text"))
    example = torch.zeros(2, *spec["input_shape"])
    replay_pruning(model, example, spec.get("pruning_history") or [])
    model.load_state_dict(state)
    return model.eval()
