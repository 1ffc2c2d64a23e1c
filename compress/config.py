"""The options of the standalone compression stage, validated in one place (imports no torch, so the CLI's
parser starts fast)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from autoarch.config import option
from autoarch.exceptions import ConfigError, did_you_mean

__all__ = ["CompressConfig", "IMPORTANCES", "INT8_MODES", "TARGET_KINDS"]

IMPORTANCES = ("l1", "l2", "bn_scale", "taylor")
INT8_MODES = ("auto", "static", "dynamic", "none")
TARGET_KINDS = ("params", "macs", "latency", "channels")


@dataclass(frozen=True)
class CompressConfig:
    """How far to prune, how much validation metric may be lost, and how to quantize.

    Attributes:
        target_params, target_macs, target_latency: the share to keep (``0.25`` keeps 25%) of the parameter
            count, of the multiply-accumulates per sample, or of the ONNX Runtime fp32 latency at batch 64
            (1 thread, measured), pruned in ``steps`` steps within the ``max_drop`` budget. At most one target;
            with none, ``target_macs=0.25``.
        target_channels: the share of every hidden layer's channels (conv) or units (linear, recurrent) to keep,
            pruned in one shot: what a search does with its winner (``--prune 0.15`` is ``target_channels=0.85``);
            ``1`` keeps every channel (no pruning: export and int8 only). Without ``check`` (the default) there is
            no accuracy budget: the fine-tune's length is chosen on ``val_size`` of the split (``finetune_stop``)
            and the pruned model ships; with it the pruned model is kept only within ``max_drop`` there.
        max_drop: the largest allowed loss of the validation metric, in points: ``0.5`` lets accuracy fall from
            0.960 to 0.955. For error metrics (``neg_rmse``, ...) it is a percentage of the unpruned error.
        confidence: a step is over the budget only when its drop exceeds ``max_drop`` by more than the validation
            part can tell from noise: the one-sided bound at this level of a paired bootstrap of the drop
            (:func:`~autoarch.compress.schedule.drop_margin`); ``0.5`` or None: the drop itself decides.
        importance: how channels are ranked: ``l1`` / ``l2`` weight magnitude, ``bn_scale`` (batch-norm
            scale; needs batch norm) or ``taylor`` (first-order loss change, from gradients on training data).
        global_pruning: rank channels across all layers (layers shrink unevenly) instead of removing the same
            share from every layer.
        round_to: keep channel / unit counts multiples of this (1: exact counts). ONNX Runtime's convolutions
            are measured 1.5-2.4x slower on unaligned counts (e.g. 26 or 34 channels vs 24 or 32).
        steps: pruning steps to reach the target; each is followed by fine-tuning and a validation check.
        finetune_epochs: fine-tuning epochs after every step (a channel target: at most this many, see
            ``finetune_stop``).
        val_size: share of the *training* split held back to measure the validation metric (the held-out test
            split is only reported, never used for a decision).
        check: (channel targets) hold back ``val_size`` of the training split, fine-tune the pruned model on the
            rest, and ship the unpruned model instead when the pruned one loses more than ``max_drop`` there beyond
            the noise margin; the unpruned model is fine-tuned the same way as a fair reference only when the
            comparison with it as given (flattered: it has trained on that part) fails. Off (the default): the
            pruned model fine-tunes on the whole split, unchecked. Measured (BENCHMARKS.md, airline tweets and the
            digits main job): on digits every check passed and the shipped models were 1-2 images (of 360) worse
            on 2 of 5 splits, fine-tuned on 85% of the split; on airline tweets it passed a pruning whose 19-epoch
            fine-tune cost 2.7 points held out, because the reference fine-tuned the same way lost as much (the
            check measures pruning, not an over-long fine-tune).
        finetune_stop: (channel targets, on by default) choose the fine-tune's length by early stopping: the
            pruned model fine-tunes on the split less ``val_size`` for at most ``finetune_epochs`` epochs, validated
            after each, and is then fine-tuned afresh (from the pruned weights) on the whole split for the best
            epoch's count when the last epoch run scored below it by more than the validation noise
            (``confidence``), else for all ``finetune_epochs``. No fixed length suits every modality (digits: 20
            epochs beat 10; airline tweets: a GRU lost 2.7 points in 19 epochs and gained 0.8 in 3), and a small
            validation part cannot tell (OSULeaf, 30 series: best epoch 2 of 20 by noise). Off:
            ``finetune_epochs`` on the whole split.
        calibration_samples: training samples that calibrate int8 activation ranges.
        final_finetune: once the step is chosen, fine-tune the kept model ``finetune_epochs`` more epochs on
            the whole training split, validation part included (its job, choosing the step, is done).
        retrain: (run directories) retrain the winner's architecture from scratch on the training split minus
            the validation part before pruning, with the search's training settings and epochs. The winner
            itself was trained on the validation part too, and its memory of it makes every pruned step look
            worse there than it generalises (measured on a Fashion-MNIST CNN: 0.943 on that part, 0.911 held
            out, even after fine-tuning); the retrained twin has never seen it. Off: start from ``winner.pt``
            and accept a budget that errs on the cautious side.
        int8: ``static`` (QDQ, per-channel), ``dynamic`` (weights only; Linear layers), ``auto`` (static for
            models with convolutions; for Linear-only models both are measured at batch 64 and the faster is
            kept) or ``none``.
        seed: seed of the validation split, fine-tuning and calibration sample.
        device: fine-tuning device (``auto``, ``cpu``, ``cuda``).
    """

    target_params: float | None = option(None, "keep this share of the parameters, e.g. 0.3", group="target",
                                         exclusive="target", metavar="SHARE")
    target_macs: float | None = option(
        None, "keep this share of the multiply-accumulates per sample, e.g. 0.25 (the default target is "
        "--target-macs 0.25)", group="target", exclusive="target", metavar="SHARE")
    target_latency: float | None = option(
        None, "keep this share of the ONNX Runtime fp32 latency at batch 64 (1 thread, measured after every step), "
        "e.g. 0.4", group="target", exclusive="target", metavar="SHARE")
    target_channels: float | None = option(
        None, "keep this share of every hidden layer's channels, pruned in one shot without a budget (what a "
        "search's --prune does: --prune 0.15 = --target-channels 0.85)", group="target", exclusive="target",
        metavar="SHARE")
    max_drop: float = option(
        1.0, "largest allowed loss of the validation metric, in points (0.5: accuracy 0.960 -> 0.955); for error "
        "metrics, in percent of the unpruned error (default: %(default)s)", group="target", metavar="POINTS")
    confidence: float | None = option(
        0.95, "a step is over the budget only when its drop exceeds --max-drop by more than the validation "
        "noise: this one-sided bound of a paired bootstrap of the drop over the validation samples (0.95; 0.5 = "
        "the drop itself) (default: %(default)s)", group="target", metavar="LEVEL")
    importance: str = option(
        "l2", "channel ranking: l1/l2 weight magnitude, bn_scale (batch-norm scale; needs batch norm) or taylor "
        "(|weight x gradient| on training data) (default: %(default)s)", group="pruning", choices=IMPORTANCES)
    global_pruning: bool = option(
        False, "rank channels across all layers (layers shrink unevenly) instead of removing the same share from "
        "every layer", group="pruning")
    round_to: int = option(8, "keep channel counts multiples of this; 1 = exact (default: %(default)s)",
                           group="pruning")
    steps: int = option(4, "pruning steps toward the target, each fine-tuned and validated (default: %(default)s)",
                        group="pruning")
    finetune_epochs: int = option(2, "fine-tuning epochs after every step (default: %(default)s)", group="pruning")
    val_size: float = option(
        0.15, "share of the training split held back as validation data (default: %(default)s)", group="pruning")
    check: bool = option(
        False, "check a channel target: hold back --val-size of the training split, fine-tune the pruned model on "
        "the rest, and ship the unpruned model when pruning loses more than --max-drop there (off by default: "
        "measured on digits and airline tweets it did not help; BENCHMARKS.md)", group="pruning")
    finetune_stop: bool = option(
        True, "channel targets: always fine-tune --finetune-epochs on the whole split, instead of fine-tuning first on "
        "all but --val-size and shortening to the best epoch when that part shows the longer fine-tune worse beyond "
        "its noise margin", group="pruning")
    calibration_samples: int = option(
        256, "training samples that calibrate int8 activation ranges (default: %(default)s)", group="int8")
    retrain: bool = option(
        True, "prune winner.pt itself instead of its architecture retrained without the validation part (the "
        "winner has seen that part, which makes the budget overly cautious)", group="pruning")
    final_finetune: bool = option(
        True, "do not fine-tune the kept step again on the whole training split (validation part included)",
        group="pruning")
    int8: str = option(
        "auto", "static QDQ, dynamic, auto (static for CNNs; for Linear-only models both are timed at batch 64 and "
        "the faster kept) or none (default: %(default)s)", group="int8", choices=INT8_MODES)
    seed: int = option(0, "seed of the validation split, fine-tuning and calibration (default: the run's seed)",
                       group="pruning", cli_default=None)
    device: str = option("auto", "fine-tuning device (default: %(default)s)", group="pruning",
                         choices=("auto", "cpu", "cuda"))

    @property
    def target(self) -> tuple[str, float]:
        """``(kind, share to keep)``: the one target that is set, or ``("macs", 0.25)``."""
        for kind in TARGET_KINDS:
            value = getattr(self, f"target_{kind}")
            if value is not None:
                return kind, float(value)
        return "macs", 0.25

    def validate(self) -> None:
        """Raise a :class:`~autoarch.exceptions.ConfigError` naming the first invalid option."""

        def need(ok: bool, name: str, rule: str, value: Any) -> None:
            if not ok:
                raise ConfigError(f"The '{name}' parameter of compress must be {rule}. Got {value!r} instead.")

        targets = [k for k in TARGET_KINDS if getattr(self, f"target_{k}") is not None]
        if len(targets) > 1:
            given = ", ".join(f"target_{k}" for k in targets)
            raise ConfigError(f"give at most one compression target, but got {given}; keep one of them.")
        for kind in targets:
            value = getattr(self, f"target_{kind}")
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if kind == "channels":
                need(number and 0.0 < value <= 1.0, "target_channels", "the share of channels to keep, a float in "
                     "(0, 1] (1 = no pruning)", value)
            else:
                need(number and 0.0 < value < 1.0, f"target_{kind}", "the share to keep, a float in (0, 1) (0.25 "
                     "keeps 25%)", value)
        need(isinstance(self.max_drop, (int, float)) and self.max_drop >= 0, "max_drop", "a number of points >= 0",
             self.max_drop)
        need(self.confidence is None or (isinstance(self.confidence, (int, float)) and 0.5 <= self.confidence < 1),
             "confidence", "None or a level in [0.5, 1)", self.confidence)
        if self.importance not in IMPORTANCES:
            raise ConfigError(f"The 'importance' parameter of compress must be one of {list(IMPORTANCES)}. Got "
                              f"{self.importance!r} instead.{did_you_mean(self.importance, IMPORTANCES)}")
        need(isinstance(self.round_to, int) and self.round_to >= 1, "round_to", "an int >= 1", self.round_to)
        need(isinstance(self.steps, int) and 1 <= self.steps <= 50, "steps", "an int in [1, 50]", self.steps)
        need(isinstance(self.finetune_epochs, int) and self.finetune_epochs >= 0, "finetune_epochs", "an int >= 0",
             self.finetune_epochs)
        need(isinstance(self.val_size, (int, float)) and 0.0 < self.val_size < 1.0, "val_size",
             "a float in (0, 1)", self.val_size)
        need(isinstance(self.calibration_samples, int) and self.calibration_samples >= 1, "calibration_samples",
             "an int >= 1", self.calibration_samples)
        if self.int8 not in INT8_MODES:
            raise ConfigError(f"The 'int8' parameter of compress must be one of {list(INT8_MODES)}. Got "
                              f"{self.int8!r} instead.{did_you_mean(self.int8, INT8_MODES)}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"The 'device' parameter of compress must be auto, cpu or cuda. Got {self.device!r} "
                              "instead.")

    @classmethod
    def from_options(cls, **options: Any) -> CompressConfig:
        """Build and validate a config from keyword options, with a 'did you mean' for a misspelled one."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise ConfigError(f"compress got unknown option {unknown[0]!r}.{did_you_mean(unknown[0], names)}")
        config = cls(**options)
        config.validate()
        return config
