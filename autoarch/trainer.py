"""One training loop: optimizer, L1/L2, learning-rate schedule, early stopping, seeds, device."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import optuna
import torch
from torch import nn

from autoarch.exceptions import ConfigError, TimeLimitError, TrainingError

__all__ = ["TrainConfig", "suggest_training", "fit", "predict", "training_grid", "resolve_device"]

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "cosine")
BATCH_SIZES = (32, 64, 128, 256)


@dataclass(frozen=True)
class TrainConfig:
    """Training hyperparameters of one candidate (searched) and the epoch budget (set by the user)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-5
    l1: float = 0.0
    batch_size: int = 64
    schedule: str = "cosine"
    max_epochs: int = 30
    patience: int = 5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LR_RANGES = {"sgd": (1e-2, 0.3), "adam": (5e-4, 3e-2), "adamw": (5e-4, 3e-2), "rmsprop": (2e-4, 1e-2)}
"""Log-scale learning-rate range per optimizer. One range for all wasted a third of the trials of two digits
searches (35% of 162 trials scored below 0.6: mostly SGD at lr < 0.02 — too slow for a 20-epoch budget — and
Adam/RMSprop at lr > 0.02, which diverged)."""
MOMENTUM_RANGE = (0.5, 0.99)


def suggest_training(trial: optuna.Trial, max_epochs: int, patience: int) -> TrainConfig:
    """Sample training hyperparameters: optimizer, log-scale lr (its range depends on the optimizer: a dynamic
    range of the one parameter ``lr``), momentum (SGD and RMSprop), L2, L1, batch size, schedule."""
    optimizer = trial.suggest_categorical("optimizer", OPTIMIZERS)
    lr = trial.suggest_float("lr", *LR_RANGES[optimizer], log=True)
    momentum = trial.suggest_float("momentum", *MOMENTUM_RANGE) if optimizer in ("sgd", "rmsprop") else 0.0
    return TrainConfig(
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        l1=trial.suggest_float("l1", 1e-8, 1e-3, log=True),
        batch_size=trial.suggest_categorical("batch_size", BATCH_SIZES),
        schedule=trial.suggest_categorical("schedule", SCHEDULES),
        max_epochs=max_epochs,
        patience=patience,
    )


def training_grid() -> dict[str, list[Any]]:
    return {"optimizer": ["sgd", "adam"], "lr": [1e-2, 3e-2], "momentum": [0.9], "weight_decay": [1e-5, 1e-3],
            "l1": [1e-8], "batch_size": [32, 128], "schedule": ["cosine"]}


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error, not a silent fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto.")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, but got {device!r}.")
    return torch.device(device)


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ConfigError(f"optimizer must be one of {OPTIMIZERS}, but got {cfg.optimizer!r}.")


@dataclass
class FitResult:
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_at_deadline: bool = False


