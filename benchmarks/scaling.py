"""Throughput of local workers and the gain of early stopping, measured side by side in one run.

    python benchmarks/scaling.py --trials 24

A. ``--workers 1`` (torch uses both cores) vs ``--workers 2`` (one thread each), random controller with the
   same seed, digits CNN space, 3-fold CV: trials per hour of the search phase.
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

import autoarch


def _run(out: Path, **options) -> autoarch.SearchResult:
    return autoarch.search("digits", out=out, controller="random", cv=3, prune=0.0, finetune_epochs=0, seed=0,
                           **options)


def _time_to(study: optuna.Study, target: float) -> float | None:
    trials = [t for t in study.trials if t.value is not None and t.datetime_complete is not None]
    start = min(t.datetime_start for t in study.trials)
    hits = [t.datetime_complete for t in trials if t.state.name == "COMPLETE" and t.value >= target - 1e-12]
    return (min(hits) - start).total_seconds() if hits else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for workers in (1, 2):
            res = _run(Path(tmp) / f"w{workers}", trials=args.trials, workers=workers)
            seconds = res.report["search"]["seconds_this_run"]
            n = sum(t.state.name in ("COMPLETE", "PRUNED", "FAIL") for t in res.study.trials)
            rows.append((workers, n, seconds, n / seconds * 3600))
        print(f"\nA. Local workers, digits CNN space, random controller, seed 0, {args.trials} trials, 3-fold CV\n")
        print("| workers | trials run | search wall time (s) | trials per hour | speed-up |")
        print("|---|---|---|---|---|")
        for workers, n, seconds, per_hour in rows:
            print(f"| {workers} | {n} | {seconds:.0f} | {per_hour:.0f} | {per_hour / rows[0][3]:.2f}x |")

        results = {}
        for early in ("none", "median", "hyperband"):
            results[early] = _run(Path(tmp) / f"e-{early}", trials=args.trials, early_stop=early)
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
