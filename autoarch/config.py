"""The options of a search, validated in one place (imports no torch, so the CLI starts fast)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autoarch.exceptions import ConfigError, did_you_mean

if TYPE_CHECKING:
    from autoarch.search_spaces import SearchSpace

__all__ = ["SearchConfig", "CONTROLLERS", "OBJECTIVES",
           "EARLY_STOP", "HOLDOUT", "LARGE_DATA", "BAD_IMAGE", "AUGMENT", "AUGMENT_MIN_SIDE",
           "SEARCH_SAMPLES", "resolve_cv", "resolve_augment", "resolve_search_samples", "load_config_file"]

CONTROLLERS = ("evolution", "reinforce", "random", "tpe", "nsga2", "grid")
"""The ``--controller`` names (:func:`autoarch.controllers.make_sampler` builds them). Here, not in the
controllers package, so that the CLI's parser imports no optuna."""
OBJECTIVES = {
    "classification": ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc"),
    "regression": ("neg_mse", "neg_rmse", "neg_mae", "r2"),
}
"""The ``--metric`` names per task (:mod:`autoarch.metrics` computes them with scikit-learn)."""
EARLY_STOP = ("auto", "none", "median", "halving", "hyperband")
"""Optuna pruners that stop poor candidates after an epoch: MedianPruner, SuccessiveHalvingPruner, HyperbandPruner;
``auto`` = successive halving when validating on a holdout split (large data), the median pruner for k-fold
(the README's digits job, five splits: shipped int8 mean 0.9933-0.9939 in two runs with it, 0.9906 without,
60-168 s instead of 140-173 s; BENCHMARKS.md)."""
HOLDOUT = 0.1
"""Share of the training split that ``--cv holdout`` validates on."""
LARGE_DATA = 10_000
"""``--cv auto`` validates on one holdout split from this many training samples on, by 5-fold CV below."""
SEARCH_SAMPLES = 20_000
"""``--search-samples auto``: during the search a candidate trains on at most this many samples of each fold's
training part (a stratified subset; its validation part stays whole), and the winner is retrained on the whole
training split. On Fashion-MNIST (54,000 training samples in the holdout fold) this makes a 20-epoch candidate
about 2.7 times cheaper, so that the warm starts no longer take most of a 30-minute budget (BENCHMARKS.md)."""
BAD_IMAGE = ("fail", "skip")
AUGMENT = ("auto", "search", "off")
"""``--augment``: search the training augmentation of image spaces (``search``), never (``off``), or ``auto``:
search it for images of at least :data:`AUGMENT_MIN_SIDE` pixels a side, off below."""
AUGMENT_MIN_SIDE = 16
"""On smaller images one pixel of shift is 1/8 of the picture and a flip or rotation leaves little intact: on the
8x8 digits the small-ResNet warm start scored 0.775 3-fold CV with flips and shifts, 0.962 without."""


