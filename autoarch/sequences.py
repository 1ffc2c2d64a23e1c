"""Numeric sequences: the UCR/UEA ``.ts`` format, ragged and padded arrays, and the built-in sequence data sets.

A data set of sequences is stored as one float32 array ``X`` of shape ``(n, T, F + 1)``: each sample's ``F``
channels over ``T`` steps, right-padded with zeros after its own length, and one more channel, the last, that is
1 on a valid step and 0 on padding (:data:`MASK`). So a data set of variable-length sequences is still one array
(k-fold indexing, storage, the ONNX graph's one input), and the network reads the lengths from the array itself:
``autoarch.search_spaces.rnn`` masks its pooling and reads the backward direction within each length, so padding
never changes a prediction.

numpy only: ``autoarch.predict`` reads ``.ts`` files and ragged NPZ files with it, without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autoarch.exceptions import DataError

__all__ = ["MASK", "SEQUENCE_BUILTINS", "from_lengths", "pad_sequences", "pad_to", "read_ts", "sequence_lengths",
           "sequence_builtin_files"]

MASK = "last channel"
"""Where a sequence array keeps its validity mask (1 = a step of the sequence, 0 = padding)."""

SEQUENCE_BUILTINS = {
    "japanese-vowels": ("JapaneseVowels", "JapaneseVowels: 270 training / 370 official test utterances, 12 "
                        "channels, lengths 7-29, 9 speakers (pip install --no-deps sktime==1.2.0)"),
    "osuleaf": ("OSULeaf", "OSULeaf: 200 training / 242 official test leaf outlines, 1 channel x 427 steps, 6 "
                "classes (pip install --no-deps sktime==1.2.0)"),
}
"""Built-in name -> (the UCR/UEA problem's name in sktime's data folder, a description). The files are read from
the installed ``sktime`` package's data folder; sktime itself is never imported (its dependencies are not
needed)."""


def pad_sequences(sequences: Sequence[np.ndarray], max_length: int | None = None, source: str = "sequences"
                  ) -> np.ndarray:
    """``(n, T, F + 1)`` float32 from ``n`` arrays of shape ``(T_i, F)`` (or ``(T_i,)`` for one channel): each
    right-padded with zeros to ``T = max_length`` (default: the longest), plus the mask channel.

    Raises:
        DataError: no sequences, a sequence of length 0, one longer than ``max_length``, mixed channel counts, or
            a value that is not finite.
    """
    if len(sequences) == 0:
        raise DataError(f"{source}: no sequences.")
    arrays = []
    for i, seq in enumerate(sequences):
        a = np.asarray(seq, dtype=np.float32)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2:
            raise DataError(f"{source}: sequence {i} has shape {a.shape}; each must be (length, channels).")
        if a.shape[0] == 0:
            raise DataError(f"{source}: sequence {i} has length 0; drop it or give it at least one step.")
        if not np.isfinite(a).all():
            raise DataError(f"{source}: sequence {i} holds NaN or infinite values; fill or drop them first.")
        arrays.append(a)
    channels = {a.shape[1] for a in arrays}
    if len(channels) > 1:
        first = next(i for i, a in enumerate(arrays) if a.shape[1] != arrays[0].shape[1])
        raise DataError(f"{source}: sequences have different channel counts ({sorted(channels)}; sequence 0 has "
                        f"{arrays[0].shape[1]}, sequence {first} {arrays[first].shape[1]}); give every sequence "
                        "the same channels.")
    longest = max(a.shape[0] for a in arrays)
    length = longest if max_length is None else int(max_length)
    if longest > length:
        raise DataError(f"{source}: a sequence has {longest} steps, more than the {length} the model takes.")
    X = np.zeros((len(arrays), length, arrays[0].shape[1] + 1), dtype=np.float32)
    for i, a in enumerate(arrays):
        X[i, :len(a), :-1] = a
        X[i, :len(a), -1] = 1.0
    return X


def from_lengths(X: np.ndarray, lengths: Any, source: str = "data") -> np.ndarray:
    """The padded array with its mask channel from ``X`` and ``lengths``: ``X`` either padded ``(n, T, F)`` (each
    sample's first ``lengths[i]`` steps are its sequence) or ragged ``(sum(lengths), F)`` (the sequences one after
    another, the object-free ragged form)."""
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.dtype.kind not in "iu":
        raise DataError(f"{source}: 'lengths' must be a 1-D array of integers, but has shape {lengths.shape} and "
                        f"dtype {lengths.dtype}.")
    if (lengths <= 0).any():
        raise DataError(f"{source}: sequence {int(np.flatnonzero(lengths <= 0)[0])} has length "
                        f"{int(lengths[lengths <= 0][0])}; every sequence needs at least one step.")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise DataError(f"{source}: 'X' is not numeric (dtype {X.dtype}).")
    if X.ndim == 3:
        if len(X) != len(lengths):
            raise DataError(f"{source}: X holds {len(X)} sequences but 'lengths' has {len(lengths)} entries.")
        if lengths.max() > X.shape[1]:
            raise DataError(f"{source}: a length of {int(lengths.max())} exceeds X's {X.shape[1]} steps.")
        return pad_sequences([X[i, :n] for i, n in enumerate(lengths)], X.shape[1], source)
    if X.ndim in (1, 2):
        if int(lengths.sum()) != len(X):
            raise DataError(f"{source}: ragged X has {len(X)} steps in all, but 'lengths' sums to "
                            f"{int(lengths.sum())}.")
        ends = np.cumsum(lengths)
        return pad_sequences(np.split(X, ends[:-1]), None, source)
    raise DataError(f"{source}: with 'lengths', X must be (n, T, channels) or ragged (steps, channels), but has "
                    f"shape {X.shape}.")


def sequence_lengths(X: np.ndarray) -> np.ndarray:
    """Each sample's length, read from the mask channel."""
    return (X[:, :, -1] > 0.5).sum(axis=1)


