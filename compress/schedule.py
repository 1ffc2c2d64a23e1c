"""Iterative pruning within an accuracy budget: prune a step → fine-tune → measure on validation data."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from autoarch.compress.config import CompressConfig
from autoarch.compress.pruning import PruningHistory, count_macs_params, count_params, prune_to
from torch import nn

from autoarch.data import Dataset
from autoarch.metrics import compute_metrics
from autoarch.trainer import TrainConfig, fit, predict

__all__ = ["PruneResult", "prune_iteratively", "metric_drop"]

logger = logging.getLogger(__name__)

# Measured latency is noisy: a step "reaches" a latency target within this relative tolerance.
LATENCY_TOLERANCE = 0.02


@dataclass
class PruneResult:
    """The outcome of :func:`prune_iteratively`.

    Attributes:
        model: the kept model: the most compressed step within the accuracy budget (step 0, the input model,
            when no step was).
        history: the pruning history of the kept model (replays on a freshly built network).
        steps: one row per step, step 0 = the input model: params, MACs, (latency), validation metric, drop,
            within budget, channel ratio, seconds.
        kept_step: the step of ``model``.
        stop_reason: why the schedule ended.
        target: ``(kind, share to keep)``.
        target_reached: whether the kept model meets the target.
    """

    model: nn.Module
    history: PruningHistory
    steps: list[dict[str, Any]] = field(default_factory=list)
    kept_step: int = 0
    stop_reason: str = ""
    target: tuple[str, float] = ("macs", 0.25)
    target_reached: bool = False


def metric_drop(metric: str, baseline: float, value: float) -> float:
    """The loss of ``metric`` from ``baseline`` to ``value`` in points (for 0..1 scores: x100), or for error
    metrics (``neg_*``, given as the positive error) in percent of the baseline error."""
    if metric.startswith("neg_"):
        return 100.0 * (value - baseline) / max(abs(baseline), 1e-12)
    return 100.0 * (baseline - value)


def _taylor_gradients(data: Dataset, seed: int, n: int = 256) -> Callable[[nn.Module], None]:
    index = np.random.default_rng(seed).permutation(len(data))[:n]
    X = torch.as_tensor(data.X[index], dtype=torch.float32)
    y = torch.as_tensor(data.y[index])

    def gradients(model: nn.Module) -> None:
        model.eval()  # batch norm on running statistics, no dropout: the same gradients on every try
        out = model(X)
        if data.task == "classification":
            loss = nn.functional.cross_entropy(out, y.long())
        else:
            scale = getattr(model, "y_std", torch.tensor(1.0))
            loss = nn.functional.mse_loss(out.reshape(-1) / scale, y.float() / scale)
        loss.backward()

    return gradients


def prune_iteratively(
    model: nn.Module,
    fit_data: Dataset,
    val_data: Dataset,
    *,
    config: CompressConfig,
    train_config: TrainConfig,
    metric: str,
    device: torch.device | str = "cpu",
    latency: Callable[[nn.Module], float] | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
) -> PruneResult:
    """Prune ``model`` toward ``config``'s target in steps, fine-tuning and validating after each.

    Step ``k`` of ``n = config.steps`` prunes to ``share ** (k / n)`` of the unpruned parameters or MACs
    (geometric steps: each removes the same fraction of what is left), then fine-tunes on ``fit_data`` for
    ``config.finetune_epochs`` epochs (a quarter of the training learning rate, cosine) and scores
    ``val_data``. The schedule stops when the target is reached, when a step loses more than
    ``config.max_drop`` of the validation metric, or when nothing more can be pruned. A latency target is
    approached with MACs steps and checked by measuring ``latency(model)`` after every step; up to ``2 n``
    steps are taken. The most compressed step within the budget is kept.

    Args:
        model: the trained model; not modified.
        fit_data: training data for fine-tuning (and Taylor gradients).
        val_data: validation data, held back from the *training* split.
        metric: the objective name (``accuracy``, ``neg_rmse``, ...).
        latency: measures a model's latency (ms); required for a latency target.
    """
    kind, share = config.target
    if kind == "latency" and latency is None:
        raise ValueError("a latency target needs the `latency` callable")
    plain = metric[4:] if metric.startswith("neg_") else metric
    example = torch.as_tensor(fit_data.X[:2], dtype=torch.float32)
    gradients = _taylor_gradients(fit_data, config.seed) if config.importance == "taylor" else None
    ft_config = replace(train_config, lr=train_config.lr / 4, schedule="cosine")

    def macs_of(m: nn.Module) -> float:
        return float(count_macs_params(m, example)[0])

    def params_of(m: nn.Module) -> float:
        return float(count_params(m))

    proxy = params_of if kind == "params" else macs_of

    def score(m: nn.Module) -> float:
        return compute_metrics(val_data.task, val_data.y, predict(m, val_data.X), val_data.n_outputs)[plain]

    def row(step: int, m: nn.Module, ratio: float, seconds: float) -> dict[str, Any]:
        macs, params = count_macs_params(m, example)
        r: dict[str, Any] = {"step": step, "channel_ratio": round(ratio, 4), "params": params, "macs": macs}
        if latency is not None:
            r["latency_b64_ms"] = latency(m)
        value = score(m)
        r[f"val_{plain}"] = value
        r["drop"] = metric_drop(metric, base_score, value) if step else 0.0
        r["within_budget"] = bool(r["drop"] <= config.max_drop + 1e-9)
        r["seconds"] = round(seconds, 2)
        return r

    current = copy.deepcopy(model).cpu().eval()
    base_score = score(current)
    base = row(0, current, 0.0, 0.0)
    rows = [base]
    base_quantity = float(base["latency_b64_ms"] if kind == "latency" else base[kind])
    base_proxy = proxy(current)
    if on_step is not None:
        on_step(base)

    def reached(r: dict[str, Any]) -> bool:
        value = float(r["latency_b64_ms"] if kind == "latency" else r[kind])
        tolerance = LATENCY_TOLERANCE if kind == "latency" else 0.0
        return value <= share * base_quantity * (1 + tolerance)

    history: PruningHistory = []
    kept = (copy.deepcopy(current), [], 0)
    stop_reason = f"stopped after {2 * config.steps if kind == 'latency' else config.steps} steps"
    max_steps = 2 * config.steps if kind == "latency" else config.steps
    for step in range(1, max_steps + 1):
        start = time.perf_counter()
        goal = base_proxy * share ** (step / config.steps)
        before = proxy(current)
        pruned, ratio, step_history = prune_to(current, example, proxy, goal, importance=config.importance,
                                               global_pruning=config.global_pruning, gradients=gradients,
                                               round_to=config.round_to)
        if not step_history or proxy(pruned) >= before:
            stop_reason = f"nothing more could be pruned at step {step}"
            if config.round_to > 1:
                stop_reason += (f" (every layer is at its minimum width: round_to={config.round_to} keeps at least "
                                f"{config.round_to} channels per layer; a lower round_to prunes further)")
            break
        if config.finetune_epochs > 0:
            fit(pruned, fit_data.X, fit_data.y, fit_data.task, ft_config, seed=config.seed + step, device=device,
                epochs=config.finetune_epochs)
        pruned = pruned.cpu().eval()
        current, history = pruned, history + step_history
        r = row(step, current, ratio, time.perf_counter() - start)
        rows.append(r)
        if on_step is not None:
            on_step(r)
        logger.info("pruning step %d: %s params, %s MACs, val %s %.4f (drop %.2f)", step, r["params"], r["macs"],
                    plain, r[f"val_{plain}"], r["drop"])
        if not r["within_budget"]:
            stop_reason = (f"step {step} lost {r['drop']:.2f} points of validation {plain}, more than the budget "
                           f"of {config.max_drop}")
            break
        kept = (copy.deepcopy(current), list(history), step)
        if reached(r):
            stop_reason = f"target reached at step {step}"
            break
    kept_model, kept_history, kept_step = kept
    return PruneResult(model=kept_model, history=kept_history, steps=rows, kept_step=kept_step,
                       stop_reason=stop_reason, target=(kind, share), target_reached=reached(rows[kept_step]))
