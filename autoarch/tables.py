"""Tables as users have them: text categories and missing values, encoded inside the model.

A CSV (or a pandas DataFrame) with text columns and blank cells becomes a float32 array of *codes*: a numeric
column keeps its values with NaN where a cell is missing; a categorical column holds each row's level index
(0..k-1, as a float) with NaN where the cell is missing. The schema (:class:`Column`: the levels, whether a column
had missing values) is decided once from the whole table, as ``pandas.get_dummies`` or scikit-learn's
``OneHotEncoder(categories=...)`` would; no statistic of the target or of the values is taken from it.

:class:`TableEncoder` is the first module of the model: it imputes a numeric column's missing cells with the
median of the rows it was fitted on (:meth:`TableEncoder.fit`, called by ``build_model`` on each CV fold's training
part, then on the whole training split for the winner), adds a 0/1 missing indicator for every column that had
missing values, and one-hot encodes the categorical codes. Being part of the network, it is exported into the same
ONNX graph (``IsNaN``, ``Where``, ``Equal``), so the shipped model takes the codes and needs nothing else;
``autoarch predict`` maps the CSV's strings to codes with the levels in the model's metadata (a level it has never
seen counts as missing, or as the column's ``other`` level when the table had more than :data:`MAX_LEVELS`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from autoarch.columns import MAX_LEVELS, OTHER, Column, columns_from_json, encode_cells

__all__ = ["MAX_LEVELS", "OTHER", "Column", "TableEncoder", "columns_from_json", "encode_cells", "encode_frame",
           "table_schema"]

def _is_text(series: Any) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


def encode_frame(features: Any) -> tuple[np.ndarray, tuple[Column, ...] | None]:
    """The codes of a DataFrame's feature columns and their schema; the schema is None for a table of numbers
    without a missing cell (nothing to encode: the features are used as they are)."""
    import pandas as pd

    columns: list[Column] = []
    codes = np.empty(features.shape, dtype=np.float32)
    for j, name in enumerate(features.columns):
        series = features[name]
        missing = bool(series.isna().any())
        if not _is_text(series):
            codes[:, j] = series.to_numpy(dtype=np.float32, na_value=np.nan)
            columns.append(Column(str(name), missing=missing))
            continue
        text = series.astype("string").str.strip()
        text = text.mask(text == "")
        missing = bool(text.isna().any())
        counts = text.value_counts(dropna=True)
        ranked = sorted(counts.index, key=lambda level: (-int(counts[level]), str(level)))
        other = len(ranked) > MAX_LEVELS
        levels = tuple(sorted(str(v) for v in (ranked[:MAX_LEVELS - 1] if other else ranked)))
        levels = levels + (OTHER,) if other else levels
        column = Column(str(name), levels=levels, other=other, missing=missing)
        codes[:, j] = encode_cells(column, [None if pd.isna(v) else str(v) for v in text])
        columns.append(column)
    if not any(c.categorical or c.missing for c in columns):
        return codes, None
    return codes, tuple(columns)


class TableEncoder(nn.Module):
    """Codes → the network's features: numeric columns with missing cells imputed by the fitted medians, one-hot
    levels of the categorical columns, then a 0/1 missing indicator per column that had missing values.

    Its buffers (the medians) are fitted by :meth:`fit` on the training rows only, so that a CV fold never sees
    its validation rows' values; they are saved with the model's weights."""

    def __init__(self, columns: Sequence[Column]) -> None:
        super().__init__()
        self.columns = tuple(columns)
        numeric = [j for j, c in enumerate(self.columns) if not c.categorical]
        slots = [(j, k) for j, c in enumerate(self.columns) if c.categorical for k in range(len(c.levels or ()))]
        flagged = [j for j, c in enumerate(self.columns) if c.missing]
        self.register_buffer("numeric_index", torch.tensor(numeric, dtype=torch.long))
        self.register_buffer("medians", torch.zeros(len(numeric)))
        self.register_buffer("slot_index", torch.tensor([j for j, _ in slots], dtype=torch.long))
        self.register_buffer("slot_code", torch.tensor([float(k) for _, k in slots]))
        self.register_buffer("missing_index", torch.tensor(flagged, dtype=torch.long))
        self.width = len(numeric) + len(slots) + len(flagged)

    def fit(self, codes: np.ndarray) -> TableEncoder:
        """Fit the medians of the numeric columns on ``codes`` (the training rows); 0 for an all-missing column."""
        values = np.asarray(codes, dtype=np.float32)[:, self.numeric_index.numpy()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: nanmedian warns
            medians = np.nanmedian(values, axis=0) if len(values) else np.zeros(values.shape[1])
        self.medians.copy_(torch.as_tensor(np.nan_to_num(medians, nan=0.0), dtype=torch.float32))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.numeric_index.numel():
            numeric = x.index_select(1, self.numeric_index)
            parts.append(torch.where(torch.isnan(numeric), self.medians.to(x.dtype), numeric))
        if self.slot_index.numel():
            parts.append((x.index_select(1, self.slot_index) == self.slot_code.to(x.dtype)).to(x.dtype))
        if self.missing_index.numel():
            parts.append(torch.isnan(x.index_select(1, self.missing_index)).to(x.dtype))
        return torch.cat(parts, dim=1)

    @torch.no_grad()
    def transform(self, codes: np.ndarray, batch: int = 65536) -> np.ndarray:
        """:meth:`forward` on a numpy array of codes (the features the standardisation is fitted on)."""
        out = [self(torch.as_tensor(codes[i:i + batch], dtype=torch.float32)).numpy()
               for i in range(0, len(codes), batch)]
        return np.concatenate(out) if out else np.zeros((0, self.width), dtype=np.float32)

    def describe(self) -> str:
        """One line for the log and the report."""
        cat = [c for c in self.columns if c.categorical]
        miss = [c for c in self.columns if c.missing]
        parts = []
        if cat:
            parts.append(f"{len(cat)} categorical column(s) one-hot encoded "
                         f"({sum(len(c.levels or ()) for c in cat)} levels: "
                         + ", ".join(f"{c.name} {len(c.levels or ())}" for c in cat[:6])
                         + (" ..." if len(cat) > 6 else "") + ")")
        if miss:
            parts.append(f"{len(miss)} column(s) with missing cells ({', '.join(c.name for c in miss[:6])}"
                         f"{' ...' if len(miss) > 6 else ''}): numbers imputed with the training rows' median, "
                         "plus a missing indicator each")
        return "; ".join(parts) + f"; {len(self.columns)} columns -> {self.width} features"


def table_schema(dataset: Any) -> dict[str, Any]:
    """``architecture.json``'s and the ONNX metadata's entries for a table with categories or missing cells:
    ``columns`` (the schema) and ``encoded_width`` (the network's input width); empty for any other data."""
    columns = getattr(dataset, "columns", None)
    if columns is None:
        return {}
    return {"columns": [c.to_json() for c in columns], "encoded_width": TableEncoder(columns).width}
