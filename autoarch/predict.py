"""Predictions from an exported ONNX model with onnxruntime and numpy alone (no torch).

The model's metadata (written by autoarch's export) says everything needed: the input shape, the feature
names, the class labels and whether the output is logits or a value. The standardisation is inside the graph,
so raw features go in. The input files (CSV, NPZ, texts, sequences, images) are read by
:mod:`autoarch.predict_inputs`.

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
from autoarch.columns import Column, columns_from_json
from autoarch.exceptions import DataError
from autoarch.predict_inputs import load_inputs, read_inputs
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
        X = self.shape_input(X)
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

    def shape_input(self, X: np.ndarray) -> np.ndarray:
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
    X, names = load_inputs(Path(inputs), predictor)
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
