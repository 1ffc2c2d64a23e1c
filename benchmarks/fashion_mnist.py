"""Fashion-MNIST end to end: machine peak, trainer throughput, tuned baselines and ``autoarch search`` itself.

    python benchmarks/fashion_mnist.py --timeout 1800 --out runs/bench-fmnist
    python benchmarks/fashion_mnist.py --smoke --out /tmp/fmnist-smoke   # seconds: tiny sizes, 1 epoch

Everything runs in one process on one machine, so that the numbers compare:

1. Peak: fp32 GFLOP/s of a 2048x2048 @ 2048x2048 torch matmul (one warm-up, best of 5, torch's default threads).
2. Trainer throughput on the 60,000 training images, a LeNet-5, batch 128, Adam lr 1e-3: (a) a plain hand-written
   torch loop, (b) ``autoarch.trainer.fit`` on the same network wrapped in ``autoarch.model.Model``. Samples/s of
   one epoch (best of 2), the ratio (b)/(a) (target >= 0.9), achieved GFLOP/s (training ~ 3 x 2 x forward MACs
   per sample) and its share of the matmul peak.
3. Baselines on the official test set (10,000 t10k images): (a) LeNet-5, 10 epochs of the hand loop on all
   60,000 training images (pixels / 255); (b) logistic regression on pixels / 255, C picked from a grid on a
   stratified validation split carved from the training images, refitted on all 60,000 with the best C.
4. ``python -m autoarch.cli search fashion-mnist --timeout T --out OUT/autoarch [--autoarch-args ...]`` in a
   subprocess, as a user runs it: its wall clock, report.json's compression stages and trial states, the
   leaderboard's fidelity columns if any, and the shipped ``model.int8.onnx`` evaluated here with onnxruntime on
   the official test images (the headline figure).

Writes OUT/summary.json and OUT/summary.md and prints the markdown. ``--smoke`` uses 2,000 training and 1,000 test
images, 1 epoch everywhere, a 2-value grid, and passes ``--max-samples 600 --trials 2 --epochs 1 --cv 2`` to
autoarch. A failed autoarch run is reported as failed (with the last lines of its stderr), never hidden.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split as sk_split
from torch import nn

FMNIST_DIR = Path(os.environ.get("AUTOARCH_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
LENET_MACS = 28 * 28 * 6 * 25 + 10 * 10 * 16 * 25 * 6 + 400 * 120 + 120 * 84 + 84 * 10  # 416,520 per sample
BATCH = 128
LR = 1e-3


# ---------------------------------------------------------------------------------------------------- data

def _read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=header)


def _load_test() -> tuple[np.ndarray, np.ndarray]:
    """The official 10,000 t10k images as float32 raw pixels (n, 1, 28, 28) and int64 labels."""
    X = _read_idx(FMNIST_DIR / "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32)
    y = _read_idx(FMNIST_DIR / "t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return X, y


def _load_train() -> tuple[np.ndarray, np.ndarray]:
    """The 60,000 training images through the library's loader (uint8 raw pixels, int64 labels)."""
    from autoarch.loaders import load_dataset

    data = load_dataset("fashion-mnist")
    return data.X, data.y


