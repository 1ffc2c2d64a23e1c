"""The typed rows of the compression report (:class:`Stage`), readable without torch: ``report.json`` and
``compression.json`` hold :meth:`Stage.to_dict` (the keys every earlier version wrote: ``stage``, ``params``, ...,
one key per held-out metric), and the report, the CLI and ``autoarch compress`` read rows back with
:meth:`Stage.from_dict`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Stage", "stage_rows"]

_DELTA = "_delta_vs_fp32"


@dataclass
class Stage:
    """One model of the compression stage, as torch weights or an ONNX file, and what it measured.

    Attributes:
        stage: ``torch fp32``, ``torch pruned``, ``onnx fp32 unpruned``, ``onnx fp32``, ``onnx int8`` (``autoarch
            compress`` adds ``torch fp32 winner``).
        params, macs: parameters and multiply-accumulates per sample.
        bytes: the state dict's size (torch) or the file's (ONNX).
        scores: every metric of the task on the held-out split (``accuracy``, ``f1_macro``, ... or ``rmse``, ...).
        latency_b1_ms, latency_b64_ms: ONNX Runtime latency at batch 1 and 64 (1 thread, a fresh process).
        peak_memory_mb: growth of a fresh onnxruntime process's resident memory running batch 64.
        checker, opset: ``onnx.checker`` (full check) and the file's opset.
        max_abs_diff_vs_torch: the largest output difference from the torch model it was exported from.
        argmax_agreement_vs_torch: (int8, classification) share of held-out samples with the torch model's class.
        method: (int8) ``static`` or ``dynamic``.
        delta_vs_fp32: (int8) held-out metric minus the fp32 file's, per metric named.
    """

    stage: str
    params: int
    macs: int
    bytes: int
    scores: dict[str, float] = field(default_factory=dict)
    latency_b1_ms: float | None = None
    latency_b64_ms: float | None = None
    checker: str | None = None
    opset: int | None = None
    peak_memory_mb: float | None = None
    method: str | None = None
    argmax_agreement_vs_torch: float | None = None
    max_abs_diff_vs_torch: float | None = None
    delta_vs_fp32: dict[str, float] = field(default_factory=dict)

    @property
    def is_onnx(self) -> bool:
        return self.latency_b1_ms is not None

    def to_dict(self) -> dict[str, Any]:
        """The row as ``report.json`` stores it: the scores and ``<metric>_delta_vs_fp32`` flattened, unset
        measurements left out."""
        row: dict[str, Any] = {"stage": self.stage, "params": self.params, "macs": self.macs, "bytes": self.bytes}
        for f in fields(self)[4:]:
            value = getattr(self, f.name)
            if f.name == "scores":
                row.update(value)
            elif f.name == "delta_vs_fp32":
                row.update({f"{name}{_DELTA}": v for name, v in value.items()})
            elif value is not None:
                row[f.name] = value
        return row

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Stage:
        """A row read back from ``report.json`` / ``compression.json`` (any version): the known keys become
        attributes, ``<metric>_delta_vs_fp32`` the deltas, and every other number a held-out score."""
        known = {f.name for f in fields(cls)} - {"scores", "delta_vs_fp32"}
        values = {k: v for k, v in row.items() if k in known}
        deltas = {k[:-len(_DELTA)]: v for k, v in row.items() if k.endswith(_DELTA)}
        scores = {k: v for k, v in row.items() if k not in known and not k.endswith(_DELTA)
                  and isinstance(v, (int, float)) and not isinstance(v, bool)}
        return cls(**values, scores=scores, delta_vs_fp32=deltas)


def stage_rows(rows: Sequence[Mapping[str, Any] | Stage]) -> list[Stage]:
    """``rows`` as :class:`Stage` objects, whether read from a report (dicts) or produced in this process."""
    return [r if isinstance(r, Stage) else Stage.from_dict(r) for r in rows]
