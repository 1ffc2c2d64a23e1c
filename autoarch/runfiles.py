"""The records of a run directory and the one reader of its model: ``architecture.json`` as a typed
:class:`ArchitectureSpec`, ``report.json`` read by :func:`read_report`, and :func:`read_model`, which rebuilds the
model of ``model.pt`` or ``winner.pt`` for :func:`autoarch.load` and ``autoarch compress`` alike.

Both JSON files carry :data:`SCHEMA_VERSION`; a run written before it existed has none and reads as version 0
(the same fields: version 1 only added the number). A file of a newer version is refused in one line. Every file
is read through :func:`autoarch.rundir.read_outputs`, checked against the run's manifest.

Example:
    >>> model, spec = read_model("runs/digits")  # doctest: +SKIP
    >>> spec.space, spec.input_shape, len(spec.pruning_history)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoarch.exceptions import DataError
from autoarch.objectives import Objective
from autoarch.rundir import read_outputs
from autoarch.runreport import RunReport

__all__ = ["SCHEMA_VERSION", "ArchitectureSpec", "RunReport", "read_model", "read_report", "parse_json"]

SCHEMA_VERSION = 1
"""The version of ``architecture.json`` and ``report.json`` (their ``schema_version``)."""

_REQUIRED = ("space", "architecture", "input_shape", "n_outputs")


def parse_json(path: Path, data: bytes) -> dict[str, Any]:
    """A JSON object from ``data`` (the bytes of ``path``); a DataError naming the file when it is not one."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); restore it from the run.") from None
    if not isinstance(value, dict):
        raise DataError(f"{path} holds {type(value).__name__}, not an object; restore it from the run.")
    return value


def _check_version(path: Path, record: dict[str, Any]) -> int:
    version = record.get("schema_version", 0)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DataError(f"{path} has schema_version {version!r}, newer than this autoarch reads ({SCHEMA_VERSION}); "
                        "upgrade autoarch to read it.")
    return version


