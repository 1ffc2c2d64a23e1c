"""The samples to predict, read from files into a model's input layout with numpy alone (no pandas, no torch):
CSV rows matched to the model's feature names, NPZ arrays, texts, numeric sequences, image files and folders.

The :class:`~autoarch.predict.Predictor` given to each reader says what the model takes (its metadata).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autoarch.columns import encode_cells
from autoarch.exceptions import DataError
from autoarch.formats import csv_delimiter, npz_array, open_npz

if TYPE_CHECKING:
    from autoarch.predict import Predictor

__all__ = ["read_inputs", "load_inputs"]


def read_inputs(path: str | os.PathLike[str], predictor: Predictor) -> np.ndarray:
    """Load the samples to predict from a ``.csv`` (one sample per row) or ``.npz`` (array ``X``, or its only
    array) file, or for an image model (input shape ``(C, H, W)``) from an image file or a folder of images, in
    the model's input layout.

    A CSV with a header is matched to the model's feature names (extra columns, e.g. an id or the target, are
    ignored); without known feature names its numeric columns are taken in order (pixels flattened row-major
    for images). A CSV without a header is read as numbers only. Image files are converted to the model's
    channels (L or RGB) and resized to its height and width (see :func:`autoarch.images.read_images`); a folder
    gives its image files anywhere below it, sorted by relative path (:func:`autoarch.images.list_images`).

    Raises:
        DataError: missing or unreadable file, missing columns, wrong number of features, non-numeric values,
            images for a tabular model.
    """
    return load_inputs(Path(path), predictor)[0]


def load_inputs(path: Path, predictor: Predictor) -> tuple[np.ndarray, list[str] | None]:
    """``(X, names)``: the samples of :func:`read_inputs` and, for image inputs, one name per sample (the path
    relative to the input folder, or the input file as given); None for .csv / .npz inputs."""
    if not path.exists():
        raise DataError(f"input {str(path)!r} does not exist; check the path.")
    suffix = path.suffix.lower()
    names = None
    if predictor.text and path.is_file() and suffix in (".csv", ".txt"):
        return predictor.encode_texts(_read_texts(path, predictor)), None
    if predictor.text:
        raise DataError(f"input {str(path)!r}: this text model reads a .csv file with a column of texts or a .txt "
                        "file of one text per line.")
    if predictor.sequence:
        return _read_sequences(path, predictor), None
    if path.is_file() and suffix == ".npz":
        X = _read_npz(path)
    elif path.is_file() and suffix == ".csv":
        X = _read_csv(path, predictor)
    else:
        X, names = _read_image_inputs(path, predictor)
    # A table model with an encoder (metadata 'columns') imputes missing cells itself; others take none.
    bad_value = np.isinf(X) if predictor.metadata.get("columns") else ~np.isfinite(X)
    if bad_value.any():
        bad = int(bad_value.reshape(len(X), -1).any(axis=1).sum())
        what = "infinite" if predictor.metadata.get("columns") else "NaN or infinite"
        raise DataError(f"{path}: {bad} sample(s) have {what} features; impute or drop them first.")
    return predictor.shape_input(X), names


def _read_sequences(path: Path, predictor: Predictor) -> np.ndarray:
    """The input of a numeric-sequence model: a UCR/UEA ``.ts`` file (labels, if any, ignored) or an NPZ file
    with ``X`` padded ``(n, steps, channels)`` or ragged ``(all steps, channels)`` and ``lengths``, or ``X``
    already with the mask channel ``(n, steps, channels + 1)``, or ``(n, steps, channels)`` of full-length
    sequences; each is padded to the model's steps (a longer one is read whole by an LSTM / GRU model, whose graph
    takes any length, and refused by a plain RNN's). NaN or infinite values are refused."""
    from autoarch.sequences import from_lengths, pad_to, read_ts

    steps, channels = predictor.input_shape[0], predictor.input_shape[1] - 1
    suffix = path.suffix.lower()
    if path.is_file() and suffix == ".ts":
        return predictor.encode_sequences(read_ts(path)[0])
    if not (path.is_file() and suffix == ".npz"):
        raise DataError(f"input {str(path)!r}: this sequence model reads a .ts file or an .npz file (X, and "
                        f"'lengths' for sequences of different lengths) of {channels} channel(s).")
    archive = open_npz(path, "numpy.savez(path, X=X, lengths=lengths)")
    if "X" not in archive:
        raise DataError(f"{path}: the .npz file needs an array 'X' (and 'lengths' for sequences of different "
                        f"lengths), but has {list(archive.keys())}.")
    X = npz_array(archive, "X", path)
    if "lengths" in archive:
        X = from_lengths(X, npz_array(archive, "lengths", path), str(path))
        return predictor.encode_sequences([x[:n, :-1] for x, n in zip(X, (X[:, :, -1] > 0.5).sum(1), strict=True)])
    if X.dtype.kind not in "biuf" or X.ndim != 3:
        raise DataError(f"{path}: 'X' must be a numeric (n, steps, channels) array, but has shape {X.shape} and "
                        f"dtype {X.dtype}; save sequences of different lengths with 'lengths'.")
    if X.shape[2] == channels + 1:  # the model's own form, mask included: padded further if shorter
        if not np.isfinite(X).all():
            raise DataError(f"{path}: 'X' holds NaN or infinite values; fill or drop them first.")
        if X.shape[1] > steps and not predictor.dynamic_steps:
            raise DataError(f"{path}: sequences of {X.shape[1]} steps, but the model takes at most {steps}.")
        return predictor.shape_input(pad_to(X.astype(np.float32), steps))
    return predictor.encode_sequences(list(X))


