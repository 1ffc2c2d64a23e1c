"""The budget of a search: what the finish (retrain, fine-tune, export) is estimated to cost, the deadline the
search keeps to leave time for it, the trial loop that stops when the budget is spent, the progress bars and
how many local worker processes run."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from autoarch.exceptions import ConfigError
from autoarch.rundir import KEEP_DIR
from autoarch.study import primary_best

logger = logging.getLogger(__name__)

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
CHEAP_RETRAIN_SHARE = 0.1
"""With holdout validation the best trials' models are kept and the retrain is not reserved (the finish ships the
kept model when no retrain fits), except when the retrain is estimated at no more than this share of --timeout:
on airline tweets (--timeout 1500) the search ran to its deadline and shipped the kept holdout model, trained on
9,485 of the 11,710 training tweets (0.7944 held out); fine-tuned 2 epochs on 9,953 of them after pruning it
scored 0.8098, where its 4-epoch retrain on all of them would have cost about 60 s."""


def finish_overhead(timeout: float | None) -> float:
    """Seconds of the finish besides training (export, int8, verification, reports) that --timeout reserves."""
    return FINISH_OVERHEAD if timeout is None else min(FINISH_OVERHEAD, max(5.0, OVERHEAD_SHARE * timeout))


def _planned_finetune(per: float, n_train: int, finetune_epochs: int, retrain_epochs: int,
                      timeout: float | None, factor: float = 1.0) -> float:
    """The fine-tune the budget plans for, in epochs of the whole training split: all of it when cheap
    (:data:`FULL_FINETUNE_SHARE`), else the short fine-tune the finish cuts it to when time is short; each planned
    epoch costs ``factor`` (:attr:`~autoarch.config.SearchConfig.finetune_factor`: early stopping on part of the
    split, then the fine-tune on all of it)."""
    if not finetune_epochs:
        return 0.0
    if timeout is not None and per * n_train * finetune_epochs * factor <= FULL_FINETUNE_SHARE * timeout:
        return finetune_epochs * factor
    return short_finetune(finetune_epochs, retrain_epochs) * factor


THREAD_SPEEDUP = 1.35
"""How much faster the finish trains than a trial did when it has more torch threads (the trials of several
worker processes run one thread each): the least of three CNNs from 1 to 2 threads, 1.38-1.81x per batch
(``benchmarks/channels_last.py``, BENCHMARKS.md)."""


def epochs_per_sample_second(trial: optuna.trial.FrozenTrial, threads: int | None = None) -> float | None:
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
                    threads: int | None = None, timeout: float | None = None, factor: float = 1.0) -> float | None:
    """Estimated seconds of the winner's retrain, fine-tune and compression, from the best trial's measured cost
    per sample-epoch (None before a trial completes), trained with ``threads`` torch threads, under a --timeout of
    ``timeout`` seconds. The fine-tune is counted whole when it is cheap (:func:`_planned_finetune`), else for a
    quarter of the retrain's epochs (at least 2), which is what the finish cuts it to when time is short, each
    fine-tune epoch ``factor`` epochs of the split (:func:`_planned_finetune`). With
    ``retrain=False`` (kept holdout models) the retrain is still counted when it is cheap
    (:data:`CHEAP_RETRAIN_SHARE` of ``timeout``)."""
    try:
        best = primary_best(study)
    except ValueError:
        return None
    per = epochs_per_sample_second(best, threads)
    if per is None:
        return None
    epochs = retrain_epochs(best)
    finetune = _planned_finetune(per, n_train, finetune_epochs, epochs, timeout, factor)
    if not retrain and timeout is not None and per * n_train * epochs <= CHEAP_RETRAIN_SHARE * timeout:
        retrain = True  # cheap: reserved, so the finish retrains on the whole training split
    return finish_overhead(timeout) + per * n_train * (epochs * retrain + finetune)


def short_finetune(finetune_epochs: int, retrain_epochs: int) -> int:
    return min(finetune_epochs, max(2, retrain_epochs // 4))


class Budget:
    """``--timeout`` covers the whole job: the search ends early enough for the winner's retrain, fine-tune and
    compression, whose cost is estimated from the best trial so far (:func:`finish_estimate`). With
    ``retrain=False`` (holdout validation on all of the training part, the best trials' models kept) the retrain is
    not reserved: the finish retrains only if the time is left, and ships the kept holdout model otherwise.
    ``threads`` is what the finish trains with."""

    def __init__(self, job_deadline: float | None, n_train: int, finetune_epochs: int, retrain: bool = True,
                 threads: int | None = None, timeout: float | None = None, factor: float = 1.0) -> None:
        self.job_deadline = job_deadline
        self.n_train = n_train
        self.finetune_epochs = finetune_epochs
        self.factor = factor
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
                                  threads=self.threads, timeout=self.timeout, factor=self.factor)
        if reserve is None:
            return self.job_deadline - self.overhead
        if self._said is None or abs(reserve - self._said) > 0.2 * self._said:
            self._said = reserve
            logger.info("budget: %.0f s of --timeout reserved for the winner's retrain, fine-tune and compression "
                        "(measured on the best trial so far); the search ends in %.0f s", reserve,
                        max(0.0, self.job_deadline - reserve - time.time()))
        return self.job_deadline - reserve


def retrain_epochs(trial: optuna.trial.FrozenTrial) -> int:
    """The winner's retrain epochs: the median of its folds' best (early-stopping) epochs (1 when unrecorded)."""
    return max(1, int(round(float(np.median(trial.user_attrs.get("best_epochs") or [1])))))


def affordable_best(study: optuna.Study, complete: list[optuna.trial.FrozenTrial], n_train: int,
                     finetune_epochs: int, job_deadline: float | None, out_dir: Path | None,
                     timeout: float | None = None, chosen: optuna.trial.FrozenTrial | None = None,
                     factor: float = 1.0) -> tuple[optuna.trial.FrozenTrial, str | None]:
    """The trial the finish retrains: the best one, unless its retrain (and a short fine-tune) no longer fits in
    what is left of ``--timeout`` — which happens when a costlier candidate becomes the best near the end of the
    search — and another of the completed trials' does; then the best of those (and why, for the report).

    Cutting the best trial's retrain instead loses more than the runner-up's score is below it: on digits a
    228k-parameter winner retrained 4 of its 18 epochs scored 97.50% on the held-out split, the same network
    retrained 18 epochs 98.89-99.17% (3 seeds). A best trial whose holdout model was kept is never replaced (the
    finish ships that model when no retrain fits), nor the point ``--pick`` ``chosen`` on a front. With k-fold CV
    the best trial's last fold model, kept too, is shipped instead of a runner-up that scored below the best by
    more than the standard error of the best's folds (std / sqrt(folds)): on OSULeaf the fully convolutional warm
    start (5-fold CV 0.945, standard error 0.015) finished after 748 s of a 900 s budget, and the runner-up
    retrained in its place (CV 0.675) shipped 0.7355 on the test split; its last fold model, shipped in a rerun,
    0.9628."""
    if chosen is not None:
        return chosen, None
    best = primary_best(study)
    if job_deadline is None:
        return best, None
    kept = out_dir is not None and (out_dir / KEEP_DIR / f"trial_{best.number}.pt").is_file()
    folds = [float(v) for v in best.user_attrs.get("fold_scores") or []]
    if kept and len(folds) <= 1:
        return best, None
    margin = float(np.std(folds)) / math.sqrt(len(folds)) if kept else math.inf
    threads = torch.get_num_threads()
    left = job_deadline - time.time() - finish_overhead(timeout)

    def cost(trial: optuna.trial.FrozenTrial) -> float | None:
        # The retrain and the short fine-tune the finish cuts a fine-tune to when time is short: a best trial that
        # fits so is kept. Counting the whole fine-tune replaced best trials that lacked 1-2 s of it (digits,
        # JapaneseVowels, OSULeaf at 83381bb: OSULeaf's runner-up, a 838-parameter network, scored 0.34 held out
        # where the best, fine-tuned 20 epochs in an earlier run, had scored 0.70).
        per = epochs_per_sample_second(trial, threads)
        if per is None:
            return None
        epochs = retrain_epochs(trial)
        return per * n_train * (epochs + (short_finetune(finetune_epochs, epochs) * factor if finetune_epochs else 0))

    needed = cost(best)
    if needed is None or needed <= left:
        return best, None
    ranked = sorted((t for t in complete if t.values and math.isfinite(t.values[0])
                     and t.number != best.number), key=lambda t: -float(t.values[0]))
    for trial in ranked:
        c = cost(trial)
        if c is not None and c <= left:
            if float(best.values[0]) - float(trial.values[0]) > margin:
                return best, None  # the kept fold model of the best is worth more than the runner-up retrained
            note = (f"the best trial {best.number} ({best.values[0]:.4f}) needs about {needed:.0f} s to retrain "
                    f"and fine-tune and {max(0.0, left):.0f} s are left of --timeout; trial {trial.number} "
                    f"({trial.values[0]:.4f}), which fits, is retrained instead")
            logger.info("budget: %s", note)
            return trial, note
    return best, None


REJECT_STREAK = 200
"""A worker whose last this many candidates were all rejected before training (by --max-params / --max-macs or
their estimated epoch cost) stops: the limits leave nothing to train."""
REJECT_SECONDS = 120.0
"""... or whose rejections in a row have taken this long, once there are :data:`MIN_REJECT_STREAK` of them: a
device limit (--max-latency-ms / --max-size-kb) measures each candidate's int8 model first, about 2 s each, so
200 rejections of an impossible limit would take minutes."""
MIN_REJECT_STREAK = 20


def counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    # A FAIL without our fail_reason was interrupted (Ctrl-C, kill -9): it is redone, not counted. A candidate
    # rejected before training costs nothing and is not counted either: a rerun with looser limits trains anew.
    if trial.state == TrialState.PRUNED:
        return not trial.user_attrs.get("rejected", False)
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def n_done(study: optuna.Study) -> int:
    return n_done_of(study.get_trials(deepcopy=False))


def n_done_of(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(counts_toward_budget(t) for t in trials)


def run_until_budget(study: optuna.Study, objective: Callable[[optuna.Trial], float], budget: int,
                      deadline: float | None | Budget, callbacks: list[Callable[..., None]],
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
    streak_started = [time.monotonic()]

    def count_rejections(_: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not trial.user_attrs.get("rejected"):
            streak[0], streak_started[0] = 0, time.monotonic()
        else:
            streak[0] += 1

    def ends() -> float | None:
        return deadline.search_deadline(study) if isinstance(deadline, Budget) else deadline

    while ends() is None or time.time() < ends():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        # Whether the local workers live is asked *before* the snapshot (a worker that has exited has finished
        # its trial, so the snapshot shows it), and both counts come from one snapshot: otherwise a trial that
        # finishes in between is counted in neither and one more starts (seen: 41 of 40 in two of five runs).
        alive = workers_alive is not None and workers_alive()
        trials = study.get_trials(deepcopy=False)
        done = sum(counts_toward_budget(t) for t in trials)
        if done >= budget or (stopped is not None and stopped()):
            break
        if done + sum(t.state == TrialState.RUNNING for t in trials) >= budget:
            if workers_alive is None:
                break  # a worker: the rest of the budget is in flight elsewhere
            if alive:
                time.sleep(0.5)  # the search: its workers are finishing the last trials
                continue
        if streak[0] >= REJECT_STREAK or (streak[0] >= MIN_REJECT_STREAK
                                          and time.monotonic() - streak_started[0] >= REJECT_SECONDS):
            logger.warning("the last %d candidates were all rejected before training (the last: %s); the search "
                           "stops: loosen the --max-* limits, or raise --timeout", streak[0],
                           trials[-1].user_attrs.get("pruned_reason") if trials else "?")
            break
        study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[*callbacks, count_rejections],
                       gc_after_trial=False)
        ran += 1
    return ran


class Progress:
    """A tqdm bar: trial n/N (every worker's trials; n alone when the search runs until --timeout), best so far,
    time left."""

    def __init__(self, total: int | None, done: int, deadline: float | None, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=not enabled,
                         dynamic_ncols=True)
        self._deadline = deadline

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs:
            logger.warning("trial %d failed: %s", trial.number, trial.user_attrs["fail_reason"])
        elif "stopped_reason" in trial.user_attrs:
            logger.info("trial %d: %s", trial.number, trial.user_attrs["stopped_reason"])
        done = n_done(study)
        self._bar.n = done if self._bar.total is None else min(self._bar.total, done)
        post = {}
        try:
            if len(study.directions) > 1:
                post["front"] = str(len(study.best_trials))
            post["best"] = f"{primary_best(study).values[0]:.4f}"
        except ValueError:
            post["best"] = "-"
        if self._deadline is not None:
            post["timeout_in"] = f"{max(0.0, self._deadline - time.time()):.0f}s"
        self._bar.set_postfix(post)

    def close(self) -> None:
        self._bar.close()


@contextlib.contextmanager
def epoch_bar(desc: str, total: int | None, enabled: bool) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """A tqdm bar over the epochs of one phase after the search (the retrain, the fine-tune): an ``on_epoch``
    callback for :func:`~autoarch.trainer.fit`, with the epoch's training loss; ``total`` None: a count."""
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
