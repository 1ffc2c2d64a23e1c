"""Which pruning ratio the search should apply to its winner by default: accuracy and int8 file size.

    python benchmarks/prune_ratio.py RUNS_DIR --ratios 0 0.15 0.3

``RUNS_DIR`` is the ``--out`` of ``benchmarks/search_digits.py --seeds ...`` (``seed<k>/<controller>`` run
directories). For each run and each ratio, two measurements:

* **validation** (what the choice is made on): a twin of the winner is retrained, as the search retrains it
  (same architecture, hyperparameters, epochs and seed), on 80% of the run's training split; it goes through
  the search's compression stage (``compress`` with a one-shot channel target: prune, fine-tune, export) with
  that 80%, and is scored on the other 20% of the training split. Neither the search nor this twin saw the
  held-out split.
* **held-out** (reported, not chosen on): the run's own retrained winner (``winner.pt``) goes through the same
  stage on the whole training split, int8 included, with the run's ONNX metadata; the shipped int8 model is
  scored on the held-out split, and its file is compared with the unpruned fp32 ONNX file.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _runs import seed_runs  # benchmarks/_runs.py (the script's own folder is on sys.path)

from autoarch.compress import CompressConfig, compress, load_run_model, read_metadata
from autoarch.data import train_test_split
from autoarch.evaluate import retrain
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig


def _stage(result, name: str) -> dict:
    return result.stage(name).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="the --out directory of benchmarks/search_digits.py --seeds ...")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.15, 0.3])
    parser.add_argument("--finetune-epochs", type=int, default=20)
    args = parser.parse_args()
    runs = seed_runs(args.runs, "winner.pt")
    data = load_dataset("digits")
    val: dict[float, list[float]] = {r: [] for r in args.ratios}
    held: dict[float, list[float]] = {r: [] for r in args.ratios}
    size: dict[float, list[float]] = {r: [] for r in args.ratios}
    params: dict[float, list[float]] = {r: [] for r in args.ratios}
    head = " | ".join(f"{r:g}: val / held-out / file / params" for r in args.ratios)
    print(f"| split seed | run | unpruned winner held-out | {head} |")
    print("|---|---|---|" + "---|" * len(args.ratios))
    for split, run in runs:
        train, test = train_test_split(data, 0.2, split)
        fit_part, check = train_test_split(train, 0.2, split)
        report = json.loads((run / "report.json").read_text())
        best = report["best"]
        tcfg = TrainConfig(**best["training"])
        space = get_space(report["search"]["space"], "image")
        twin = retrain(space, best["architecture"], tcfg, fit_part, best["retrain_epochs"], seed=0)
        winner, _, _, _ = load_run_model(run, "winner")
        metadata = read_metadata(run / "model.onnx")
        base_params = sum(p.numel() for p in winner.parameters())
        cells = []
        for ratio in args.ratios:
            with tempfile.TemporaryDirectory() as tmp:
                one_shot = CompressConfig(target_channels=round(1 - ratio, 12), finetune_epochs=args.finetune_epochs)
                v = compress(twin, fit_part, check, tmp, train_config=tcfg, measure_memory=False,
                             config=replace(one_shot, int8="none"))
                h = compress(winner, train, test, tmp, train_config=tcfg, config=one_shot, metadata=metadata,
                             measure_memory=False)
            v_acc = _stage(v, "torch pruned" if ratio > 0 else "torch fp32")["accuracy"]
            int8 = _stage(h, "onnx int8")
            fp32_file = _stage(h, "onnx fp32 unpruned" if ratio > 0 else "onnx fp32")["bytes"]
            val[ratio].append(v_acc)
            held[ratio].append(int8["accuracy"])
            size[ratio].append(int8["bytes"] / fp32_file)
            params[ratio].append(int8["params"] / base_params)
            cells.append(f"{v_acc:.4f} / {int8['accuracy']:.4f} / {int8['bytes'] / fp32_file:.1%} / "
                         f"{int8['params']:,}")
        unpruned = _stage(h, "torch fp32")["accuracy"]
        print(f"| {split} | {run.name} | {unpruned:.4f} ({base_params:,} params) | " + " | ".join(cells) + " |",
              flush=True)
    print("\nval: accuracy on 20% of the training split of a twin trained on the other 80%; held-out: shipped int8 "
          "model; file: int8 file / unpruned fp32 ONNX file\n")
    print("| ratio | mean val | mean held-out | held-out >= 0.99 | lowest held-out | file (max) | params kept (mean) |")
    print("|---|---|---|---|---|---|---|")
    for r in args.ratios:
        print(f"| {r:g} | {np.mean(val[r]):.4f} | {np.mean(held[r]):.4f} | {sum(a >= 0.99 for a in held[r])} of "
              f"{len(held[r])} | {min(held[r]):.4f} | {max(size[r]):.1%} | {np.mean(params[r]):.0%} |")
    if len(args.ratios) > 1:
        a, b = args.ratios[-1], args.ratios[-2]
        va, vb = np.array(val[a]), np.array(val[b])
        print(f"\nvalidation, {b:g} vs {a:g}, run by run: better {int((vb > va).sum())}, equal "
              f"{int((vb == va).sum())}, worse {int((vb < va).sum())}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    logging.getLogger("autoarch").setLevel(logging.ERROR)  # the int8-not-faster notes of tiny models
    main()
