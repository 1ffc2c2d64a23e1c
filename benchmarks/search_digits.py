"""The README's main job on sklearn digits, side by side with what a user would try instead.

In one run, on the same stratified 80/20 split: ``autoarch search digits`` (evolution) with the README's
options; random search with the same trial budget; sklearn's SVC, LogisticRegression and MLPClassifier.

    python benchmarks/search_digits.py --trials 40 --cv 3 --timeout 180
    python benchmarks/search_digits.py --trials 40 --cv 3 --timeout 180 --seeds 0 1 2 3 4

Prints markdown tables (copy them into BENCHMARKS.md) and writes the run directories under --out. With several
``--seeds``, each seed is a whole repetition: its own held-out split (``--seed`` of ``autoarch search`` picks the
split), its own searches and the sklearn baselines fitted on that split; a summary table follows.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import autoarch
from autoarch.data import train_test_split
from autoarch.loaders import load_dataset

SVC_GRID = {"C": [0.3, 1, 3, 10, 30], "gamma": ["scale", 0.0003, 0.001, 0.003]}
"""What a user would tune an RBF SVC over on these 64 pixels (20 configurations, 3-fold CV on the training part)."""
LOGREG_GRID = {"logisticregression__C": [0.01, 0.03, 0.1, 0.3, 1, 3, 10]}


def _sklearn_baselines(seed: int) -> list[dict]:
    """scikit-learn models fitted on the split autoarch uses: SVC, logistic regression and an MLP with their
    defaults, and SVC and logistic regression tuned by a 3-fold grid search on the training part (well within the
    search's time budget), which is what a user would really pick."""
    data = load_dataset("digits")
    train, test = train_test_split(data, 0.2, seed=seed)  # the split autoarch.search uses
    X_train, X_test = train.X.reshape(len(train), -1), test.X.reshape(len(test), -1)
    models = {
        "sklearn SVC (rbf)": SVC(),
        "sklearn LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "sklearn MLPClassifier": make_pipeline(StandardScaler(),
                                               MLPClassifier(max_iter=2000, random_state=seed)),
        "sklearn SVC grid (20, 3-fold)": GridSearchCV(SVC(), SVC_GRID, cv=3),
        "sklearn LogisticRegression grid (7, 3-fold)": GridSearchCV(
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)), LOGREG_GRID, cv=3),
    }
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_train, train.y)
        row = {"method": name, "seconds": time.perf_counter() - start,
               "test_accuracy": float((model.predict(X_test) == test.y).mean())}
        if isinstance(model, GridSearchCV):
            row["best_params"] = model.best_params_
        rows.append(row)
    return rows


