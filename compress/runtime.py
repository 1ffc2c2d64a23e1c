"""onnxruntime inference and measurement: outputs, latency, peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from autoarch.compress import timing

__all__ = ["session", "run_onnx", "latency_ms", "isolated_latency_ms", "peak_memory"]


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


def _batch(X: np.ndarray, batch: int) -> np.ndarray:
    reps = int(np.ceil(batch / len(X)))
    return np.concatenate([X] * reps)[:batch].astype(np.float32)


def latency_ms(sess: ort.InferenceSession, X: np.ndarray, batch: int, repeats: int = 30, warmup: int = 5,
               rounds: int = timing.ROUNDS) -> float:
    """Wall time of one ``batch``-sized inference, in milliseconds: the least median of
    :func:`~autoarch.compress.timing.latencies`' ``rounds`` rounds of at least ``repeats`` calls, after at least
    ``warmup``."""
    name = sess.get_inputs()[0].name
    xb = _batch(X, batch)
    return timing.latencies({batch: lambda: sess.run(None, {name: xb})}, repeats, warmup, rounds)[batch] * 1000.0


_LATENCY_PROBE = r"""
import importlib.util, json, sys
import numpy as np
import onnxruntime as ort

spec = json.loads(sys.argv[1])
loader = importlib.util.spec_from_file_location("autoarch_timing", spec["timing"])
timing = importlib.util.module_from_spec(loader)
loader.loader.exec_module(timing)
x = np.load(spec["x"])
opts = ort.SessionOptions()
opts.intra_op_num_threads = spec["threads"]
opts.inter_op_num_threads = 1
opts.log_severity_level = 3
sess = ort.InferenceSession(spec["path"], sess_options=opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
feeds = {str(b): {name: np.concatenate([x] * -(-b // len(x)))[:b]} for b in spec["batches"]}
runs = {b: (lambda feed=feed: sess.run(None, feed)) for b, feed in feeds.items()}
result = timing.latencies(runs, spec["repeats"], spec["warmup"])
print(json.dumps({b: s * 1000.0 for b, s in result.items()}))
"""


def isolated_latency_ms(path: str | Path, X: np.ndarray, batches: tuple[int, ...] = (1, 64), threads: int = 1,
                        repeats: int = 30, warmup: int = 5, timeout: float = 300.0) -> dict[int, float]:
    """:func:`latency_ms` of ``path`` at each of ``batches`` (their rounds taking turns), measured in a fresh
    interpreter that imports only numpy and onnxruntime, as on the device. Measured in the process that has just
    trained, the figures are inflated by torch's busy threads: a digits CNN's int8 model timed 0.073 ms at batch 1
    right after its fine-tune and 0.033 ms on its own (BENCHMARKS.md). Falls back to measuring here when the
    probe fails."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "x.npy")
        np.save(data, np.ascontiguousarray(X, dtype=np.float32))
        spec = {"path": str(path), "x": data, "batches": list(batches), "threads": threads, "repeats": repeats,
                "warmup": warmup, "timing": timing.__file__}
        try:
            proc = subprocess.run([sys.executable, "-c", _LATENCY_PROBE, json.dumps(spec)], capture_output=True,
                                  text=True, timeout=timeout)
            if proc.returncode == 0:
                return {int(k): v for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items()}
        except (subprocess.TimeoutExpired, OSError, ValueError, IndexError):
            pass
    sess = session(path, threads=threads)
    return {b: latency_ms(sess, X, b, repeats=repeats, warmup=warmup) for b in batches}


# Runs in a fresh interpreter that imports only numpy and onnxruntime, so that the figure is the memory of
# one inference session, not of the torch process measuring it.
_PROBE = r"""
import json, sys
import numpy as np
import onnxruntime as ort

def status(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None

x = np.load(sys.argv[2])
base = status("VmRSS:")
try:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets the peak (VmHWM) to the current resident size
    reset = True
except OSError:
    reset = False
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.log_severity_level = 3
sess = ort.InferenceSession(sys.argv[1], sess_options=opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
for _ in range(3):
    sess.run(None, {name: x})
peak = status("VmHWM:")
if peak is None:
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"peak_rss_mb": peak, "baseline_rss_mb": base,
                  "session_peak_mb": (peak - base) if (reset and base is not None) else None}))
"""


def peak_memory(path: str | Path, X: np.ndarray, batch: int = 64, timeout: float = 120.0) -> dict[str, Any]:
    """Peak resident memory of loading ``path`` and running ``batch``-sized inference (1 thread).

    Measured in a fresh process that imports only numpy and onnxruntime: ``session_peak_mb`` is the growth of
    its peak resident size over the size after those imports (Linux; None elsewhere), ``peak_rss_mb`` the
    whole process's peak.
    """
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "x.npy")
        np.save(data, _batch(X, batch))
        proc = subprocess.run([sys.executable, "-c", _PROBE, str(path), data], capture_output=True, text=True,
                              timeout=timeout)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return {"peak_rss_mb": None, "session_peak_mb": None, "error": last[0][:300]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["batch"] = batch
    return result
