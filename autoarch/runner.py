"""The search: data → optuna study (controller = sampler) → k-fold CV per candidate → winner → compression.

Example:
    >>> import autoarch
    >>> result = autoarch.search("iris", trials=4, cv=3, epochs=5, out="runs/iris")  # doctest: +SKIP
    >>> result.test_scores["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import torch

from autoarch.budget import Budget, Progress, n_done, resolve_workers, run_until_budget
from autoarch.config import (
    AUGMENT_MIN_SIDE,
    DEFAULT_EPOCHS,
    EPOCH_SAMPLES,
    LONG_SEQUENCE,
    OBJECTIVES,
    SearchConfig,
    resolve_augment,
    resolve_cv,
    resolve_epochs,
    resolve_patience,
    resolve_search_samples,
)
from autoarch.configfile import recorded_options
from autoarch.controllers import import_sampler, make_sampler
from autoarch.data import Dataset, train_test_split
from autoarch.exceptions import AutoArchError, ConfigError, DataError, did_you_mean
from autoarch.finish import SearchResult, finish_run, load, open_run_study
from autoarch.loaders import load_test, official_test
from autoarch.metrics import check_metric, default_metric
from autoarch.objectives import Objective, check_objectives, resolve_objectives
from autoarch.pareto import parse_pick
from autoarch.rundir import KEEP_DIR, crash_point, prepare_out, run_dir_lock
from autoarch.runfiles import read_report
from autoarch.search_spaces import SearchSpace, get_space, space_ref
from autoarch.searchdata import check_folds, data_spec, resolve_data
from autoarch.study import (
    STUDY_FILE,
    STUDY_NAME,
    data_digest,
    fail_running,
    has_heartbeat,
    make_pruner,
    open_storage,
    open_study,
    redact,
    settle_running,
)
from autoarch.trainer import resolve_device, training_grid
from autoarch.trials import leaderboard, make_objective, queue_warm_starts

__all__ = ["SearchConfig", "SearchResult", "search", "run_worker", "export_trial", "load", "leaderboard",
           "open_storage", "make_pruner"]

logger = logging.getLogger(__name__)

# Options that change what a trial means: a study can only be resumed with the same values.
_FINGERPRINT_KEYS = ("space", "metric", "cv", "seed", "epochs", "patience", "test_size", "max_samples", "test",
                     "image_size", "augment", "search_samples")


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
    objectives: tuple[Objective, ...] = ()
    """What the study optimises: the metric first, then any other objectives of ``--objectives``."""
    keep_dir: Path | None = None
    """Where the models of the best trials (holdout, or the last fold's) are kept (the run directory's
    ``.trial-models``), or None."""
    finish_threads: int = 1
    """The torch threads the finish (retrain, fine-tune) runs with, for the budget planner."""
    data_sha256: str = ""
    """The content hash of the data (:func:`data_digest`): a study resumes on the same data only."""

    @property
    def fingerprint(self) -> dict[str, Any]:
        fp = {k: getattr(self.cfg, k) for k in _FINGERPRINT_KEYS}
        fp.update(space=self.space.name, metric=self.metric, data=self.dataset.name, n_samples=len(self.dataset),
                  task=self.dataset.task, target=self.target, data_sha256=self.data_sha256)
        if len(self.objectives) > 1:  # a single-objective study keeps the fingerprint it always had
            fp["objectives"] = [o.name for o in self.objectives]
        return fp


def _prepare(data: Any, y: Any, target: str | None, task: str | None, options: Mapping[str, Any]) -> _Context:
    """Validate the options and the data (before any training) and split off the held-out set."""
    unknown = sorted(set(options) - set(SearchConfig.__dataclass_fields__))
    if unknown:
        hint = did_you_mean(unknown[0], SearchConfig.__dataclass_fields__)
        raise ConfigError(f"search() got unknown option {unknown[0]!r}.{hint}")
    cfg = SearchConfig(**options)
    cfg.validate()
    dataset = resolve_data(data, y, target, task, cfg.max_samples, cfg.seed, cfg.image_size, cfg.on_bad_image,
                            cfg.text_column, cfg.max_length)
    augment = resolve_augment(cfg.augment, dataset.input_shape)
    space = get_space(cfg.space, dataset.input_kind, augment=augment == "search", input_shape=dataset.input_shape)
    if cfg.space == "auto" and dataset.input_kind == "sequence":
        logger.info("sequences of %d steps: --space auto searches the %s space (conv1d above %d steps, rnn up to "
                    "it)", dataset.input_shape[0], space.name, LONG_SEQUENCE)
    if ":" in cfg.controller:  # a user's sampler: refused before anything is written
        import_sampler(cfg.controller)
    metric = cfg.metric or default_metric(dataset.task)
    check_metric(metric, dataset.task)
    objectives = _resolve_objectives(cfg, metric, dataset.task)
    metric = objectives[0].name
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
    # auto: several objectives on k-fold (small data) train every candidate to the end (digits, one run at b2d5cc8:
    # the Pareto median rule left a 2-point front of 17 completed trials where d9eeeed had 7 of 38)
    early_stop = cfg.early_stop if cfg.early_stop != "auto" else (
        "halving" if isinstance(cv, float) else "none" if len(objectives) > 1 else "median")
    search_samples = resolve_search_samples(cfg.search_samples, len(train))
    if search_samples is not None:
        logger.info("%d training samples: during the search each candidate trains on at most %d of its fold's "
                    "training part; the winner is retrained on all %d (--search-samples%s)", len(train),
                    search_samples, len(train), " auto; give all to train on everything"
                    if cfg.search_samples == "auto" else f" {search_samples}")
    epochs = resolve_epochs(cfg.epochs, len(train))
    patience = resolve_patience(cfg.patience, epochs)
    if cfg.epochs == "auto" and epochs > DEFAULT_EPOCHS:
        logger.info("%d training samples: each candidate trains for at most %d epochs, patience %d (--epochs auto "
                    "gives a small training split enough epochs to see %s samples; give --epochs N to choose)",
                    len(train), epochs, patience, f"{EPOCH_SAMPLES:,}")
    cfg = replace(cfg, cv=cv, epochs=epochs, patience=patience, early_stop=early_stop, augment=augment,
                  search_samples=search_samples,
                  test=cfg.test if cfg.test is not None else ("official" if official is not None else "split"))
    check_folds(train, cfg.cv)
    if options.get("augment", "auto") == "auto" and dataset.input_kind == "image" and isinstance(cfg.space, str):
        logger.info("%s images: training augmentation is %s (--augment auto searches it from %d pixels a side)",
                    "x".join(map(str, dataset.input_shape[1:])), "searched" if augment == "search" else "off",
                    AUGMENT_MIN_SIDE)
    if len(objectives) > 1 and cfg.early_stop != "none":
        logger.info("%d objectives: --early-stop %s stops candidates by Pareto rank (the metrics after an epoch "
                    "beside the costs measured before training; optuna's pruners follow one objective)%s",
                    len(objectives), cfg.early_stop,
                    ": hyperband runs as one bracket of successive halving" if cfg.early_stop == "hyperband" else "")
    elif len(objectives) > 1 and options.get("early_stop", "auto") == "auto":
        logger.info("%d objectives with k-fold: every candidate trains to the end (--early-stop auto; give "
                    "--early-stop median or halving to stop candidates by Pareto rank)", len(objectives))
    return _Context(dataset, train, test, space, cfg, metric, target, objectives=objectives,
                    data_sha256=data_digest(dataset))


def _resolve_objectives(cfg: SearchConfig, metric: str, task: str) -> tuple[Objective, ...]:
    """The objectives of ``--objectives`` (checked against the task's metrics and ``--metric``, and the names
    ``--pick`` bounds against them), or the one of ``--metric``."""
    rule = parse_pick(cfg.pick)
    if not cfg.objectives:
        if rule.bounds:
            raise ConfigError(f"--pick {cfg.pick} bounds {rule.bounds[0][0]!r}, which is not searched: give "
                              f"--objectives {metric},{rule.bounds[0][0]}")
        return (Objective(metric),)
    objectives = resolve_objectives(cfg.objectives)
    try:
        check_objectives(objectives, OBJECTIVES[task])
    except ValueError as exc:
        raise ConfigError(f"{exc}.") from None
    if cfg.metric is not None and cfg.metric != objectives[0].name:
        raise ConfigError(f"--metric {cfg.metric} and --objectives {cfg.objectives} disagree: the first objective "
                          "is the metric; give --objectives alone")
    names = [o.name for o in objectives]
    for name, _ in rule.bounds:
        if name not in names:
            raise ConfigError(f"--pick {cfg.pick} bounds {name!r}, which is not one of --objectives "
                              f"{','.join(names)}")
    return objectives


def _sampler(ctx: _Context, worker: int, done: int) -> optuna.samplers.BaseSampler:
    # Each worker, and a resumed run, continues with its own random stream; random search seeds per trial
    # number instead, so trial n gets the same candidate whatever the workers and resumes.
    grid = {**ctx.space.grid(), **training_grid()} if ctx.cfg.controller == "grid" else None
    seed = ctx.cfg.seed if ctx.cfg.controller == "random" else ctx.cfg.seed + 7919 * worker + done
    return make_sampler(ctx.cfg.controller, seed=seed, n_trials=ctx.cfg.trial_budget, grid=grid)


def _worker_loop(ctx: _Context, storage: optuna.storages.BaseStorage, worker: int, deadline: float | None,
                 callbacks: list[Callable[..., None]] | None = None, stopped: Callable[[], bool] | None = None,
                 workers_alive: Callable[[], bool] | None = None) -> int:
    study = optuna.load_study(study_name=ctx.cfg.study_name, storage=storage)
    study.sampler = _sampler(ctx, worker, n_done(study))
    study.pruner = make_pruner(ctx.cfg.early_stop, ctx.cfg.cv, ctx.cfg.epochs)
    # Trial models are worth shipping only when they trained on the whole training part of their split. With
    # k-fold the last fold's model is a fallback the budget does not count on: the retrain stays reserved.
    keep = ctx.keep_dir if ctx.cfg.search_samples is None else None
    budget = (None if deadline is None else
              Budget(deadline, len(ctx.train), ctx.cfg.finetune_budget,
                      retrain=keep is None or not isinstance(ctx.cfg.cv, float), threads=ctx.finish_threads,
                      timeout=ctx.cfg.timeout, factor=ctx.cfg.finetune_factor))
    objective = make_objective(ctx.space, ctx.train, ctx.cfg, ctx.metric, resolve_device(ctx.cfg.device),
                                search_deadline=budget, keep_dir=keep, objectives=ctx.objectives)
    return run_until_budget(study, objective, ctx.cfg.trial_budget, budget, callbacks or [], stopped, workers_alive)


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
        **options: the fields of :class:`~autoarch.config.SearchConfig` (``space``, ``controller``, ``trials``,
            ``timeout``, ...): each is declared once there, with its default and the help that ``autoarch search
            --help`` shows.

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
    workers = resolve_workers(cfg.workers, trials=cfg.trial_budget, shared=out is not None or cfg.storage is not None,
                              device=device)
    if workers > 1 and out is None and cfg.storage is None:
        raise ConfigError("--workers > 1 needs a shared study: give --out DIR (SQLite file inside) or --storage URL.")
    cfg = replace(cfg, workers=workers)
    ctx = replace(ctx, cfg=cfg, finish_threads=torch.get_num_threads())
    # A storage that cannot be opened, or holds another study, must not leave a new, empty --out behind.
    storage = open_storage(cfg.storage) if cfg.storage is not None else None
    new_out = out is not None and not Path(out).exists()
    out_dir = prepare_out(out)
    with run_dir_lock(out_dir):
        url = cfg.storage or (f"sqlite:///{out_dir / STUDY_FILE}" if out_dir is not None else None)
        if storage is None:
            storage = open_storage(url) if url is not None else optuna.storages.InMemoryStorage()
        start = time.perf_counter()
        deadline = None if cfg.timeout is None else time.time() + cfg.timeout
        spec = {"data": data_spec(data, target, task),
                "options": {**asdict(cfg), "space": space_ref(ctx.space), "storage": redact(cfg.storage)}}
        # The study is created here, before any worker starts (two processes creating one SQLite study race).
        try:
            study = open_study(storage, cfg.study_name, ctx.fingerprint, spec, _sampler(ctx, 0, 0),
                                make_pruner(cfg.early_stop, cfg.cv, cfg.epochs), str(out_dir or redact(url)),
                                ctx.objectives)
        except AutoArchError:
            if new_out and out_dir is not None and not any(out_dir.iterdir()):
                out_dir.rmdir()
            raise
        # What this run asks for, read by its remote workers (run_worker): the options the study records are its
        # first run's, and a resumed run may change --trials and --timeout.
        study.set_user_attr("job", {"trials": cfg.trials, "timeout": cfg.timeout, "deadline": deadline})
        if not has_heartbeat(study):
            fail_running(study)
        queue_warm_starts(study, ctx.space, cfg, len(ctx.train))
        done = n_done(study)
        if done:
            logger.info("resuming the study in %s: %d trials done%s", out_dir or redact(url), done,
                        "" if cfg.until_timeout else f" of {cfg.trial_budget}")
        if cfg.until_timeout:
            logger.info("--timeout %g s and no --trials: trials run until the search's share of it is spent",
                        cfg.timeout)
        if done < cfg.trial_budget:
            children = []
            workers = min(workers, cfg.trial_budget - done)
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
            bar = Progress(None if cfg.until_timeout else cfg.trial_budget, done, deadline, progress)
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
            settle_running(cfg.study_name, url)
        study = optuna.load_study(study_name=cfg.study_name, storage=storage)
        return finish_run(study, ctx.space, ctx.dataset, ctx.train, ctx.test, cfg, ctx.metric, device, out_dir,
                       time.perf_counter() - start, deadline, progress=progress, objectives=ctx.objectives)


def _study_context(study: optuna.Study, study_name: str, who: str) -> _Context:
    """The context of a study made by :func:`search`: its options and its data, reloaded as the search loaded
    them (a built-in name, or a file at the same path), checked against the study's fingerprint."""
    spec = study.user_attrs.get("spec")
    if spec is None or spec.get("data") is None:
        raise ConfigError(f"study {study_name!r} was not created by 'autoarch search' from a data set name or file, "
                          f"so {who} cannot load its data; start it from a data set name or file.")
    # the recorded options are the resolved ones (test = "official" for a built-in test split, ...); the storage
    # is the one this process was given (the recorded URL is redacted)
    options = recorded_options({**spec["options"], "storage": None})
    data = spec["data"]
    ctx = _prepare(data["source"], None, data["target"], data["task"], {**options, "workers": 1})
    if ctx.fingerprint != study.user_attrs.get("config"):
        raise DataError(f"the data {who} loaded from {data['source']!r} differs from the study's "
                        f"({len(ctx.dataset)} samples); give every machine the same file.")
    return ctx


