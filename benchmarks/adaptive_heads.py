"""Adaptive average pooling with windows of different sizes: exported as torch writes it, and as two matrix
products (``compress.export.uneven_pools_as_matmuls``, what autoarch exports since 2026-12-07 night).

Random CNNs are drawn (seeded) from the CNN space of DATA until N of them have such a pooling at the input size
they see (on 28x28 images: three stages with pooling between them and a 4x4 head, 7x7 feature maps into 4x4
windows of 2, 3, 3 and 2); the VGG-like and LeNet-5-like warm starts are measured too. Each network, untrained with
trained-like batch norm (``compress.cost.like_trained``; latency does not depend on the weights), is exported
both ways; each fp32 file is quantized as autoarch ships it (``compress.quantize.choose_int8``) and every file is
timed at batch 1 and 64 in a fresh onnxruntime-only process (1 thread, ``compress.timing``: the least median of
six rounds). The largest difference between the two fp32 files' outputs is recorded too.

    python benchmarks/adaptive_heads.py --data fashion-mnist --n 30 --out runs/bench-heads   # alone on the machine

Run it alone: latency is a timing.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from _runs import random_cnn_args, random_cnns, spread  # benchmarks/_runs.py (the script's own folder is on sys.path)

from autoarch.compress import export, quantize, run_onnx, session
from autoarch.compress.cost import like_trained
from autoarch.compress.runtime import isolated_latency_ms
from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space

BATCHES = (1, 64)
WAYS = ("gathers", "matmuls")  # torch's export of the pooling, and autoarch's


def _uneven(model: torch.nn.Module, sample: np.ndarray) -> bool:
    return export.uneven_pools_as_matmuls(model, torch.as_tensor(sample[:2])) is not model


def _measure(model: torch.nn.Module, sample: np.ndarray) -> dict[str, float]:
    row: dict[str, float] = {}
    outputs = []
    with tempfile.TemporaryDirectory() as tmp:
        for way in WAYS:
            plain = mock.patch.object(export, "uneven_pools_as_matmuls", lambda m, _x: m)
            with plain if way == "gathers" else contextlib.nullcontext():
                fp32 = export.export_onnx(model, torch.as_tensor(sample[:2]), Path(tmp) / f"{way}.onnx")
            int8, _ = quantize.choose_int8(fp32, Path(tmp) / f"{way}.int8.onnx", sample, sample)
            outputs.append(run_onnx(session(fp32), sample))
            for name, path in (("fp32", fp32), ("int8", int8)):
                for batch, ms in isolated_latency_ms(path, sample, BATCHES).items():
                    row[f"{way}_{name}_b{batch}_ms"] = ms
    row["max_abs_diff"] = float(np.abs(outputs[0] - outputs[1]).max())
    return row


def main(argv: list[str] | None = None) -> int:
    args = random_cnn_args(__doc__, argv, "fashion-mnist")
    data = load_dataset(args.data)
    train, _ = train_test_split(data, 0.2, seed=0)
    space = get_space("cnn", data.input_kind)
    rows, drawn = [], 0
    starts = [(f"warm start {name}", like_trained(build_model(space, arch, train).eval()))
              for name, arch in space.warm_starts() if name in ("vgg-like", "lenet5-like")]
    sample = np.asarray(train.X[:64], dtype=np.float32)
    randoms = ((described, model) for _i, described, _a, model, _s in random_cnns(args.data, 50 * args.n, args.seed))
    for described, model in [*starts, *randoms]:
        uneven = _uneven(model, sample)
        if not described.startswith("warm start"):
            drawn += 1
            if not uneven:
                continue
        row = {"architecture": described, "uneven": uneven, **_measure(model, sample)}
        rows.append(row)
        print(f"{described[:60]:<60} " + "  ".join(
            f"{name} b{b} {row[f'gathers_{name}_b{b}_ms']:.4f}->{row[f'matmuls_{name}_b{b}_ms']:.4f}"
            for name in ("fp32", "int8") for b in BATCHES), flush=True)
        if sum(not r["architecture"].startswith("warm start") for r in rows) == args.n:
            break
    randoms_rows = [r for r in rows if not r["architecture"].startswith("warm start")]
    summary: dict[str, object] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                                  "data": args.data, "n": len(randoms_rows), "drawn": drawn,
                                  "max_abs_diff": max(r["max_abs_diff"] for r in rows)}
    for name in ("fp32", "int8"):
        for b in BATCHES:
            summary[f"{name}_b{b}_matmuls_over_gathers"] = spread(
                [r[f"matmuls_{name}_b{b}_ms"] / r[f"gathers_{name}_b{b}_ms"] for r in randoms_rows])
    for way in WAYS:
        for b in BATCHES:
            summary[f"{way}_int8_faster_than_fp32_b{b}"] = sum(
                r[f"{way}_int8_b{b}_ms"] < r[f"{way}_fp32_b{b}_ms"] for r in randoms_rows)
    (args.out / "adaptive_heads.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
