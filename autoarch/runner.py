"""The search: data → optuna study (controller = sampler) → k-fold CV per candidate → winner → compression.

Example:
    >>> import autoarch
    >>> result = autoarch.search("iris", trials=4, cv=3, epochs=5, out="runs/iris")  # doctest: +SKIP
    >>> result.test_scores["accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
from optuna.trial import TrialState
from torch import nn

from autoarch import __version__
from autoarch.compress import CompressionResult, compress_model, count_macs_params, replay_pruning
from autoarch.config import SearchConfig
from autoarch.controllers import make_sampler
from autoarch.data import Dataset, from_arrays, load_dataset, train_test_split
from autoarch.evaluate import build_model, cross_validate
from autoarch.exceptions import AutoArchError, ConfigError, DataError, did_you_mean
from autoarch.metrics import check_metric, compute_metrics, default_metric, objective_value
from autoarch.model import Model
from autoarch.search_spaces import SearchSpace, get_space
from autoarch.trainer import TrainConfig, fit, predict, resolve_device, suggest_training, training_grid

__all__ = ["SearchConfig", "SearchResult", "search", "load", "leaderboard"]

logger = logging.getLogger(__name__)

STUDY_NAME = "autoarch"
STUDY_FILE = "study.db"
# Options that change what a trial means: a study can only be resumed with the same values.
_FINGERPRINT_KEYS = ("space", "metric", "cv", "seed", "epochs", "patience", "test_size", "max_samples")


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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        return path


def _resolve_data(data: Any, y: Any, target: str | None, task: str | None, max_samples: int | None,
                  seed: int) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        if y is not None:
            raise ConfigError("give either a data set name / file, or arrays X and y, not both.")
        return load_dataset(str(data), target=target, task=task, max_samples=max_samples, seed=seed)
    if y is None:
        raise ConfigError("search(X, y): the targets y are missing.")
    dataset = from_arrays(data, y, task=task)
    if max_samples is not None and len(dataset) > max_samples:
        dataset, _ = train_test_split(dataset, test_size=1 - max_samples / len(dataset), seed=seed)
    return dataset


def _check_folds(train: Dataset, cv: int) -> None:
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


def _open_study(out: Path | None, fingerprint: dict[str, Any], sampler: optuna.samplers.BaseSampler
                ) -> optuna.Study:
    storage = None
    if out is not None:
        storage = optuna.storages.RDBStorage(f"sqlite:///{out / STUDY_FILE}")
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler, direction="maximize",
                                pruner=optuna.pruners.NopPruner(), load_if_exists=True)
    saved = study.user_attrs.get("config")
    if saved is None:
        study.set_user_attr("config", fingerprint)
    elif saved != fingerprint:
        diff = {k: (saved.get(k), fingerprint.get(k)) for k in set(saved) | set(fingerprint)
                if saved.get(k) != fingerprint.get(k)}
        changes = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(diff.items()))
        raise ConfigError(
            f"{out} holds a study made with other settings ({changes}); rerun with the same options to resume, "
            "or use another --out."
        )
    return study


def _counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    # A FAIL without our fail_reason was interrupted (Ctrl-C, kill): it is redone, not counted.
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "fail_reason" in trial.user_attrs


def _fail_stale(study: optuna.Study) -> None:
    """Mark trials left RUNNING by a killed run as failed (interrupted) so that they are redone."""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        logger.info("trial %d was left running by an interrupted run; it will be redone", trial.number)


class _Progress:
    """A tqdm bar: trial n/N, best so far, time left."""

    def __init__(self, total: int, done: int, timeout: float | None, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=not enabled,
                         dynamic_ncols=True)
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if not _counts_toward_budget(trial):
            return
        if trial.state == TrialState.FAIL:
            logger.warning("trial %d failed: %s", trial.number, trial.user_attrs.get("fail_reason"))
        self._bar.update(1)
        post = {}
        try:
            post["best"] = f"{study.best_value:.4f}"
        except ValueError:
            post["best"] = "-"
        if self._deadline is not None:
            post["timeout_in"] = f"{max(0.0, self._deadline - time.monotonic()):.0f}s"
        self._bar.set_postfix(post)

    def close(self) -> None:
        self._bar.close()


def _make_objective(space: SearchSpace, train: Dataset, cfg: SearchConfig, metric: str,
                    device: torch.device) -> Callable[[optuna.Trial], float]:
    example = torch.as_tensor(train.X[:2], dtype=torch.float32)

    def objective(trial: optuna.Trial) -> float:
        try:
            arch = space.suggest(trial)
            tcfg = suggest_training(trial, cfg.epochs, cfg.patience)
            trial.set_user_attr("architecture", arch)
            trial.set_user_attr("training", tcfg.to_dict())
            macs, params = count_macs_params(build_model(space, arch, train), example)
            trial.set_user_attr("params", params)
            trial.set_user_attr("macs", macs)
            running: list[float] = []

            def on_fold(i: int, scores: dict[str, float]) -> None:
                running.append(objective_value(metric, scores))
                trial.report(float(np.mean(running)), i)
                if trial.should_prune():
                    raise optuna.TrialPruned()

            result = cross_validate(space, arch, tcfg, train, cv=cfg.cv, seed=cfg.seed, device=device,
                                    on_fold=on_fold)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            raise
        mean, std = result.mean(), result.std()
        for name in mean:
            trial.set_user_attr(f"cv_{name}_mean", mean[name])
            trial.set_user_attr(f"cv_{name}_std", std[name])
        trial.set_user_attr("best_epochs", result.best_epochs)
        trial.set_user_attr("seconds", result.seconds)
        value = objective_value(metric, mean)
        if not math.isfinite(value):
            trial.set_user_attr("fail_reason", f"the {metric} score is {value} (undefined on these folds)")
            return float("nan")
        return value

    return objective


def leaderboard(study: optuna.Study, space: SearchSpace | None = None) -> pd.DataFrame:
    """One row per trial: state, objective, CV metrics (mean and std), size, time, architecture; best first."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        arch = t.user_attrs.get("architecture")
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "value": t.value}
        row.update({k: v for k, v in t.user_attrs.items() if k.startswith("cv_")})
        row["params"] = t.user_attrs.get("params")
        row["macs"] = t.user_attrs.get("macs")
        row["seconds"] = t.user_attrs.get("seconds")
        row["architecture"] = (space.describe(arch) if space is not None and arch else json.dumps(arch))
        row["training"] = json.dumps(t.user_attrs.get("training"))
        row["fail_reason"] = t.user_attrs.get("fail_reason", "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values(["value", "trial"], ascending=[False, True], na_position="last").reset_index(drop=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _save_state_dict(model: nn.Module, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)


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
            :class:`~autoarch.data.Dataset`, or a feature array (then give ``y``).
        y: targets when ``data`` is an array.
        target: the target column of a CSV file.
        task: ``"classification"`` or ``"regression"``; inferred when None.
        out: the run directory (study database, models, reports); re-running with the same directory resumes
            the study. None keeps the study in memory and the files in a temporary directory.
        progress: show a progress bar on stderr.
        **options: the fields of :class:`SearchConfig` (``space``, ``controller``, ``metric``, ``cv``,
            ``trials``, ``timeout``, ``seed``, ``epochs``, ``patience``, ``test_size``, ``prune``,
            ``finetune_epochs``, ``calibration_samples``, ``max_samples``, ``device``).

    Raises:
        DataError, ConfigError, SpaceError: bad data or options (checked before any training).
        AutoArchError: every trial failed.

    Example:
        >>> from sklearn.datasets import load_iris
        >>> X, y = load_iris(return_X_y=True)
        >>> result = search(X, y, trials=3, cv=3, epochs=5)  # doctest: +SKIP
    """
    unknown = sorted(set(options) - set(SearchConfig.__dataclass_fields__))
    if unknown:
        hint = did_you_mean(unknown[0], SearchConfig.__dataclass_fields__)
        raise ConfigError(f"search() got unknown option {unknown[0]!r}.{hint}")
    cfg = SearchConfig(**options)
    cfg.validate()
    dataset = _resolve_data(data, y, target, task, cfg.max_samples, cfg.seed)
    space = get_space(cfg.space, dataset.input_kind)
    metric = cfg.metric or default_metric(dataset.task)
    check_metric(metric, dataset.task)
    train, test = train_test_split(dataset, cfg.test_size, cfg.seed)
    _check_folds(train, cfg.cv)
    device = resolve_device(cfg.device)
    out_dir = _prepare_out(out)

    fingerprint = {k: getattr(cfg, k) for k in _FINGERPRINT_KEYS}
    fingerprint.update(space=space.name, metric=metric, data=dataset.name, n_samples=len(dataset),
                       task=dataset.task, target=target)
    grid = {**space.grid(), **training_grid()} if cfg.controller == "grid" else None
    start = time.perf_counter()
    # A resumed study continues the controller's random stream from where the finished trials left it.
    study = _open_study(out_dir, fingerprint, make_sampler(cfg.controller, seed=cfg.seed, n_trials=cfg.trials,
                                                           grid=grid))
    _fail_stale(study)
    done = sum(_counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
    if done:
        study.sampler = make_sampler(cfg.controller, seed=cfg.seed + done, n_trials=cfg.trials, grid=grid)
        logger.info("resuming the study in %s: %d of %d trials done", out_dir, done, cfg.trials)
    remaining = cfg.trials - done
    if remaining > 0:
        bar = _Progress(cfg.trials, done, cfg.timeout, progress)
        try:
            study.optimize(_make_objective(space, train, cfg, metric, device), n_trials=remaining,
                           timeout=cfg.timeout, catch=(Exception,), callbacks=[bar], gc_after_trial=False)
        finally:
            bar.close()
    return _finish(study, space, dataset, train, test, cfg, metric, device, out_dir, time.perf_counter() - start)


def _finish(study: optuna.Study, space: SearchSpace, dataset: Dataset, train: Dataset, test: Dataset,
            cfg: SearchConfig, metric: str, device: torch.device, out_dir: Path | None, search_seconds: float
            ) -> SearchResult:
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        reasons = [t.user_attrs.get("fail_reason") for t in trials if t.user_attrs.get("fail_reason")]
        first = f"; the first failure: {reasons[0]}" if reasons else ""
        raise AutoArchError(f"none of the {len(trials)} trials completed{first}. Check the data and options.")
    best = study.best_trial
    arch = dict(best.user_attrs["architecture"])
    tcfg = TrainConfig(**best.user_attrs["training"])
    epochs = max(1, int(round(float(np.median(best.user_attrs["best_epochs"])))))
    logger.info("retraining trial %d on the whole training split (%d samples, %d epochs)", best.number, len(train),
                epochs)
    torch.manual_seed(cfg.seed)
    model = build_model(space, arch, train)
    fit(model, train.X, train.y, train.task, tcfg, seed=cfg.seed, device=device, epochs=epochs)
    model = model.cpu().eval()
    test_scores = compute_metrics(test.task, test.y, predict(model, test.X), test.n_outputs)

    files_dir = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="autoarch-"))
    description = _describe(space, arch, dataset, metric)
    metadata = {"autoarch_version": __version__, "task": dataset.task, "classes": json.dumps(dataset.classes),
                "input_shape": json.dumps(list(dataset.input_shape)), "architecture": json.dumps(description),
                "metric": metric}
    comp = compress_model(model, train, test, files_dir, train_config=tcfg, prune_ratio=cfg.prune,
                          finetune_epochs=cfg.finetune_epochs, calibration_samples=cfg.calibration_samples,
                          seed=cfg.seed, device=device, metadata=metadata,
                          on_stage=lambda s: logger.info("compression: %s", s))
    description["pruning_history"] = comp.pruning_history
    board = leaderboard(study, space)
    cv_scores = {k[3:-5]: (best.user_attrs[k], best.user_attrs[k[:-5] + "_std"])
                 for k in best.user_attrs if k.startswith("cv_") and k.endswith("_mean")}
    counts = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    report = {
        "autoarch_version": __version__,
        "data": {"name": dataset.name, "task": dataset.task, "input_shape": list(dataset.input_shape),
                 "n_samples": len(dataset), "n_train": len(train), "n_test": len(test), "classes": dataset.classes},
        "search": {"space": space.name, "controller": cfg.controller, "metric": metric, "cv": cfg.cv,
                   "trials_requested": cfg.trials, "trial_states": {k: v for k, v in counts.items() if v},
                   "seconds_this_run": search_seconds, "seed": cfg.seed, "device": str(device)},
        "best": {"trial": best.number, "architecture": arch, "summary": space.describe(arch),
                 "training": tcfg.to_dict(), "retrain_epochs": epochs, "cv": cv_scores},
        "test": test_scores,
        "compression": {"prune_ratio": cfg.prune, "finetune_epochs": cfg.finetune_epochs,
                        "stages": comp.stages, "verification": comp.verification},
        "config": {**asdict(cfg), "space": space.name},
    }
    if out_dir is not None:
        from autoarch.report import render_markdown

        _write_text(out_dir / "architecture.json", json.dumps(description, indent=2))
        _save_state_dict(comp.model, out_dir / "model.pt")
        _save_state_dict(model, out_dir / "winner.pt")  # before pruning: what `autoarch compress` starts from
        tmp_csv = out_dir / ".leaderboard.csv.tmp"
        board.to_csv(tmp_csv, index=False)
        os.replace(tmp_csv, out_dir / "leaderboard.csv")
        _write_text(out_dir / "report.json", json.dumps(report, indent=2, default=_json_default))
        _write_text(out_dir / "report.md", render_markdown(report, board))
    return SearchResult(architecture=arch, training=tcfg.to_dict(), cv_scores=cv_scores, test_scores=test_scores,
                        model=comp.model, leaderboard=board, compression=comp, out_dir=files_dir, study=study,
                        report=report)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _describe(space: SearchSpace, arch: Mapping[str, Any], dataset: Dataset, metric: str) -> dict[str, Any]:
    return {"autoarch_version": __version__, "space": space.name, "architecture": dict(arch),
            "input_shape": list(dataset.input_shape), "n_outputs": dataset.n_outputs, "task": dataset.task,
            "classes": dataset.classes, "feature_names": dataset.feature_names, "metric": metric}


def load(run_dir: str | os.PathLike[str]) -> Model:
    """Rebuild the final model of a run directory from ``architecture.json`` and ``model.pt``.

    The pruning history in ``architecture.json`` is replayed on the freshly built network before the weights
    (loaded with ``weights_only=True``) are put in.

    Raises:
        DataError: the directory lacks ``architecture.json`` or ``model.pt``.
    """
    run = Path(run_dir)
    spec_path, weights_path = run / "architecture.json", run / "model.pt"
    for p in (spec_path, weights_path):
        if not p.is_file():
            raise DataError(f"{p} is missing; give the --out directory of a finished search.")
    spec = json.loads(spec_path.read_text())
    space = get_space(spec["space"], "image" if len(spec["input_shape"]) == 3 else "tabular")
    net = space.build(spec["architecture"], spec["input_shape"], spec["n_outputs"])
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = Model(net, state["mean"].numpy(), state["std"].numpy())
    example = torch.zeros(2, *spec["input_shape"])
    replay_pruning(model, example, spec.get("pruning_history") or [])
    model.load_state_dict(state)
    return model.eval()
