"""Compression side by side: torch fp32 vs ONNX Runtime fp32 vs ORT pruned vs ORT pruned int8.

Two models, each compressed with ``autoarch.compress.compress_run`` (iterative pruning within an accuracy
budget measured on data held back from the training split, then int8):

- the digits winner: ``autoarch.search("digits", ...)`` (the CNN space; the run directory is reused when it
  exists);
- a Fashion-MNIST CNN (Debian ``dataset-fashion-mnist``): one fixed architecture of the CNN space trained on
  the training split, written as a run directory like a search's (architecture.json, winner.pt,
  report.json), so that the same ``compress_run`` restarts from it.

Every figure of a model is measured in the same process, interleaved: ORT latency is the median over
``--rounds`` rounds of 30 runs at batch 1 and 64 on 1 thread; torch latency the same with
``torch.set_num_threads(1)``. Accuracy is on the held-out split, which no decision used.

    nice -n 19 python benchmarks/compression.py

Prints a markdown table per model (copy them into BENCHMARKS.md) and writes ``benchmark.json`` under --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import autoarch
from autoarch.compress import compress_run, count_macs_params, export_onnx, latency_ms, run_onnx, session
from autoarch.compress.export import model_metadata
from autoarch.compress.run import load_run_model, reload_data
from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.loaders import load_dataset
from autoarch.metrics import compute_metrics
from autoarch.search_spaces import CNNSpace
from autoarch.trainer import TrainConfig, fit, predict

FASHION_ARCH = {"n_stages": 3, "channels_0": 32, "n_convs_0": 1, "kernel_0": 3, "channels_1": 64, "n_convs_1": 1,
                "kernel_1": 3, "channels_2": 128, "n_convs_2": 2, "kernel_2": 3, "connectivity": "plain",
                "pooling": "max", "activation": "relu", "dropout": 0.2, "batch_norm": True}
TARGETS = {"size": 8.0, "speed_b64": 2.5, "max_drop_pt": 1.0}


def _digits_run(out: Path, trials: int, cv: int, seed: int) -> Path:
    run = out / "digits"
    if not (run / "winner.pt").is_file():
        autoarch.search("digits", out=run, trials=trials, cv=cv, seed=seed)
    return run


def _fashion_run(out: Path, max_samples: int, epochs: int, seed: int) -> Path:
    """Train FASHION_ARCH on the training split and write a search-like run directory (once)."""
    run = out / "fashion-mnist"
    if (run / "winner.pt").is_file():
        return run
    run.mkdir(parents=True, exist_ok=True)
    data = load_dataset("fashion-mnist", max_samples=max_samples, seed=seed)
    train, test = train_test_split(data, 0.2, seed)
    space = CNNSpace()
    torch.manual_seed(seed)
    model = build_model(space, FASHION_ARCH, train)
    tcfg = TrainConfig(optimizer="adamw", lr=3e-3, batch_size=128, schedule="cosine", weight_decay=1e-4)
    start = time.perf_counter()
    fit(model, train.X, train.y, train.task, tcfg, seed=seed, epochs=epochs)
    model = model.cpu().eval()
    scores = compute_metrics(test.task, test.y, predict(model, test.X), test.n_outputs)
    spec = {"autoarch_version": autoarch.__version__, "space": space.name, "architecture": FASHION_ARCH,
            "input_shape": list(train.input_shape), "n_outputs": train.n_outputs, "task": train.task,
            "classes": train.classes, "feature_names": None, "metric": "accuracy", "pruning_history": []}
    report = {"data": {"name": data.name, "task": data.task, "n_samples": len(data), "n_train": len(train),
                       "n_test": len(test), "classes": data.classes,
                       "source": {"source": "fashion-mnist", "target": None, "task": None}},
              "config": {"seed": seed, "test_size": 0.2, "max_samples": max_samples},
              "search": {"metric": "accuracy", "space": "cnn", "controller": "none (fixed architecture)"},
              "best": {"architecture": FASHION_ARCH, "training": tcfg.to_dict(), "retrain_epochs": epochs,
                       "train_seconds": time.perf_counter() - start},
              "test": scores}
    (run / "architecture.json").write_text(json.dumps(spec, indent=2))
    (run / "report.json").write_text(json.dumps(report, indent=2))
    torch.save(model.state_dict(), run / "winner.pt")
    return run


def _torch_latency(model: torch.nn.Module, X: np.ndarray, batch: int, repeats: int = 30) -> float:
    xb = torch.as_tensor(np.concatenate([X] * int(np.ceil(batch / len(X))))[:batch], dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as ONNX Runtime is timed; training uses every core
    try:
        return _time_torch(model, xb, repeats)
    finally:
        torch.set_num_threads(threads)


def _time_torch(model: torch.nn.Module, xb: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(5):
            model(xb)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(xb)
            times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _side_by_side(run: Path, bench: Path, rounds: int) -> list[dict[str, Any]]:
    """The four variants of one model, measured interleaved in this process."""
    winner, spec, _, _ = load_run_model(run, "winner")
    pruned = autoarch.load(bench)
    _, test = reload_data(json.loads((run / "report.json").read_text()))
    example = torch.as_tensor(test.X[:2])
    unpruned_onnx = bench / "winner.onnx"
    meta = model_metadata(winner, task=test.task, classes=test.classes, input_shape=test.input_shape)
    export_onnx(winner, example, unpruned_onnx, meta)
    files = {"ORT fp32": unpruned_onnx, "ORT pruned fp32": bench / "model.onnx",
             "ORT pruned int8": bench / "model.int8.onnx"}
    sessions = {name: session(path, threads=1) for name, path in files.items()}
    bench_X = test.X[:64]
    lat: dict[str, dict[int, list[float]]] = {n: {1: [], 64: []} for n in ["torch fp32", *files]}
    for _ in range(rounds):
        for batch in (1, 64):
            lat["torch fp32"][batch].append(_torch_latency(winner, bench_X, batch))
            for name, sess in sessions.items():
                lat[name][batch].append(latency_ms(sess, bench_X, batch))
    macs0, params0 = count_macs_params(winner, example)
    macs1, params1 = count_macs_params(pruned, example)
    rows = [{"model": "torch fp32", "file": "winner.pt", "bytes": (run / "winner.pt").stat().st_size,
             "params": params0, "macs": macs0,
             "accuracy": compute_metrics(test.task, test.y, predict(winner, test.X), test.n_outputs)["accuracy"]}]
    for name, path in files.items():
        out = run_onnx(sessions[name], test.X)
        pruned_file = name != "ORT fp32"
        rows.append({"model": name, "file": path.name, "bytes": path.stat().st_size,
                     "params": params1 if pruned_file else params0, "macs": macs1 if pruned_file else macs0,
                     "accuracy": float((out.argmax(1) == test.y).mean())})
    for row in rows:
        row["latency_b1_ms"] = float(np.median(lat[row["model"]][1]))
        row["latency_b64_ms"] = float(np.median(lat[row["model"]][64]))
    return rows


def _table(name: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    base = next(r for r in rows if r["model"] == "ORT fp32")
    lines = [f"### {name}", "", summary["line"], "",
             "| variant | size | params | MACs/sample | latency b1 (ms) | latency b64 (ms) | held-out accuracy | "
             "size vs ORT fp32 | b64 speed-up vs ORT fp32 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        speed = base["latency_b64_ms"] / r["latency_b64_ms"]
        lines.append(f"| {r['model']} | {r['bytes'] / 1024:.1f} KiB | {r['params']:,} | {r['macs']:,} | "
                     f"{r['latency_b1_ms']:.3f} | {r['latency_b64_ms']:.3f} | {r['accuracy']:.4f} | "
                     f"{base['bytes'] / r['bytes']:.2f}x smaller | {speed:.2f}x |")
    final = rows[-1]
    size, speed = base["bytes"] / final["bytes"], base["latency_b64_ms"] / final["latency_b64_ms"]
    drop = 100 * (rows[0]["accuracy"] - final["accuracy"])
    checks = [f"size {size:.2f}x (target >= {TARGETS['size']:g}x: {'met' if size >= TARGETS['size'] else 'MISSED'})",
              f"b64 speed-up {speed:.2f}x (target >= {TARGETS['speed_b64']:g}x: "
              f"{'met' if speed >= TARGETS['speed_b64'] else 'MISSED'})",
              f"held-out accuracy drop {drop:.2f} pt (target <= {TARGETS['max_drop_pt']:g}: "
              f"{'met' if drop <= TARGETS['max_drop_pt'] else 'MISSED'})"]
    lines += ["", "Pruned + int8 vs unpruned ORT fp32: " + "; ".join(checks) + "."]
    return "\n".join(lines)


def _compress(run: Path, args: argparse.Namespace, **overrides: Any) -> tuple[Path, dict[str, Any], float]:
    bench = run / "bench"
    options = {"max_drop": args.max_drop, "steps": args.steps, "finetune_epochs": args.finetune_epochs,
               "importance": args.importance, "target_latency": args.target_latency, **overrides}
    start = time.perf_counter()
    result = compress_run(run, out=bench, **options)
    seconds = time.perf_counter() - start
    pr = result.pruning
    steps = ", ".join(f"{s['params']:,} params"
                      + (f" / {s['latency_b64_ms']:.2f} ms" if "latency_b64_ms" in s else "")
                      + f" / val {s['val_accuracy']:.4f}" for s in result.steps)
    twin = result.stage("torch fp32")
    retrained = (f" The architecture was retrained without the validation part first (held-out accuracy "
                 f"{twin.scores['accuracy']:.4f}); the kept step was fine-tuned on the whole training split at "
                 "the end." if result.stages[0].stage == "torch fp32 winner" and twin else "")
    summary = {"options": options, "seconds": seconds, "pruning": pr, "steps": result.steps,
               "int8": result.verification.get("onnx_int8", {}).get("decision"),
               "warnings": result.verification.get("warnings", []),
               "line": (f"Compression ({seconds:.0f} s): {json.dumps(options)}; kept step {pr['kept_step']} of "
                        f"{len(result.steps) - 1} ({pr['stop_reason']}); steps: {steps}; int8 "
                        f"{result.verification['onnx_int8']['decision']['method']}.{retrained}")}
    return bench, summary, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/bench-compression", help="where the run directories go")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--digits-trials", type=int, default=20)
    parser.add_argument("--digits-cv", type=int, default=3)
    parser.add_argument("--fashion-samples", type=int, default=20000,
                        help="stratified subset of the 60,000 Fashion-MNIST training images (80%% train, 20%% "
                             "held out)")
    parser.add_argument("--fashion-epochs", type=int, default=10)
    parser.add_argument("--target-latency", type=float, default=0.4)
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--importance", default="l2")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--skip", choices=["digits", "fashion"], action="append", default=[])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("torch_pruning", "onnxruntime", "onnxscript", "torch.onnx", "optuna"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    out = Path(args.out)
    results: dict[str, Any] = {"args": vars(args)}
    tables = []
    jobs = []
    if "digits" not in args.skip:
        jobs.append(("sklearn digits winner (autoarch search)",
                     lambda: _digits_run(out, args.digits_trials, args.digits_cv, args.seed)))
    if "fashion" not in args.skip:
        jobs.append((f"Fashion-MNIST CNN ({args.fashion_samples:,} images, fixed architecture)",
                     lambda: _fashion_run(out, args.fashion_samples, args.fashion_epochs, args.seed)))
    for name, make in jobs:
        run = make()
        bench, summary, _ = _compress(run, args)
        rows = _side_by_side(run, bench, args.rounds)
        results[name] = {"run": str(run), "rows": rows, **summary}
        tables.append(_table(name, rows, summary))
        print(tables[-1], flush=True)
    (out / "benchmark.json").write_text(json.dumps(results, indent=2, default=str))
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