def _read_image_inputs(path: Path, predictor: Predictor) -> tuple[np.ndarray, list[str]]:
    """An image file or a folder of images for an image model; a clear DataError for anything else."""
    is_image_model = len(predictor.input_shape) == 3
    what = "a folder" if path.is_dir() else f"suffix {path.suffix!r}"
    if not is_image_model:
        raise DataError(f"input {str(path)!r} must be a .csv or .npz file for this tabular model (it takes "
                        f"{predictor.n_features} features per row), but has {what}.")
    try:
        from autoarch.images import IMAGE_SUFFIXES, list_images, read_images
    except ImportError:
        raise DataError("reading image files needs Pillow; install it with 'pip install pillow', or give a .csv "
                        "or .npz file.") from None
    if path.is_file() and path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"input {str(path)!r} must be a .csv or .npz file, an image ({', '.join(IMAGE_SUFFIXES)}) "
                        f"or a folder of images, but has {what}.")
    files = list_images(path)
    names = [str(path)] if path.is_file() else [f.relative_to(path).as_posix() for f in files]
    return read_images(files, predictor.input_shape), names


def _read_texts(path: Path, predictor: Predictor) -> list[str]:
    """The texts of a .txt file (one per non-empty line) or of a CSV's text column: the column the model was
    trained on (its feature name), else ``text``, else a file's only column."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            if path.suffix.lower() == ".txt":
                texts = [line.rstrip("\r\n") for line in fh if line.strip()]
            else:
                rows = list(csv.reader(fh, delimiter=csv_delimiter(path)))
                header, body = (rows[0], rows[1:]) if rows else ([], [])
                wanted = [str((predictor.text or {}).get("column") or "text"), "text"]
                col = next((header.index(c) for c in wanted if c in header), 0 if len(header) == 1 else None)
                if col is None:
                    raise DataError(f"{path}: no text column {wanted[0]!r}; the columns are {header[:10]} (name the "
                                    f"column {wanted[0]!r}, or give a .txt file of one text per line).")
                texts = [row[col] if col < len(row) else "" for row in body]
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text; save the file as UTF-8.") from None
    if not texts:
        raise DataError(f"{path}: no texts to predict.")
    return texts


def _read_npz(path: Path) -> np.ndarray:
    archive = open_npz(path, "numpy.savez(path, X=X)")
    keys = list(archive.keys())
    if "X" in keys:
        key = "X"
    elif len(keys) == 1:
        key = keys[0]
    else:
        raise DataError(f"{path}: the .npz file needs an array 'X' (or exactly one array), but has {keys}.")
    X = npz_array(archive, key, path)
    if X.dtype.kind not in "biuf":  # strings, complex numbers, dates: never cast silently
        raise DataError(f"{path}: array {key!r} is not numeric (dtype {X.dtype}); save real numbers, e.g. "
                        f"X.astype('float32').")
    return np.asarray(X, dtype=np.float32)


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


NA_VALUES = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                       "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})
"""Cells read as missing (NaN), as pandas' ``read_csv`` reads them by default."""


