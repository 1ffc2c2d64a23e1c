"""The data type: :class:`Dataset`, its constructors (arrays, texts, sequences, pandas frames) and the held-out split.

:mod:`autoarch.loaders` reads the built-in data sets and user files into it.

A :class:`Dataset` holds features ``X`` (``(n, d)`` ``float32`` for tabular data; ``(n, C, H, W)`` for images,
``uint8`` raw pixels 0..255 where the source is 8-bit, else ``float32``), targets ``y`` (class indices ``int64`` or
``float32`` values), the task kind and, for classification, the original class labels so that every output can
map indices back to them.

Image pixels from an 8-bit source (Fashion-MNIST, folders of image files, a ``uint8`` image array given to
:func:`from_arrays` or in an ``.npz`` file) are kept as ``uint8``: 4x less memory than ``float32`` (Fashion-MNIST's
60,000 training images are 47 MB instead of 188 MB, in each search worker). Whoever needs floats converts,
exactly (every ``uint8`` is a ``float32``): the trainer per batch, ``predict`` and ONNX Runtime feeds per chunk,
the standardiser in ``float64``. The values, and so every result, are those of the ``float32`` array. sklearn's
``digits`` (integers 0..16, 0.46 MB as ``float32``) stays ``float32``: its source is ``float64``, not 8-bit, and
``uint8`` would save under 0.4 MB.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from autoarch.exceptions import DataError, did_you_mean

__all__ = ["Dataset", "INPUT_KINDS", "from_arrays", "from_texts", "from_sequences", "train_test_split"]

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
INPUT_KINDS = ("tabular", "image", "sequence", "text")
"""The input kinds a :class:`Dataset` carries and a search space declares it accepts."""


@dataclass(frozen=True)
class Dataset:
    """Features, targets and what they mean.

    Attributes:
        X: features, ``(n, d)`` ``float32`` (tabular) or ``(n, C, H, W)`` (image): ``uint8`` raw pixels 0..255
            from an 8-bit source (Fashion-MNIST, image folders, ``uint8`` image arrays), else ``float32``.
            Convert with ``.astype(np.float32)`` (or ``dtype=float32``) where floats are needed.
        y: ``int64`` class indices into ``classes`` or ``float32`` regression targets.
        task: ``"classification"`` or ``"regression"``.
        classes: original class labels (JSON-serialisable), empty for regression.
        name: a short name for reports.
        feature_names: column names of tabular data, if known.
        columns: for a table with text categories or missing cells, its schema
            (:class:`~autoarch.tables.Column`): ``X`` then holds codes, NaN for a missing cell, and the model
            encodes them (:class:`~autoarch.tables.TableEncoder`); None for every other data.
        kind: the input kind, one of :data:`INPUT_KINDS`: ``"tabular"`` (``(n, d)``), ``"image"`` (``(n, C, H,
            W)``), ``"text"`` (``X`` is ``(n, max_length)`` token ids, :mod:`autoarch.text`) or ``"sequence"``
            (``X`` is ``(n, T, channels + 1)``, right-padded, its last channel the validity mask,
            :mod:`autoarch.sequences`). Given as None, it is set once from ``X``'s shape (4-D: image, else
            tabular) and carried from then on (``replace`` and :meth:`subset` keep it); a search space declares
            the kinds it accepts (``SearchSpace.input_kinds``).
        tokens: for text, the token table ``X``'s ids index (id ``i + 2`` is ``tokens[i]``).
    """

    X: np.ndarray
    y: np.ndarray
    task: str
    classes: list[Any] = field(default_factory=list)
    name: str = "data"
    feature_names: list[str] | None = None
    columns: tuple[Any, ...] | None = None
    kind: str | None = None
    tokens: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        kind = self.kind if self.kind is not None else ("image" if np.ndim(self.X) == 4 else "tabular")
        if kind not in INPUT_KINDS:
            raise DataError(f"a Dataset's kind must be one of {list(INPUT_KINDS)}, but got {kind!r}."
                            f"{did_you_mean(str(kind), INPUT_KINDS)}")
        object.__setattr__(self, "kind", kind)

    @property
    def input_kind(self) -> str:
        """The input kind (:attr:`kind`, always set)."""
        return str(self.kind)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.X.shape[1:])

    @property
    def n_outputs(self) -> int:
        return len(self.classes) if self.task == CLASSIFICATION else 1

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def subset(self, index: np.ndarray) -> Dataset:
        return replace(self, X=self.X[index], y=self.y[index])

    def labels(self, indices: np.ndarray) -> list[Any]:
        """Map class indices back to the original labels."""
        return [self.classes[int(i)] for i in indices]


def _check_finite(X: np.ndarray, y: np.ndarray, source: str, missing_ok: bool = False) -> None:
    if missing_ok and X.dtype.kind == "f" and np.isinf(X).any():
        bad = int(np.isinf(X).any(axis=1).sum())
        raise DataError(f"{source}: {bad} sample(s) have infinite features; drop or clip them before the search.")
    if not missing_ok and X.dtype.kind == "f" and not np.isfinite(X).all():
        bad = int((~np.isfinite(X.reshape(len(X), -1))).any(axis=1).sum())
        raise DataError(
            f"{source}: {bad} sample(s) have NaN or infinite features; drop or impute them before the search."
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(f"{source}: the target has NaN or infinite values; drop those rows before the search.")


def _to_python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def from_arrays(
    X: Any, y: Any, task: str | None = None, name: str = "data", feature_names: list[str] | None = None,
    classes: list[Any] | None = None, columns: tuple[Any, ...] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from array-likes, inferring the task when ``task`` is None.

    ``X`` of shape ``(n, d)`` is tabular, ``(n, H, W)`` a set of one-channel images, ``(n, C, H, W)`` images.
    A ``uint8`` numpy array of images is kept as ``uint8`` (8-bit pixels, 4x less memory); everything else,
    tabular ``uint8`` included, becomes ``float32``. Class labels of any type (strings included) are kept and
    mapped to indices ``0..k-1``.

    Raises:
        DataError: shapes do not match, features are not numeric, values are NaN or too few samples.
    """
    try:
        if isinstance(X, np.ndarray) and X.dtype == np.uint8 and X.ndim in (3, 4):
            X = X if X.flags.writeable else X.copy()  # 8-bit pixels stay uint8; torch wants them writable
        else:
            X = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: features must be numeric ({exc}); encode text columns as numbers first.") from None
    y = np.asarray(y)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim == 3:
        X = X[:, None, :, :]
    if X.ndim not in (2, 4):
        raise DataError(
            f"{name}: X must have shape (n, features), (n, H, W) or (n, C, H, W), but got {X.shape}; reshape it."
        )
    if y.ndim != 1:
        y = y.reshape(len(y), -1)
        if y.shape[1] != 1:
            raise DataError(f"{name}: y must be one target per sample, but got shape {y.shape}.")
        y = y[:, 0]
    if len(X) != len(y):
        raise DataError(f"{name}: X has {len(X)} samples but y has {len(y)}; they must have the same length.")
    if len(X) < 4:
        raise DataError(f"{name}: at least 4 samples are needed, but got {len(X)}.")
    if task is None:
        task = infer_task(y)
    if task not in TASKS:
        raise DataError(f"task must be one of {TASKS}, but got {task!r}.{did_you_mean(task, TASKS)}")
    if task == CLASSIFICATION:
        if classes is None:
            if y.dtype.kind == "f" and np.isnan(y).any():
                raise DataError(f"{name}: the target has missing values; drop those rows before the search.")
            uniques, y_idx = np.unique(y, return_inverse=True)
            classes = [_to_python(c) for c in uniques]
        else:
            y_idx = np.asarray(y, dtype=np.int64)
        if len(classes) < 2:
            raise DataError(
                f"{name}: classification needs at least 2 classes, but the target has only {classes!r}."
            )
        y_out = np.asarray(y_idx, dtype=np.int64)
    else:
        try:
            y_out = y.astype(np.float32)
        except (TypeError, ValueError):
            raise DataError(
                f"{name}: a regression target must be numeric; use --task classification for labels."
            ) from None
        classes = []
    _check_finite(X, y_out, name, missing_ok=columns is not None)
    return Dataset(X=X, y=y_out, task=task, classes=list(classes), name=name, feature_names=feature_names,
                   columns=columns)


