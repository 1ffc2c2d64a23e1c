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

import json
import sys
import tempfile
from pathlib import Path
from unittest import mock

import torch
from _runs import (  # benchmarks/_runs.py (the script's own folder is on sys.path)
    int8_against_fp32,
    random_cnn_args,
    random_cnns,
    spread,
)

from autoarch.compress import quantize
from autoarch.compress.export import export_onnx
from autoarch.compress.runtime import isolated_latency_ms

BATCHES = (1, 64)


def main(argv: list[str] | None = None) -> int:
    args = random_cnn_args(__doc__, argv, "digits")
    rows = []
    for i, described, arch, model, sample in random_cnns(args.data, args.n, args.seed):
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_onnx(model, torch.as_tensor(sample[:2]), Path(tmp) / "m.onnx")
            with mock.patch.object(quantize, "pools_as_depthwise", lambda path: 0):
                pools = quantize.quantize_int8(fp32, Path(tmp) / "pools.int8.onnx", sample)
            depthwise = quantize.quantize_int8(fp32, Path(tmp) / "depthwise.int8.onnx", sample)
            ms = {name: isolated_latency_ms(path, sample, BATCHES)
                  for name, path in (("fp32", fp32), ("int8_pools", pools), ("int8_depthwise", depthwise))}
        rows.append({"i": i, "architecture": described, "pooling": arch["pooling"],
                     "head_pool": arch["head_pool"], **{f"{k}_b{b}_ms": v[b] for k, v in ms.items() for b in BATCHES}})
        print(f"{i:3d} {described[:58]:<58} " + "  ".join(
            f"b{b} fp32 {ms['fp32'][b]:.4f} pools {ms['int8_pools'][b]:.4f} dw {ms['int8_depthwise'][b]:.4f}"
            for b in BATCHES), flush=True)
    summary: dict[str, object] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                                  "n": len(rows), "data": args.data}
    for b in BATCHES:
        summary.update(int8_against_fp32(rows, ("int8_pools", "int8_depthwise"), b))
        summary[f"depthwise_over_pools_b{b}"] = spread([r[f"int8_depthwise_b{b}_ms"] / r[f"int8_pools_b{b}_ms"]
                                                        for r in rows])
    (args.out / "int8_pools.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
