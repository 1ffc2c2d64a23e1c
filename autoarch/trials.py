"""The trial objective: one candidate suggested, checked against its limits, cross-validated with per-epoch
pruning (early stopping, chance level, divergence), its fidelity recorded; the warm-start candidates; the
leaderboard of the trials."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from optuna.trial import TrialState

from autoarch.budget import EPOCH_SHARE, Budget, estimate_epoch_seconds
from autoarch.compress import count_macs_params
from autoarch.config import LARGE_DATA, SearchConfig
from autoarch.data import Dataset
from autoarch.evaluate import build_model, cross_validate
from autoarch.exceptions import TimeLimitError
from autoarch.metrics import objective_value
from autoarch.objectives import Objective
from autoarch.pareto import STOPPED_AT, gains, pareto_stop
from autoarch.rundir import crash_point, save_state_dict
from autoarch.search_spaces import SearchSpace
from autoarch.trainer import suggest_training

logger = logging.getLogger(__name__)

CHANCE_EPOCHS = 2
"""A classifier whose accuracy on its early-stopping data is still within :data:`CHANCE_MARGIN` of the majority
class after this many epochs (a space's ``chance_epochs`` where it sets one: recurrent nets start slower) is
stopped (a sigmoid/SGD candidate of a Fashion-MNIST search trained 921 s at 10%)."""
CHANCE_MARGIN = 0.02
CHANCE_STEPS = 40
"""... and only once it has taken at least this many optimizer steps: on small data an epoch is a few batches
(OSULeaf's 160 training series at batch 128: two), and the fully convolutional warm start, stopped at chance
after 2 epochs (4 steps), is the network that learns the data set."""
DIVERGENCE = 3.0
"""A candidate whose epoch training loss exceeds this multiple of its first epoch's is stopped as diverging."""
DIVERGENCE_BATCHES = 4
"""The divergence rule applies only when an epoch has at least this many batches of the fold's training part: a
first epoch of one or two batches is no reference (on 4 training rows a candidate whose loss went 0.18 -> 2.9 in
epoch 2 finished with the best CV score of its search), and data that small is cheap to train to the end anyway."""
WARM_START_TRAINING = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "l1": 1e-8, "batch_size": 128,
                       "schedule": "cosine"}
"""The training of the warm-start candidates: Adam at its usual rate, light L2, cosine schedule; batches of 128
from :data:`~autoarch.config.LARGE_DATA` training samples on, of :data:`WARM_START_SMALL_BATCH` below."""
WARM_START_SMALL_BATCH = 32
"""On 958 digits per fold, batches of 128 are 8 steps an epoch: 3-fold CV of the LeNet-5-like network 0.946 with
128, 0.959 with 32; of the small ResNet 0.962 and 0.983 (20 epochs, Adam 1e-3)."""


def make_objective(space: SearchSpace, train: Dataset, cfg: SearchConfig, metric: str,
                    device: torch.device, search_deadline: float | None | Budget = None,
                    keep_dir: Path | None = None, objectives: Sequence[Objective] = ()
                    ) -> Callable[[optuna.Trial], float | list[float]]:
    """The trial function. ``search_deadline`` (``time.time()``, or the ``--timeout`` budget) also stops a trial
    still training when it passes: the trial is marked FAIL with a ``stopped_reason`` and does not count toward
    the budget (a resumed run starts another), so ``--timeout`` bounds the search, not just when trials start.

    With several ``objectives`` (the first is ``metric``) the function returns one value per objective: the
    cross-validated metrics, and the costs (:data:`~autoarch.objectives.COSTS`) measured before training.
    optuna's pruners follow one objective, so ``--early-stop`` then stops candidates by Pareto rank instead
    (:func:`pareto_early_stop`): the metrics after each epoch are recorded in the trial's ``step_scores``.

    After every epoch the objective metric on the fold's early-stopping part is reported to optuna (step
    ``fold * epochs + epoch``) so that the pruner of ``--early-stop`` can stop the candidate; a classifier still
    at chance level after :data:`CHANCE_EPOCHS` epochs, or a diverging one, is stopped too. Every trial records
    its fidelity: ``epochs_trained`` (all folds) and the folds it finished. The warm-start candidates are never
    stopped by ``--early-stop`` or the chance check (they are the references), only by the divergence check: on
    OSULeaf (160 training series per fold, 16 to validate on) the UCR archive's FCN was still at chance after 8
    epochs of its first fold, and it scores 0.91 held-out after 50.

    With holdout validation, ``--timeout`` ends a candidate still training as early stopping would: it is scored
    with its best epoch so far (``fidelity_note`` says so). With ``keep_dir``, the holdout model (with k-fold,
    the last fold's) of a candidate that beats every completed one is saved there (``trial_<n>.pt``), so that the
    finish can ship it when the budget leaves no time to retrain it."""
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)
    plain = Objective(metric).metric
    objectives = tuple(objectives) or (Objective(metric),)
    multi = len(objectives) > 1

    def objective(trial: optuna.Trial) -> float | list[float]:
        by_search = False  # whether --timeout (not --trial-timeout) is the limit that can stop this trial
        started = time.perf_counter()
        try:
            arch = space.suggest(trial)
            tcfg = suggest_training(trial, cfg.epochs, cfg.patience)
            trial.set_user_attr("architecture", arch)
            trial.set_user_attr("training", tcfg.to_dict())
            trial.set_user_attr("threads", torch.get_num_threads())
            candidate = build_model(space, arch, train)
            macs, params = count_macs_params(candidate, example)
            trial.set_user_attr("params", params)
            trial.set_user_attr("macs", macs)
            over = [f"{name} {value:,} > --max-{name} {limit:,}" for name, value, limit in
                    (("params", params, cfg.max_params), ("macs", macs, cfg.max_macs))
                    if limit is not None and value > limit]
            if not over:
                over = device_limits(trial, arch, candidate, train, cfg, objectives)
            if over:  # rejected before any training
                trial.set_user_attr("pruned_reason", "; ".join(over))
                trial.set_user_attr("rejected", True)
                raise optuna.TrialPruned(over[0])
            ends = (search_deadline.search_deadline(trial.study) if isinstance(search_deadline, Budget)
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
            step_scores: dict[str, dict[str, float]] = {}  # several objectives: the metrics after each epoch
            rows = fold_rows(len(train), cfg.cv, cfg.search_samples)
            watch_divergence = rows >= DIVERGENCE_BATCHES * tcfg.batch_size
            chance_epoch = max(getattr(space, "chance_epochs", CHANCE_EPOCHS),
                               math.ceil(CHANCE_STEPS / max(1, math.ceil(rows / tcfg.batch_size))))
            warm = "warm_start" in trial.user_attrs  # a reference: neither the pruner nor the chance check stops it

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
                if (majority is not None and fold == 0 and epoch == chance_epoch and not warm
                        and record["val_accuracy"] <= majority + CHANCE_MARGIN):
                    trial.set_user_attr("pruned_reason", f"at chance level after {epoch} epochs (accuracy "
                                                         f"{record['val_accuracy']:.3f}, majority class "
                                                         f"{majority:.3f})")
                    raise optuna.TrialPruned()
                if multi:
                    if cfg.early_stop == "none":  # nothing compares the epochs: no write to the storage
                        return
                    step = fold * cfg.epochs + epoch
                    val = {k[4:]: v for k, v in record.items() if k.startswith("val_")}
                    step_scores[str(step)] = {o.metric: float(val[o.metric]) for o in objectives
                                              if not o.is_cost and o.metric in val}
                    trial.set_user_attr(STEP_SCORES, step_scores)
                    stop = None if warm else pareto_early_stop(trial, step, cfg, objectives)
                    if stop:
                        reason, values = stop
                        trial.set_user_attr(STOPPED_AT, {"step": step, "values": values})
                        trial.set_user_attr("pruned_reason", f"--early-stop {cfg.early_stop} after {trained[0]} "
                                                             f"epoch(s) (fold {fold + 1}, epoch {epoch}): {reason}")
                        raise optuna.TrialPruned()
                    return
                trial.report(objective_value(metric, {k[4:]: v for k, v in record.items() if k.startswith("val_")}),
                             fold * cfg.epochs + epoch)
                if trial.should_prune() and not warm:
                    trial.set_user_attr("pruned_reason", f"--early-stop {cfg.early_stop} after {trained[0]} "
                                                         f"epoch(s) (fold {fold + 1}, epoch {epoch})")
                    raise optuna.TrialPruned()

            trial_limit = None if cfg.trial_timeout is None else time.monotonic() + cfg.trial_timeout
            search_limit = None if ends is None else time.monotonic() + (ends - time.time())
            by_search = search_limit is not None and (trial_limit is None or search_limit <= trial_limit)
            soft = by_search and isinstance(cfg.cv, float)  # holdout: score what the deadline leaves
            result = cross_validate(space, arch, tcfg, train, cv=cfg.cv, seed=cfg.seed, device=device,
                                    on_epoch=on_epoch, monitor=None if Objective(metric).lower_is_better else plain,
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
            return [float("nan")] * len(objectives) if multi else float("nan")
        if keep_dir is not None and result.model is not None:
            done = [t.values[0] for t in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
            if not done or value > max(done):
                keep_dir.mkdir(exist_ok=True)
                save_state_dict(result.model.cpu(), keep_dir / f"trial_{trial.number}.pt")
        if multi:
            scores = {**mean, **trial_costs(trial.user_attrs, cfg.latency_batch)}
            return [o.value(scores) for o in objectives]
        return value

    return objective


STEP_SCORES = "step_scores"
"""User attribute of a multi-objective trial: its metric objectives on the early-stopping part after each epoch
(``{"step": {"accuracy": 0.91}}``), what :func:`pareto_early_stop` compares candidates by."""


def pareto_early_stop(trial: optuna.Trial, step: int, cfg: SearchConfig, objectives: Sequence[Objective]
                      ) -> tuple[str, list[float]] | None:
    """Why ``--early-stop`` stops the multi-objective ``trial`` after ``step`` epochs and its objective values
    there, or None (:func:`autoarch.pareto.pareto_stop`): its metrics at ``step`` and its costs, against the other
    trials' that reached ``step`` (their ``step_scores`` and costs); a trial without every objective at ``step``
    is not compared."""
    directions = [o.direction for o in objectives]

    def values(attrs: dict[str, Any]) -> list[float] | None:
        scores = {**trial_costs(attrs, cfg.latency_batch), **(attrs.get(STEP_SCORES) or {}).get(str(step), {})}
        try:
            out = [float(o.value(scores)) for o in objectives]
        except KeyError:
            return None
        return out if all(math.isfinite(v) for v in out) else None

    mine = values(trial.user_attrs)
    if mine is None:
        return None
    started, completed = [], []
    for t in trial.study.get_trials(deepcopy=False):
        other = values(t.user_attrs) if t.number != trial.number else None
        if other is not None:
            started.append(other)
            if t.state == TrialState.COMPLETE:
                completed.append(other)
    reason = pareto_stop(cfg.early_stop, step, gains([mine], directions)[0], gains(started, directions),
                         gains(completed, directions))
    return None if reason is None else (reason, mine)


COST_SAMPLES = 64
"""Training inputs that calibrate the int8 model of a candidate whose device cost is measured before training."""


def device_cost(trial: optuna.Trial, arch: dict[str, Any], candidate: torch.nn.Module, train: Dataset,
                cfg: SearchConfig) -> dict[str, Any]:
    """The int8 cost of the untrained ``candidate`` (:func:`autoarch.compress.cost.int8_cost` at batch 1 and
    ``--latency-batch``), pruned first as the winner would ship (:func:`~autoarch.compress.cost.shipped_pruning`)
    and carrying the model's metadata (:func:`~autoarch.compress.export.model_metadata`),
    reused from an earlier trial of the same architecture in the study when there is one measured the same way (the
    cost does not depend on the training hyperparameters or the weights; a study resumed with another ``--prune`` or
    after a change of :data:`~autoarch.compress.cost.COST_VERSION` measures again)."""
    from autoarch.compress.cost import int8_cost, measured_with, shipped_pruning
    from autoarch.compress.export import model_metadata

    key = json.dumps(arch, sort_keys=True)
    ratio, round_to = shipped_pruning(cfg.compression)
    how = measured_with(ratio, round_to)
    for t in trial.study.get_trials(deepcopy=False):
        cached = t.user_attrs.get("int8_cost")
        if (cached and t.number != trial.number and f"latency_b{cfg.latency_batch}_ms" in cached
                and cached.get("measured_with") == how
                and json.dumps(t.user_attrs.get("architecture"), sort_keys=True) == key):
            return dict(cached)
    # the shipped file's own metadata (preprocessing, classes, a text model's tokenizer), less the run's records
    metadata = model_metadata(candidate, task=train.task, classes=train.classes, input_shape=train.input_shape,
                              feature_names=train.feature_names)
    return int8_cost(candidate, train.X[:COST_SAMPLES], batches=(1, cfg.latency_batch), prune=ratio,
                     round_to=round_to, metadata=metadata)


def trial_costs(attrs: dict[str, Any], latency_batch: int) -> dict[str, float]:
    """The cost objectives (:data:`~autoarch.objectives.COSTS`) of a trial from its user attributes: ``params``,
    ``macs`` and, when measured, ``latency`` (ms at ``latency_batch``) and ``int8_size`` (KB)."""
    costs = {k: float(attrs[k]) for k in ("params", "macs") if attrs.get(k) is not None}
    cost = attrs.get("int8_cost") or {}
    if f"latency_b{latency_batch}_ms" in cost:
        costs["latency"] = float(cost[f"latency_b{latency_batch}_ms"])
    if "int8_kb" in cost:
        costs["int8_size"] = float(cost["int8_kb"])
    return costs


DEVICE_COSTS = ("latency", "int8_size")
"""The objectives that need the int8 model of a candidate measured before training."""


def device_limits(trial: optuna.Trial, arch: dict[str, Any], candidate: torch.nn.Module, train: Dataset,
                  cfg: SearchConfig, objectives: Sequence[Objective] = ()) -> list[str]:
    """The ``--max-latency-ms`` / ``--max-size-kb`` limits ``candidate`` exceeds, measured before training (nothing
    measured when no limit is asked and no objective is a device cost). The cost is recorded as the trial's
    ``int8_cost``."""
    if (cfg.max_latency_ms is None and cfg.max_size_kb is None
            and not any(o.name in DEVICE_COSTS for o in objectives)):
        return []
    cost = device_cost(trial, arch, candidate, train, cfg)
    trial.set_user_attr("int8_cost", cost)
    latency = cost[f"latency_b{cfg.latency_batch}_ms"]
    over = []
    if cfg.max_latency_ms is not None and latency > cfg.max_latency_ms:
        over.append(f"int8 latency {latency:.4g} ms at batch {cfg.latency_batch} > --max-latency-ms "
                    f"{cfg.max_latency_ms:g}")
    if cfg.max_size_kb is not None and cost["int8_kb"] > cfg.max_size_kb:
        over.append(f"int8 size {cost['int8_kb']:.1f} KB > --max-size-kb {cfg.max_size_kb:g}")
    return over


def leaderboard(study: optuna.Study, space: SearchSpace | None = None,
                objectives: Sequence[Objective] | None = None) -> pd.DataFrame:
    """One row per trial: state, objective, CV metrics (mean and std), size, time, architecture, and why a trial
    failed or was pruned; best first (by the first objective, in its direction). A study of several objectives
    also gets one ``value_<name>`` column per objective (``objectives`` names them; else ``value_0``, ...);
    ``value`` is the first. A trial stopped early has the values where it stopped (optuna keeps the last reported
    value of a pruned trial of one objective; of several, autoarch keeps them in
    :data:`~autoarch.pareto.STOPPED_AT`)."""
    n = len(study.directions)
    names = [o.name for o in objectives] if objectives else [str(i) for i in range(n)]
    rows = []
    for t in study.get_trials(deepcopy=False):
        arch = t.user_attrs.get("architecture")
        values = t.values or t.user_attrs.get(STOPPED_AT, {}).get("values") or [None] * n
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "value": values[0]}
        if n > 1:
            row.update({f"value_{name}": v for name, v in zip(names, values, strict=True)})
        row.update({k: v for k, v in t.user_attrs.items() if k.startswith("cv_")})
        row["params"] = t.user_attrs.get("params")
        row["macs"] = t.user_attrs.get("macs")
        cost = t.user_attrs.get("int8_cost")
        if cost:  # measured before training (--max-latency-ms / --max-size-kb)
            row.update({f"int8_{k}" if k.startswith("latency_b") else k: v for k, v in cost.items()
                        if k.startswith("latency_b") or k == "int8_kb"})
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
    descending = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return frame.sort_values(["value", "trial"], ascending=[not descending, True],
                             na_position="last").reset_index(drop=True)


def queue_warm_starts(study: optuna.Study, space: SearchSpace, cfg: SearchConfig, n_train: int) -> None:
    """Queue the space's textbook networks (with :data:`WARM_START_TRAINING`) as the first trials of a new study,
    so that a search never ships worse than the reference it could have started from."""
    if not cfg.warm_start or cfg.controller == "grid" or study.user_attrs.get("warm_started"):
        return
    study.set_user_attr("warm_started", True)
    if study.get_trials(deepcopy=False):
        return  # a study made before warm starts existed
    training = dict(WARM_START_TRAINING)
    if n_train < LARGE_DATA:
        training["batch_size"] = WARM_START_SMALL_BATCH
    for name, arch in space.warm_starts()[:cfg.trial_budget]:
        # a space's warm start may carry its own training values (the rnn space's LSTM its learning rate)
        study.enqueue_trial({**training, **arch}, user_attrs={"warm_start": name})
        logger.info("warm start: trial %s is the %s network", len(study.get_trials(deepcopy=False)) - 1, name)


def fold_rows(n: int, cv: int | float, search_samples: int | None) -> int:
    """About how many rows a candidate trains on in one fold: the training part of a k-fold split or a holdout
    split, at most ``--search-samples``."""
    rows = n - math.ceil(n / cv) if isinstance(cv, int) else int(n * (1.0 - cv))
    return rows if search_samples is None else min(rows, search_samples)