def infer_task(y: np.ndarray) -> str:
    """Classification for non-numeric, boolean or integer targets with few distinct values; else regression."""
    if y.dtype.kind in "OUSb":
        return CLASSIFICATION
    values = y[~np.isnan(y)] if y.dtype.kind == "f" else y
    integral = np.all(np.mod(values, 1) == 0)
    n_unique = len(np.unique(values))
    if integral and n_unique <= max(2, min(50, len(y) // 5)):
        return CLASSIFICATION
    return REGRESSION


def from_sequences(sequences: Any, y: Any, task: str | None = None, name: str = "sequences",
                   max_length: int | None = None) -> Dataset:
    """A sequence :class:`Dataset` from ``n`` arrays of shape ``(length_i, channels)`` (or ``(length_i,)``), of any
    lengths: padded to ``max_length`` (default: the longest) with the mask channel (:mod:`autoarch.sequences`)."""
    from autoarch.sequences import pad_sequences

    X = pad_sequences(list(sequences), max_length, name)
    return from_padded_sequences(X, y, task, name)


def from_padded_sequences(X: np.ndarray, y: Any, task: str | None = None, name: str = "sequences") -> Dataset:
    """A sequence :class:`Dataset` from an array already in the ``(n, T, channels + 1)`` form with its mask."""
    data = from_arrays(X.reshape(len(X), -1), y, task=task, name=name)
    return replace(data, X=X, kind="sequence")


def from_texts(texts: Any, y: Any, task: str | None = None, name: str = "texts",
               max_length: int | None = None, column: str = "text") -> Dataset:
    """A text :class:`Dataset`: the texts as token ids into their token table (:func:`autoarch.text.encode_texts`,
    ``max_length`` tokens at most, default :data:`autoarch.text.DEFAULT_MAX_LENGTH`); ``column`` (the CSV column
    of the texts) is its one feature name, which ``autoarch predict`` looks for in a CSV file."""
    from autoarch.text import DEFAULT_MAX_LENGTH, encode_texts

    texts = list(texts)
    if len(texts) != len(y):
        raise DataError(f"{name}: {len(texts)} texts but {len(y)} targets.")
    ids, table = encode_texts(texts, max_length or DEFAULT_MAX_LENGTH, source=name)
    data = from_arrays(ids, y, task=task, name=name)
    return replace(data, kind="text", tokens=table, feature_names=[str(column)])


def frame_dataset(frame: Any, y: Any = None, target: str | None = None, task: str | None = None,
                  name: str = "DataFrame") -> Dataset:
    """A :class:`Dataset` of a pandas DataFrame given to the Python API: its ``target`` column as the targets, or
    ``y`` beside it; text columns and missing cells as :func:`from_frame` reads them."""
    if target is not None and y is not None:
        raise DataError("give the targets either as y or as a target column, not both.")
    if target is not None:
        if target not in frame.columns:
            cols = [str(c) for c in frame.columns]
            raise DataError(f"{name}: no column {target!r} for target; the columns are {cols}."
                            f"{did_you_mean(target, cols)}")
        y = frame[target]
        frame = frame.drop(columns=[target])
    if y is None:
        raise DataError(f"{name}: the targets are missing; pass y or target=COLUMN.")
    import pandas as pd

    if pd.isna(pd.Series(np.asarray(y, dtype=object))).any():  # None, NaN and pandas' NA alike
        raise DataError(f"{name}: the target has missing values; drop those rows.")
    y = np.asarray(y)
    return from_frame(frame, y, task=task, name=name)


def from_frame(features: Any, y: Any, task: str | None = None, name: str = "data") -> Dataset:
    """A :class:`Dataset` of a pandas DataFrame's feature columns: numbers as they are; text columns
    (categories) and missing cells as codes that the model encodes (:mod:`autoarch.tables`), logged in one line."""
    import pandas as pd

    from autoarch.tables import TableEncoder, encode_frame

    wide = [str(c) for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])
            and features[c].nunique(dropna=True) > 0.5 * len(features) and len(features) >= 20]
    if wide:
        raise DataError(f"{name}: columns {wide[:5]} have a different text in most rows (an identifier or free "
                        "text, not a category); drop them, or for a column of texts give --text-column NAME.")
    codes, columns = encode_frame(features)
    if columns is not None:
        logger.info("%s: %s", name, TableEncoder(columns).describe())
    return from_arrays(codes, y, task=task, name=name, feature_names=[str(c) for c in features.columns],
                       columns=columns)


