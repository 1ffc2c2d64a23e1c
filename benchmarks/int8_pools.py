"""int8 against fp32 latency of random CNNs, with the average pools quantized as pools or as depthwise convolutions.

For N architectures sampled at random from the CNN space (seeded) on DATA, untrained with trained-like batch norm
(``compress.cost.like_trained``; latency does not depend on the weights): the fp32 ONNX file, the int8 file as
autoarch quantized it before 2026-12-07 (static QDQ, average pools quantized as pools: onnxruntime's
``QLinearAveragePool``), and the int8 file as ``compress.quantize.quantize_int8`` builds it now (the pools as fixed
depthwise convolutions, ``pools_as_depthwise``). Each file is timed at batch 1 and 64 in a fresh onnxruntime-only
process (1 thread, ``compress.timing``: the least median of six rounds). Reports per architecture and the count of
architectures whose int8 file is faster than its fp32 one, at each batch size.

    python benchmarks/int8_pools.py --n 30 --out runs/bench-int8-pools   # alone on the machine

Run it alone: latency is a timing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import optuna
import torch

from autoarch.compress import quantize
from autoarch.compress.cost import like_trained
from autoarch.compress.export import export_onnx
from autoarch.compress.runtime import isolated_latency_ms
from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space

BATCHES = (1, 64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset(args.data)
    train, _ = train_test_split(data, 0.2, seed=0)
    space = get_space("cnn", data.input_kind)
    sample = np.asarray(train.X[:64], dtype=np.float32)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    rows = []
    for i in range(args.n):
        arch = space.suggest(study.ask())
        model = like_trained(build_model(space, arch, train).eval(), seed=i)
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_onnx(model, torch.as_tensor(sample[:2]), Path(tmp) / "m.onnx")
            with mock.patch.object(quantize, "pools_as_depthwise", lambda path: 0):
                pools = quantize.quantize_int8(fp32, Path(tmp) / "pools.int8.onnx", sample)
            depthwise = quantize.quantize_int8(fp32, Path(tmp) / "depthwise.int8.onnx", sample)
            ms = {name: isolated_latency_ms(path, sample, BATCHES)
                  for name, path in (("fp32", fp32), ("int8_pools", pools), ("int8_depthwise", depthwise))}
        rows.append({"i": i, "architecture": space.describe(arch), "pooling": arch["pooling"],
                     "head_pool": arch["head_pool"], **{f"{k}_b{b}_ms": v[b] for k, v in ms.items() for b in BATCHES}})
        print(f"{i:3d} {space.describe(arch)[:58]:<58} " + "  ".join(
            f"b{b} fp32 {ms['fp32'][b]:.4f} pools {ms['int8_pools'][b]:.4f} dw {ms['int8_depthwise'][b]:.4f}"
            for b in BATCHES), flush=True)
    summary: dict[str, object] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                                  "n": len(rows), "data": args.data}
    for b in BATCHES:
        fp32 = np.array([r[f"fp32_b{b}_ms"] for r in rows])
        for name in ("int8_pools", "int8_depthwise"):
            int8 = np.array([r[f"{name}_b{b}_ms"] for r in rows])
            summary[f"{name}_b{b}"] = {"faster_than_fp32": int(np.sum(int8 < fp32)),
                                       "median_int8_over_fp32": float(np.median(int8 / fp32)),
                                       "max_int8_over_fp32": float(np.max(int8 / fp32))}
        pools = np.array([r[f"int8_pools_b{b}_ms"] for r in rows])
        dw = np.array([r[f"int8_depthwise_b{b}_ms"] for r in rows])
        ratio = dw / pools
        summary[f"depthwise_over_pools_b{b}"] = {"median": float(np.median(ratio)), "min": float(ratio.min()),
                                                 "max": float(ratio.max())}
    (args.out / "int8_pools.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
