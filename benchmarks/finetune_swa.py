"""Does stochastic weight averaging (SWA) of the fine-tune after pruning help the shipped model?

    python benchmarks/finetune_swa.py RUNS_DIR --ratio 0.15 --seeds 0 1

``RUNS_DIR`` is the ``--out`` of ``benchmarks/search_digits.py --seeds ...``. For each run, as in
``benchmarks/prune_ratio.py``: a twin of the winner is retrained on 80% of the run's training split, pruned at
``--ratio`` and fine-tuned on that 80% as the search fine-tunes (a quarter of the learning rate, cosine to zero,
20 epochs), then scored on the other 20% of the training split (**val**, what a choice would be made on); and
the run's own ``winner.pt`` goes through the same on the whole training split and is scored on the held-out
split (**held-out**, reported only). Each fine-tune is done twice: plain (the model after the last epoch, what
the search ships) and with torch's ``AveragedModel`` averaging the weights after each epoch of the second half,
batch-norm statistics recomputed with ``update_bn`` (Izmailov et al., 2018).
"""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _runs import seed_runs  # benchmarks/_runs.py (the script's own folder is on sys.path)
from torch.optim.swa_utils import AveragedModel, update_bn

from autoarch.compress import load_run_model, prune
from autoarch.data import Dataset, train_test_split
from autoarch.evaluate import retrain
from autoarch.loaders import load_dataset
from autoarch.search_spaces import get_space
from autoarch.trainer import TrainConfig, fit, predict


def _accuracy(model: torch.nn.Module, data: Dataset) -> float:
    return float((predict(model, data.X).argmax(1) == data.y).mean())


def _pruned_finetuned(model: torch.nn.Module, data: Dataset, cfg: TrainConfig, ratio: float, seed: int,
                      swa: bool, epochs: int = 20) -> torch.nn.Module:
    model = copy.deepcopy(model)
    prune(model, torch.as_tensor(data.X[:2]), ratio, round_to=8, rounding="nearest")
    averaged = AveragedModel(model) if swa else None

    def on_epoch(epoch: int, record: dict) -> None:
        if averaged is not None and epoch > epochs // 2:
            averaged.update_parameters(model)

    fit(model, data.X, data.y, data.task, replace(cfg, lr=cfg.lr / 4, schedule="cosine"), seed=seed,
        epochs=epochs, on_epoch=on_epoch)
    if averaged is None:
        return model.cpu().eval()
    X = torch.as_tensor(data.X, dtype=torch.float32)
    update_bn((X[i:i + 256] for i in range(0, len(X), 256)), averaged)
    return averaged.module.cpu().eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="the --out directory of benchmarks/search_digits.py --seeds ...")
    parser.add_argument("--ratio", type=float, default=0.15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    runs = seed_runs(args.runs, "winner.pt")
    data = load_dataset("digits")
    scores: dict[tuple[str, str], list[float]] = {(k, m): [] for k in ("val", "held-out") for m in ("plain", "swa")}
    print("| split seed | run | val plain | val SWA | held-out plain | held-out SWA |")
    print("|---|---|---|---|---|---|")
    for split, run in runs:
        train, test = train_test_split(data, 0.2, split)
        fit_part, check = train_test_split(train, 0.2, split)
        best = json.loads((run / "report.json").read_text())["best"]
        tcfg = TrainConfig(**best["training"])
        twin = retrain(get_space("cnn", "image"), best["architecture"], tcfg, fit_part, best["retrain_epochs"],
                       seed=0)
        winner, _, _, _ = load_run_model(run, "winner")
        cells = []
        for kind, model, part, score_on in (("val", twin, fit_part, check), ("held-out", winner, train, test)):
            for method in ("plain", "swa"):
                accs = [_accuracy(_pruned_finetuned(model, part, tcfg, args.ratio, seed, method == "swa"), score_on)
                        for seed in args.seeds]
                scores[(kind, method)] += accs
                cells.append(" ".join(f"{a:.4f}" for a in accs))
        print(f"| {split} | {run.name} | " + " | ".join(cells) + " |", flush=True)
    print("\n| scored on | method | mean | >= 0.99 |")
    print("|---|---|---|---|")
    for (kind, method), accs in scores.items():
        print(f"| {kind} | {method} | {np.mean(accs):.4f} | {sum(a >= 0.99 for a in accs)} of {len(accs)} |")
    plain, swa = np.array(scores[("val", "plain")]), np.array(scores[("val", "swa")])
    print(f"\nval, SWA vs plain, pair by pair: better {int((swa > plain).sum())}, equal {int((swa == plain).sum())}, "
          f"worse {int((swa < plain).sum())}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
