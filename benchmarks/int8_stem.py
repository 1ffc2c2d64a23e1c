"""int8 against fp32 latency of random CNNs, with the stem quantized or kept in float, and what autoarch ships.

For N architectures sampled at random from the CNN space (seeded) on DATA, untrained with trained-like batch norm
(``compress.cost.like_trained``; latency does not depend on the weights): the fp32 ONNX file; the int8 file with
every node quantized (static QDQ, as autoarch shipped every CNN before 2026-12-07 evening); the int8 file with the
stem in float (``compress.quantize.stem_nodes``: every node before the first weighted one reading more than 4
channels, a max pool there moved before its activation); and the file ``compress.quantize.choose_int8`` ships
(``auto``: both int8 files timed in this process, the float stem kept when the geometric mean of its batch-1 and
batch-64 time ratios is below 1). Each file is timed at batch 1 and 64 in a fresh onnxruntime-only process
(1 thread, ``compress.timing``: the least median of six rounds). Reports per architecture and the count of
architectures whose int8 file is faster than its fp32 one, at each batch size.

    python benchmarks/int8_stem.py --data fashion-mnist --n 30 --out runs/bench-int8-stem   # alone on the machine

Run it alone: latency is a timing.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

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
FILES = ("fp32", "int8_all", "int8_float_stem", "shipped")


def main(argv: list[str] | None = None) -> int:
    args = random_cnn_args(__doc__, argv, "fashion-mnist")
    rows = []
    for i, described, _arch, model, sample in random_cnns(args.data, args.n, args.seed):
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = export_onnx(model, torch.as_tensor(sample[:2]), Path(tmp) / "m.onnx")
            files = {"fp32": fp32,
                     "int8_all": quantize.quantize_int8(fp32, Path(tmp) / "all.int8.onnx", sample),
                     "int8_float_stem": quantize.quantize_int8(fp32, Path(tmp) / "stem.int8.onnx", sample,
                                                               float_stem=True)}
            files["shipped"], decision = quantize.choose_int8(fp32, Path(tmp) / "shipped.int8.onnx", sample, sample)
            ms = {name: isolated_latency_ms(path, sample, BATCHES) for name, path in files.items()}
        rows.append({"i": i, "architecture": described, "stem": decision.get("stem", "none"),
                     **{f"{k}_b{b}_ms": v[b] for k, v in ms.items() for b in BATCHES}})
        print(f"{i:3d} {described[:56]:<56} kept {decision.get('stem', 'none'):5s} " + "  ".join(
            f"b{b} " + " ".join(f"{ms[name][b]:.4f}" for name in FILES) for b in BATCHES), flush=True)
    summary: dict[str, object] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                                  "n": len(rows), "data": args.data, "order": list(FILES),
                                  "kept": {s: sum(r["stem"] == s for r in rows) for s in ("float", "int8", "none")}}
    for b in BATCHES:
        summary.update(int8_against_fp32(rows, FILES[1:], b))
        summary[f"shipped_over_all_b{b}"] = spread([r[f"shipped_b{b}_ms"] / r[f"int8_all_b{b}_ms"] for r in rows])
    (args.out / "int8_stem.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
