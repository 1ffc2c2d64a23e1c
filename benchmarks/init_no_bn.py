"""Why the CNN space He-initialises its convolutions: CNNs without batch norm under torch's default init.

    python benchmarks/init_no_bn.py RUNS_DIR --failed 16 --working 8 --epochs 15

``RUNS_DIR`` is the ``--out`` of ``benchmarks/search_digits.py --seeds ...`` run *before* the change (its
studies hold the candidates as they were searched). From all its trials of CNNs without batch norm, ``--failed``
that scored below 0.6 CV and ``--working`` that scored at least 0.6 are drawn at random (seed 0); each is trained
with its own hyperparameters on two thirds of digits and scored on the other third, once with torch's default
initialisation of the convolutions and once with the space's (He; Xavier for tanh and sigmoid).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import optuna
import torch
from _runs import seed_runs  # benchmarks/_runs.py (the script's own folder is on sys.path)

from autoarch.data import train_test_split
from autoarch.evaluate import build_model
from autoarch.exceptions import TrainingError
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, fit, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path)
    parser.add_argument("--failed", type=int, default=16)
    parser.add_argument("--working", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset("digits")
    space = get_space("cnn", "image")
    trials, n_bn = [], [0, 0]
    for db in (run / "study.db" for _, run in seed_runs(args.runs, "study.db")):
        study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{db}")
        for t in study.trials:
            if t.value is None:
                continue
            arch = t.user_attrs["architecture"]
            n_bn[bool(arch["batch_norm"])] += t.value < 0.6
            if not arch["batch_norm"]:
                trials.append((t.value, arch, t.user_attrs["training"]))
    print(f"CNNs scoring < 0.6 CV: {n_bn[0]} of {len(trials)} without batch norm, {n_bn[1]} with it\n")
    random.Random(0).shuffle(trials)
    failed = [t for t in trials if t[0] < 0.6][:args.failed]
    working = [t for t in trials if t[0] >= 0.6][:args.working]
    train, val = train_test_split(data, 1 / 3, 0)
    scores: dict[str, list[float]] = {"torch default": [], "He": []}
    print("| CV when searched | activation | stages | connectivity | optimizer | lr | torch default | He |")
    print("|---|---|---|---|---|---|---|---|")
    for value, arch, training in failed + working:
        row = []
        for init in scores:
            torch.manual_seed(0)
            model = build_model(space, arch, train)  # the space's initialisation
            if init == "torch default":
                for m in model.net.features.modules():
                    if isinstance(m, torch.nn.Conv2d):
                        m.reset_parameters()
            try:
                fit(model, train.X, train.y, "classification", TrainConfig(**training), seed=0, epochs=args.epochs)
                acc = float((predict(model, val.X).argmax(1) == val.y).mean())
            except TrainingError:  # a NaN loss
                acc = float("nan")
            scores[init].append(acc)
            row.append(f"{acc:.3f}")
        print(f"| {value:.3f} | {arch['activation']} | {arch['n_stages']} | {arch['connectivity']} | "
              f"{training['optimizer']} | {training['lr']:.3g} | {row[0]} | {row[1]} |", flush=True)
    print("\n| init | failed set: mean accuracy | failed set: still < 0.6 | working set: mean accuracy |")
    print("|---|---|---|---|")
    for init, accs in scores.items():
        a = np.array(accs)
        f, w = a[:len(failed)], a[len(failed):]
        print(f"| {init} | {np.nanmean(f):.3f} | {int(np.sum(~(f >= 0.6)))} of {len(f)} | {np.nanmean(w):.3f} |")


if __name__ == "__main__":
    main()
