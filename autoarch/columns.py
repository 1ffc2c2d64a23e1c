"""The schema of a table's raw columns and the codes of categorical cells: numpy only, so that ``autoarch.predict``
(onnxruntime + numpy) and ``autoarch.tables`` (the torch encoder) share one definition of how a cell becomes a code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["MAX_LEVELS", "OTHER", "Column", "columns_from_json", "encode_cells"]

MAX_LEVELS = 32
"""A categorical column keeps at most this many one-hot levels: its most frequent ``MAX_LEVELS - 1`` and
:data:`OTHER` for the rest (an embedding for many levels is not built)."""
OTHER = "(other)"


@dataclass(frozen=True)
class Column:
    """One raw column of a table.

    Attributes:
        name: the column's header.
        levels: the categorical levels (strings) in code order, None for a numeric column.
        other: whether the last level is :data:`OTHER`, which every level not in ``levels`` maps to.
        missing: whether the column had missing cells (the encoder adds a missing indicator for it).
    """

    name: str
    levels: tuple[str, ...] | None = None
    other: bool = False
    missing: bool = False

    @property
    def categorical(self) -> bool:
        return self.levels is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["levels"] = None if self.levels is None else list(self.levels)
        return out


def columns_from_json(items: Sequence[dict[str, Any]] | None) -> tuple[Column, ...] | None:
    """The schema written by :meth:`Column.to_json` (in ``architecture.json`` and the ONNX metadata)."""
    if not items:
        return None
    return tuple(Column(name=str(c["name"]), levels=None if c.get("levels") is None else tuple(map(str, c["levels"])),
                        other=bool(c.get("other", False)), missing=bool(c.get("missing", False))) for c in items)



def encode_cells(column: Column, cells: Sequence[str | None]) -> np.ndarray:
    """The codes of one categorical column's cells (stripped strings, None for missing): a level's index, the
    :data:`OTHER` level's for an unseen level when the column has one, NaN for a missing or unseen cell."""
    assert column.levels is not None
    index = {level: i for i, level in enumerate(column.levels)}
    fallback = float(len(column.levels) - 1) if column.other else np.nan
    out = np.empty(len(cells), dtype=np.float32)
    for i, cell in enumerate(cells):
        out[i] = np.nan if cell is None else index.get(cell, fallback)
    return out
