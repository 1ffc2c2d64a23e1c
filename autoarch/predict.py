"""Predictions from an exported ONNX model with onnxruntime and numpy alone (no torch).

The model's metadata (written by autoarch's export) says everything needed: the input shape, the feature
names, the class labels and whether the output is logits or a value. The standardisation is inside the graph,
so raw features go in.

Example:
    >>> from autoarch.predict import Predictor
    >>> predictor = Predictor("runs/digits/model.int8.onnx")  # doctest: +SKIP
    >>> frame = predictor.predict_frame(X)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autoarch._compat import onnxruntime_errors
from autoarch.columns import Column, columns_from_json, encode_cells
from autoarch.exceptions import DataError
from autoarch.rundir import atomic_path, check_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Predictor", "read_inputs", "predict_file", "predict_csv"]

REQUIRED_KEYS = ("task", "classes", "input_shape")


class Predictor:
    """An onnxruntime session plus the model's self-description.

    Attributes:
        task: ``classification`` or ``regression``.
        classes: the original class labels (column ``i`` of the output is ``classes[i]``).
        input_shape: the shape of one sample.
        feature_names: tabular column names in input order, or None.
        metadata: every metadata entry, JSON values decoded.
        path: the model file.

    Raises:
        DataError: the file is missing, not an ONNX model, lacks autoarch's metadata, or is not the file the
            manifest of its run directory names (an interrupted write).
    """

    def __init__(self, path: str | os.PathLike[str], threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise DataError(f"model file {str(path)!r} does not exist; give the path of a model.onnx.")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Inside a run directory with a manifest, the model is read once, checked, and loaded from those bytes.
        checked = check_file(path)
        try:
            self.session = ort.InferenceSession(str(path) if checked is None else checked, sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise DataError(f"{path} is not a loadable ONNX model ({first}); give a model.onnx that autoarch "
                            "exported.") from None
        raw = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in REQUIRED_KEYS if k not in raw]
        if missing:
            raise DataError(f"{path} lacks autoarch's metadata {missing}; export it with autoarch (search or "
                            "compress) so that it describes its input and classes.")
        self.metadata: dict[str, Any] = {}
        for key, value in raw.items():
            try:
                self.metadata[key] = json.loads(value)
            except (json.JSONDecodeError, TypeError):
                self.metadata[key] = value
        self.path = path
        self.task: str = self.metadata["task"]
        self._check_metadata()
        self.classes: list[Any] = list(self.metadata["classes"] or [])
        self.input_shape: tuple[int, ...] = tuple(self.metadata["input_shape"])
        names = self.metadata.get("feature_names")
        self.feature_names: list[str] | None = [str(n) for n in names] if names else None
        self.output_kind: str = str(self.metadata.get("output", "logits" if self.task == "classification" else "value"))
        self.columns: dict[str, Column] = {c.name: c for c in columns_from_json(self.metadata.get("columns")) or ()
                                           if c.categorical}
        """A categorical column's name -> its :class:`autoarch.columns.Column` (levels in code order); a cell of
        another level reads as the column's ``(other)`` level when it has one, else as missing (NaN), as the model
        was trained (autoarch.tables)."""
        self.text: dict[str, Any] | None = self.metadata.get("text") or None
        """A text model's tokenizer: ``vocabulary`` and their ``ids``, ``max_length`` (autoarch.text)."""
        self.sequence: dict[str, Any] | None = (self.metadata.get("sequence") or None
                                                if len(self.input_shape) == 2 else None)
        """A numeric-sequence model's ``max_length`` and ``channels`` (autoarch.sequences)."""
        self._input = self.session.get_inputs()[0].name
        graph_in = list(self.session.get_inputs()[0].shape)
        self.dynamic_steps: bool = len(graph_in) >= 2 and not isinstance(graph_in[1], int)
        """Whether the graph takes sequences of any length (axis 1 symbolic: an LSTM / GRU model)."""
        self._check_graph()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """The model input of raw ``texts`` (a text model only): the same token rule and vocabulary it was
        trained with, as its metadata ``text`` records them."""
        from autoarch.text import ids_from_vocabulary

        if not self.text:
            raise DataError(f"{self.path}: not a text model; give numbers (a .csv or .npz file).")
        return ids_from_vocabulary(texts, self.text["vocabulary"], self.text["ids"], int(self.text["max_length"]))

    def predict_texts(self, texts: list[str]) -> tuple[list[Any], np.ndarray | None]:
        """:meth:`predict` on raw texts."""
        return self.predict(self.encode_texts(list(texts)))

    def encode_sequences(self, sequences: list[np.ndarray]) -> np.ndarray:
        """The model input of ``sequences`` (a numeric-sequence model only): each ``(length, channels)`` array
        right-padded to the model's steps (or to the longest, when the graph takes any length), with the mask
        channel (:func:`autoarch.sequences.pad_sequences`)."""
        from autoarch.sequences import pad_sequences

        if not self.sequence:
            raise DataError(f"{self.path}: not a sequence model; give the input it takes (a .csv or .npz file).")
        sequences = list(sequences)
        steps = self.input_shape[0]
        if self.dynamic_steps:  # the graph takes any length: longer sequences are read whole
            steps = max([steps] + [len(np.asarray(s)) for s in sequences])
        X = pad_sequences(sequences, steps, "input")
        if X.shape[2] != self.input_shape[1]:
            raise DataError(f"the model takes sequences of {self.input_shape[1] - 1} channel(s), but the input has "
                            f"{X.shape[2] - 1}.")
        return X

    def predict_sequences(self, sequences: list[np.ndarray]) -> tuple[list[Any], np.ndarray | None]:
        """:meth:`predict` on sequences of any lengths (a plain RNN model: up to its steps;
        :meth:`encode_sequences`)."""
        return self.predict(self.encode_sequences(sequences))

    def _bad(self, rule: str) -> DataError:
        return DataError(f"{self.path}: {rule}; the file was not written by autoarch or was edited, export it "
                         "again with autoarch (search or compress).")

    def _check_metadata(self) -> None:
        """The metadata's types, checked here: a value of the wrong type would otherwise fail deep in numpy."""
        meta = self.metadata
        if self.task not in ("classification", "regression"):
            raise self._bad(f"metadata 'task' must be 'classification' or 'regression', but is {self.task!r}")
        shape = meta["input_shape"]
        if not (isinstance(shape, list) and shape
                and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise self._bad(f"metadata 'input_shape' must be a list of positive integers, but is {shape!r}")
        if not isinstance(meta["classes"], list | None):
            raise self._bad(f"metadata 'classes' must be a list of labels, but is {meta['classes']!r}")
        if self.task == "classification" and len(meta["classes"] or []) < 2:
            raise self._bad(f"metadata 'classes' of a classifier must name at least 2 labels, but is "
                            f"{meta['classes']!r}")
        names = meta.get("feature_names")
        if names is not None and not (isinstance(names, list) and len(names) in (0, math.prod(shape))):
            raise self._bad(f"metadata 'feature_names' must be null or a list of {math.prod(shape)} names, but is "
                            f"{str(names)[:100]}")

    def _check_graph(self) -> None:
        """The metadata must describe the graph: its input shape (symbolic dimensions match anything) and, for a
        classifier, one label per output column."""
        graph_in = list(self.session.get_inputs()[0].shape)[1:]
        if len(graph_in) != len(self.input_shape) or any(
                isinstance(g, int) and g != s for g, s in zip(graph_in, self.input_shape, strict=True)):
            raise self._bad(f"metadata 'input_shape' {list(self.input_shape)} disagrees with the graph's input "
                            f"{graph_in}")
        graph_out = list(self.session.get_outputs()[0].shape)
        n_out = graph_out[-1] if graph_out else None
        if self.task == "classification" and isinstance(n_out, int) and n_out != len(self.classes):
            raise self._bad(f"metadata 'classes' names {len(self.classes)} labels, but the graph has {n_out} outputs")

    @property
    def n_features(self) -> int:
        return int(math.prod(self.input_shape))

    def run(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The raw model output (logits or values) for ``X`` of shape ``(n, *input_shape)`` or ``(n, features)``."""
        X = self._shape(X)
        if len(X) == 0:
            return np.zeros((0, max(1, len(self.classes))), dtype=np.float32)
        try:
            outs = [self.session.run(None, {self._input: X[i:i + batch_size]})[0]
                    for i in range(0, len(X), batch_size)]
        except onnxruntime_errors() as exc:  # a graph with symbolic dimensions the metadata did not describe
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise self._bad(f"onnxruntime rejects input of shape {list(X.shape[1:])} ({first})") from None
        out = np.concatenate(outs)
        if self.task == "classification" and (out.ndim != 2 or out.shape[1] != len(self.classes)):
            raise self._bad(f"metadata 'classes' names {len(self.classes)} labels, but the model returns "
                            f"{list(out.shape[1:])} values per sample")
        return out

    def _shape(self, X: np.ndarray) -> np.ndarray:
        """``X`` as ``(n, *input_shape)`` float32. Accepted: that shape, ``(n, features)`` (a flattened sample per
        row), one-channel images without their channel axis, and one sample as a 1-D array; nothing else is
        reshaped, so an array of another shape is refused rather than silently reinterpreted."""
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise DataError(f"the model takes real numbers, but the input's dtype is {X.dtype}; convert it "
                            f"(e.g. X.astype('float32')), with shape (n, {', '.join(map(str, self.input_shape))}).")
        X = X.astype(np.float32, copy=False)
        shape = self.input_shape
        if X.ndim >= 1 and X.shape[1:] == shape:
            return np.ascontiguousarray(X)
        if self.dynamic_steps and X.ndim == len(shape) + 1 and X.shape[2:] == shape[1:]:  # another length
            return np.ascontiguousarray(X)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        one_channel = len(shape) == 3 and shape[0] == 1 and X.shape[1:] == shape[1:]
        if not one_channel and (X.ndim != 2 or X.shape[1] != self.n_features):
            wanted = f"(n, {', '.join(map(str, shape))})" + (f" or (n, {self.n_features})" if len(shape) > 1 else "")
            raise DataError(f"the model takes {self.n_features} features per sample: input of shape {wanted}, "
                            f"but the input has shape {list(X.shape)}.")
        return np.ascontiguousarray(X.reshape(len(X), *shape))

    def predict(self, X: np.ndarray) -> tuple[list[Any], np.ndarray | None]:
        """``(predictions, probabilities)``: original class labels and softmax probabilities (classification), or
        values and None (regression)."""
        out = self.run(X)
        if self.task != "classification":
            return [float(v) for v in out.reshape(len(out), -1)[:, 0]], None
        if self.output_kind == "logits":
            shifted = out.astype(np.float64) - out.max(axis=1, keepdims=True)
            proba = np.exp(shifted)
            proba /= proba.sum(axis=1, keepdims=True)
        else:
            proba = out.astype(np.float64)
        index = proba.argmax(axis=1)
        return [self.classes[int(i)] for i in index], proba

    def predict_table(self, X: np.ndarray, proba: bool = True) -> dict[str, list[Any]]:
        """The predictions as columns, in order: ``prediction`` (class labels or values) and, for
        classification, ``proba_<label>`` per class. Needs no pandas."""
        labels, probabilities = self.predict(X)
        table: dict[str, list[Any]] = {"prediction": labels}
        if proba and probabilities is not None:
            for i, label in enumerate(self.classes):
                table[f"proba_{label}"] = probabilities[:, i].tolist()
        return table

    def predict_frame(self, X: np.ndarray, proba: bool = True) -> pd.DataFrame:
        """:meth:`predict_table` as a pandas DataFrame (pandas is imported here only)."""
        import pandas as pd

        return pd.DataFrame(self.predict_table(X, proba=proba))


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
    return _load_inputs(Path(path), predictor)[0]


def _load_inputs(path: Path, predictor: Predictor) -> tuple[np.ndarray, list[str] | None]:
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
    return predictor._shape(X), names


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
    from autoarch.data import npz_array, open_npz

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
        return predictor._shape(pad_to(X.astype(np.float32), steps))
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
    import csv

    from autoarch.data import csv_delimiter

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
    from autoarch.data import npz_array, open_npz

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
    import csv

    from autoarch.data import csv_delimiter

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


def _check_output(out: Path) -> None:
    """Refuse, before any work, an output path that cannot become a file: a directory, or a path below a file."""
    if out.is_dir():
        raise DataError(f"--output {str(out)!r} is a directory; give a file path, e.g. "
                        f"{str(out / 'predictions.csv')!r}.")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"--output {str(out)!r}: {str(parent)!r} is a file, not a directory; give a path in "
                                "a directory.")
            return


def _table(model: str | os.PathLike[str], inputs: str | os.PathLike[str], output: str | os.PathLike[str] | None,
           proba: bool, threads: int) -> dict[str, list[Any]]:
    if output is not None:
        _check_output(Path(output))
    predictor = Predictor(model, threads=threads)
    X, names = _load_inputs(Path(inputs), predictor)
    table = predictor.predict_table(X, proba=proba)
    return table if names is None else {"file": names, **table}


def _write_csv(table: dict[str, list[Any]], stream: Any) -> None:
    import csv

    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(table)
    writer.writerows(zip(*table.values(), strict=True))


def _save_csv(table: dict[str, list[Any]], output: str | os.PathLike[str]) -> None:
    with atomic_path(output) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        _write_csv(table, fh)


def predict_csv(model: str | os.PathLike[str], inputs: str | os.PathLike[str],
                output: str | os.PathLike[str] | None = None, proba: bool = True, threads: int = 1,
                stream: Any = None) -> int:
    """:func:`predict_file` without pandas: the predictions table is written as CSV to ``output`` (atomically)
    or, without one, to ``stream`` (a text file object). Returns the number of rows. This is what
    ``autoarch predict`` runs, so that it needs only onnxruntime and numpy (and Pillow for image files)."""
    table = _table(model, inputs, output, proba, threads)
    if output is not None:
        _save_csv(table, output)
    elif stream is not None:
        _write_csv(table, stream)
    return len(table["prediction"])


def predict_file(model: str | os.PathLike[str], inputs: str | os.PathLike[str],
                 output: str | os.PathLike[str] | None = None, proba: bool = True, threads: int = 1
                 ) -> pd.DataFrame:
    """Predict every sample of ``inputs`` with the ONNX ``model`` and write a CSV to ``output`` (when given):
    ``prediction`` with the original class labels, plus ``proba_<label>`` columns.

    ``inputs`` is a .csv / .npz file or, for an image model, an image file or a folder of images (see
    :func:`read_inputs`); for images the table starts with a column ``file``: the path relative to the folder,
    or the file as given. :func:`predict_csv` does the same without pandas.

    Returns:
        The predictions table (a pandas DataFrame).

    Raises:
        DataError: a bad model, input or output path (see :class:`Predictor` and :func:`read_inputs`).
    """
    import pandas as pd

    table = _table(model, inputs, output, proba, threads)
    if output is not None:
        _save_csv(table, output)
    return pd.DataFrame(table)