def _loss_fn(task: str, model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if task == "classification":
        return nn.functional.cross_entropy
    y_std = getattr(model, "y_std", torch.tensor(1.0))

    def scaled_mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Regression models output original units; the loss is taken on the standardised scale.
        return nn.functional.mse_loss(out.reshape(-1) / y_std, y / y_std)

    return scaled_mse


def fit(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    task: str,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    deadline: float | None = None,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    val_scorer: Callable[[np.ndarray], dict[str, float]] | None = None,
    stop_at: float | None = None,
    monitor: str | None = None,
) -> FitResult:
    """Train ``model`` in place.

    With validation data, the epoch of lowest validation loss is kept and training stops after
    ``cfg.patience`` epochs without improvement; without it, training runs ``epochs`` (default
    ``cfg.max_epochs``) epochs. ``deadline`` is a ``time.monotonic()`` value; training past it stops with a
    :class:`TimeLimitError`. ``augment`` transforms each training batch (raw inputs, on the device) before the
    forward pass; ``val_scorer`` maps the validation output (numpy) to metrics recorded as ``val_<name>`` in
    each epoch's record, which ``on_epoch(epoch, record)`` sees (the search reports them to optuna's pruners).

    ``X`` (and ``X_val``) may be ``uint8`` image pixels (:class:`~autoarch.data.Dataset` keeps 8-bit sources so):
    they stay ``uint8`` and each batch is converted to ``float32`` before ``augment`` and the forward pass, which
    is exact, so the trained weights are those of the same data given as ``float32``. Other inputs are converted
    to ``float32`` once.

    On a CUDA device the data is copied to the GPU once (from pinned memory; ``uint8`` stays ``uint8`` there too)
    and the forward and backward passes run under autocast: bfloat16 where the GPU supports it, else float16 with
    a gradient scaler.

    ``monitor`` names a metric of ``val_scorer`` to maximise (e.g. ``"accuracy"``): the best epoch and early
    stopping then follow it, ties broken by the lower validation loss; None follows the validation loss alone. On
    Fashion-MNIST a BN CNN's validation loss was lowest in epoch 7 (accuracy 0.926) while its accuracy rose to
    0.933 in epoch 11, the network growing more confident on the images it got wrong: keeping the epoch of lowest
    loss threw away 0.7 points of the metric the search optimises.

    ``stop_at`` (``time.monotonic()``) is a soft deadline: training stops there as if early stopping had ended
    it, with the weights of the best validation epoch so far (``FitResult.stopped_at_deadline``); with no
    validated epoch yet it raises :class:`TimeLimitError` like ``deadline``.

    Raises:
        TrainingError: the loss became NaN or infinite.
        TimeLimitError: the deadline passed.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    cuda = device.type == "cuda"
    Xt = torch.as_tensor(X)
    if Xt.dtype != torch.uint8:  # 8-bit pixels stay uint8 (4x less memory); batches become float32 below
        Xt = Xt.to(torch.float32)
    images = Xt.dim() == 4
    if images:
        # oneDNN's convolutions run faster on NHWC: 1.1-1.5x per training batch of Fashion-MNIST CNNs on this CPU
        # (benchmarks/channels_last.py). The model goes back to the default layout before it is returned.
        model.to(memory_format=torch.channels_last)
    Xt = Xt.pin_memory().to(device, non_blocking=True) if cuda else Xt
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    yt = torch.as_tensor(y, device=device)
    yt = yt.long() if task == "classification" else yt.float()
    loss_fn = _loss_fn(task, model)
    n_epochs = epochs if epochs is not None else cfg.max_epochs
    opt = _optimizer(model, cfg)
    steps_per_epoch = max(1, math.ceil(len(Xt) / cfg.batch_size))
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_epochs * steps_per_epoch))
             if cfg.schedule == "cosine" else None)
    weights = [p for n, p in model.named_parameters() if p.dim() > 1]
    # A network may ask for gradient-norm clipping (the rnn space searches it): ``net.grad_clip`` > 0.
    clip = float(getattr(getattr(model, "net", model), "grad_clip", 0.0) or 0.0)
    has_val = X_val is not None and y_val is not None and len(X_val) > 0
    best_loss, best_epoch, best_state, bad_epochs = math.inf, n_epochs, None, 0
    best_score = -math.inf
    result = FitResult(best_epoch=n_epochs, epochs_run=0)
    for epoch in range(1, n_epochs + 1):
        model.train()
        order = torch.randperm(len(Xt), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(Xt), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            if len(idx) < 2 and len(Xt) > 1:
                continue  # a batch of one breaks batch norm
            xb = Xt[idx].float()  # a no-op for float32; exact for uint8 pixels
            if augment is not None:
                xb = augment(xb)
            if images:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                loss = loss_fn(model(xb).float(), yt[idx])
            if cfg.l1 > 0:
                loss = loss + cfg.l1 * sum(w.abs().sum() for w in weights)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss.item()} in epoch {epoch} (lr={cfg.lr:.3g}, "
                    f"optimizer={cfg.optimizer}); a lower learning rate usually avoids this."
                )
            opt.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                if clip > 0:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                if clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), clip)
                opt.step()
            if sched is not None:
                sched.step()
            total += loss.item() * len(idx)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeLimitError(f"the trial ran past its time limit in epoch {epoch}")
            if stop_at is not None and time.monotonic() > stop_at:
                if best_state is None:
                    raise TimeLimitError(f"the trial ran past its time limit in epoch {epoch}")
                result.stopped_at_deadline = True
                break
        if result.stopped_at_deadline:
            break  # the unfinished epoch is dropped: the best validated epoch's weights are restored below
        record = {"epoch": epoch, "train_loss": total / len(Xt)}
        if has_val:
            val_out = predict(model, X_val, device=device, as_numpy=False)
            yv = torch.as_tensor(y_val, device=device)
            val_loss = loss_fn(val_out, yv.long() if task == "classification" else yv.float()).item()
            record["val_loss"] = val_loss
            if val_scorer is not None:
                record.update({f"val_{k}": float(v) for k, v in val_scorer(val_out.float().cpu().numpy()).items()})
            score = record.get(f"val_{monitor}", -math.inf) if monitor is not None else 0.0
            if not math.isfinite(score):
                score = -math.inf
            better_loss = val_loss < best_loss - 1e-6
            if score > best_score + 1e-9 or (score >= best_score - 1e-9 and better_loss):
                best_loss, best_score, best_epoch, bad_epochs = val_loss, score, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
        result.history.append(record)
        result.epochs_run = epoch
        if on_epoch is not None:
            on_epoch(epoch, record)
        if has_val and bad_epochs >= cfg.patience:
            break
    if has_val and best_state is not None:
        model.load_state_dict(best_state)
        result.best_epoch = best_epoch
    else:
        result.best_epoch = result.epochs_run
    if images:
        model.to(memory_format=torch.contiguous_format)
    model.eval()
    return result


@torch.no_grad()
def predict(model: nn.Module, X: np.ndarray, *, device: torch.device | str = "cpu", batch_size: int = 1024,
            as_numpy: bool = True) -> Any:
    """The model's raw output (logits or values) for ``X``, computed in evaluation mode."""
    model.eval()
    device = torch.device(device)

    def batch(i: int) -> torch.Tensor:
        x = torch.as_tensor(X[i:i + batch_size], dtype=torch.float32, device=device)
        return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

    outs = [model(batch(i)) for i in range(0, len(X), batch_size)]
    out = torch.cat(outs) if outs else torch.empty(0)
    return out.cpu().numpy() if as_numpy else out
