"""scikit-learn estimators around :func:`autoarch.search`: :class:`AutoArchClassifier` and :class:`AutoArchRegressor`.

``fit`` runs a whole search (architecture search, retrain, pruning, ONNX export, int8 quantization) on the
arrays it is given; the fitted estimator keeps the shipped ONNX files as bytes and predicts with onnxruntime.

Predictions come from the **fp32 ONNX model** (``onnx_model_fp32_``) in an onnxruntime session: the same graph
the torch model ``model_`` was exported to (parity checked by the search, within 1e-3), fast on small batches
and deterministic. The int8 model (``onnx_model_``, what ``export(path)`` writes by default) is what the search
ships for edge devices; its method (static or dynamic) is chosen by a timing, and its outputs differ from fp32
by the quantization error, so it is not what ``predict`` and ``score`` use. ``export(path, int8=False)`` writes
the file ``predict`` runs.

Example:
    >>> from sklearn.datasets import load_iris
    >>> from autoarch.sklearn import AutoArchClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = AutoArchClassifier(space="mlp", trials=4, epochs=10).fit(X, y)  # doctest: +SKIP
    >>> clf.predict_proba(X[:2]).sum(axis=1)  # doctest: +SKIP
    array([1., 1.])
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6 (pyproject allows 1.4): the method that validate_data replaced

    def validate_data(_estimator: Any, /, X: Any = "no_validation", y: Any = "no_validation", **kwargs: Any) -> Any:
        return _estimator._validate_data(X, y, **kwargs)

from autoarch.exceptions import ConfigError, DataError, SpaceError

__all__ = ["AutoArchClassifier", "AutoArchRegressor", "InvalidDataError", "InvalidConfigError",
           "InvalidSpaceError"]

MIN_SAMPLES = 6
"""The fewest samples ``fit`` takes: the held-out split and two training folds need a few each."""
AUTO_FOLDS = 5
"""The folds of ``cv="auto"`` below :data:`~autoarch.config.LARGE_DATA` samples, as the search takes them."""


class InvalidDataError(DataError, ValueError):
    """A :class:`~autoarch.exceptions.DataError` raised by an estimator: also a ValueError, as scikit-learn expects."""


class InvalidConfigError(ConfigError, ValueError):
    """A :class:`~autoarch.exceptions.ConfigError` raised by an estimator: also a ValueError."""


class InvalidSpaceError(SpaceError, ValueError):
    """A :class:`~autoarch.exceptions.SpaceError` raised by an estimator: also a ValueError."""


_AS_VALUE_ERROR = ((DataError, InvalidDataError), (ConfigError, InvalidConfigError), (SpaceError, InvalidSpaceError))


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Re-raise autoarch's errors about bad data or options as ValueErrors (that are still autoarch's types)."""
    try:
        yield
    except (InvalidDataError, InvalidConfigError, InvalidSpaceError):
        raise
    except (DataError, ConfigError, SpaceError) as exc:
        for kind, wrapper in _AS_VALUE_ERROR:
            if isinstance(exc, kind):
                raise wrapper(str(exc)) from exc
        raise


