"""Compression for edge devices: structural pruning (torch-pruning), ONNX export, onnxruntime int8, checks.

Names resolve on first use, so that ``autoarch.compress.config`` (the CLI's defaults) imports no torch.

Example:
    >>> from autoarch.compress import compress_run
    >>> result = compress_run("runs/digits", target_macs=0.25, max_drop=0.5)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autoarch.compress.config import CompressConfig
    from autoarch.compress.cost import int8_cost
    from autoarch.compress.export import (
        check_onnx,
        compact_names,
        drop_annotations,
        export_onnx,
        model_metadata,
        read_metadata,
    )
    from autoarch.compress.pipeline import CompressionResult, compress
    from autoarch.compress.pruning import IMPORTANCES, count_macs_params, prune, prune_to, replay_pruning
    from autoarch.compress.quantize import choose_int8, quantize_dynamic_int8, quantize_int8
    from autoarch.compress.rows import Stage
    from autoarch.compress.run import compress_run, load_run_model
    from autoarch.compress.runtime import isolated_latency_ms, latency_ms, peak_memory, run_onnx, session
    from autoarch.compress.schedule import PruneResult, prune_iteratively

_EXPORTS = {
    "CompressConfig": "config",
    "CompressionResult": "pipeline", "compress": "pipeline", "Stage": "rows",
    "compress_run": "run", "load_run_model": "run",
    "PruneResult": "schedule", "prune_iteratively": "schedule",
    "prune": "pruning", "prune_to": "pruning", "replay_pruning": "pruning", "count_macs_params": "pruning",
    "IMPORTANCES": "pruning",
    "export_onnx": "export", "check_onnx": "export", "compact_names": "export", "drop_annotations": "export",
    "read_metadata": "export", "model_metadata": "export",
    "quantize_int8": "quantize", "quantize_dynamic_int8": "quantize", "choose_int8": "quantize",
    "session": "runtime", "run_onnx": "runtime", "latency_ms": "runtime", "peak_memory": "runtime",
    "isolated_latency_ms": "runtime",
    "int8_cost": "cost",
}

__all__ = [
    "CompressConfig", "CompressionResult", "compress", "Stage", "compress_run", "load_run_model",
    "PruneResult", "prune_iteratively", "prune", "prune_to", "replay_pruning", "count_macs_params", "IMPORTANCES",
    "export_onnx", "check_onnx", "compact_names", "drop_annotations", "read_metadata", "model_metadata",
    "quantize_int8", "quantize_dynamic_int8", "choose_int8", "session", "run_onnx", "latency_ms", "peak_memory",
    "isolated_latency_ms", "int8_cost",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"autoarch.compress.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'autoarch.compress' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
