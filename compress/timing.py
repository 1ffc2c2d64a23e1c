"""The timing loop of every latency figure. Standard library only: the latency probe, a fresh interpreter that
imports numpy and onnxruntime alone (:func:`~autoarch.compress.runtime.isolated_latency_ms`), loads this file by
its path, so the probe and the in-process measurement time the same way."""

from __future__ import annotations

import time
from collections.abc import Callable

WARMUP_SECONDS = 0.05
"""Calls are timed after at least ``warmup`` of them *and* this many seconds of them, ..."""
MEASURE_SECONDS = 0.1
"""... on at least ``repeats`` calls *and* this many seconds of them. By count alone (5 warm-up and 30 timed calls)
a 0.03 ms digits CNN was timed over 1 ms in all; timed so, the same int8 file in 8 fresh probes ranged up to 2.0x
at batch 1, up to 1.7x with these minimums (BENCHMARKS.md, "Device cost before training vs the shipped model":
whole probes still run slow at times on a 2-core virtual machine)."""
MAX_CALLS = 100_000


def timed_calls(run: Callable[[], object], repeats: int, warmup: int) -> list[float]:
    """Seconds of each timed call of ``run()`` (:data:`WARMUP_SECONDS`, :data:`MEASURE_SECONDS`)."""
    start, n = time.perf_counter(), 0
    while n < warmup or (n < MAX_CALLS and time.perf_counter() - start < WARMUP_SECONDS):
        run()
        n += 1
    times: list[float] = []
    while len(times) < repeats or (len(times) < MAX_CALLS and sum(times) < MEASURE_SECONDS):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times