@contextlib.contextmanager
def _quiet(verbose: int) -> Iterator[None]:
    """Below ``verbose=1``, autoarch's log records under ERROR are dropped while ``fit`` runs (and the level of the
    ``autoarch`` logger put back after)."""
    if verbose >= 1:
        yield
        return
    log = logging.getLogger("autoarch")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _ort_session(model: bytes) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class _AutoArchEstimator(BaseEstimator):
    """What both estimators share: the parameters, ``fit`` around :func:`autoarch.search`, the ONNX session.

    Parameters:
        space: the search space: ``"auto"`` (MLP for tabular data), ``"mlp"``, or a
            :class:`~autoarch.search_spaces.SearchSpace`.
        controller: the sampler: ``"evolution"``, ``"random"``, ``"tpe"``, ``"grid"``, ... (``autoarch.controllers``).
        metric: the objective (``accuracy``, ``f1_macro``, ``neg_rmse``, ``r2``, ...); None = the task's default.
        cv: folds (int >= 2), a holdout share (float in (0, 1)), ``"holdout"``, or ``"auto"``: 5-fold CV below
            10,000 training samples, lowered to what the smallest class allows (at least 2), holdout from there on.
        trials: candidates evaluated.
        timeout: seconds for the whole search (retrain and export included), or None.
        random_state: the search's ``seed`` (an int); None or a ``RandomState`` draws one.
        epochs: the most epochs a candidate trains (early stopping with ``patience``); ``"auto"``: 20, more on a
            training split under 1,000 samples (enough to see 20,000 samples, at most 200).
        patience: epochs without improvement before a candidate stops; ``"auto"``: a quarter of ``epochs``, at
            least 5.
        test_size: share of ``X`` held out of the search; the winner is retrained on the rest and scored on it
            (``test_scores_``).
        prune: share of channels/units pruned from the winner (0 = no pruning).
        finetune_epochs: fine-tuning epochs after pruning.
        calibration_samples: training samples that calibrate the int8 model.
        early_stop: the optuna pruner: ``"auto"``, ``"none"``, ``"median"``, ``"halving"``, ``"hyperband"``.
        trial_timeout: seconds one candidate may train, or None.
        max_params, max_macs: candidates above these are rejected before training.
        warm_start_networks: the search's ``warm_start``: start from the space's textbook networks. (Not
            scikit-learn's ``warm_start``: every ``fit`` is a new search.)
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        workers: search processes; more than 1 needs ``out``.
        out: a run directory to keep (study, reports, models); None searches in memory and deletes the temporary
            files. A second ``fit`` with the same ``out`` resumes that study, so give each fit its own ``out``
            (leave it None inside ``cross_val_score`` or a grid search).
        verbose: 0 keeps autoarch quiet but for errors; 1 logs as the library does and shows a progress bar.
    """

    _task: str

    def __init__(self, *, space: Any = "auto", controller: str = "evolution", metric: str | None = None,
                 cv: int | float | str = "auto", trials: int = 30, timeout: float | None = None,
                 random_state: Any = 0, epochs: int | str = "auto", patience: int | str = "auto",
                 test_size: float = 0.2, prune: float = 0.15, finetune_epochs: int = 20, calibration_samples: int = 256,
                 early_stop: str = "auto", trial_timeout: float | None = None, max_params: int | None = None,
                 max_macs: int | None = None, warm_start_networks: bool = True, device: str = "auto",
                 workers: int | str = 1, out: str | os.PathLike[str] | None = None, verbose: int = 0) -> None:
        self.space = space
        self.controller = controller
        self.metric = metric
        self.cv = cv
        self.trials = trials
        self.timeout = timeout
        self.random_state = random_state
        self.epochs = epochs
        self.patience = patience
        self.test_size = test_size
        self.prune = prune
        self.finetune_epochs = finetune_epochs
        self.calibration_samples = calibration_samples
        self.early_stop = early_stop
        self.trial_timeout = trial_timeout
        self.max_params = max_params
        self.max_macs = max_macs
        self.warm_start_networks = warm_start_networks
        self.device = device
        self.workers = workers
        self.out = out
        self.verbose = verbose

    # -- fitting --------------------------------------------------------------------------------------------------

    def _seed(self) -> int:
        if isinstance(self.random_state, (int, np.integer)) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _options(self, seed: int) -> dict[str, Any]:
        return {"space": self.space, "controller": self.controller, "metric": self.metric, "trials": self.trials,
                "timeout": self.timeout, "seed": seed, "epochs": self.epochs, "patience": self.patience,
                "test_size": self.test_size, "prune": self.prune, "finetune_epochs": self.finetune_epochs,
                "calibration_samples": self.calibration_samples, "early_stop": self.early_stop,
                "trial_timeout": self.trial_timeout, "max_params": self.max_params, "max_macs": self.max_macs,
                "warm_start": self.warm_start_networks, "device": self.device, "workers": self.workers}

    def _resolve_cv(self, dataset: Any, seed: int) -> int | float | str:
        """``cv="auto"`` as the search would take it, but with no more folds than the smallest class of the
        training split (at least 2) or half its samples have: small data still fits with 2-fold CV."""
        if self.cv != "auto":
            return self.cv
        from autoarch.config import resolve_cv
        from autoarch.data import train_test_split

        train, _ = train_test_split(dataset, self.test_size, seed)
        cv = resolve_cv("auto", len(train))
        if isinstance(cv, float):
            return cv
        limit = len(train) // 2
        if dataset.task == "classification":
            limit = min(limit, int(np.bincount(train.y, minlength=len(train.classes)).min()))
        return max(2, min(AUTO_FOLDS, limit))

    def _validate_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], y_numeric=self._task == "regression")
        if len(X) < MIN_SAMPLES:
            raise InvalidDataError(f"{type(self).__name__} needs at least {MIN_SAMPLES} samples (a held-out split and "
                                   f"2 training folds), but got n_samples={len(X)}.")
        return X, y

    def fit(self, X: Any, y: Any) -> _AutoArchEstimator:
        """Search an architecture for ``(X, y)``, retrain the winner on ``1 - test_size`` of the data, prune,
        export and quantize it.

        Raises:
            ValueError: bad data or parameters (also :class:`~autoarch.exceptions.DataError` /
                :class:`~autoarch.exceptions.ConfigError` / :class:`~autoarch.exceptions.SpaceError`).
            AutoArchError: no trial completed (e.g. ``timeout`` too short).
        """
        from autoarch.data import from_arrays
        from autoarch.runner import search

        X, y = self._validate_fit(X, y)
        names = [str(n) for n in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None
        seed = self._seed()
        with _user_errors():
            dataset = from_arrays(X, y, task=self._task, name=type(self).__name__, feature_names=names)
            options = {**self._options(seed), "cv": self._resolve_cv(dataset, seed)}
            with _quiet(self.verbose):
                result = search(dataset, out=self.out, progress=self.verbose >= 1, **options)
        try:
            comp = result.compression
            self.onnx_model_fp32_ = Path(comp.onnx_path).read_bytes()
            self.onnx_model_ = Path(comp.int8_path).read_bytes() if comp.int8_path else self.onnx_model_fp32_
        finally:
            if self.out is None:  # search() made a temporary directory for the files: they are read now
                shutil.rmtree(result.out_dir, ignore_errors=True)
        self._set_targets(y)  # after the search: a failed refit leaves no new labels beside the old model
        self.model_ = result.model
        self.best_architecture_ = dict(result.architecture)
        self.best_training_ = dict(result.training)
        self.cv_scores_ = dict(result.cv_scores)
        self.test_scores_ = dict(result.test_scores)
        self.leaderboard_ = result.leaderboard
        self.report_ = result.report
        self.out_dir_ = None if self.out is None else Path(result.out_dir)
        self._session = _ort_session(self.onnx_model_fp32_)
        return self

    def _set_targets(self, y: np.ndarray) -> None:
        pass

    # -- predicting -----------------------------------------------------------------------------------------------

    def _raw(self, X: Any) -> np.ndarray:
        """The fp32 ONNX model's output (logits or values) for ``X``."""
        check_is_fitted(self, "onnx_model_fp32_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        X = np.ascontiguousarray(X, dtype=np.float32)
        name = self._session.get_inputs()[0].name
        return np.asarray(self._session.run(None, {name: X})[0])

    def export(self, path: str | os.PathLike[str], int8: bool = True) -> Path:
        """Write the shipped ONNX model to ``path`` atomically: the int8 one (``onnx_model_``) or, with
        ``int8=False``, the fp32 one that ``predict`` runs (``onnx_model_fp32_``). Its metadata names the task,
        input shape, feature names and class labels (``autoarch predict`` reads them)."""
        from autoarch.rundir import write_bytes

        check_is_fitted(self, "onnx_model_fp32_")
        return write_bytes(path, self.onnx_model_ if int8 else self.onnx_model_fp32_)

    # -- pickling: the onnxruntime session is rebuilt from the bytes ----------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state = dict(state)
        state.pop("_session", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "onnx_model_fp32_" in self.__dict__:
            self._session = _ort_session(self.onnx_model_fp32_)


class AutoArchClassifier(ClassifierMixin, _AutoArchEstimator):
    __doc__ = ("A neural-architecture-search classifier: ``fit`` runs :func:`autoarch.search` on the arrays, "
               "``predict`` / ``predict_proba`` run the winner's fp32 ONNX model in onnxruntime.\n\n"
               "Labels of any type (strings included) are kept: ``classes_`` orders the columns of "
               "``predict_proba``, and the exported ONNX files name them in their metadata.\n"
               + (_AutoArchEstimator.__doc__ or "").split("\n", 1)[1]
               + """
    Attributes:
        classes_: the class labels, sorted (``np.unique(y)``).
        n_features_in_, feature_names_in_: as scikit-learn sets them.
        best_architecture_, best_training_: the winner's architecture and training hyperparameters.
        cv_scores_: ``{metric: (mean, std)}`` over the winner's folds.
        test_scores_: every metric of the retrained winner on the held-out ``test_size`` split.
        leaderboard_: one row per trial (pandas DataFrame, best first): state, objective, every CV metric's mean
            and std, params, MACs, seconds, architecture, why a trial failed.
        onnx_model_: the shipped int8 ONNX model (bytes); onnx_model_fp32_: the fp32 one, which ``predict`` runs.
        model_: the final (pruned, fine-tuned) torch module; it takes raw features and returns logits.
        report_: the search's report (what ``report.json`` holds).
        out_dir_: the run directory when ``out`` was given, else None.
    """)

    _task = "classification"

    def _validate_fit(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = super()._validate_fit(X, y)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise InvalidDataError(f"AutoArchClassifier needs at least 2 classes in y, but got 1 class "
                                   f"({classes[0]!r}).")
        return X, y

    def _set_targets(self, y: np.ndarray) -> None:
        self.classes_ = np.unique(y)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (softmax of the logits), one column per label of ``classes_``."""
        out = self._raw(X).astype(np.float64)  # the search exports classifiers with logits outputs
        out -= out.max(axis=1, keepdims=True)
        np.exp(out, out=out)
        return out / out.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of ``classes_`` for each row of ``X``."""
        index = self._raw(X).argmax(axis=1)
        return self.classes_[index]


class AutoArchRegressor(RegressorMixin, _AutoArchEstimator):
    __doc__ = ("A neural-architecture-search regressor: ``fit`` runs :func:`autoarch.search` on the arrays, "
               "``predict`` runs the winner's fp32 ONNX model in onnxruntime (targets in their original units).\n"
               + (_AutoArchEstimator.__doc__ or "").split("\n", 1)[1]
               + """
    Attributes:
        n_features_in_, feature_names_in_: as scikit-learn sets them.
        best_architecture_, best_training_, cv_scores_, test_scores_, leaderboard_, onnx_model_,
        onnx_model_fp32_, model_, report_, out_dir_: as in :class:`AutoArchClassifier`.
    """)

    _task = "regression"

    def predict(self, X: Any) -> np.ndarray:
        """The predicted target of each row of ``X`` (float64, shape ``(n_samples,)``)."""
        out = self._raw(X)
        return out.reshape(len(out), -1)[:, 0].astype(np.float64)
