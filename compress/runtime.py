"""onnxruntime inference and measurement: outputs, latency, file size."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

__all__ = ["session", "run_onnx", "latency_ms"]


def session(path: str | Path, threads: int = 1) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run_onnx(sess: ort.InferenceSession, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: X[i:i + batch_size].astype(np.float32)})[0] for i in range(0, len(X), batch_size)]
    return np.concatenate(outs)


def latency_ms(sess: ort.InferenceSession, X: np.ndarray, batch: int, repeats: int = 30, warmup: int = 5) -> float:
    """Median wall time of one ``batch``-sized inference, in milliseconds."""
    name = sess.get_inputs()[0].name
    reps = int(np.ceil(batch / len(X)))
    xb = np.concatenate([X] * reps)[:batch].astype(np.float32)
    for _ in range(warmup):
        sess.run(None, {name: xb})
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        sess.run(None, {name: xb})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000.0)
