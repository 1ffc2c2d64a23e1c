"""How well the device cost measured before training predicts the shipped model's (issue #13 item 1).

For N architectures sampled at random from a space (seeded), on digits: the untrained candidate's int8 latency
and size as a search measures them (``autoarch.compress.cost.int8_cost`` with ``shipped_pruning`` of the
compression: pruned first as the winner ships, batch norm given trained-like statistics, the model's metadata
attached; what ``--max-latency-ms`` / ``--max-size-kb`` decide on), then
the same architecture trained briefly and shipped as a search ships its winner (``compress`` with a channel
target: one-shot pruning at ``--prune``, fine-tune, ONNX, int8), and the shipped int8 file's latency and size
measured the same way (a fresh onnxruntime-only process, 1 thread, ``compress.timing``). Reports Spearman's rank
correlation and the share within +-10%, for latency at batch 1 and 64 and for size, with and without pruning
(``--prune 0``: the shipped network is the measured one, so only the weights and the calibration differ). With
pruning, the prediction of the unpruned candidate (as searches measured before 2026-12-07, but with the
batch-norm statistics and metadata) is reported too.

    python benchmarks/latency_prediction.py --n 30 --out runs/bench-latency   # alone on the machine

Run it alone: latency is a timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import torch
from scipy.stats import spearmanr

from autoarch.compress import CompressConfig, compress
from autoarch.compress.cost import int8_cost, shipped_pruning
from autoarch.compress.export import model_metadata
from autoarch.compress.runtime import isolated_latency_ms
from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, fit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--space", default="auto")
    parser.add_argument("--prune", type=float, default=0.15)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset(args.data)
    train, test = train_test_split(data, 0.2, seed=0)
    space = get_space(args.space, data.input_kind)
    sample = np.asarray(train.X[:64], dtype=np.float32)
    tcfg = TrainConfig(optimizer="adam", lr=1e-3, batch_size=64, max_epochs=args.epochs, patience=args.epochs)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    ccfg = CompressConfig(target_channels=round(1 - args.prune, 12), finetune_epochs=1, calibration_samples=64)
    ratio, round_to = shipped_pruning(ccfg)
    rows = []
    for i in range(args.n):
        arch = space.suggest(study.ask())
        model = build_model(space, arch, train)
        metadata = model_metadata(model, task=train.task, classes=train.classes, input_shape=train.input_shape,
                                  feature_names=train.feature_names)  # as trials.device_cost gives it
        before = int8_cost(model, sample, batches=(1, 64), prune=ratio, round_to=round_to, metadata=metadata)
        unpruned = int8_cost(model, sample, batches=(1, 64), metadata=metadata) if ratio > 0 else before
        t0 = time.perf_counter()
        fit(model, train.X, train.y, train.task, tcfg, seed=i, epochs=args.epochs)
        with tempfile.TemporaryDirectory() as tmp:
            comp = compress(model, train, test, tmp, train_config=tcfg, measure_memory=False, config=ccfg)
            assert comp.int8_path is not None
            shipped = isolated_latency_ms(comp.int8_path, sample, (1, 64))
            shipped_kb = comp.int8_path.stat().st_size / 1024
        rows.append({"i": i, "architecture": space.describe(arch), "before": before, "before_unpruned": unpruned,
                     "shipped": {"int8_kb": shipped_kb, "latency_b1_ms": shipped[1], "latency_b64_ms": shipped[64]},
                     "train_and_ship_seconds": time.perf_counter() - t0})
        print(f"{i:3d} {space.describe(arch)[:60]:<60} b1 {before['latency_b1_ms']:.4f} -> {shipped[1]:.4f} ms  "
              f"{before['int8_kb']:.1f} -> {shipped_kb:.1f} KB", flush=True)
    summary = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]), "n": len(rows),
               "data": args.data, "space": space.name, "prune": args.prune, "torch_threads": torch.get_num_threads()}
    for prediction in ("before", "before_unpruned") if ratio > 0 else ("before",):
        summary[prediction] = {}
        for key in ("latency_b1_ms", "latency_b64_ms", "int8_kb"):
            pred = np.array([r[prediction][key] for r in rows])
            true = np.array([r["shipped"][key] for r in rows])
            ratios = pred / true
            summary[prediction][key] = {"spearman": float(spearmanr(pred, true).statistic),
                                        "within_10pct": float(np.mean(np.abs(ratios - 1) <= 0.10)),
                                        "median_ratio_predicted_over_shipped": float(np.median(ratios)),
                                        "min_ratio": float(ratios.min()), "max_ratio": float(ratios.max())}
    (args.out / "latency_prediction.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