@dataclass(frozen=True)
class SearchConfig:
    """Every option of a search, validated by :meth:`validate` (the CLI flags map one to one)."""

    space: str | SearchSpace = "auto"
    controller: str = "evolution"
    metric: str | None = None
    cv: int | float | str = "auto"
    trials: int = 30
    timeout: float | None = None
    seed: int = 0
    epochs: int = 20
    patience: int = 5
    test_size: float = 0.2
    prune: float = 0.15
    finetune_epochs: int = 20
    calibration_samples: int = 256
    max_samples: int | None = None
    device: str = "auto"
    workers: int | str = "auto"
    early_stop: str = "auto"
    trial_timeout: float | None = None
    max_params: int | None = None
    max_macs: int | None = None
    storage: str | None = None
    study_name: str = "autoarch"
    test: str | None = None
    image_size: int | None = None
    on_bad_image: str = "fail"
    text_column: str | None = None
    max_length: int | None = None
    warm_start: bool = True
    augment: str = "auto"
    search_samples: int | str | None = "auto"

    def validate(self) -> None:
        def need(ok: bool, name: str, rule: str, value: Any) -> None:
            if not ok:
                raise ConfigError(f"The '{name}' parameter of search must be {rule}. Got {value!r} instead.")

        need(self.cv in ("auto", "holdout") or (isinstance(self.cv, int) and not isinstance(self.cv, bool)
             and self.cv >= 2) or (isinstance(self.cv, float) and 0.0 < self.cv < 1.0), "cv",
             "an int >= 2 (k-fold), a float in (0, 1) (holdout share), 'holdout' or 'auto'", self.cv)
        need(isinstance(self.trials, int) and self.trials >= 1, "trials", "an int >= 1", self.trials)
        need(self.timeout is None or self.timeout > 0, "timeout", "None or > 0 seconds", self.timeout)
        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs", "an int >= 1", self.epochs)
        need(isinstance(self.patience, int) and self.patience >= 1, "patience", "an int >= 1", self.patience)
        need(0.0 < self.test_size < 1.0, "test_size", "a float in (0, 1)", self.test_size)
        need(0.0 <= self.prune < 1.0, "prune", "a float in [0, 1)", self.prune)
        need(isinstance(self.finetune_epochs, int) and self.finetune_epochs >= 0, "finetune_epochs",
             "an int >= 0", self.finetune_epochs)
        need(isinstance(self.calibration_samples, int) and self.calibration_samples >= 1, "calibration_samples",
             "an int >= 1", self.calibration_samples)
        need(self.max_samples is None or self.max_samples >= 10, "max_samples", "None or an int >= 10",
             self.max_samples)
        need(self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 1), "workers",
             "'auto' or an int >= 1", self.workers)
        need(self.early_stop in EARLY_STOP, "early_stop", f"one of {list(EARLY_STOP)}", self.early_stop)
        need(self.trial_timeout is None or self.trial_timeout > 0, "trial_timeout", "None or > 0 seconds",
             self.trial_timeout)
        need(self.max_params is None or self.max_params >= 1, "max_params", "None or an int >= 1", self.max_params)
        need(self.max_macs is None or self.max_macs >= 1, "max_macs", "None or an int >= 1", self.max_macs)
        need(bool(self.study_name), "study_name", "a non-empty string", self.study_name)
        need(self.image_size is None or (isinstance(self.image_size, int) and self.image_size >= 4), "image_size",
             "None or an int >= 4", self.image_size)
        need(self.augment in AUGMENT, "augment", f"one of {list(AUGMENT)}", self.augment)
        need(self.search_samples in ("auto", "all", None) or (isinstance(self.search_samples, int)
             and not isinstance(self.search_samples, bool) and self.search_samples >= 10), "search_samples",
             "'auto', 'all' (or None) or an int >= 10", self.search_samples)
        need(self.text_column is None or (isinstance(self.text_column, str) and self.text_column != ""),
             "text_column", "None or a column name", self.text_column)
        need(self.max_length is None or (isinstance(self.max_length, int) and not isinstance(self.max_length, bool)
             and self.max_length >= 1), "max_length", "None or an int >= 1", self.max_length)
        need(self.on_bad_image in BAD_IMAGE, "on_bad_image", f"one of {list(BAD_IMAGE)}", self.on_bad_image)
        from autoarch.trainer import resolve_device

        if self.controller not in CONTROLLERS:
            raise ConfigError(f"The 'controller' parameter of search must be one of {list(CONTROLLERS)}. Got "
                              f"{self.controller!r} instead.{did_you_mean(self.controller, CONTROLLERS)}")
        resolve_device(self.device)


def resolve_cv(cv: int | float | str, n_train: int) -> int | float:
    """``--cv`` as the evaluator takes it: an int (k folds) or a float (the holdout share)."""
    if cv == "auto":
        return HOLDOUT if n_train >= LARGE_DATA else 5
    if cv == "holdout":
        return HOLDOUT
    return cv  # type: ignore[return-value]


