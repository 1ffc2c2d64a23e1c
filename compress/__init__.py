"""Compression for edge devices: structural pruning (torch-pruning), ONNX export, onnxruntime int8, checks."""

from __future__ import annotations

from autoarch.compress.export import check_onnx, export_onnx, read_metadata
from autoarch.compress.pipeline import CompressionResult, compress_model
from autoarch.compress.prune import IMPORTANCES, count_macs_params, prune, replay_pruning
from autoarch.compress.quantize import quantize_int8
from autoarch.compress.runtime import latency_ms, run_onnx, session

__all__ = ["CompressionResult", "compress_model", "prune", "replay_pruning", "count_macs_params", "IMPORTANCES",
           "export_onnx", "check_onnx", "read_metadata", "quantize_int8", "session", "run_onnx", "latency_ms"]
