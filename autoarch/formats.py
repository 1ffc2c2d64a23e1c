"""The file formats that both the training loaders (:mod:`autoarch.loaders`) and the prediction readers
(:mod:`autoarch.predict_inputs`) open: a CSV file's delimiter, and an ``.npz`` archive read without unpickling
(standard library and numpy only).
"""

from __future__ import annotations

import csv
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from autoarch.exceptions import DataError

__all__ = ["csv_delimiter", "open_npz", "npz_array"]

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
