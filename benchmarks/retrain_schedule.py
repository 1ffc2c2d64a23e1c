"""Why the final retrain anneals the learning rate: constant vs cosine-to-zero over the same epochs.

    python benchmarks/retrain_schedule.py RUN_DIR [RUN_DIR ...] --top 2 --splits 0 1 2 --seeds 0 1

For each run directory of a finished digits search, the ``--top`` best trials that were searched with a constant
learning rate are retrained from scratch on the training part of several stratified 80/20 splits (``--splits``:
split seeds; 0 is the split the search used) with several training seeds, for the median early-stopping epoch of
their folds (what the search's retrain does), once with their own constant rate and once with the rate annealed
to zero (cosine), and scored on the held-out part. Prints one row per configuration and a summary.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import optuna
import torch

from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, fit, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories of digits searches (with study.db)")
    parser.add_argument("--top", type=int, default=2)
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset("digits")
    space = get_space("cnn", "image")
    candidates = []
    for run in args.runs:
        study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{run / 'study.db'}")
        done = [t for t in study.trials if t.value is not None and t.user_attrs["training"]["schedule"] == "constant"]
        candidates += [(run.name, t) for t in sorted(done, key=lambda t: -t.value)[:args.top]]
    scores: dict[str, list[float]] = {"constant": [], "cosine": []}
    print("| split | run | trial | optimizer | lr | epochs | constant | cosine |")
    print("|---|---|---|---|---|---|---|---|")
    for split in args.splits:
        train, test = train_test_split(data, 0.2, split)
        for run, trial in candidates:
            arch = trial.user_attrs["architecture"]
            cfg = TrainConfig(**trial.user_attrs["training"])
            epochs = max(1, int(round(float(np.median(trial.user_attrs["best_epochs"])))))
            row = {}
            for schedule in scores:
                accs = []
                for seed in args.seeds:
                    torch.manual_seed(seed)
                    model = build_model(space, arch, train)
                    fit(model, train.X, train.y, "classification", dataclasses.replace(cfg, schedule=schedule),
                        seed=seed, epochs=epochs)
                    accs.append(float((predict(model, test.X).argmax(1) == test.y).mean()))
                scores[schedule] += accs
                row[schedule] = " ".join(f"{a:.4f}" for a in accs)
            print(f"| {split} | {run} | {trial.number} | {cfg.optimizer} | {cfg.lr:.3g} | {epochs} | "
                  f"{row['constant']} | {row['cosine']} |", flush=True)
    print("\n| schedule | retrains | mean held-out accuracy | min | max |")
    print("|---|---|---|---|---|")
    for schedule, accs in scores.items():
        print(f"| {schedule} | {len(accs)} | {np.mean(accs):.4f} | {np.min(accs):.4f} | {np.max(accs):.4f} |")


if __name__ == "__main__":
    main()