def _dedupe(names: list[str]) -> list[str]:
    """Repeated header names made unique as pandas does: ``a``, ``a.1``, ``a.2``."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            while f"{name}.{seen[name]}" in seen:
                seen[name] += 1
            new = f"{name}.{seen[name]}"
            seen[new] = 0
            out.append(new)
        else:
            seen[name] = 0
            out.append(name)
    return out


def _cell(text: str) -> float:
    text = text.strip()
    return math.nan if text in NA_VALUES else float(text)


def _read_csv(path: Path, predictor: Predictor) -> np.ndarray:
    """The feature rows of a CSV file, with the standard library's csv module (no pandas, so that prediction
    runs with onnxruntime and numpy alone). Blank lines are skipped and missing cells read as NaN, as pandas
    would; a row with more cells than the header is an error."""
    sep = csv_delimiter(path)
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh, delimiter=sep) if row]
    except (csv.Error, UnicodeDecodeError) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataError(f"{path}: not a readable CSV file ({first_line}); check the delimiter and encoding.") \
            from None
    if not rows:
        raise DataError(f"{path}: the file is empty; give one sample per row.")
    first = rows[0]
    # A first row of numbers other than 0..n-1 (what pandas writes for unnamed columns) is a data row.
    headerless = all(_is_number(c) for c in first) and first != [str(i) for i in range(len(first))]
    columns = [str(i) for i in range(len(first))] if headerless else _dedupe(first)
    body = rows if headerless else rows[1:]
    width = len(columns)
    for line, row in enumerate(body, start=1 if headerless else 2):
        if len(row) > width:
            raise DataError(f"{path}: not a readable CSV file (Expected {width} fields in line {line}, saw "
                            f"{len(row)}); check the delimiter and encoding.")
    cells = [row + [""] * (width - len(row)) for row in body]
    names = predictor.feature_names
    if names and set(names) <= set(columns):
        keep = [columns.index(n) for n in names]
    elif names and any(n in columns for n in names):
        missing = [n for n in names if n not in columns]
        raise DataError(f"{path}: the model needs columns {missing[:5]}{' ...' if len(missing) > 5 else ''}, "
                        f"which the file lacks; its columns are {columns[:10]}.")
    else:
        keep = list(range(width))
    X = np.empty((len(cells), len(keep)), dtype=np.float32)
    non_numeric = []
    for j, col in enumerate(keep):
        column = predictor.columns.get(columns[col])
        if column is not None:  # a categorical column: its levels' codes, as the model was trained
            X[:, j] = encode_cells(column, [None if (t := row[col].strip()) in NA_VALUES else t for row in cells])
            continue
        try:
            X[:, j] = [_cell(row[col]) for row in cells]
        except ValueError:
            non_numeric.append(columns[col])
    if non_numeric:
        raise DataError(f"{path}: feature columns must be numeric, but {non_numeric[:5]} are not; encode or drop them.")
    if X.shape[1] != predictor.n_features:
        raise DataError(f"{path}: the model takes {predictor.n_features} features per row (input shape "
                        f"{list(predictor.input_shape)}), but the file has {X.shape[1]} columns.")
    return X
