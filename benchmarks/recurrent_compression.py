"""Recurrent compression on airline tweets: textbook LSTM and GRU networks trained, pruned and quantized by
``autoarch.compress.compress`` (issue #14: "LSTM/GRU winners pruned + int8 >= 3x smaller, latency at batch 1
and 64 reported").

    python benchmarks/recurrent_compression.py --out runs/bench-recurrent
    python benchmarks/recurrent_compression.py --smoke --out /tmp/rc-smoke     # a minute: 1,500 tweets

For each cell (LSTM, GRU; the rnn space's warm start: 64-d embedding, one 64-unit layer, last state, Adam 3e-3,
vocabulary 5,000 fitted on the training part) the network is trained on the training part of the stratified
80/20 split (seed 0; 10% of it for early stopping), then compressed twice from the same weights:

- ``--target-channels 0.5`` (what ``--prune 0.5`` does: one shot, fine-tuned on the whole training part),
- ``--target-params 0.3 --max-drop 1`` (pruned in steps, each checked on 10% of the training part held back).

Every row is the compression pipeline's own measurement (``report`` stages: onnxruntime, 1 thread, median at
batch 1 and 64) and the held-out accuracy, which no decision used. Writes OUT/summary.json and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from autoarch.compress import CompressConfig, compress
from autoarch.data import from_texts, split_index
from autoarch.evaluate import build_model
from autoarch.search_spaces import RNNSpace
from autoarch.text import load_text_builtin
from autoarch.trainer import TrainConfig, fit, predict

TARGETS = {"channels 0.5 (one shot)": {"target_channels": 0.5},
           "params 0.3, max drop 1 pt (steps)": {"target_params": 0.3, "max_drop": 1.0}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    texts, labels = load_text_builtin("airline-tweets")
    if args.smoke:
        keep, _ = train_test_split(np.arange(len(texts)), train_size=1500, random_state=0, stratify=labels)
        texts, labels = [texts[i] for i in sorted(keep)], [labels[i] for i in sorted(keep)]
    data = from_texts(texts, labels, name="airline-tweets")
    train_idx, test_idx = (np.sort(i) for i in split_index(data, test_size=0.2, seed=0))
    train, test = data.subset(train_idx), data.subset(test_idx)
    fit_part, val_part = (np.sort(i) for i in split_index(train, test_size=0.1, seed=0))
    epochs = 2 if args.smoke else args.epochs
    space = RNNSpace()
    results: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "epochs": epochs, "runs": []}
    lines = [f"Airline tweets: {len(train)} training / {len(test)} held-out tweets (stratified 80/20, seed 0); "
             f"onnxruntime, 1 thread", "",
             "| cell | target | params | accuracy fp32 -> int8 | file: fp32 unpruned -> int8 (ratio) | "
             "latency b1: fp32 unpruned -> int8 (ms) | latency b64 (ms) | int8 left in float |",
             "|---|---|---|---|---|---|---|---|"]
    for cell in ("lstm", "gru"):
        torch.manual_seed(0)
        arch = {**space.warm_starts()[0][1], "cell": cell}
        model = build_model(space, arch, train.subset(fit_part))
        cfg = TrainConfig(optimizer="adam", lr=arch["lr"], batch_size=32, max_epochs=epochs, patience=3)
        t0 = time.perf_counter()
        fit(model, train.X[fit_part], train.y[fit_part], train.task, cfg, X_val=train.X[val_part],
            y_val=train.y[val_part])
        trained_s = time.perf_counter() - t0
        accuracy = float(np.mean(predict(model, test.X).argmax(1) == test.y))
        for label, target in TARGETS.items():
            t0 = time.perf_counter()
            config = CompressConfig(**target, finetune_epochs=2 if args.smoke else 5, seed=0)
            result = compress(model, train, test, args.out / cell / label.split()[0], config=config,
                              train_config=cfg, metric="accuracy", measure_memory=False)
            rows = {s.stage: s for s in result.stages}
            fp32 = rows.get("onnx fp32 unpruned", rows["onnx fp32"])
            int8 = rows["onnx int8"]
            left = result.verification.get("onnx_int8", {}).get("float_weights", {})
            run = {"cell": cell, "target": label, "trained_s": trained_s, "torch_accuracy": accuracy,
                   "compress_s": time.perf_counter() - t0, "pruning": result.pruning,
                   "stages": [s.to_dict() for s in result.stages], "float_weights": left}
            results["runs"].append(run)
            lines.append(
                f"| {cell.upper()} | {label} | {fp32.params:,} -> {int8.params:,} | "
                f"{fp32.scores['accuracy']:.4f} -> {int8.scores['accuracy']:.4f} | "
                f"{fp32.bytes / 1024:.1f} -> {int8.bytes / 1024:.1f} KiB ({fp32.bytes / int8.bytes:.2f}x) | "
                f"{fp32.latency_b1_ms:.3f} -> {int8.latency_b1_ms:.3f} | "
                f"{fp32.latency_b64_ms:.3f} -> {int8.latency_b64_ms:.3f} | "
                f"{', '.join(f'{op} {n / 1024:.1f} KiB' for op, n in left.items()) or 'nothing'} |")
    (args.out / "summary.json").write_text(json.dumps(results, indent=2, default=str))
    text = "\n".join(lines)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
