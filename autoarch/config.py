"""The options of a search, validated in one place (imports no torch, so the CLI starts fast)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoarch.exceptions import ConfigError, did_you_mean

if TYPE_CHECKING:
    from autoarch.compress.config import CompressConfig
    from autoarch.search_spaces import SearchSpace

__all__ = ["SearchConfig", "SPACES", "DEFAULT_TRIALS", "UNTIL_TIMEOUT", "AUTO_SPACE", "LONG_SEQUENCE",
           "CONTROLLERS", "OBJECTIVES", "EARLY_STOP", "HOLDOUT", "LARGE_DATA", "BAD_IMAGE", "AUGMENT",
           "AUGMENT_MIN_SIDE", "SEARCH_SAMPLES", "DEFAULT_EPOCHS", "EPOCH_SAMPLES", "MAX_AUTO_EPOCHS", "resolve_cv",
           "resolve_augment", "resolve_search_samples", "resolve_epochs", "resolve_patience"]

SPACES = {"mlp": "autoarch.search_spaces.mlp:MLPSpace", "cnn": "autoarch.search_spaces.cnn:CNNSpace",
          "rnn": "autoarch.search_spaces.rnn:RNNSpace", "conv1d": "autoarch.search_spaces.conv1d:Conv1DSpace"}
"""The built-in search spaces, by name: the registry ``--space`` reads (import paths, so that the CLI imports no
torch); :data:`autoarch.search_spaces.SPACES` holds their classes. A user's space is given by its import path."""
AUTO_SPACE = {"tabular": "mlp", "image": "cnn", "text": "rnn", "sequence": "rnn"}
"""``--space auto``: the built-in space for each input kind."""
LONG_SEQUENCE = 100
"""``--space auto`` gives numeric sequences of more steps than this the ``conv1d`` space instead of ``rnn``:
recurrent networks over hundreds of raw steps learn too slowly (OSULeaf, 427 steps: every rnn candidate was still
at chance level after 4 epochs; BENCHMARKS.md)."""
DEFAULT_TRIALS = 30
"""``--trials`` when neither it nor ``--timeout`` is given."""
UNTIL_TIMEOUT = 1_000_000
"""The trial budget of a search given ``--timeout`` and no ``--trials``: it runs trials until the deadline (four
benchmark searches given only ``--timeout`` ended after 15-50% of it, their 30 default trials spent:
BENCHMARKS.md)."""
CONTROLLERS = ("evolution", "reinforce", "random", "tpe", "nsga2", "grid")
"""The ``--controller`` names (:func:`autoarch.controllers.make_sampler` builds them). Here, not in the
controllers package, so that the CLI's parser imports no optuna."""
OBJECTIVES = {
    "classification": ("accuracy", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "roc_auc"),
    "regression": ("neg_mse", "neg_rmse", "neg_mae", "r2"),
}
"""The ``--metric`` names per task (:mod:`autoarch.metrics` computes them with scikit-learn)."""
EARLY_STOP = ("auto", "none", "median", "halving", "hyperband")
"""Optuna pruners that stop poor candidates after an epoch: MedianPruner, SuccessiveHalvingPruner, HyperbandPruner;
``auto`` = successive halving when validating on a holdout split (large data), the median pruner for k-fold
(the README's digits job, five splits: shipped int8 mean 0.9933-0.9939 in two runs with it, 0.9906 without,
60-168 s instead of 140-173 s; BENCHMARKS.md); with several objectives (stopped by Pareto rank,
:func:`autoarch.pareto.pareto_stop`) successive halving on a holdout split and none for k-fold."""
HOLDOUT = 0.1
"""Share of the training split that ``--cv holdout`` validates on."""
LARGE_DATA = 10_000
"""``--cv auto`` validates on one holdout split from this many training samples on, by 5-fold CV below."""
SEARCH_SAMPLES = 20_000
"""``--search-samples auto``: during the search a candidate trains on at most this many samples of each fold's
training part (a stratified subset; its validation part stays whole), and the winner is retrained on the whole
training split. On Fashion-MNIST (54,000 training samples in the holdout fold) this makes a 20-epoch candidate
about 2.7 times cheaper, so that the warm starts no longer take most of a 30-minute budget (BENCHMARKS.md)."""
DEFAULT_EPOCHS = 20
"""``--epochs auto``: the epoch budget of a candidate on a training split of at least :data:`EPOCH_SAMPLES` /
20 samples (digits' 1,437: the README's job, tuned there)."""
EPOCH_SAMPLES = 20_000
"""``--epochs auto`` on a smaller training split: enough epochs for a candidate to see this many samples (at most
:data:`MAX_AUTO_EPOCHS`), so that a tiny data set gets as many optimizer steps as digits does in 20 epochs rather
than a tenth of them. On OSULeaf (200 series) the UCR archive's FCN, retrained on all 200 series and scored on the
official 242, reached 0.61 after 15 epochs, 0.91 after 50 and 0.98 after 150; a 2-block network picked by a 20-epoch
search 0.50, 0.60 and 0.67 (BENCHMARKS.md)."""
MAX_AUTO_EPOCHS = 200
"""The most epochs ``--epochs auto`` gives (training splits of at most 100 samples)."""
BAD_IMAGE = ("fail", "skip")
AUGMENT = ("auto", "search", "off")
"""``--augment``: search the training augmentation of image spaces (``search``), never (``off``), or ``auto``:
search it for images of at least :data:`AUGMENT_MIN_SIDE` pixels a side, off below."""
AUGMENT_MIN_SIDE = 16
"""On smaller images one pixel of shift is 1/8 of the picture and a flip or rotation leaves little intact: on the
8x8 digits the small-ResNet warm start scored 0.775 3-fold CV with flips and shifts, 0.962 without."""


