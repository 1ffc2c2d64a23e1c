"""How many epochs a network needs on a tiny training split: the reason for ``--epochs auto``.

    python benchmarks/small_data_epochs.py --data osuleaf --epochs 15 50 150 --run runs/bench-osuleaf3/autoarch

Retrains, from scratch on the whole official training split (as a search's final retrain does: the learning rate
annealed to zero over the epochs), the space's warm start (for OSULeaf the UCR archive's fully convolutional
network, with the search's warm-start training: Adam 1e-3, L2 1e-4, batches of 32) and, with ``--run``, that run's
best trial (its own training hyperparameters), for each number of ``--epochs``, and scores each model on the
official test split. Prints one row per network and epoch count: test accuracy and seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import optuna
import torch

from autoarch.evaluate import retrain
from autoarch.loaders import load_dataset, official_test
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, predict
from autoarch.trials import WARM_START_SMALL_BATCH, WARM_START_TRAINING


def _training(params: dict, epochs: int) -> TrainConfig:
    keys = ("optimizer", "lr", "momentum", "weight_decay", "l1", "batch_size")
    return TrainConfig(**{k: params[k] for k in keys if k in params}, schedule="cosine", max_epochs=epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="osuleaf", help="a built-in with an official test split")
    parser.add_argument("--epochs", type=int, nargs="+", default=[15, 50, 150])
    parser.add_argument("--run", type=Path, help="a finished search's run directory (study.db): its best trial too")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    train, test = load_dataset(args.data), official_test(args.data)
    if test is None:
        raise SystemExit(f"{args.data} has no official test split")
    space = get_space("auto", train.input_kind, input_shape=train.input_shape)  # the space a search would take
    networks = []
    for name, arch in space.warm_starts():
        params = {**WARM_START_TRAINING, "batch_size": WARM_START_SMALL_BATCH, **arch}
        networks.append((f"warm start {name}", {k: v for k, v in arch.items() if k != "lr"}, params))
    if args.run is not None:
        study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{args.run / 'study.db'}")
        best = study.best_trial
        networks.append((f"{args.run} trial {best.number}", best.user_attrs["architecture"], best.params))
    print(f"{args.data}: {len(train)} training / {len(test)} test samples, {torch.get_num_threads()} threads")
    print("| network | epochs | test accuracy | seconds |\n|---|---|---|---|")
    for name, arch, params in networks:
        for epochs in args.epochs:
            t0 = time.perf_counter()
            model = retrain(space, arch, _training(params, epochs), train, epochs, seed=args.seed)
            accuracy = float(np.mean(predict(model, test.X).argmax(1) == test.y))
            print(f"| {name} | {epochs} | {accuracy:.4f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
