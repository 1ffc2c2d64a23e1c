"""Hardware-aware search against the single-objective search followed by pruning, in one wall-time budget
(issue #13, "real training").

Two arms, the same data, seed, ``--cv`` and ``--timeout`` (the whole job: search, retrain, prune, int8), run one
after the other as ``autoarch search`` runs them (the CLI, in a subprocess):

- single: ``autoarch search DATA`` (accuracy; the winner pruned by the default one-shot ratio);
- multi: ``autoarch search DATA --objectives accuracy,latency`` (int8 latency at batch 1 measured before training;
  the knee of the front shipped).

Then, outside both budgets, up to ``--export`` more points of the multi arm's front (the most accurate by CV first)
are shipped with ``autoarch export RUN_DIR --trial N``, so every front point has a held-out accuracy and a
measured int8 latency. The issue's target: a front point within 0.5 point of the single arm's held-out accuracy at
no more than half its int8 latency at batch 1, and the shipped int8 model faster than the fp32 model it came from.
Held-out accuracy is of the shipped int8 model; latencies are the report's (a fresh onnxruntime-only process, one
thread, ``compress.timing``: the least median of six rounds).

    python benchmarks/hardware_aware.py --data digits --timeout 300 --out runs/bench-hw        # alone on the machine
    python benchmarks/hardware_aware.py --data fashion-mnist --timeout 900 --autoarch-args "--max-samples 12000" \\
        --out runs/bench-hw-fashion

Run it alone: latency is a timing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "autoarch.cli", *args, "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"autoarch {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - start, proc


def _shipped(run_dir: Path) -> dict[str, Any]:
    """The shipped int8 model of a run directory: held-out accuracy, size, latency, and its fp32 source's."""
    report = json.loads((run_dir / "report.json").read_text())
    stages = {r["stage"]: r for r in report["compression"]["stages"]}
    int8, fp32 = stages["onnx int8"], stages["onnx fp32"]
    return {"trial": report["best"]["trial"], "summary": report["best"]["summary"],
            "cv_accuracy": report["best"]["cv"]["accuracy"][0], "held_out_int8": int8["accuracy"],
            "int8_kb": int8["bytes"] / 1024, "int8_b1_ms": int8["latency_b1_ms"], "fp32_b1_ms": fp32["latency_b1_ms"],
            "int8_b64_ms": int8.get("latency_b64_ms"), "fp32_b64_ms": fp32.get("latency_b64_ms"),
            "predicted_b1_ms": (report["best"].get("int8_cost_before_training") or {}).get("latency_b1_ms"),
            "search_seconds": report["search"]["seconds_this_run"], "trial_states": report["search"]["trial_states"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--cv", default="3")
    parser.add_argument("--seed", default="0")
    parser.add_argument("--export", type=int, default=4, help="front points shipped besides the knee")
    parser.add_argument("--autoarch-args", default="", help="extra options for both arms")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reuse", action="store_true", help="keep the runs already finished in --out (their "
                                                               "seconds are then not known)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    common = [args.data, "--timeout", str(args.timeout), "--cv", args.cv, "--seed", args.seed, "--workers", "1",
              *shlex.split(args.autoarch_args)]
    result: dict[str, Any] = {"command": " ".join(sys.argv), "common": common}
    single_dir, multi_dir = args.out / "single", args.out / "multi"
    seconds = float("nan")
    if not (single_dir / "report.json").is_file() or not args.reuse:
        seconds, _ = _cli("search", *common, "--out", str(single_dir))
    result["single"] = {**_shipped(single_dir), "seconds": seconds}
    if not (multi_dir / "report.json").is_file() or not args.reuse:
        seconds, _ = _cli("search", *common, "--objectives", "accuracy,latency", "--out", str(multi_dir))
    result["multi"] = {**_shipped(multi_dir), "seconds": seconds}
    front = json.loads((multi_dir / "report.json").read_text())["front"]
    result["front"] = front["points"]
    points = [result["multi"]]
    for p in front["points"][:args.export + 1]:
        if p["trial"] == front["picked"]:
            continue
        exported = multi_dir / f"trial-{p['trial']}"
        seconds = float("nan")
        if not (exported / "report.json").is_file() or not args.reuse:
            seconds, _ = _cli("export", str(multi_dir), "--trial", str(p["trial"]))
        points.append({**_shipped(multi_dir / f"trial-{p['trial']}"), "seconds": seconds})
    result["shipped_front"] = points
    single = result["single"]
    hits = [p for p in points if p["held_out_int8"] >= single["held_out_int8"] - 0.005
            and p["int8_b1_ms"] <= 0.5 * single["int8_b1_ms"]]
    result["target_met"] = {"front_point": [p["trial"] for p in hits],
                            "shipped_int8_faster_than_fp32_b1": result["multi"]["int8_b1_ms"]
                            < result["multi"]["fp32_b1_ms"]}
    (args.out / "hardware_aware.json").write_text(json.dumps(result, indent=2))
    print("| arm | trial | held-out int8 acc | int8 b1 ms | fp32 b1 ms | int8 b64 ms | fp32 b64 ms | int8 KB | "
          "predicted b1 ms | search s | job s |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [("single (accuracy, then pruning)", single), ("multi, shipped knee", result["multi"])]
    rows += [("multi, front point (export)", p) for p in points[1:]]
    for name, p in rows:
        predicted = "-" if p["predicted_b1_ms"] is None else f"{p['predicted_b1_ms']:.4f}"
        print(f"| {name} | {p['trial']} | {p['held_out_int8']:.4f} | {p['int8_b1_ms']:.4f} | {p['fp32_b1_ms']:.4f} | "
              f"{p['int8_b64_ms']:.3f} | {p['fp32_b64_ms']:.3f} | {p['int8_kb']:.1f} | {predicted} | "
              f"{p['search_seconds']:.0f} | {p['seconds']:.0f} |")
    print(f"\nfront: {len(front['points'])} points; target met by front point(s): "
          f"{result['target_met']['front_point'] or 'none'}; shipped int8 faster than its fp32 at batch 1: "
          f"{result['target_met']['shipped_int8_faster_than_fp32_b1']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
