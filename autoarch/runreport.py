"""``report.json`` as a typed record: :class:`RunReport` and its sections (:class:`DataInfo`, :class:`SearchInfo`,
:class:`BestTrial`, :class:`CompressionInfo`). The search builds one and writes :meth:`RunReport.to_dict`; the
readers (``report.md``, ``report.html``, ``autoarch compress``, ``autoarch export``, ``autoarch report``) take
:func:`autoarch.runfiles.read_report`'s record. No torch.

Every version reads: a key a section does not declare is kept in its ``extra`` and written back unchanged, a
declared key an older run lacks takes its default. Keys whose value is None and that a run of this version
leaves out (``picked``, ``pruning``, ...) stay out of :meth:`RunReport.to_dict`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from autoarch.compress.rows import Stage, stage_rows
from autoarch.exceptions import DataError

__all__ = ["RunReport", "DataInfo", "SearchInfo", "BestTrial", "CompressionInfo", "as_report"]


@dataclass
class _Section:
    """A section of the report: declared fields, the rest of the JSON object in ``extra``."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ()
    """Fields left out of the JSON when None."""
    extra: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @classmethod
    def from_dict(cls, record: dict[str, Any], where: str) -> Any:
        if not isinstance(record, dict):
            raise DataError(f"{where} must be an object, not {type(record).__name__}; restore report.json from the "
                            "run.")
        names = [f.name for f in dataclasses.fields(cls) if f.name != "extra"]
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in record]
        if missing:
            raise DataError(f"{where} lacks {missing}; it was not written by autoarch, restore it from the run.")
        known = {k: v for k, v in record.items() if k in names}
        return cls(**cls._typed(known), extra={k: v for k, v in record.items() if k not in names})

    @classmethod
    def _typed(cls, known: dict[str, Any]) -> dict[str, Any]:
        return known

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "extra" or (value is None and f.name in self.OPTIONAL):
                continue
            out[f.name] = value
        return {**out, **self.extra}


@dataclass
class DataInfo(_Section):
    """``data``: the data set and its split; ``source`` is how ``autoarch compress`` reloads it."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("encoding",)
    name: str
    task: str
    input_shape: list[int]
    n_samples: int
    n_train: int
    n_test: int
    classes: list[Any] = field(default_factory=list)
    source: dict[str, Any] | None = None
    encoding: dict[str, Any] | None = None


@dataclass
class SearchInfo(_Section):
    """``search``: how the search ran (space, controller, objectives, validation, trials, seconds)."""

    space: str
    controller: str
    metric: str
    objectives: list[dict[str, Any]] = field(default_factory=list)
    cv: Any = None
    validation: str | None = None
    early_stop: str | None = None
    augment: str | None = None
    held_out: str | None = None
    trials_requested: int | None = None
    trial_states: dict[str, int] = field(default_factory=dict)
    fidelity: dict[str, Any] | None = None
    search_samples: int | str | None = None
    seconds_this_run: float = 0.0
    seed: int = 0
    device: str = "cpu"

    @property
    def trials_text(self) -> str:
        """``40 trials``, or ``trials until --timeout`` for a search given ``--timeout`` and no ``--trials``."""
        return "trials until --timeout" if self.trials_requested is None else f"{self.trials_requested} trials"


@dataclass
class BestTrial(_Section):
    """``best``: the shipped trial, its architecture and training, its validation scores (``cv``: metric ->
    ``[mean, std]``) and its retrain."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("picked", "int8_cost_before_training")
    trial: int
    architecture: dict[str, Any]
    summary: str
    training: dict[str, Any]
    cv: dict[str, list[float]]
    picked: str | None = None
    warm_start: str | None = None
    retrain_epochs: int | None = None
    retrain: dict[str, Any] = field(default_factory=dict)
    retrain_schedule: str | None = None
    int8_cost_before_training: dict[str, Any] | None = None


@dataclass
class CompressionInfo(_Section):
    """``compression``: one typed :class:`~autoarch.compress.rows.Stage` per model, the verification record,
    and what pruning did (``pruning``; ``steps`` for a target pruned in steps)."""

    OPTIONAL: ClassVar[tuple[str, ...]] = ("pruning", "steps")
    stages: list[Stage]
    verification: dict[str, Any] = field(default_factory=dict)
    prune_ratio: float | None = None
    finetune_epochs: int = 0
    pruning: dict[str, Any] | None = None
    steps: list[dict[str, Any]] | None = None

    @classmethod
    def _typed(cls, known: dict[str, Any]) -> dict[str, Any]:
        return {**known, "stages": stage_rows(known["stages"])}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "stages": [s.to_dict() for s in self.stages]}

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.stage == name), None)


_SECTIONS = {"data": DataInfo, "search": SearchInfo, "best": BestTrial, "compression": CompressionInfo}


@dataclass
class RunReport:
    """``report.json``: a finished run, as the search wrote it.

    Attributes:
        data, search, best, compression: the typed sections.
        test: every metric of the winner (before compression) on the held-out split.
        config: the options the run resolved: a valid ``--config`` file (:func:`autoarch.configfile.recorded_options`).
        front: a multi-objective search's Pareto front (``objectives``, ``points``, ``pick``, ``picked``).
        test_detail: the shipped model on the held-out split (confusion matrix, per class, residuals).
        autoarch_version, schema_version: who wrote it, and the schema version it was read at.
    """

    data: DataInfo
    search: SearchInfo
    best: BestTrial
    compression: CompressionInfo
    test: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    front: dict[str, Any] | None = None
    test_detail: dict[str, Any] | None = None
    autoarch_version: str = ""
    schema_version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.search.metric

    @classmethod
    def from_dict(cls, record: dict[str, Any], path: Path = Path("report.json")) -> RunReport:
        """The record of a parsed ``report.json`` (its version already checked by the reader)."""
        missing = [name for name in _SECTIONS if name not in record]
        if missing:
            raise DataError(f"{path} lacks {missing}; it was not written by autoarch, restore it from the run.")
        sections = {name: kind.from_dict(record[name], f"{path} '{name}'") for name, kind in _SECTIONS.items()}
        names = {f.name for f in dataclasses.fields(cls)} - {"extra", *sections}
        known = {k: v for k, v in record.items() if k in names}
        known["schema_version"] = int(record.get("schema_version", 0))
        return cls(**sections, **known, extra={k: v for k, v in record.items() if k not in names | set(sections)})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written as ``report.json``."""
        out: dict[str, Any] = {"schema_version": self.schema_version, "autoarch_version": self.autoarch_version,
                               "data": self.data.to_dict(), "search": self.search.to_dict(),
                               "best": self.best.to_dict()}
        if self.front is not None:
            out["front"] = self.front
        out.update(test=self.test, test_detail=self.test_detail, compression=self.compression.to_dict(),
                   config=self.config)
        return {**out, **self.extra}


def as_report(report: RunReport | Mapping[str, Any]) -> RunReport:
    """``report`` as a :class:`RunReport` (a dictionary, e.g. ``SearchResult.report``, is read as report.json)."""
    return report if isinstance(report, RunReport) else RunReport.from_dict(dict(report))