def split_index(data: Dataset, train_size: float | int | None = None, test_size: float | int | None = None,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(first, second)`` sample indices of a random split of ``data``, stratified for classification
    (scikit-learn's ``train_test_split`` of ``0..n-1``)."""
    from sklearn.model_selection import train_test_split as sk_split

    stratify = data.y if data.task == CLASSIFICATION else None
    index = np.arange(len(data))
    return sk_split(index, train_size=train_size, test_size=test_size, random_state=seed, stratify=stratify)


def train_test_split(data: Dataset, test_size: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Set aside a (stratified, for classification) held-out test split that the search never sees.

    Raises:
        DataError: a class has fewer than 2 samples, so it cannot be in both splits.
    """
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test_size must be in (0, 1), but got {test_size}.")
    if data.task == CLASSIFICATION:
        counts = np.bincount(data.y, minlength=len(data.classes))
        rare = [data.classes[i] for i in np.flatnonzero(counts < 2)]
        if rare:
            raise DataError(f"{data.name}: class(es) {rare} have fewer than 2 samples; a stratified held-out "
                            "split needs at least 2 per class. Add samples or drop those classes.")
        n_test = int(np.ceil(test_size * len(data)))
        if n_test < len(data.classes):
            test_size = len(data.classes) / len(data)
    train_idx, test_idx = split_index(data, test_size=test_size, seed=seed)
    return data.subset(np.sort(train_idx)), data.subset(np.sort(test_idx))
