"""The run directories of ``benchmarks/search_digits.py --seeds ... --out DIR``, for the scripts that start
from them (pruning, fine-tuning, ONNX and initialisation benchmarks)."""

from __future__ import annotations

import re
from pathlib import Path


def seed_runs(root: Path, filename: str) -> list[tuple[int, Path]]:
    """``(split seed, run directory)`` of every ``seed<k>/<controller>/`` under ``root`` that holds ``filename``,
    sorted; exits with a one-line message when there is none."""
    runs = sorted((int(m.group(1)), p.parent) for p in root.glob(f"seed*/*/{filename}")
                  if (m := re.fullmatch(r"seed(\d+)", p.parent.parent.name)))
    if not runs:
        raise SystemExit(f"no seed*/<controller>/{filename} under {root}; give the --out of "
                         "benchmarks/search_digits.py --seeds ...")
    return runs
