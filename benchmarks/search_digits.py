"""The README's main job on sklearn digits, side by side with what a user would try instead.

In one run, on the same stratified 80/20 split: ``autoarch search digits`` (evolution) with the README's
options; random search with the same trial budget; sklearn's SVC, LogisticRegression and MLPClassifier.

    python benchmarks/search_digits.py --trials 40 --cv 3

Prints a markdown table (copy it into BENCHMARKS.md) and writes the run directories under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

import autoarch
from autoarch.data import load_dataset, train_test_split


def _sklearn_baselines(seed: int) -> list[dict]:
    data = load_dataset("digits")
    train, test = train_test_split(data, 0.2, seed=seed)  # the split autoarch.search uses
    X_train, X_test = train.X.reshape(len(train), -1), test.X.reshape(len(test), -1)
    models = {
        "sklearn SVC (rbf)": SVC(),
        "sklearn LogisticRegression": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "sklearn MLPClassifier": make_pipeline(StandardScaler(),
                                               MLPClassifier(max_iter=2000, random_state=seed)),
    }
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X_train, train.y)
        rows.append({"method": name, "seconds": time.perf_counter() - start,
                     "test_accuracy": float((model.predict(X_test) == test.y).mean())})
    return rows


def _search(controller: str, out: Path, trials: int, cv: int, seed: int) -> dict:
    start = time.perf_counter()
    result = autoarch.search("digits", out=out / controller, controller=controller, trials=trials, cv=cv,
                             seed=seed)
    seconds = time.perf_counter() - start
    stages = {r["stage"]: r for r in result.compression.stages}
    return {
        "method": f"autoarch {controller}",
        "seconds": seconds,
        "trials": len(result.study.trials),
        "cv_accuracy": result.cv_scores["accuracy"][0],
        "test_accuracy": result.test_scores["accuracy"],
        "stages": stages,
        "architecture": result.report["best"]["summary"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-digits"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; remove it first so that the searches start from scratch.")

    runs = [_search("evolution", args.out, args.trials, args.cv, args.seed),
            _search("random", args.out, args.trials, args.cv, args.seed)]
    baselines = _sklearn_baselines(args.seed)

    print(f"\nDigits, stratified 80/20 split (seed {args.seed}): 1,437 train / 360 held-out images; "
          f"{args.trials} trials, {args.cv}-fold CV.\n")
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
              f"{100 * (st['onnx int8']['accuracy'] - st['onnx fp32']['accuracy']):+.2f} pt")
    (args.out / "benchmark.json").write_text(json.dumps({"runs": runs, "baselines": baselines}, indent=2,
                                                        default=str))


if __name__ == "__main__":
    main()