def _search(controller: str, out: Path, trials: int, cv: int, seed: int, timeout: float | None,
            early_stop: str | None = None) -> dict:
    start = time.perf_counter()
    extra = {} if early_stop is None else {"early_stop": early_stop}
    result = autoarch.search("digits", out=out / controller, controller=controller, trials=trials, cv=cv,
                             seed=seed, timeout=timeout, **extra)
    seconds = time.perf_counter() - start
    stages = {r.stage: r.to_dict() for r in result.compression.stages}
    return {
        "method": f"autoarch {controller}",
        "seconds": seconds,
        "trials": sum(t.state.is_finished() for t in result.study.trials),
        "complete": sum(t.state.name == "COMPLETE" for t in result.study.trials),
        "substituted": result.report.get("retrain", {}).get("substituted"),
        "cv_accuracy": result.cv_scores["accuracy"][0],
        "test_accuracy": result.test_scores["accuracy"],
        "stages": stages,
        "architecture": result.report["best"]["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=None, help="autoarch search's --timeout (seconds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one repetition per seed (default 0)")
    parser.add_argument("--controllers", nargs="+", default=["evolution", "random"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-digits"))
    parser.add_argument("--early-stop", default=None, help="autoarch search's --early-stop (default: its own)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first so that the searches start from scratch.")

    summary = []
    for seed in args.seeds:
        out = args.out if len(args.seeds) == 1 else args.out / f"seed{seed}"
        runs = [_search(c, out, args.trials, args.cv, seed, args.timeout, args.early_stop) for c in args.controllers]
        baselines = _sklearn_baselines(seed)
        _print_run(runs, baselines, seed, args.trials, args.cv)
        summary.append({"seed": seed, "runs": runs, "baselines": baselines})
        (out / "benchmark.json").write_text(json.dumps({"runs": runs, "baselines": baselines}, indent=2,
                                                       default=str))
    if len(args.seeds) > 1:
        _print_summary(summary)


def _print_run(runs: list[dict], baselines: list[dict], seed: int, trials: int, cv: int) -> None:
    print(f"\nDigits, stratified 80/20 split (seed {seed}): 1,437 train / 360 held-out images; "
          f"{trials} trials, {cv}-fold CV.\n")
    print("| method | wall time (s) | trials | best CV accuracy | held-out accuracy |")
    print("|---|---|---|---|---|")
    for r in runs:
        print(f"| {r['method']} | {r['seconds']:.0f} | {r['trials']} | {r['cv_accuracy']:.4f} | "
              f"{r['test_accuracy']:.4f} |")
    for r in baselines:
        print(f"| {r['method']} | {r['seconds']:.1f} | - | - | {r['test_accuracy']:.4f} |")
    for r in runs:
        print(f"\n{r['method']} winner: {r['architecture']}\n")
        print("| stage | params | MACs | file | ORT latency b1 (ms) | ORT latency b64 (ms) | held-out accuracy |")
        print("|---|---|---|---|---|---|---|")
        for name, s in r["stages"].items():
            lat1 = f"{s['latency_b1_ms']:.3f}" if "latency_b1_ms" in s else "-"
            lat64 = f"{s['latency_b64_ms']:.3f}" if "latency_b64_ms" in s else "-"
            print(f"| {name} | {s['params']:,} | {s['macs']:,} | {s['bytes'] / 1024:.1f} KiB | {lat1} | {lat64} | "
                  f"{s['accuracy']:.4f} |")
        st = r["stages"]
        fp32 = st.get("onnx fp32 unpruned", st["onnx fp32"])
        print(f"\nint8 file / unpruned fp32 ONNX file: {st['onnx int8']['bytes'] / fp32['bytes']:.1%}; "
              f"int8 file / pruned fp32 ONNX file: {st['onnx int8']['bytes'] / st['onnx fp32']['bytes']:.1%}; "
              f"int8 - fp32 (pruned) held-out accuracy: "
              f"{100 * (st['onnx int8']['accuracy'] - st['onnx fp32']['accuracy']):+.2f} pt", flush=True)


def _print_summary(summary: list[dict]) -> None:
    """One row per seed and method: wall time, best CV, held-out fp32 winner and shipped int8 model, best sklearn."""
    print("\n| seed | method | wall time (s) | trials | best CV | held-out fp32 winner | held-out shipped int8 | "
          "int8 file / fp32 file | tuned SVC grid (held-out) | best sklearn (held-out) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rep in summary:
        best = max(rep["baselines"], key=lambda b: b["test_accuracy"])
        grid = next(b for b in rep["baselines"] if b["method"].startswith("sklearn SVC grid"))
        for r in rep["runs"]:
            st = r["stages"]
            fp32 = st.get("onnx fp32 unpruned", st["onnx fp32"])
            print(f"| {rep['seed']} | {r['method']} | {r['seconds']:.0f} | {r['trials']} ({r['complete']} complete"
                  f"{', retrain substituted' if r['substituted'] else ''}) | {r['cv_accuracy']:.4f} | "
                  f"{r['test_accuracy']:.4f} | {st['onnx int8']['accuracy']:.4f} | "
                  f"{st['onnx int8']['bytes'] / fp32['bytes']:.1%} | {grid['test_accuracy']:.4f} | "
                  f"{best['test_accuracy']:.4f} "
                  f"({best['method'].removeprefix('sklearn ')}) |")
    for method in dict.fromkeys(r["method"] for rep in summary for r in rep["runs"]):
        rows = [r for rep in summary for r in rep["runs"] if r["method"] == method]
        fp32 = [r["test_accuracy"] for r in rows]
        int8 = [r["stages"]["onnx int8"]["accuracy"] for r in rows]
        print(f"\n{method}: {len(rows)} seeds; held-out fp32 winner mean {sum(fp32) / len(fp32):.4f} "
              f"(>= 0.99 in {sum(a >= 0.99 for a in fp32)}); shipped int8 mean {sum(int8) / len(int8):.4f} "
              f"(>= 0.99 in {sum(a >= 0.99 for a in int8)}); max wall time {max(r['seconds'] for r in rows):.0f} s")
    grids = [next(b for b in rep["baselines"] if b["method"].startswith("sklearn SVC grid")) for rep in summary]
    print(f"\ntuned SVC grid: held-out mean {sum(g['test_accuracy'] for g in grids) / len(grids):.4f}, "
          f"{max(g['seconds'] for g in grids):.0f} s at most; best parameters "
          f"{[g['best_params'] for g in grids]}")


if __name__ == "__main__":
    main()
