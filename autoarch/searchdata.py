"""The data of a search: what :func:`autoarch.search` was given, resolved to a :class:`~autoarch.data.Dataset`
(:func:`resolve_data`), checked against the validation folds (:func:`check_folds`), and how a worker on another
machine reloads it (:func:`data_spec`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from autoarch.data import Dataset, frame_dataset, from_arrays, train_test_split
from autoarch.exceptions import ConfigError, DataError
from autoarch.loaders import BUILTIN_DATASETS, load_dataset

__all__ = ["resolve_data", "check_folds", "data_spec"]


def resolve_data(data: Any, y: Any, target: str | None, task: str | None, max_samples: int | None,
                  seed: int, image_size: int | None = None, on_bad_image: str = "fail",
                  text_column: str | None = None, max_length: int | None = None) -> Dataset:
    """What :func:`autoarch.search` was given as a :class:`Dataset`: a Dataset, a built-in name or file, a
    DataFrame (a text column, or a table whose text categories and missing cells the model encodes), or arrays;
    at most ``max_samples`` of it (stratified, seeded)."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        if y is not None:
            raise ConfigError("give either a data set name / file, or arrays X and y, not both.")
        return load_dataset(str(data), target=target, task=task, max_samples=max_samples, seed=seed,
                            image_size=image_size, on_bad_image=on_bad_image, text_column=text_column,
                            max_length=max_length)
    if isinstance(data, pd.DataFrame) and text_column is not None:
        from autoarch.data import from_texts

        if target is None or text_column not in data.columns or target not in data.columns:
            raise ConfigError(f"search(DataFrame, text_column={text_column!r}) needs target=COLUMN, and both "
                              f"columns in the frame; its columns are {[str(c) for c in data.columns]}.")
        dataset = from_texts(data[text_column].tolist(), data[target].to_numpy(), task=task,
                             name="DataFrame", max_length=max_length, column=text_column)
    elif isinstance(data, pd.DataFrame):  # text categories and missing cells are encoded (autoarch.tables)
        dataset = frame_dataset(data, y, target, task)
    elif y is None:
        raise ConfigError("search(X, y): the targets y are missing.")
    else:
        dataset = from_arrays(data, y, task=task)
    if max_samples is not None and len(dataset) > max_samples:
        dataset, _ = train_test_split(dataset, test_size=1 - max_samples / len(dataset), seed=seed)
    return dataset


def check_folds(train: Dataset, cv: int | float) -> None:
    """A DataError, before any training, when the training split is too small for ``cv`` or a class has fewer
    samples than folds."""
    if isinstance(cv, float):
        cv = 2  # a stratified holdout split needs two samples of each class
    if len(train) < 2 * cv:
        raise DataError(f"the training split has {len(train)} samples, too few for --cv {cv}; lower --cv or add data.")
    if train.task != "classification":
        return
    counts = np.bincount(train.y, minlength=len(train.classes))
    rare = [(train.classes[i], int(c)) for i, c in enumerate(counts) if c < cv]
    if rare:
        label, count = rare[0]
        raise DataError(
            f"class {label!r} has {count} sample(s) in the training split, fewer than the {cv} folds of --cv "
            f"{cv}; use --cv {max(2, min(c for _, c in rare))} or add samples of that class."
        )


def data_spec(data: Any, target: str | None, task: str | None) -> dict[str, Any] | None:
    """How a remote worker reloads the data: a built-in name or an absolute file path (arrays cannot travel)."""
    if not isinstance(data, (str, os.PathLike)):
        return None
    source = str(data)
    if source not in BUILTIN_DATASETS:
        source = str(Path(source).resolve())
    return {"source": source, "target": target, "task": task}