def export_trial(run_dir: str | os.PathLike[str], trial: int, *, out: str | os.PathLike[str] | None = None,
                 storage: str | None = None, progress: bool = False) -> SearchResult:
    """Ship trial ``trial`` of a search as the search ships its winner: retrained on the whole training split,
    pruned, quantized to int8, exported and verified, scored on the same held-out split, into ``out`` (default:
    ``RUN_DIR/trial-N``), a run directory of its own (``autoarch.load``, ``autoarch predict`` and
    ``autoarch compress`` read it). For any other point of a multi-objective search's Pareto front.

    Raises:
        DataError: ``run_dir`` holds no study, the trial did not complete, or the data changed since the search.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run directory {run} does not exist; give the --out directory of a search")
    study = open_run_study(run, read_report(run), storage)
    ctx = _study_context(study, study.study_name, "export")
    out_dir = prepare_out(Path(out) if out is not None else run / f"trial-{trial}")
    assert out_dir is not None
    device = resolve_device(ctx.cfg.device)
    with run_dir_lock(out_dir):
        return finish_run(study, ctx.space, ctx.dataset, ctx.train, ctx.test, ctx.cfg, ctx.metric, device, out_dir,
                          0.0, None, progress=progress, objectives=ctx.objectives, trial=trial)


def run_worker(storage: str, study_name: str = STUDY_NAME, *, threads: int = 1, progress: bool = False) -> int:
    """Join the study ``study_name`` in ``storage`` and evaluate trials until its budget is spent (its trials, or the
    search's ``--timeout`` deadline).

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
    ctx = _study_context(study, study_name, "a worker")
    torch.set_num_threads(threads)
    # The search's latest run sets the budget: its --trials, and its --timeout deadline (a search run until
    # --timeout would otherwise leave its workers running trials after it ended). Studies made before it was
    # recorded: the first run's options, no deadline.
    job = study.user_attrs.get("job", {})
    if job:
        ctx = replace(ctx, cfg=replace(ctx.cfg, trials=job["trials"], timeout=job["timeout"]))
    deadline = job.get("deadline")
    bar = Progress(None if ctx.cfg.until_timeout else ctx.cfg.trial_budget, n_done(study), deadline, progress)
    try:
        return _worker_loop(ctx, store, 1 + os.getpid() % 1000, deadline, [bar])
    finally:
        bar.close()
