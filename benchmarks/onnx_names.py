"""How much of an exported ONNX file its tensor and node names take: short names (the default) vs the
exporter's and quantizer's own.

    python benchmarks/onnx_names.py RUNS_DIR

``RUNS_DIR`` is the ``--out`` of ``benchmarks/search_digits.py --seeds ...``. Each run's shipped model
(``model.pt`` with its pruning replayed) is exported to fp32 ONNX and quantized to static int8, once with
``short_names=False`` and once with the default; both int8 files are run on the digits images to check that the
outputs are the same. Prints the file sizes and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _runs import seed_runs  # benchmarks/_runs.py (the script's own folder is on sys.path)

from autoarch.compress import export_onnx, load_run_model, quantize_int8, run_onnx, session
from autoarch.loaders import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    args = parser.parse_args()
    X = load_dataset("digits").X
    example = torch.as_tensor(X[:2])
    print("| run | params | fp32 long (KB) | fp32 short (KB) | int8 long (KB) | int8 short (KB) | int8 short / long |"
          " int8 short / fp32 short |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for _, run in seed_runs(args.runs, "model.pt"):
        model, _, _, _ = load_run_model(run, "model")
        sizes, outputs = {}, {}
        with tempfile.TemporaryDirectory() as tmp:
            for short in (False, True):
                fp32 = export_onnx(model, example, Path(tmp) / f"{short}.onnx", short_names=short)
                int8 = quantize_int8(fp32, Path(tmp) / f"{short}.int8.onnx", X[:256], short_names=short)
                sizes[short] = (fp32.stat().st_size / 1000, int8.stat().st_size / 1000)
                outputs[short] = run_onnx(session(int8), X)
        np.testing.assert_array_equal(outputs[True], outputs[False])
        ratio = sizes[True][1] / sizes[False][1]
        ratios.append(ratio)
        params = sum(p.numel() for p in model.parameters())
        print(f"| {run.parent.name}/{run.name} | {params:,} | {sizes[False][0]:.1f} | {sizes[True][0]:.1f} | "
              f"{sizes[False][1]:.1f} | {sizes[True][1]:.1f} | {ratio:.1%} | {sizes[True][1] / sizes[True][0]:.1%} |",
              flush=True)
    print(f"\nint8 file with short names / with long names: mean {np.mean(ratios):.1%}, "
          f"range {min(ratios):.1%}-{max(ratios):.1%}; outputs identical in every run")


if __name__ == "__main__":
    main()