def resolve_search_samples(search_samples: int | str | None, n_train: int) -> int | None:
    """``--search-samples`` as the evaluator takes it: the most samples a candidate trains on in one fold, or None
    for all of them (``auto``: :data:`SEARCH_SAMPLES` when the training split is larger, else all)."""
    if search_samples in ("all", None):
        return None
    if search_samples == "auto":
        return SEARCH_SAMPLES if n_train > SEARCH_SAMPLES else None
    return int(search_samples) if int(search_samples) < n_train else None  # type: ignore[arg-type]


def resolve_augment(augment: str, input_shape: tuple[int, ...]) -> str:
    """``--augment`` as the search applies it: ``search`` or ``off`` (``auto`` decided by the image side)."""
    if augment != "auto":
        return augment
    return "search" if len(input_shape) == 3 and min(input_shape[1:]) >= AUGMENT_MIN_SIDE else "off"


def _expected_type(name: str) -> tuple[type, ...]:
    """The value types a config file may give for field ``name`` (ints are accepted where floats are)."""
    spec = {"cv": (int, float, str), "timeout": (int, float, type(None)), "trial_timeout": (int, float, type(None)),
            "test_size": (int, float), "prune": (int, float), "workers": (int, str),
            "search_samples": (int, str, type(None)), "metric": (str, type(None)), "space": (str,),
            "max_samples": (int, type(None)), "max_params": (int, type(None)), "max_macs": (int, type(None)),
            "storage": (str, type(None)), "test": (str, type(None)), "image_size": (int, type(None)),
            "warm_start": (bool,), "text_column": (str, type(None)), "max_length": (int, type(None))}
    if name in spec:
        return spec[name]
    default = SearchConfig.__dataclass_fields__[name].default
    return (type(default),)


def load_config_file(path: str) -> dict[str, Any]:
    """The options of a config file for ``autoarch search --config FILE``: TOML (``.toml``) or JSON (``.json``),
    a flat table of :class:`SearchConfig` fields, or a run's ``report.json`` (its ``config`` block, so that a run
    can be repeated from it; the resolved values it records are mapped back, e.g. ``test = "official"``).

    Raises:
        ConfigError: the file cannot be read, a key is not an option, or a value has the wrong type. Values are
            range-checked later by :meth:`SearchConfig.validate`, which names the option.
    """
    import json
    from pathlib import Path

    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}; give a .toml or .json file.") from None
    try:
        if file.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            values = tomllib.loads(text)
    except ValueError as exc:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise ConfigError(f"--config {path} is not valid {'JSON' if file.suffix.lower() == '.json' else 'TOML'}: "
                          f"{' '.join(str(exc).split())}") from None
    if isinstance(values, dict) and isinstance(values.get("config"), dict) and "autoarch_version" in values:
        values = _from_report(values["config"])
    if not isinstance(values, dict):
        raise ConfigError(f"--config {path} must hold a table of options (key = value), not {type(values).__name__}.")
    fields = SearchConfig.__dataclass_fields__
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"--config {path}: unknown option {key!r}.{did_you_mean(key, fields)} The options are "
                              f"{', '.join(sorted(fields))}.")
        allowed = _expected_type(key)
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise ConfigError(f"--config {path}: {key} must be {names}, not {value!r}.")
    return dict(values)


def _from_report(config: dict[str, Any]) -> dict[str, Any]:
    """A report's ``config`` block as options: what the finished run resolved (``--cv auto`` -> 0.1, ``test`` ->
    ``official``) is what it ran with; only the values that are not options themselves are mapped back."""
    values = {k: v for k, v in config.items() if k in SearchConfig.__dataclass_fields__}
    if values.get("test") in ("official", "split"):
        values["test"] = None if values["test"] == "official" else "split"
    if isinstance(values.get("storage"), str) and "***" in values["storage"]:
        raise ConfigError("the storage URL in that report is redacted (its password is never written); give "
                          "--storage URL.")
    if values.get("search_samples") is None:
        values["search_samples"] = "all"
    return values