def _cv(value: str) -> int | float | str:
    """``--cv`` from the command line: ``auto``, ``holdout``, an int >= 2 or a share in (0, 1)."""
    if value in ("auto", "holdout"):
        return value
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number >= 2 and number == int(number):
        return int(number)
    if 0 < number < 1:
        return number
    raise argparse.ArgumentTypeError(f"must be an int >= 2 (k-fold), a share in (0, 1), 'holdout' or 'auto', "
                                     f"not {value!r}")


def _word_or_int(value: str, words: tuple[str, ...], minimum: int, rule: str) -> int | str:
    """``value`` when it is one of ``words``, else an int of at least ``minimum`` (argparse's error otherwise)."""
    if value in words:
        return value
    try:
        n = int(value)
    except ValueError:
        n = minimum - 1
    if n < minimum:
        raise argparse.ArgumentTypeError(f"must be {rule}, not {value!r}")
    return n


def _search_samples(value: str) -> int | str:
    return _word_or_int(value, ("auto", "all"), 10, "'auto', 'all' or an integer >= 10")


def _positive_or_auto(value: str) -> int | str:
    return _word_or_int(value, ("auto",), 1, "'auto' or a positive integer")


_workers = _epochs = _positive_or_auto


def option(default: Any, help: str, *, group: str, flag: str | None = None, metavar: str | None = None,
           choices: Sequence[str] | None = None, parse: Callable[[str], Any] | None = None,
           exclusive: str | None = None, cli_default: Any = ..., cli: bool = True) -> Any:
    """A configuration field and its command-line flag, declared once (``cli.add_config_arguments`` makes the
    flag): ``help`` (argparse's text, with ``%(default)s``), the ``--help`` section ``group`` (sections appear in
    the order of their first field), the flag (default: the name with dashes; a bool field whose default is True
    gets ``--no-NAME``), ``parse`` for a value that is not just the field's ``int`` / ``float`` / ``str``,
    ``exclusive`` to make flags of the same name mutually exclusive, and ``cli_default`` where the flag's default
    differs from the field's (None: the command fills the field in, e.g. ``compress --seed`` from the run), and
    ``cli=False`` for a field that has no flag (a nested configuration: the API and ``--config`` files only)."""
    return field(default=default, metadata={"help": help, "group": group, "flag": flag, "metavar": metavar,
                                            "choices": tuple(choices) if choices is not None else None,
                                            "parse": parse, "exclusive": exclusive, "cli_default": cli_default,
                                            "cli": cli})


