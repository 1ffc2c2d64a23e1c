"""The timing loop of every latency figure. Standard library only: the latency probe, a fresh interpreter that
imports numpy and onnxruntime alone (:func:`~autoarch.compress.runtime.isolated_latency_ms`), loads this file by
its path, so the probe and the in-process measurement time the same way.

A latency is the least, over :data:`ROUNDS` rounds, of the median call of a round. On this 2-core virtual machine
the same file runs at two speeds in turns of a few tenths of a second (one digits int8 CNN at batch 1: 0.030 ms,
then 0.042-0.055 ms for up to half a second, then 0.030 again, inside one process; BENCHMARKS.md, "Device cost
before training vs the shipped model"): the median of one stretch of calls was whichever speed held at the time,
so one figure of a fresh probe ranged up to 1.7x. Rounds spread over the probe, taking turns between its batch
sizes, and the fastest round's median is the figure of the machine when nothing else slows it down."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

K = TypeVar("K")

WARMUP_SECONDS = 0.05
"""Calls are timed after at least ``warmup`` of them *and* this many seconds of them, ..."""
ROUND_SECONDS = 0.05
"""... in :data:`ROUNDS` rounds of at least ``repeats`` calls *and* this many seconds each."""
ROUNDS = 6
MAX_CALLS = 100_000


def warm_up(run: Callable[[], object], warmup: int) -> None:
    """Call ``run()`` at least ``warmup`` times and for at least :data:`WARMUP_SECONDS`."""
    start, n = time.perf_counter(), 0
    while n < warmup or (n < MAX_CALLS and time.perf_counter() - start < WARMUP_SECONDS):
        run()
        n += 1


def timed_calls(run: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each call of ``run()``, called at least ``repeats`` times and for at least :data:`ROUND_SECONDS`."""
    times: list[float] = []
    while len(times) < repeats or (len(times) < MAX_CALLS and sum(times) < ROUND_SECONDS):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times


def latencies(runs: Mapping[K, Callable[[], object]], repeats: int, warmup: int, rounds: int = ROUNDS
              ) -> dict[K, float]:
    """Seconds of one call of each of ``runs``: each warmed up (:func:`warm_up`), then ``rounds`` rounds that take
    turns between the runs, each round :func:`timed_calls`; the least of a run's round medians."""
    for run in runs.values():
        warm_up(run, warmup)
    best = {key: math.inf for key in runs}
    for _ in range(max(1, rounds)):
        for key, run in runs.items():
            best[key] = min(best[key], statistics.median(timed_calls(run, repeats)))
    return best
