"""Throughput of local workers and the gain of early stopping, measured side by side in one run.

    python benchmarks/scaling.py --trials 24

A. ``--workers 1`` (torch uses both cores) vs ``--workers 2`` (one thread each), and one worker with one thread
   as a per-process reference; random controller with the same seed, digits CNN space, 3-fold CV. Random
   search draws trial n from (seed, n), so every run evaluates the same candidates as trials 0..N-1 (checked);
   throughput = N / (time from the first trial's start to the end of the last of trials 0..N-1).
B. ``--early-stop none`` vs ``median`` vs ``hyperband``, random controller with the same seed (so both see the
   same candidates in the same order): wall time until the best CV score of the run without early stopping is
   reached, and total search time, same trial budget.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from pathlib import Path

import optuna
import torch

import autoarch

THREADS = torch.get_num_threads()


def _run(out: Path, **options) -> autoarch.SearchResult:
    return autoarch.search("digits", out=out, controller="random", cv=3, prune=0.0, finetune_epochs=0, seed=0,
                           **options)


def _throughput(study: optuna.Study, n: int) -> tuple[float, dict[int, dict]]:
    """Seconds from the first start to the last completion among trials 0..n-1, and their parameters."""
    first = [t for t in study.trials if t.number < n]
    assert len(first) == n and all(t.datetime_complete is not None for t in first)
    seconds = (max(t.datetime_complete for t in first) - min(t.datetime_start for t in first)).total_seconds()
    return seconds, {t.number: t.params for t in first}


def _time_to(study: optuna.Study, target: float) -> float | None:
    trials = [t for t in study.trials if t.value is not None and t.datetime_complete is not None]
    start = min(t.datetime_start for t in study.trials)
    hits = [t.datetime_complete for t in trials if t.state.name == "COMPLETE" and t.value >= target - 1e-12]
    return (min(hits) - start).total_seconds() if hits else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--part", choices=["A", "B", "all"], default="all")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("A", "all"):
            rows, params = [], []
            for workers, threads in ((1, torch.get_num_threads()), (1, 1), (2, 1)):
                torch.set_num_threads(threads)
                res = _run(Path(tmp) / f"w{workers}t{threads}", trials=args.trials, workers=workers)
                torch.set_num_threads(THREADS)
                seconds, p = _throughput(res.study, args.trials)
                params.append(p)
                rows.append((workers, threads, seconds, args.trials / seconds * 3600))
            same = all(p == params[0] for p in params)
            print(f"\nA. Local workers, digits CNN space, random controller, seed 0, trials 0-{args.trials - 1} "
                  f"(the same candidates in every run: {same}), 3-fold CV\n")
            print("| workers | torch threads per worker | wall time for the trials (s) | trials per hour | "
                  "vs 1 worker (default threads) |")
            print("|---|---|---|---|---|")
            for workers, threads, seconds, per_hour in rows:
                print(f"| {workers} | {threads} | {seconds:.0f} | {per_hour:.0f} | {per_hour / rows[0][3]:.2f}x |")
        if args.part == "A":
            return

        results = {}
        for early in ("none", "median", "hyperband"):
            results[early] = _run(Path(tmp) / f"e-{early}", trials=args.trials, early_stop=early, workers=1)
        target = results["none"].study.best_value
        print(f"\nB. Early stopping, same {args.trials} candidates (random controller, seed 0); target = best CV "
              f"accuracy without early stopping = {target:.4f}\n")
        print("| --early-stop | pruned trials | best CV accuracy | time to reach target (s) | search wall time (s) |")
        print("|---|---|---|---|---|")
        for early, res in results.items():
            study = res.study
            reach = _time_to(study, target)
            pruned = sum(t.state.name == "PRUNED" for t in study.trials)
            print(f"| {early} | {pruned} | {study.best_value:.4f} | "
                  f"{'not reached' if reach is None else f'{reach:.0f}'} | "
                  f"{res.report['search']['seconds_this_run']:.0f} |")


if __name__ == "__main__":
    main()