_METRICS = tuple(sorted({m for names in OBJECTIVES.values() for m in names}))


@dataclass(frozen=True)
class SearchConfig:
    """Every option of a search, declared once: the fields are the keyword options of :func:`autoarch.search`,
    the keys of a ``--config`` file and of ``report.json``'s ``config`` block, and (through :func:`option`'s
    metadata: help, flag, section) the flags of ``autoarch search``. :meth:`validate` checks them."""

    space: str | SearchSpace = option(
        "auto", "search space; auto = cnn for images, rnn for text and sequences (conv1d above 100 steps), mlp "
        "otherwise; or the import path of your own SearchSpace subclass (or NNI ModelSpace), e.g. "
        "mypkg.spaces:MySpace (default: %(default)s)",
        group="search", metavar="{" + ",".join(["auto", *SPACES]) + ",MODULE:CLASS}")
    controller: str = option(
        "evolution", "evolution = regularized (aging) evolution, reinforce = REINFORCE policy gradient; random, "
        "tpe (Bayesian), nsga2 and grid are optuna's samplers; or the import path of your own optuna sampler "
        "class, e.g. mypkg.samplers:MySampler, built with seed=--seed (default: %(default)s)",
        group="search", metavar="{" + ",".join([*CONTROLLERS, "MODULE:CLASS"]) + "}")
    metric: str | None = option(
        None, f"objective, one of {', '.join(_METRICS)} (default: accuracy for classification, neg_rmse for "
        "regression)", group="search", choices=_METRICS, metavar="METRIC")
    objectives: str | None = option(
        None, "a multi-objective search: comma-separated objectives, the first a metric (as --metric), the others "
        "metrics or costs measured before training: latency (int8 onnxruntime ms at --latency-batch, 1 thread), "
        "int8_size (KB of the int8 ONNX file), params, macs; e.g. accuracy,latency. The search keeps the Pareto "
        "front (pareto.csv) and ships the --pick point", group="search", metavar="NAMES")
    pick: str = option(
        "knee", "which point of a multi-objective search's front is retrained, compressed and shipped: knee (nearest "
        "the ideal point, objectives scaled over the front), best (the first objective) or best-under:NAME=VALUE"
        "[,NAME=VALUE] (the best first objective within the bounds, e.g. best-under:latency=0.5) "
        "(default: %(default)s)", group="search", metavar="knee|best|best-under:NAME=VALUE")
    cv: int | float | str = option(
        "auto", "validation of each candidate: K-fold (stratified) CV with K >= 2, holdout = one stratified split "
        "validating on 10%% of the training split, a share in (0, 1) for another holdout size; auto = holdout "
        "from 10,000 training samples on, else 5-fold (default: %(default)s)",
        group="validation and budget", metavar="K|holdout|SHARE|auto", parse=_cv)
    trials: int | None = option(
        None, f"number of candidates to evaluate; a resumed run counts the trials already done (default: "
        f"{DEFAULT_TRIALS}, or with --timeout as many as it leaves time for)", group="search")
    timeout: float | None = option(
        None, "end the search after this many seconds: no trial starts after it and a trial still training is "
        "stopped (not counted); the winner's retrain and compression follow", group="validation and budget",
        metavar="SECONDS")
    seed: int = option(0, "seed of splits, controller and training (default: %(default)s)", group="search")
    epochs: int | str = option(
        "auto", "maximum training epochs per fold; early stopping on 10%% of the fold's training part picks the "
        f"epoch; auto = {DEFAULT_EPOCHS}, or on a training split of fewer than {EPOCH_SAMPLES // DEFAULT_EPOCHS:,} "
        f"samples enough epochs to see {EPOCH_SAMPLES:,} (at most {MAX_AUTO_EPOCHS}) (default: %(default)s)",
        group="training", metavar="N|auto", parse=_epochs)
    patience: int | str = option(
        "auto", "epochs without improvement before early stopping; auto = a quarter of --epochs, at least 5 "
        "(default: %(default)s)", group="training", metavar="N|auto", parse=_positive_or_auto)
    test_size: float = option(
        0.2, "share of the data held out before the search, stratified (default: %(default)s)", group="data")
    prune: float = option(
        0.15, "structural pruning of the winner: the share of channels (conv), units (linear, LSTM/GRU/RNN) or "
        "embedding dimensions removed from every hidden layer, coupled layers together, output layer untouched, "
        "kept counts rounded to the nearest multiple of 8 (layers of <= 8 left alone); 0.15 keeps 56 of 64, 24 of "
        "32 and 16 of 16 channels, 0.3 keeps 48, 24 and 8; 0 disables (default: %(default)s)",
        group="compression", metavar="RATIO")
    finetune_epochs: int = option(20, "fine-tuning epochs after pruning (default: %(default)s)",
                                  group="compression")
    calibration_samples: int = option(
        256, "training samples used to calibrate int8 activation ranges (default: %(default)s)",
        group="compression")
    max_samples: int | None = option(None, "use a stratified random subset of at most this many samples",
                                     group="data")
    device: str = option("auto", "training device (default: %(default)s)", group="training",
                         choices=("auto", "cpu", "cuda"))
    workers: int | str = option(
        "auto", "local worker processes on one study, one torch thread each (a single worker keeps torch's "
        "threads); auto = one per usable CPU core ($AUTOARCH_WORKERS overrides), 1 on a GPU; give 1 for a "
        "reproducible run (default: %(default)s)", group="workers and storage", metavar="N|auto", parse=_workers)
    early_stop: str = option(
        "auto", "multi-fidelity: stop poor candidates after an epoch with optuna's median, successive-halving (a "
        "third promoted at 1, 3, 9, ... epochs) or hyperband pruner (with several --objectives: by Pareto rank); "
        "auto = halving with holdout validation, median with k-fold (none with k-fold and several objectives) "
        "(default: %(default)s)", group="validation and budget", choices=EARLY_STOP)
    trial_timeout: float | None = option(
        None, "fail a candidate whose cross-validation runs longer than this", group="validation and budget",
        metavar="SECONDS")
    max_params: int | None = option(None, "reject candidates with more parameters, before any training",
                                    group="search")
    max_macs: int | None = option(
        None, "reject candidates with more multiply-accumulates per sample, before any training", group="search")
    max_latency_ms: float | None = option(
        None, "reject candidates whose int8 model takes longer than this per inference at --latency-batch, "
        "measured before any training: the candidate exported to ONNX, quantized as it would ship, timed with "
        "onnxruntime on this machine (1 thread)", group="search", metavar="MS")
    max_size_kb: float | None = option(
        None, "reject candidates whose int8 ONNX file is larger than this many KB (1 KB = 1024 bytes), measured "
        "before any training", group="search", metavar="KB")
    latency_batch: int = option(1, "the batch size --max-latency-ms and the latency objective are measured at "
                                "(default: %(default)s)",
                                group="search", metavar="N")
    storage: str | None = option(
        None, "optuna storage shared by workers on many machines: postgresql://user:pw@host/db, "
        "mysql+pymysql://..., sqlite:///file.db or journal:FILE (default: sqlite file in --out)",
        group="workers and storage", metavar="URL")
    study_name: str = option("autoarch", "study name in the storage (default: %(default)s)",
                             group="workers and storage", flag="--study")
    test: str | None = option(
        None, "the held-out test set: a file or image folder of the same kind and classes as the data (the search "
        "then uses all of DATA), or 'split' to hold out --test-size of DATA; default: a built-in data set's "
        "official test split (fashion-mnist: its 10,000 test images), else split", group="data",
        metavar="FILE|FOLDER|split")
    image_size: int | None = option(
        None, "resize the images of a folder to N x N (needed when their sizes differ)", group="data",
        metavar="N")
    on_bad_image: str = option(
        "fail", "an unreadable or non-image file in an image folder ends the run (fail) or is skipped with a count "
        "(default: %(default)s)", group="data", choices=BAD_IMAGE)
    text_column: str | None = option(
        None, "the column of texts of a CSV file: a text classification search (the rnn space); the vocabulary is "
        "fitted inside each fold's training part", group="data", metavar="COLUMN")
    max_length: int | None = option(None, "texts are cut after N tokens (default: 64)", group="data",
                                    metavar="N")
    warm_start: bool = option(
        True, "do not evaluate the space's textbook networks (LeNet-5-like, small ResNet) first",
        group="search")
    augment: str = option(
        "auto", "search the training augmentation of image candidates (flips, shifts, rotations, colour): search, "
        "off, or auto = search for images of 16+ pixels a side (default: %(default)s)", group="training",
        choices=AUGMENT)
    compress: CompressConfig | None = option(
        None, "the winner's compression as a CompressConfig (the Python API, or a [compress] table of a --config "
        "file), with any target autoarch compress takes, e.g. target_macs = 0.25, max_drop = 0.5, importance = "
        "'taylor'; the search's seed and device apply. Replaces --prune, --finetune-epochs and "
        "--calibration-samples", group="compression", cli=False)
    search_samples: int | str | None = option(
        "auto", "multi-fidelity over data: during the search each candidate trains on a stratified subset of at "
        "most N samples of its fold's training part (validated on the whole validation part); the winner is "
        "retrained on the whole training split; auto = 20,000 when the training split is larger, else all "
        "(default: %(default)s)", group="validation and budget", metavar="N|all|auto", parse=_search_samples)

    def __post_init__(self) -> None:
        if isinstance(self.compress, Mapping):  # a [compress] table of a config file, or a recorded report
            from autoarch.compress.config import CompressConfig

            try:
                value = CompressConfig.from_options(**self.compress)
            except ConfigError as exc:
                raise ConfigError(f"the 'compress' option: {exc}") from None
            object.__setattr__(self, "compress", value)

    @property
    def compression(self) -> CompressConfig:
        """How the winner is compressed, as the compression pipeline's one configuration: :attr:`compress` when
        given, else ``--prune R`` as a one-shot channel target keeping ``1 - R``
        (:attr:`~autoarch.compress.config.CompressConfig.target_channels`), fine-tuned for ``--finetune-epochs``
        on the whole training split, int8 calibrated on ``--calibration-samples``; with the search's seed and
        device either way."""
        from dataclasses import replace

        from autoarch.compress.config import CompressConfig

        if self.compress is not None:
            return replace(self.compress, seed=self.seed, device=self.device)
        return CompressConfig(target_channels=round(1.0 - self.prune, 12), finetune_epochs=self.finetune_epochs,
                              calibration_samples=self.calibration_samples, seed=self.seed, device=self.device)

    @property
    def until_timeout(self) -> bool:
        """Whether the search runs trials until ``--timeout`` (given, with no ``--trials``), as optuna's
        ``study.optimize(n_trials=None, timeout=T)`` does."""
        return self.trials is None and self.timeout is not None

    @property
    def trial_budget(self) -> int:
        """How many counted trials end the search: ``--trials``, else :data:`DEFAULT_TRIALS` without
        ``--timeout``, else :data:`UNTIL_TIMEOUT` (the deadline ends it first)."""
        if self.trials is not None:
            return self.trials
        return UNTIL_TIMEOUT if self.timeout is not None else DEFAULT_TRIALS

    @property
    def finetune_budget(self) -> int:
        """Epochs of fine-tuning the winner's compression plans (what ``--timeout`` reserves for it): the one-shot
        fine-tune, or for a target pruned in steps the reference, every step and the final fine-tune."""
        c = self.compression
        if c.target[0] == "channels":
            return c.finetune_epochs if c.target[1] < 1 else 0
        return c.finetune_epochs * (c.steps + 1 + int(c.final_finetune))

    @property
    def finetune_factor(self) -> float:
        """What one planned fine-tune epoch (:attr:`finetune_budget`) costs at most, in epochs of the whole training
        split. For the one-shot pruning: early stopping on ``1 - val_size`` of it, then at most as long on all of it
        (:attr:`~autoarch.compress.config.CompressConfig.finetune_stop`); checked
        (:attr:`~autoarch.compress.config.CompressConfig.check`), the unpruned reference too on ``1 - val_size``
        when the first comparison fails. 1 otherwise."""
        c = self.compression
        if c.target[0] != "channels" or c.target[1] >= 1:
            return 1.0
        part = 1.0 - c.val_size
        tuned = part + 1.0 if c.finetune_stop else (part if c.check else 1.0)
        return tuned + (part if c.check else 0.0)

    def validate(self) -> None:
        def need(ok: bool, name: str, rule: str, value: Any) -> None:
            if not ok:
                raise ConfigError(f"The '{name}' parameter of search must be {rule}. Got {value!r} instead.")

        need(self.cv in ("auto", "holdout") or (isinstance(self.cv, int) and not isinstance(self.cv, bool)
             and self.cv >= 2) or (isinstance(self.cv, float) and 0.0 < self.cv < 1.0), "cv",
             "an int >= 2 (k-fold), a float in (0, 1) (holdout share), 'holdout' or 'auto'", self.cv)
        need(self.trials is None or (isinstance(self.trials, int) and not isinstance(self.trials, bool)
                                     and self.trials >= 1), "trials", "None or an int >= 1", self.trials)
        need(self.timeout is None or self.timeout > 0, "timeout", "None or > 0 seconds", self.timeout)
        for name in ("epochs", "patience"):
            value = getattr(self, name)
            need(value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1), name,
                 "an int >= 1 or 'auto'", value)
        need(0.0 < self.test_size < 1.0, "test_size", "a float in (0, 1)", self.test_size)
        need(0.0 <= self.prune < 1.0, "prune", "a float in [0, 1)", self.prune)
        if self.compress is not None:
            from autoarch.compress.config import CompressConfig

            need(isinstance(self.compress, CompressConfig), "compress",
                 "None, an autoarch.compress.CompressConfig or a table of its options", self.compress)
            self.compress.validate()
            given = [name for name in ("prune", "finetune_epochs", "calibration_samples")
                     if getattr(self, name) != SearchConfig.__dataclass_fields__[name].default]
            if given:
                raise ConfigError(f"give the winner's compression either as 'compress' or as {', '.join(given)}, "
                                  f"not both: put {given[0]} into the compress options (CompressConfig).")
        need(isinstance(self.finetune_epochs, int) and self.finetune_epochs >= 0, "finetune_epochs",
             "an int >= 0", self.finetune_epochs)
        need(isinstance(self.calibration_samples, int) and self.calibration_samples >= 1, "calibration_samples",
             "an int >= 1", self.calibration_samples)
        need(self.max_samples is None or self.max_samples >= 10, "max_samples", "None or an int >= 10",
             self.max_samples)
        need(self.workers == "auto" or (isinstance(self.workers, int) and self.workers >= 1), "workers",
             "'auto' or an int >= 1", self.workers)
        need(self.early_stop in EARLY_STOP, "early_stop", f"one of {list(EARLY_STOP)}", self.early_stop)
        need(self.trial_timeout is None or self.trial_timeout > 0, "trial_timeout", "None or > 0 seconds",
             self.trial_timeout)
        need(self.max_params is None or self.max_params >= 1, "max_params", "None or an int >= 1", self.max_params)
        need(self.max_macs is None or self.max_macs >= 1, "max_macs", "None or an int >= 1", self.max_macs)
        need(self.max_latency_ms is None or self.max_latency_ms > 0, "max_latency_ms", "None or > 0 ms",
             self.max_latency_ms)
        need(self.max_size_kb is None or self.max_size_kb > 0, "max_size_kb", "None or > 0 KB", self.max_size_kb)
        need(isinstance(self.latency_batch, int) and not isinstance(self.latency_batch, bool)
             and self.latency_batch >= 1, "latency_batch", "an int >= 1", self.latency_batch)
        need(self.objectives is None or (isinstance(self.objectives, str) and self.objectives.strip() != ""),
             "objectives", "None or comma-separated names (e.g. 'accuracy,latency')", self.objectives)
        from autoarch.pareto import parse_pick

        try:
            pick_ok = isinstance(self.pick, str) and parse_pick(self.pick) is not None
        except ValueError:
            pick_ok = False
        need(pick_ok, "pick", "'knee', 'best' or 'best-under:NAME=VALUE[,NAME=VALUE]'", self.pick)
        need(bool(self.study_name), "study_name", "a non-empty string", self.study_name)
        need(self.image_size is None or (isinstance(self.image_size, int) and self.image_size >= 4), "image_size",
             "None or an int >= 4", self.image_size)
        need(self.augment in AUGMENT, "augment", f"one of {list(AUGMENT)}", self.augment)
        need(self.search_samples in ("auto", "all", None) or (isinstance(self.search_samples, int)
             and not isinstance(self.search_samples, bool) and self.search_samples >= 10), "search_samples",
             "'auto', 'all' (or None) or an int >= 10", self.search_samples)
        need(self.text_column is None or (isinstance(self.text_column, str) and self.text_column != ""),
             "text_column", "None or a column name", self.text_column)
        need(self.max_length is None or (isinstance(self.max_length, int) and not isinstance(self.max_length, bool)
             and self.max_length >= 1), "max_length", "None or an int >= 1", self.max_length)
        need(self.on_bad_image in BAD_IMAGE, "on_bad_image", f"one of {list(BAD_IMAGE)}", self.on_bad_image)
        from autoarch.trainer import resolve_device

        if not isinstance(self.controller, str) or (self.controller not in CONTROLLERS
                                                     and ":" not in self.controller):
            raise ConfigError(f"The 'controller' parameter of search must be one of {list(CONTROLLERS)} or the "
                              f"import path 'module:Class' of an optuna sampler. Got {self.controller!r} instead."
                              f"{did_you_mean(str(self.controller), CONTROLLERS)}")
        resolve_device(self.device)


