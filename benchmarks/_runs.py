"""Shared by the benchmark scripts: the run directories of ``benchmarks/search_digits.py --seeds ... --out
DIR`` (for the pruning, fine-tuning, ONNX and initialisation benchmarks), and ``autoarch search`` run as a user
runs it, in a subprocess, with its outcome recorded (for the end-to-end data-set benchmarks)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def search_benchmark_args(doc: str, timeout: float, argv: list[str] | None,
                          more: Callable[[argparse.ArgumentParser], Any] | None = None) -> argparse.Namespace:
    """The options of an end-to-end data-set benchmark (``--timeout``, ``--out``, ``--smoke``,
    ``--autoarch-args``, and what ``more`` adds to the parser), parsed; ``--out`` is created."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if more is not None:
        more(parser)
    parser.add_argument("--timeout", type=float, default=timeout)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--autoarch-args", default="", help="extra options for autoarch search")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def run_search(data: str, timeout: float, run_dir: Path, extra: list[str],
               score: Callable[[Path, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    """``python -m autoarch.cli search DATA --timeout T --out RUN_DIR --quiet EXTRA...`` in a subprocess: the
    command, wall time and exit status; on success ``score(run_dir, report)`` for ``model.onnx`` and
    ``model.int8.onnx`` (each with its ``bytes``), the winner's summary and CV, the trial states and the report's
    held-out scores; on failure the last lines of stderr (a failed run is reported, never hidden)."""
    cmd = [sys.executable, "-m", "autoarch.cli", "search", data, "--timeout", str(timeout), "--out", str(run_dir),
           "--quiet", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    entry: dict[str, Any] = {"command": " ".join(cmd[2:]), "seconds": time.perf_counter() - t0, "rc": proc.returncode}
    if proc.returncode != 0:
        entry["stderr_tail"] = proc.stderr.strip().splitlines()[-5:]
        return entry
    report = json.loads((run_dir / "report.json").read_text())
    for name in ("model.onnx", "model.int8.onnx"):
        entry[name] = {**score(run_dir / name, report), "bytes": (run_dir / name).stat().st_size}
    entry.update(best=report["best"]["summary"], cv=report["best"].get("cv"),
                 trial_states=report["search"]["trial_states"], report_test=report["test"],
                 stages=[{k: row.get(k) for k in ("stage", "params", "bytes", "latency_b1_ms", "latency_b64_ms")}
                         for row in report["compression"]["stages"]])
    return entry


def search_rows(entry: dict[str, Any], columns: tuple[str, ...]) -> list[str]:
    """The markdown rows of :func:`run_search`'s two models (``| autoarch model.onnx (size) | seconds | columns
    ... |``) and a line on the winner, or one line saying the run failed."""
    if entry["rc"] != 0:
        return ["", f"autoarch FAILED (rc {entry['rc']}): {' / '.join(entry['stderr_tail'])}"]
    lines = []
    for name in ("model.onnx", "model.int8.onnx"):
        r = entry[name]
        cells = " | ".join(f"{r[c]:.4f}" for c in columns)
        lines.append(f"| autoarch {name} ({r['bytes'] / 1024:.1f} KiB) | {entry['seconds']:.0f} | {cells} |")
    lines += ["", f"autoarch winner: {entry['best']}; trials {entry['trial_states']}"]
    stages = [s for s in entry.get("stages", []) if s["stage"].startswith("onnx")]
    if stages:  # the shipped model's compression, as report.json measured it (1 thread)
        lines += ["", "| stage | params | file | latency batch 1 (ms) | latency batch 64 (ms) |",
                  "|---|---|---|---|---|"]
        lines += [f"| {s['stage']} | {s['params']:,} | {s['bytes'] / 1024:.1f} KiB | {s['latency_b1_ms']:.3f} | "
                  f"{s['latency_b64_ms']:.3f} |" for s in stages]
    return lines


def seed_runs(root: Path, filename: str) -> list[tuple[int, Path]]:
    """``(split seed, run directory)`` of every ``seed<k>/<controller>/`` under ``root`` that holds ``filename``,
    sorted; exits with a one-line message when there is none."""
    runs = sorted((int(m.group(1)), p.parent) for p in root.glob(f"seed*/*/{filename}")
                  if (m := re.fullmatch(r"seed(\d+)", p.parent.parent.name)))
    if not runs:
        raise SystemExit(f"no seed*/<controller>/{filename} under {root}; give the --out of "
                         "benchmarks/search_digits.py --seeds ...")
    return runs


def write_summary(out: Path, lines: list[str], entry: dict[str, Any]) -> int:
    """OUT/summary.md from ``lines``, printed; the exit status: 1 when the autoarch run failed."""
    text = "\n".join(lines)
    (out / "summary.md").write_text(text + "\n")
    print(text)
    return 0 if entry["rc"] == 0 else 1
