"""Shared by the benchmark scripts: the run directories of ``benchmarks/search_digits.py --seeds ... --out
DIR`` (for the pruning, fine-tuning, ONNX and initialisation benchmarks), ``autoarch search`` run as a user
runs it, in a subprocess, with its outcome recorded (for the end-to-end data-set benchmarks), and random CNNs
of a data set's space (for the int8 benchmarks)."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def random_cnn_args(doc: str, argv: list[str] | None, data: str) -> argparse.Namespace:
    """The options of a benchmark over random CNNs (``--n``, ``--data``, ``--seed``, ``--out``), parsed; ``--out``
    is created."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--data", default=data)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def random_cnns(data_name: str, n: int, seed: int) -> Iterator[tuple[int, str, dict[str, Any], Any, Any]]:
    """``n`` architectures sampled at random (optuna's random sampler, ``seed``) from the CNN space of
    ``data_name``, each built untrained with trained-like batch norm (``compress.cost.like_trained``; latency does
    not depend on the weights): ``(i, description, architecture, model, sample)``, ``sample`` the first 64
    training inputs as float32."""
    import numpy as np
    import optuna

    from autoarch.compress.cost import like_trained
    from autoarch.data import train_test_split
    from autoarch.evaluate import build_model
    from autoarch.loaders import load_dataset
    from autoarch.search_spaces import get_space

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset(data_name)
    train, _ = train_test_split(data, 0.2, seed=0)
    space = get_space("cnn", data.input_kind)
    sample = np.asarray(train.X[:64], dtype=np.float32)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    for i in range(n):
        arch = space.suggest(study.ask())
        yield i, space.describe(arch), arch, like_trained(build_model(space, arch, train).eval(), seed=i), sample


def int8_against_fp32(rows: list[dict[str, Any]], names: tuple[str, ...], batch: int) -> dict[str, dict[str, Any]]:
    """For each file ``name`` of an int8 benchmark's ``rows`` (``<name>_b<batch>_ms`` beside ``fp32_b<batch>_ms``):
    ``<name>_b<batch>`` -> how many ran faster than fp32, and the median and largest int8 / fp32 time ratio."""
    import numpy as np

    fp32 = np.array([r[f"fp32_b{batch}_ms"] for r in rows])
    out = {}
    for name in names:
        ratio = np.array([r[f"{name}_b{batch}_ms"] for r in rows]) / fp32
        out[f"{name}_b{batch}"] = {"faster_than_fp32": int(np.sum(ratio < 1)), "median_int8_over_fp32":
                                   float(np.median(ratio)), "max_int8_over_fp32": float(np.max(ratio))}
    return out


def spread(ratio: Any) -> dict[str, float]:
    """The median, least and largest of an array of ratios."""
    import numpy as np

    return {"median": float(np.median(ratio)), "min": float(np.min(ratio)), "max": float(np.max(ratio))}