def _stratified(X: np.ndarray, y: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    if n >= len(y):
        return X, y
    idx, _ = sk_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    idx = np.sort(idx)
    return X[idx], y[idx]


# ---------------------------------------------------------------------------------------------------- torch

def lenet5() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """fp32 GFLOP/s of an n x n @ n x n matmul: one warm-up, best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"n": n, "repeats": repeats, "best_seconds": best, "gflops": 2 * n ** 3 / best / 1e9}


def _hand_epoch(net: nn.Module, opt: torch.optim.Optimizer, X: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator) -> float:
    """One epoch of the plain loop; its seconds."""
    net.train()
    start = time.perf_counter()
    order = torch.randperm(len(X), generator=generator)
    for i in range(0, len(X), BATCH):
        idx = order[i:i + BATCH]
        loss = nn.functional.cross_entropy(net(X[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def _accuracy(net: nn.Module, X: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    net.eval()
    pred = torch.cat([net(X[i:i + batch]).argmax(1) for i in range(0, len(X), batch)])
    return float((pred == y).float().mean())


def _macs_check() -> int | None:
    """LeNet's forward MACs by the library's counter (torch-pruning), to cross-check the analytic count."""
    try:
        from autoarch.compress.pruning import count_macs_params

        return count_macs_params(lenet5(), torch.zeros(1, 1, 28, 28))[0]
    except Exception as exc:  # the library may be mid-edit; the analytic count stands alone then
        print(f"count_macs_params unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def throughput(X: np.ndarray, y: np.ndarray, repeats: int, peak_gflops: float) -> dict[str, Any]:
    """Samples/s of one epoch (best of ``repeats``): the hand loop vs ``autoarch.trainer.fit``."""
    from autoarch.model import Model, fit_standardizer
    from autoarch.trainer import TrainConfig, fit

    n = len(X)
    Xt, yt = torch.from_numpy(X / np.float32(255.0)), torch.from_numpy(y)
    torch.manual_seed(0)
    net = lenet5()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    mean, std = fit_standardizer(X)
    model = Model(lenet5(), mean, std)
    cfg = TrainConfig(optimizer="adam", lr=LR, batch_size=BATCH, schedule="constant", l1=0.0, weight_decay=0.0,
                      max_epochs=1)
    warm = lenet5()  # a few untimed steps first: one-time kernel setup is not the loops' cost
    _hand_epoch(warm, torch.optim.Adam(warm.parameters(), lr=LR), Xt[:5 * BATCH], yt[:5 * BATCH], gen)
    hand, lib = [], []
    for r in range(repeats):  # interleaved, so that a noisy neighbour on the machine hits both alike
        hand.append(_hand_epoch(net, opt, Xt, yt, gen))
        start = time.perf_counter()
        fit(model, X, y, "classification", cfg, epochs=1, seed=r)  # the whole call: what a trial pays per epoch
        lib.append(time.perf_counter() - start)

    macs_lib = _macs_check()
    flops_per_sample = 3 * 2 * LENET_MACS
    rows = {}
    for name, secs in (("hand loop", hand), ("autoarch.trainer.fit", lib)):
        sps = n / min(secs)
        gflops = sps * flops_per_sample / 1e9
        rows[name] = {"epoch_seconds": secs, "samples_per_s": sps, "gflops": gflops,
                      "share_of_peak": gflops / peak_gflops}
    ratio = rows["autoarch.trainer.fit"]["samples_per_s"] / rows["hand loop"]["samples_per_s"]
    return {"n_train": n, "batch_size": BATCH, "epochs_timed": repeats, "threads": torch.get_num_threads(),
            "forward_macs_analytic": LENET_MACS, "forward_macs_count_macs_params": macs_lib,
            "train_flops_per_sample": flops_per_sample, "rows": rows, "ratio_fit_over_hand": ratio,
            "target_ratio": 0.9, "meets_target": ratio >= 0.9}


# ---------------------------------------------------------------------------------------------------- baselines

def lenet_baseline(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, epochs: int
                   ) -> dict[str, Any]:
    torch.manual_seed(0)
    net = lenet5()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    Xt, yt = torch.from_numpy(X / np.float32(255.0)), torch.from_numpy(y)
    start = time.perf_counter()
    epoch_secs = [_hand_epoch(net, opt, Xt, yt, gen) for _ in range(epochs)]
    train_seconds = time.perf_counter() - start
    acc = _accuracy(net, torch.from_numpy(X_test / np.float32(255.0)), torch.from_numpy(y_test))
    params = _n_params(net)
    return {"system": f"LeNet-5, hand loop ({epochs} epochs, Adam {LR:g}, batch {BATCH})",
            "test_accuracy": acc, "params": params, "size_kib": params * 4 / 1024, "size_note": "fp32 weights",
            "seconds": time.perf_counter() - start, "train_seconds": train_seconds, "epoch_seconds": epoch_secs,
            "n_train": len(y), "n_test": len(y_test)}


def logreg_baseline(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, grid: list[float],
                    n_grid_fit: int, n_val: int, max_iter: int) -> dict[str, Any]:
    """C from ``grid`` by accuracy on a stratified validation split of the training images (the grid's models
    fit on ``n_grid_fit`` other training images), then a refit on all training images with the best C."""
    flat = X.reshape(len(X), -1) / np.float32(255.0)
    flat_test = X_test.reshape(len(X_test), -1) / np.float32(255.0)
    fit_idx, rest = sk_split(np.arange(len(y)), train_size=n_grid_fit, stratify=y, random_state=0)
    val_idx = sk_split(rest, train_size=n_val, stratify=y[rest], random_state=0)[0] if n_val < len(rest) else rest
    start = time.perf_counter()
    tried = []
    for C in grid:
        t0 = time.perf_counter()
        model = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(flat[fit_idx], y[fit_idx])
        tried.append({"C": C, "val_accuracy": float((model.predict(flat[val_idx]) == y[val_idx]).mean()),
                      "n_iter": int(model.n_iter_.max()), "hit_max_iter": bool(model.n_iter_.max() >= max_iter),
                      "seconds": time.perf_counter() - t0})
    grid_seconds = time.perf_counter() - start
    best = max(tried, key=lambda r: r["val_accuracy"])
    t0 = time.perf_counter()
    model = LogisticRegression(C=best["C"], solver="lbfgs", max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(flat, y)
    refit_seconds = time.perf_counter() - t0
    acc = float((model.predict(flat_test) == y_test).mean())
    params = int(model.coef_.size + model.intercept_.size)
    return {"system": f"LogisticRegression (lbfgs, max_iter {max_iter}, C={best['C']:g} of {grid})",
            "test_accuracy": acc, "params": params, "size_kib": params * 4 / 1024, "size_note": "as fp32 weights",
            "seconds": grid_seconds + refit_seconds, "grid_seconds": grid_seconds, "refit_seconds": refit_seconds,
            "grid": tried, "best_C": best["C"], "n_grid_fit": len(fit_idx), "n_val": len(val_idx),
            "refit_n_iter": int(model.n_iter_.max()), "refit_hit_max_iter": bool(model.n_iter_.max() >= max_iter),
            "n_train": len(y), "n_test": len(y_test)}


# ---------------------------------------------------------------------------------------------------- autoarch

def _onnx_accuracy(path: Path, X: np.ndarray, y: np.ndarray, batch: int = 1000) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    fixed = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    step = fixed or batch
    preds = []
    for i in range(0, len(X), step):
        xb = np.ascontiguousarray(X[i:i + step], dtype=np.float32)
        n = len(xb)
        if fixed and n < fixed:  # a fixed batch dimension: pad the last batch
            xb = np.concatenate([xb, np.zeros((fixed - n, *xb.shape[1:]), np.float32)])
        preds.append(np.asarray(sess.run(None, {inp.name: xb})[0])[:n].argmax(1))
    return float((np.concatenate(preds) == y).mean())


def _tail(path: Path, lines: int = 25) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def run_autoarch(out: Path, timeout: float, extra: list[str], X_test: np.ndarray, y_test: np.ndarray
                 ) -> dict[str, Any]:
    run_dir = out / "autoarch"
    cmd = [sys.executable, "-m", "autoarch.cli", "search", "fashion-mnist", "--timeout", str(timeout),
           "--out", str(run_dir), *extra]
    stdout_path, stderr_path = out / "autoarch.stdout.txt", out / "autoarch.stderr.txt"
    print(f"running: {shlex.join(cmd)}  (output in {stdout_path}, {stderr_path})", flush=True)
    res: dict[str, Any] = {"command": shlex.join(cmd), "status": "failed"}
    start = time.perf_counter()
    with stdout_path.open("w") as so, stderr_path.open("w") as se:
        rc = subprocess.run(cmd, stdout=so, stderr=se, check=False).returncode
    res["seconds"] = time.perf_counter() - start
    res["returncode"] = rc
    if rc != 0:
        res["error"] = f"exit status {rc}"
        res["stderr_tail"] = _tail(stderr_path)
        return res
    try:
        report = json.loads((run_dir / "report.json").read_text())
    except (OSError, ValueError) as exc:
        res["error"] = f"no readable report.json ({exc})"
        res["stderr_tail"] = _tail(stderr_path)
        return res
    search = report.get("search", {})
    metric = search.get("metric", "accuracy")
    plain = metric[4:] if metric.startswith("neg_") else metric
    res["metric"] = plain
    res["trial_states"] = search.get("trial_states")
    res["library_test"] = report.get("test")
    res["library_n_test"] = report.get("data", {}).get("n_test")
    res["best"] = report.get("best", {}).get("summary")
    res["stages"] = [{k: row.get(k) for k in ("stage", "params", "bytes", plain) if k in row}
                     for row in report.get("compression", {}).get("stages", [])]
    res["fidelity"] = _fidelity(run_dir / "leaderboard.csv")
    int8 = run_dir / "model.int8.onnx"
    if not int8.is_file():
        res["error"] = "no model.int8.onnx in the run directory"
        return res
    res["int8_kib"] = int8.stat().st_size / 1024
    try:
        res["int8_test_accuracy"] = _onnx_accuracy(int8, X_test, y_test)
    except Exception as exc:  # report, do not hide
        res["error"] = f"evaluating model.int8.onnx failed ({type(exc).__name__}: {exc})"
        return res
    res["n_test"] = len(y_test)
    res["status"] = "ok"
    return res


def _fidelity(path: Path) -> dict[str, dict[str, int]] | None:
    """Trials per value of the leaderboard's ``epochs`` / ``fidelity`` columns, when it has them."""
    import pandas as pd

    try:
        board = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None
    found = {c: {str(k): int(v) for k, v in board[c].value_counts(dropna=False).sort_index().items()}
             for c in board.columns if c in ("epochs", "fidelity")}
    return found or None


# ---------------------------------------------------------------------------------------------------- report

def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_markdown(summary: dict[str, Any]) -> str:
    peak, tp = summary["peak"], summary.get("throughput")
    lines = [f"# Fashion-MNIST benchmark{' (SMOKE: tiny sizes, not a result)' if summary['smoke'] else ''}", "",
             f"Machine: {summary['machine']['platform']}, {summary['machine']['cpus']} CPUs, torch "
             f"{summary['machine']['torch']} ({summary['machine']['threads']} threads). Matmul peak (fp32 "
             f"{peak['n']}x{peak['n']}, best of {peak['repeats']}): **{peak['gflops']:.1f} GFLOP/s**.", ""]
    if tp:
        lines += [f"## Trainer throughput: LeNet-5, {tp['n_train']:,} images, batch {tp['batch_size']}, Adam, "
                  f"best of {tp['epochs_timed']} epoch(s)", "",
                  f"Forward MACs/sample: {tp['forward_macs_analytic']:,} (analytic), "
                  f"{_fmt(tp['forward_macs_count_macs_params'], ',')} (count_macs_params); training FLOPs/sample "
                  f"= 3 x 2 x MACs = {tp['train_flops_per_sample']:,}.", "",
                  "| loop | samples/s | GFLOP/s | share of matmul peak | epoch seconds |", "|---|---|---|---|---|"]
        for name, r in tp["rows"].items():
            lines.append(f"| {name} | {r['samples_per_s']:,.0f} | {r['gflops']:.2f} | {r['share_of_peak']:.1%} | "
                         f"{', '.join(f'{s:.2f}' for s in r['epoch_seconds'])} |")
        lines += ["", f"fit / hand loop = **{tp['ratio_fit_over_hand']:.3f}** (target >= {tp['target_ratio']}: "
                  f"{'met' if tp['meets_target'] else 'NOT met'}).", ""]
    n_test = summary["n_test"]
    lines += [f"## Test accuracy on the official test set ({n_test:,} t10k images)", "",
              "| system | test accuracy | model size (KiB) | seconds |", "|---|---|---|---|"]
    a = summary.get("autoarch")
    if a is not None:
        if a["status"] == "ok":
            lines.append(f"| autoarch search, shipped model.int8.onnx | **{a['int8_test_accuracy']:.4f}** | "
                         f"{a['int8_kib']:.1f} (int8 ONNX file) | {a['seconds']:.0f} |")
        else:
            lines.append(f"| autoarch search: **FAILED** ({a.get('error')}) | - | - | "
                         f"{_fmt(a.get('seconds'), '.0f')} |")
    for b in summary.get("baselines", []):
        lines.append(f"| {b['system']} | {b['test_accuracy']:.4f} | {b['size_kib']:.1f} ({b['size_note']}) | "
                     f"{b['seconds']:.0f} |")
    for b in summary.get("baselines", []):
        if "grid" in b:
            lines += ["", f"Logistic regression tuning: each C fitted on {b['n_grid_fit']:,} training images, "
                      f"scored on {b['n_val']:,} other training images (both stratified, seed 0); refit on all "
                      f"{b['n_train']:,} with C={b['best_C']:g} ({b['refit_n_iter']} iterations"
                      f"{', hit max_iter' if b['refit_hit_max_iter'] else ''}; grid {b['grid_seconds']:.0f} s, "
                      f"refit {b['refit_seconds']:.0f} s).", "", "| C | validation accuracy | iterations | seconds |",
                      "|---|---|---|---|"]
            lines += [f"| {g['C']:g} | {g['val_accuracy']:.4f} | {g['n_iter']}{' (max)' if g['hit_max_iter'] else ''} "
                      f"| {g['seconds']:.1f} |" for g in b["grid"]]
    if a is not None:
        lines += ["", "## autoarch run", "", f"Command: `{a['command']}`; wall clock {_fmt(a.get('seconds'), '.0f')} s "
                  "(search + retrain + prune + fine-tune + export + int8 + verification)."]
        if a["status"] != "ok":
            lines += ["", f"**FAILED: {a.get('error')}**. Last lines of its stderr:", "", "```",
                      *a.get("stderr_tail", []), "```"]
        if a.get("trial_states") is not None:
            lines += ["", f"Trial states: {a['trial_states']}. Winner: {a.get('best')}."]
        if a.get("fidelity"):
            lines += ["", f"Trials per leaderboard fidelity value: {a['fidelity']}."]
        if a.get("stages"):
            m = a["metric"]
            lines += ["", f"Compression stages (the library's own held-out split: {_fmt(a.get('library_n_test'), ',')}"
                      " images):", "", f"| stage | params | bytes | {m} |", "|---|---|---|---|"]
            lines += [f"| {s.get('stage')} | {_fmt(s.get('params'), ',')} | {_fmt(s.get('bytes'), ',')} | "
                      f"{_fmt(s.get(m), '.4f')} |" for s in a["stages"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=1800, help="autoarch search's --timeout (seconds)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fmnist"))
    parser.add_argument("--autoarch-args", default="", help="more options for autoarch search, one string")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and 1 epoch: checks the script, no result")
    parser.add_argument("--skip-autoarch", action="store_true")
    parser.add_argument("--skip-baselines", action="store_true")
    args = parser.parse_args()
    if not args.skip_autoarch and (args.out / "autoarch").exists():
        raise SystemExit(f"{args.out / 'autoarch'} exists; remove it first so that the search starts from scratch.")
    args.out.mkdir(parents=True, exist_ok=True)

    n_train, n_test = (2000, 1000) if args.smoke else (None, None)
    epochs, repeats = (1, 1) if args.smoke else (10, 2)
    X, y = _load_train()
    X_test, y_test = _load_test()
    if args.smoke:
        X, y = _stratified(X, y, n_train)
        X_test, y_test = _stratified(X_test, y_test, n_test)
    summary: dict[str, Any] = {
        "smoke": args.smoke, "n_train": len(y), "n_test": len(y_test),
        "args": {k: str(v) for k, v in vars(args).items()},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "python": platform.python_version()},
    }
    print("matmul peak ...", flush=True)
    summary["peak"] = matmul_peak()
    print(f"  {summary['peak']['gflops']:.1f} GFLOP/s\ntrainer throughput ...", flush=True)
    summary["throughput"] = throughput(X, y, repeats, summary["peak"]["gflops"])
    if not args.skip_baselines:
        print("LeNet-5 baseline ...", flush=True)
        summary["baselines"] = [lenet_baseline(X, y, X_test, y_test, epochs)]
        print("logistic regression baseline ...", flush=True)
        grid_args = ((500, 500, [0.1, 1.0], 100) if args.smoke else (10_000, 10_000, [0.01, 0.1, 1.0], 500))
        summary["baselines"].append(logreg_baseline(X, y, X_test, y_test, grid_args[2], grid_args[0], grid_args[1],
                                                    grid_args[3]))
    if not args.skip_autoarch:
        extra = (["--max-samples", "600", "--trials", "2", "--epochs", "1", "--cv", "2"] if args.smoke else [])
        summary["autoarch"] = run_autoarch(args.out, args.timeout, extra + shlex.split(args.autoarch_args),
                                           X_test, y_test)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    md = render_markdown(summary)
    (args.out / "summary.md").write_text(md)
    print(md)
    if summary.get("autoarch", {}).get("status") == "failed":
        raise SystemExit(f"autoarch FAILED: {summary['autoarch'].get('error')} (see {args.out / 'summary.md'})")


if __name__ == "__main__":
    main()