def pad_to(X: np.ndarray, length: int) -> np.ndarray:
    """``X`` (with its mask channel) padded with more zero steps to ``length`` steps."""
    if X.shape[1] >= length:
        return X
    return np.pad(X, ((0, 0), (0, length - X.shape[1]), (0, 0)))


def _ts_value(text: str, path: Path, line: int) -> float:
    text = text.strip()
    if text == "?" or text.lower() == "nan":
        raise DataError(f"{path}, line {line}: a missing value ('{text}'); fill or drop it first.")
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{path}, line {line}: {text[:30]!r} is not a number.") from None
    if not np.isfinite(value):
        raise DataError(f"{path}, line {line}: an infinite value.")
    return value


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str], str]:
    """The sequences (each ``(length, channels)``), their labels (strings: class labels or regression targets)
    and the task of a UCR/UEA ``.ts`` file.

    Reads the ``@`` header (``@classLabel true ...`` or ``@targetLabel true``; ``@timeStamps true`` is refused)
    and one sample per data line: channels separated by ``:``, values by ``,``, the label last; a file with
    neither label line set to true (``@classLabel false``, data to predict) has no label on its lines, and its
    labels are empty strings.

    Raises:
        DataError: no ``@data`` line, timestamps, a malformed line (named by its line number), a missing value,
            a case whose channels differ in length, or cases with different channel counts.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it as a .ts file ({exc}).") from None
    header: dict[str, str] = {}
    sequences: list[np.ndarray] = []
    labels: list[str] = []
    in_data = False
    channels = None
    labelled: bool | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DataError(f"{path}, line {number}: expected an '@' header line or '@data' before the data; "
                                "is this a UCR/UEA .ts file?")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
            else:
                header[key] = value.strip()
            continue
        if header.get("timestamps", "false").lower() == "true":
            raise DataError(f"{path}: '@timeStamps true' files are not supported; give values without timestamps.")
        parts = line.split(":")
        if labelled is None:
            labelled = any(header.get(k, "false").lower().startswith("true") for k in ("classlabel", "targetlabel"))
        if labelled and len(parts) < 2:
            raise DataError(f"{path}, line {number}: expected channels separated by ':' and a label last, but "
                            f"found no ':'.")
        dims, label = (parts[:-1], parts[-1]) if labelled else (parts, "")
        values = [[_ts_value(v, path, number) for v in d.split(",")] if d.strip() else [] for d in dims]
        lengths = {len(v) for v in values}
        if 0 in lengths:
            raise DataError(f"{path}, line {number}: a channel without values (length 0).")
        if len(lengths) > 1:
            raise DataError(f"{path}, line {number}: its channels have different lengths ({sorted(lengths)}); "
                            "every channel of a case needs the same number of steps.")
        if channels is not None and len(dims) != channels:
            raise DataError(f"{path}, line {number}: {len(dims)} channels, but the lines before have {channels}.")
        channels = len(dims)
        label = label.strip()
        if labelled and not label:
            raise DataError(f"{path}, line {number}: no label after the last ':'.")
        sequences.append(np.asarray(values, dtype=np.float32).T)
        labels.append(label)
    if not in_data:
        raise DataError(f"{path}: no '@data' line; is this a UCR/UEA .ts file?")
    if not sequences:
        raise DataError(f"{path}: no data lines after '@data'.")
    declared = header.get("dimensions")
    if declared and declared.isdigit() and int(declared) != channels:
        raise DataError(f"{path}: '@dimensions {declared}' but the data lines have {channels} channels.")
    regression = header.get("targetlabel", "false").lower().startswith("true")
    return sequences, labels, "regression" if regression else "classification"


def sequence_builtin_files(name: str) -> tuple[Path, Path]:
    """The ``_TRAIN.ts`` and ``_TEST.ts`` files of built-in ``name`` in the installed sktime package (found, not
    imported).

    Raises:
        DataError: the package (its data folder) is not installed.
    """
    from autoarch.text import _package_file

    problem, _ = SEQUENCE_BUILTINS[name]
    install = "pip install --no-deps sktime==1.2.0"
    return tuple(_package_file("sktime", f"datasets/data/{problem}/{problem}_{part}.ts", install)
                 for part in ("TRAIN", "TEST"))  # type: ignore[return-value]