@dataclass(frozen=True)
class ArchitectureSpec:
    """``architecture.json``: everything that rebuilds a run's network and model around it.

    Attributes:
        space: the search space: a built-in name or the ``module:Class`` import path of a user's space.
        architecture: the architecture the space builds (plain JSON values).
        input_shape: the shape of one raw input sample.
        n_outputs: classes, or 1 for regression.
        task, input_kind: ``classification`` / ``regression``; ``tabular``, ``image``, ``sequence`` or ``text``.
        classes, feature_names: the original labels and feature names (the ONNX metadata carries them too).
        metric: the objective the search optimised.
        pruning_history: torch-pruning's record of the structural pruning, replayed on a fresh network.
        columns, encoded_width: a table's column schema (text categories, missing cells) and its encoded width.
        text: a text model's token table, vocabulary size and length.
        extra: any other recorded field (``autoarch_version``, ...), written back unchanged.
        schema_version: the version the file was written with (0: before versions were recorded).
    """

    space: str
    architecture: dict[str, Any]
    input_shape: list[int]
    n_outputs: int
    task: str = "classification"
    input_kind: str | None = None
    classes: list[Any] = field(default_factory=list)
    feature_names: list[str] | None = None
    metric: str | None = None
    pruning_history: list[Any] = field(default_factory=list)
    columns: list[Any] | None = None
    encoded_width: int | None = None
    text: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, record: dict[str, Any], path: Path = Path("architecture.json")) -> ArchitectureSpec:
        """The record of a parsed ``architecture.json`` (any version up to :data:`SCHEMA_VERSION`)."""
        version = _check_version(path, record)
        missing = [k for k in _REQUIRED if k not in record]
        if missing:
            raise DataError(f"{path} lacks {missing}; it was not written by autoarch.")
        shape = record["input_shape"]
        if not (isinstance(shape, list) and all(isinstance(s, int) and s > 0 for s in shape)):
            raise DataError(f"{path}: 'input_shape' must be a list of positive sizes, but is {shape!r}; restore "
                            "architecture.json from the run.")
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", "schema_version"}
        known = {k: v for k, v in record.items() if k in names}
        known["pruning_history"] = list(known.get("pruning_history") or [])
        extra = {k: v for k, v in record.items() if k not in names and k != "schema_version"}
        return cls(**known, extra=extra, schema_version=version)

    @classmethod
    def from_json(cls, data: bytes, path: Path = Path("architecture.json")) -> ArchitectureSpec:
        return cls.from_dict(parse_json(path, data), path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``architecture.json`` (always at :data:`SCHEMA_VERSION`); fields a table or
        text model does not have are left out, as before."""
        record = {**self.extra, "schema_version": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("extra", "schema_version") or (f.name in ("columns", "encoded_width", "text")
                                                         and value is None):
                continue
            record[f.name] = value
        return record

    @property
    def kind(self) -> str:
        """The input kind: as recorded, or (runs written before it was) from the input shape."""
        return self.input_kind or ("image" if len(self.input_shape) == 3 else "tabular")

    @property
    def objectives(self) -> tuple[Objective, ...]:
        return (Objective(self.metric),) if self.metric else ()

    def build_network(self, path: Path = Path("architecture.json")) -> Any:
        """The (unpruned) network of the space; a DataError naming ``path`` when the values cannot build one."""
        from autoarch.model import net_arch, net_input_shape
        from autoarch.search_spaces import get_space

        record = self.to_dict()
        space = get_space(self.space, self.kind)
        try:
            return space.build(net_arch(record), net_input_shape(record), self.n_outputs)
        except (RuntimeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DataError(f"{path}: its architecture does not build a network ({_first_line(exc)}); restore "
                            "architecture.json from the run.") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def load_state(weights: Path, data: bytes) -> dict[str, Any]:
    """The state dict of a weights file (``data``, its bytes as checked against the run's manifest), loaded with
    ``weights_only=True`` so that a pickle's code never runs."""
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # weights_only refused an object, or the bytes are not a pickle
        lines = [line for line in str(exc).splitlines() if line.strip()]
        detail = (lines[-2] if len(lines) >= 3 else lines[0] if lines else type(exc).__name__).strip()[:200]
        raise DataError(f"{weights} is refused: it is not a torch weights file, or it holds objects other than "
                        f"tensors, which are never loaded ({detail}); restore it from the run or rerun the "
                        "search.") from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        raise DataError(f"{weights} is not a torch weights file ({_first_line(exc)}); restore it from the run or "
                        "rerun the search.") from None
    if not (isinstance(state, dict) and all(isinstance(state.get(k), torch.Tensor) for k in ("mean", "std"))):
        raise DataError(f"{weights} is not the state dict of an autoarch model (no tensors 'mean' and 'std'); "
                        "restore it from the run or rerun the search.")
    return state


def read_model(run_dir: str | os.PathLike[str], weights: str = "model.pt", *, replay: bool = True
               ) -> tuple[Any, ArchitectureSpec]:
    """The model of ``weights`` in ``run_dir`` (``model.pt``, or the unpruned ``winner.pt`` with
    ``replay=False``) and the run's :class:`ArchitectureSpec`: the network is built from the spec, its pruning
    history replayed (``replay``), then the weights are put in; eval mode.

    Raises:
        DataError: a file is missing, is not the file the manifest names, or does not fit the other.
    """
    import torch

    from autoarch.compress import replay_pruning
    from autoarch.model import model_from_state

    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(f"run directory {str(run)!r} does not exist; give the --out directory of a search.")
    files = read_outputs(run, ("architecture.json", weights))  # checked against the run's manifest
    spec_path, weights_path = run / "architecture.json", run / weights
    if spec_path.name not in files:
        raise DataError(f"{spec_path} is missing; give the --out directory of a finished search.")
    spec = ArchitectureSpec.from_json(files[spec_path.name], spec_path)
    if weights not in files:
        raise DataError(f"{weights_path} is missing; a finished search writes winner.pt and model.pt.")
    net = spec.build_network(spec_path)
    state = load_state(weights_path, files[weights])
    model = model_from_state(net, state, spec.columns, spec.text)
    try:
        replay_pruning(model, torch.zeros(2, *spec.input_shape), spec.pruning_history if replay else [])
        model.load_state_dict(state)
    except (RuntimeError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"{weights_path} does not fit the network of {spec_path} "
                        f"({_first_line(exc)}); the files come from different runs.") from None
    return model.eval(), spec


def read_report(run_dir: str | os.PathLike[str]) -> RunReport | None:
    """``report.json`` of ``run_dir`` as a typed :class:`~autoarch.runreport.RunReport` (checked against the
    manifest and its schema version; any version reads), or None when the run has none.

    Raises:
        DataError: the file is not JSON, is newer than this version reads, or lacks a section.
    """
    run = Path(run_dir)
    found = read_outputs(run, ("report.json",)) if run.is_dir() else {}
    if "report.json" not in found:
        return None
    report = parse_json(run / "report.json", found["report.json"])
    _check_version(run / "report.json", report)
    return RunReport.from_dict(report, run / "report.json")