def resolve_cv(cv: int | float | str, n_train: int) -> int | float:
    """``--cv`` as the evaluator takes it: an int (k folds) or a float (the holdout share)."""
    if cv == "auto":
        return HOLDOUT if n_train >= LARGE_DATA else 5
    if cv == "holdout":
        return HOLDOUT
    return cv  # type: ignore[return-value]


def resolve_epochs(epochs: int | str, n_train: int) -> int:
    """``--epochs`` as the trainer takes it (``auto``: :data:`DEFAULT_EPOCHS`, or enough epochs for a candidate to
    see :data:`EPOCH_SAMPLES` samples of a smaller training split, at most :data:`MAX_AUTO_EPOCHS`)."""
    if epochs != "auto":
        return int(epochs)
    return max(DEFAULT_EPOCHS, min(MAX_AUTO_EPOCHS, -(-EPOCH_SAMPLES // max(1, n_train))))


def resolve_patience(patience: int | str, epochs: int) -> int:
    """``--patience`` as the trainer takes it (``auto``: a quarter of the resolved ``epochs``, at least 5)."""
    return int(patience) if patience != "auto" else max(5, epochs // 4)


def resolve_search_samples(search_samples: int | str | None, n_train: int) -> int | None:
    """``--search-samples`` as the evaluator takes it: the most samples a candidate trains on in one fold, or None
    for all of them (``auto``: :data:`SEARCH_SAMPLES` when the training split is larger, else all)."""
    if search_samples in ("all", None):
        return None
    if search_samples == "auto":
        return SEARCH_SAMPLES if n_train > SEARCH_SAMPLES else None
    return int(search_samples) if int(search_samples) < n_train else None  # type: ignore[arg-type]


def resolve_augment(augment: str, input_shape: tuple[int, ...]) -> str:
    """``--augment`` as the search applies it: ``search`` or ``off`` (``auto`` decided by the image side)."""
    if augment != "auto":
        return augment
    return "search" if len(input_shape) == 3 and min(input_shape[1:]) >= AUGMENT_MIN_SIDE else "off"
