"""How long to fine-tune after pruning: 10 vs 20 epochs, and distillation from the unpruned model.

    python benchmarks/prune_finetune.py RUNS_DIR --ratio 0.3 --seeds 0 1

``RUNS_DIR`` is the ``--out`` of ``benchmarks/search_digits.py --seeds ...`` (``seed<k>/<controller>`` run
directories). Each run's retrained winner (``winner.pt``) is pruned as the search prunes it (``--ratio``, kept
counts rounded to the nearest multiple of 8) and fine-tuned on the training split of its own seed, at a quarter
of its learning rate annealed to zero, for 10 and for 20 epochs, and for 10 epochs with knowledge distillation
from the unpruned winner (temperature 4, half the loss); each with several seeds. Prints held-out accuracies.
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from _runs import seed_runs  # benchmarks/_runs.py (the script's own folder is on sys.path)

from autoarch.compress import load_run_model, prune
from autoarch.data import train_test_split
from autoarch.loaders import load_dataset
from autoarch.trainer import TrainConfig, _optimizer, fit, predict


def distill(student: torch.nn.Module, teacher: torch.nn.Module, X: np.ndarray, y: np.ndarray, cfg: TrainConfig,
            seed: int, epochs: int, temperature: float = 4.0, alpha: float = 0.5) -> None:
    """``fit`` with ``(1 - alpha) * CE + alpha * T^2 * KL(teacher_T || student_T)`` (Hinton et al., 2015)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    Xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y).long()
    with torch.no_grad():
        soft = teacher.eval()(Xt)
    opt = _optimizer(student, cfg)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * math.ceil(len(Xt) / cfg.batch_size))
    weights = [p for p in student.parameters() if p.dim() > 1]
    for _ in range(epochs):
        student.train()
        order = torch.randperm(len(Xt), generator=generator)
        for start in range(0, len(Xt), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2:
                continue
            out = student(Xt[idx])
            kl = F.kl_div(F.log_softmax(out / temperature, 1), F.log_softmax(soft[idx] / temperature, 1),
                          log_target=True, reduction="batchmean")
            loss = (1 - alpha) * F.cross_entropy(out, yt[idx]) + alpha * temperature ** 2 * kl
            if cfg.l1 > 0:
                loss = loss + cfg.l1 * sum(w.abs().sum() for w in weights)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    student.eval()


def _accuracy(model: torch.nn.Module, test) -> float:
    return float((predict(model, test.X).argmax(1) == test.y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, help="the --out directory of benchmarks/search_digits.py --seeds ...")
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    data = load_dataset("digits")
    methods = {"fine-tune 10": 10, "fine-tune 20": 20, "distill 10": 10}
    scores: dict[str, list[float]] = {m: [] for m in methods}
    print("| split seed | run | unpruned | " + " | ".join(methods) + " |")
    print("|---|---|---|" + "---|" * len(methods))
    runs = seed_runs(args.runs, "winner.pt")
    for split, run in runs:
        train, test = train_test_split(data, 0.2, split)
        winner, _, _, _ = load_run_model(run, "winner")
        study = optuna.load_study(study_name="autoarch", storage=f"sqlite:///{run / 'study.db'}")
        base = TrainConfig(**study.best_trial.user_attrs["training"])
        cfg = replace(base, lr=base.lr / 4, schedule="cosine")  # what compress_model fine-tunes with
        cells = []
        for method, epochs in methods.items():
            accs = []
            for seed in args.seeds:
                model = copy.deepcopy(winner)
                prune(model, torch.as_tensor(train.X[:2]), args.ratio, round_to=8, rounding="nearest")
                if method.startswith("distill"):
                    distill(model, winner, train.X, train.y, cfg, seed, epochs)
                else:
                    fit(model, train.X, train.y, "classification", cfg, seed=seed, epochs=epochs)
                accs.append(_accuracy(model, test))
            scores[method] += accs
            cells.append(" ".join(f"{a:.4f}" for a in accs))
        print(f"| {split} | {run.name} | {_accuracy(winner, test):.4f} | " + " | ".join(cells) + " |", flush=True)
    print("\n| method | pruned models | mean held-out accuracy | >= 0.99 | lowest |")
    print("|---|---|---|---|---|")
    for method, accs in scores.items():
        print(f"| {method} | {len(accs)} | {np.mean(accs):.4f} | {sum(a >= 0.99 for a in accs)} | {min(accs):.4f} |")
    ten, twenty = np.array(scores["fine-tune 10"]), np.array(scores["fine-tune 20"])
    print(f"\n20 vs 10 epochs, pair by pair: better {int((twenty > ten).sum())}, equal {int((twenty == ten).sum())}, "
          f"worse {int((twenty < ten).sum())}")


if __name__ == "__main__":
    main()
