"""The ``autoarch`` command line.

Bad input ends with one line on stderr naming the problem and the fix, and exit status 2; any other failure
(a search with no completed candidate, an interruption, ...) ends with one line and exit status 1 (``--debug``
shows the traceback). A closed stdout (``| head``) ends
quietly.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from autoarch.exceptions import AutoArchError, SearchFailedError, did_you_mean

__all__ = ["main", "build_parser"]

EXIT_HELP = """exit status:
  0    done
  1    a runtime failure: no candidate completed, out of memory, a storage that fails, ... (one line)
  2    a usage or data error: one line names the problem and the fix; nothing written is lost
       interrupted (Ctrl-C) also exits 1; the same command again resumes a search
  --debug shows the traceback and third-party log lines
"""

EPILOG = """examples:
  autoarch search digits --trials 30 --out runs/digits
  autoarch search data.csv --target label --cv 5 --metric f1_macro --out runs/mine
  autoarch search reviews.csv --target sentiment --text-column review --timeout 1800
  autoarch search data.npz --space cnn --controller tpe --timeout 600

""" + EXIT_HELP


class _Formatter(argparse.HelpFormatter):
    """Wraps a one-paragraph description to the terminal; keeps laid-out text (examples, exit status) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, with a 'did you mean' for misspelled options."""

    def error(self, message: str) -> NoReturn:
        if "unrecognized arguments:" in message:
            bad = message.split(":", 1)[1].split()[0]
            options = [s for p in _parsers(self) for a in p._actions for s in a.option_strings]
            message += did_you_mean(bad.split("=")[0], options)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and its subcommands' parsers (an unknown option of a subcommand is reported by the top)."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(_parsers(sub))
    return found


def build_parser() -> argparse.ArgumentParser:
    from autoarch import __version__
    from autoarch.config import CONTROLLERS, EARLY_STOP, OBJECTIVES, SearchConfig
    from autoarch.data import BUILTIN_DATASETS

    d = SearchConfig()
    parser = _Parser(prog="autoarch", description="Neural architecture search for small, accurate edge models.",
                     epilog=EXIT_HELP, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"autoarch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser(
        "search", help="search a network, retrain the winner, prune, int8-quantize and export it to ONNX",
        description="Search a network by k-fold cross-validation, retrain the best one on the training split, "
                    "score it once on a held-out split, prune it, export it to ONNX and quantize it to int8. "
                    "Re-running the same command with the same --out resumes the search.",
        epilog=EPILOG, formatter_class=_Formatter)
    p.add_argument("data", help=f"a built-in data set ({', '.join(BUILTIN_DATASETS)}), a .csv file (needs "
                                "--target; numeric, text-category and blank cells, or a text column with "
                                "--text-column), a .npz file with arrays X and y, or a folder of images with one "
                                "sub-folder per class (PNG/JPEG/..., grayscale or RGB)")
    p.add_argument("--target", help="the CSV column to predict; string class labels are kept in every output")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="override the task inferred from the target")
    p.add_argument("--space", default=d.space, metavar="{auto,mlp,cnn,rnn,MODULE:CLASS}",
                   help="search space; auto = cnn for images, rnn for text and sequences, mlp otherwise; or "
                        "the import path of your own SearchSpace subclass, e.g. mypkg.spaces:MySpace "
                        "(default: %(default)s)")
    p.add_argument("--controller", default=d.controller, choices=CONTROLLERS,
                   help="evolution = regularized (aging) evolution, reinforce = REINFORCE policy gradient; random, "
                        "tpe (Bayesian), nsga2 and grid are optuna's samplers (default: %(default)s)")
    metrics = sorted({m for names in OBJECTIVES.values() for m in names})
    p.add_argument("--metric", choices=metrics, metavar="METRIC",
                   help=f"objective, one of {', '.join(metrics)} (default: accuracy for classification, "
                        "neg_rmse for regression)")
    p.add_argument("--cv", type=_cv, default=d.cv, metavar="K|holdout|SHARE|auto",
                   help="validation of each candidate: K-fold (stratified) CV with K >= 2, holdout = one stratified "
                        "split validating on 10%% of the training split, a share in (0, 1) for another holdout "
                        "size; auto = holdout from 10,000 training samples on, else 5-fold (default: %(default)s)")
    p.add_argument("--trials", type=int, default=d.trials,
                   help="number of candidates to evaluate; a resumed run counts the trials already done "
                        "(default: %(default)s)")
    p.add_argument("--timeout", type=float, help="end the search after this many seconds: no trial starts after "
                   "it and a trial still training is stopped (not counted); the winner's retrain and compression "
                   "follow")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of splits, controller and training "
                                                             "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="maximum training epochs per fold; early stopping on 10%% of the fold's training part "
                        "picks the epoch (default: %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="epochs without improvement before early stopping (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=d.test_size,
                   help="share of the data held out before the search, stratified (default: %(default)s)")
    p.add_argument("--test", metavar="FILE|FOLDER|split",
                   help="the held-out test set: a file or image folder of the same kind and classes as the data "
                        "(the search then uses all of DATA), or 'split' to hold out --test-size of DATA; default: "
                        "a built-in data set's official test split (fashion-mnist: its 10,000 test images), else "
                        "split")
    p.add_argument("--image-size", type=int, metavar="N",
                   help="resize the images of a folder to N x N (needed when their sizes differ)")
    p.add_argument("--on-bad-image", default=d.on_bad_image, choices=["fail", "skip"],
                   help="an unreadable or non-image file in an image folder ends the run (fail) or is skipped with "
                        "a count (default: %(default)s)")
    p.add_argument("--text-column", metavar="COLUMN",
                   help="the column of texts of a CSV file: a text classification search (the rnn space); the "
                        "vocabulary is fitted inside each fold's training part")
    p.add_argument("--max-length", type=int, metavar="N",
                   help="texts are cut after N tokens (default: 64)")
    p.add_argument("--augment", default=d.augment, choices=["auto", "search", "off"],
                   help="search the training augmentation of image candidates (flips, shifts, rotations, colour): "
                        "search, off, or auto = search for images of 16+ pixels a side (default: %(default)s)")
    p.add_argument("--no-warm-start", action="store_true",
                   help="do not evaluate the space's textbook networks (LeNet-5-like, small ResNet) first")
    p.add_argument("--prune", type=float, default=d.prune, metavar="RATIO",
                   help="structural pruning of the winner: the share of channels (conv) or units (linear) removed "
                        "from every hidden layer, coupled layers together, output layer untouched, kept counts "
                        "rounded to the nearest multiple of 8 (layers of <= 8 left alone); 0.15 keeps 56 of 64, 24 "
                        "of 32 and 16 of 16 channels, 0.3 keeps 48, 24 and 8; 0 disables (default: %(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs,
                   help="fine-tuning epochs after pruning (default: %(default)s)")
    p.add_argument("--calibration-samples", type=int, default=d.calibration_samples,
                   help="training samples used to calibrate int8 activation ranges (default: %(default)s)")
    p.add_argument("--max-samples", type=int, help="use a stratified random subset of at most this many samples")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"],
                   help="training device (default: %(default)s)")
    p.add_argument("--out", help="run directory (default: runs/<data name>)")
    p.add_argument("--config", metavar="FILE",
                   help="options from a TOML or JSON file (keys are the option names with underscores, e.g. "
                        "trials = 40, max_params = 100000), or a finished run's report.json to repeat it; flags "
                        "given on the command line win")
    p.add_argument("--workers", type=_workers, default=d.workers, metavar="N|auto",
                   help="local worker processes on one study, one torch thread each (a single worker keeps "
                        "torch's threads); auto = one per usable CPU core ($AUTOARCH_WORKERS overrides), 1 on a "
                        "GPU; give 1 for a reproducible run (default: %(default)s)")
    p.add_argument("--early-stop", default=d.early_stop, choices=EARLY_STOP,
                   help="multi-fidelity: stop poor candidates after an epoch with optuna's median, successive-halving "
                        "(a third promoted at 1, 3, 9, ... epochs) or hyperband pruner; auto = halving with holdout "
                        "validation, median with k-fold (default: %(default)s)")
    p.add_argument("--search-samples", type=_search_samples, default=d.search_samples, metavar="N|all|auto",
                   help="multi-fidelity over data: during the search each candidate trains on a stratified subset of "
                        "at most N samples of its fold's training part (validated on the whole validation part); "
                        "the winner is retrained on the whole training split; auto = 20,000 when the training "
                        "split is larger, else all (default: %(default)s)")
    p.add_argument("--trial-timeout", type=float, metavar="SECONDS",
                   help="fail a candidate whose cross-validation runs longer than this")
    p.add_argument("--max-params", type=int, help="reject candidates with more parameters, before any training")
    p.add_argument("--max-macs", type=int, help="reject candidates with more multiply-accumulates per sample, "
                                                 "before any training")
    p.add_argument("--storage", metavar="URL",
                   help="optuna storage shared by workers on many machines: postgresql://user:pw@host/db, "
                        "mysql+pymysql://..., sqlite:///file.db or journal:FILE (default: sqlite file in --out)")
    p.add_argument("--study", default=d.study_name, help="study name in the storage (default: %(default)s)")
    _common(p)

    w = sub.add_parser(
        "worker", help="join a study started by 'autoarch search --storage URL' and evaluate its trials",
        description="Join a study that 'autoarch search DATA --storage URL --study NAME' created, on this or "
                    "another machine, and evaluate trials until its --trials budget is spent. The data is "
                    "loaded as the search loaded it (a built-in name, or a file at the same path).",
        epilog=EXIT_HELP, formatter_class=_Formatter)
    w.add_argument("--storage", required=True, metavar="URL", help="the study's storage URL")
    w.add_argument("--study", default=d.study_name, help="study name (default: %(default)s)")
    w.add_argument("--threads", type=int, default=1, help="torch threads of this worker (default: %(default)s)")
    _common(w)
    r = sub.add_parser(
        "report", help="write report.html of a finished run again from its study",
        description="Rebuild report.html (charts of the search, the winner, compression and held-out predictions) "
                    "from a finished run directory's report.json and its study, e.g. after more trials.",
        epilog=EXIT_HELP, formatter_class=_Formatter)
    _run_dir_arguments(r)
    _common(r)
    dash = sub.add_parser(
        "dashboard", help="open a run's study in optuna-dashboard (extra: pip install 'autoarch[dashboard]')",
        description="Serve optuna-dashboard (the optional extra autoarch[dashboard]) on the study of a run "
                    "directory: trials, intermediate values, parameter importances, live while a search runs.",
        epilog=EXIT_HELP, formatter_class=_Formatter)
    _run_dir_arguments(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s, this machine only)")
    dash.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    _common(dash)
    _add_compress_parser(sub)
    _add_predict_parser(sub)
    return parser


def _run_dir_arguments(p: argparse.ArgumentParser) -> None:
    """RUN_DIR and --storage of the commands that read a finished search's study (report, dashboard)."""
    p.add_argument("run_dir", help="the --out directory of a search")
    p.add_argument("--storage", metavar="URL", help="the study's storage, when the search used --storage "
                                                    "(default: the run directory's study.db)")


def _cv(value: str) -> int | float | str:
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


def _workers(value: str) -> int | str:
    return _word_or_int(value, ("auto",), 1, "'auto' or a positive integer")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def _summary(result: Any) -> str:
    rep = result.report
    metric = rep["search"]["metric"]
    plain = metric[4:] if metric.startswith("neg_") else metric
    mean, std = result.cv_scores[plain]
    lines = [f"best: {rep['best']['summary']}",
             f"CV {plain}: {mean:.4f} ± {std:.4f}   held-out {plain}: {result.test_scores[plain]:.4f}"]
    for row in rep["compression"]["stages"]:
        lat = f"  b64 {row['latency_b64_ms']:.2f} ms" if "latency_b64_ms" in row else ""
        lines.append(f"  {row['stage']:<20} {row['params']:>9,} params  {row['bytes'] / 1024:>8.1f} KiB  "
                     f"{plain} {row[plain]:.4f}{lat}")
    lines.append(f"run directory: {result.out_dir}  (report.md, model.onnx, model.int8.onnx)")
    return "\n".join(lines)


COMPRESS_EPILOG = """examples:
  autoarch compress runs/digits --target-macs 0.25 --max-drop 0.5
  autoarch compress runs/digits --target-latency 0.4 --importance taylor --global-pruning --out runs/digits/fast
  autoarch compress runs/mine --data data.csv --target label --target-params 0.3

""" + EXIT_HELP

PREDICT_EPILOG = """examples:
  autoarch predict runs/digits/compressed/model.int8.onnx samples.npz -o predictions.csv
  autoarch predict model.onnx new_rows.csv
  autoarch predict runs/tweets/model.int8.onnx tweets.txt     # a text model: one text per line

""" + EXIT_HELP


def _add_compress_parser(sub: Any) -> None:
    from autoarch.compress.config import IMPORTANCES, INT8_MODES, CompressConfig

    d = CompressConfig()
    p = sub.add_parser(
        "compress", help="prune a search's winner within an accuracy budget, export it to ONNX and int8",
        description="Compress the winner of a search run directory on its own: prune it in steps toward a "
                    "target (parameters, MACs or measured latency), fine-tuning after each step and checking the "
                    "validation metric on data held back from the training split; keep the most compressed step "
                    "within --max-drop; export it to ONNX, quantize it to int8 and verify every stage. The data "
                    "is reloaded and split as the search did; the held-out split is only reported.",
        epilog=COMPRESS_EPILOG, formatter_class=_Formatter)
    p.add_argument("run_dir", help="a search's --out directory (architecture.json + winner.pt or model.pt)")
    p.add_argument("--out", help="where to write the compressed model (default: RUN_DIR/compressed)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-params", type=float, metavar="SHARE",
                        help="keep this share of the parameters, e.g. 0.3")
    target.add_argument("--target-macs", type=float, metavar="SHARE",
                        help="keep this share of the multiply-accumulates per sample, e.g. 0.25 (the default "
                             "target is --target-macs 0.25)")
    target.add_argument("--target-latency", type=float, metavar="SHARE",
                        help="keep this share of the ONNX Runtime fp32 latency at batch 64 (1 thread, measured "
                             "after every step), e.g. 0.4")
    p.add_argument("--max-drop", type=float, default=d.max_drop, metavar="POINTS",
                   help="largest allowed loss of the validation metric, in points (0.5: accuracy 0.960 -> 0.955); "
                        "for error metrics, in percent of the unpruned error (default: %(default)s)")
    p.add_argument("--importance", default=d.importance, choices=IMPORTANCES,
                   help="channel ranking: l1/l2 weight magnitude, bn_scale (batch-norm scale; needs batch norm) "
                        "or taylor (|weight x gradient| on training data) (default: %(default)s)")
    p.add_argument("--global-pruning", action="store_true",
                   help="rank channels across all layers (layers shrink unevenly) instead of removing the same "
                        "share from every layer")
    p.add_argument("--round-to", type=int, default=d.round_to,
                   help="keep channel counts multiples of this; 1 = exact (default: %(default)s)")
    p.add_argument("--steps", type=int, default=d.steps,
                   help="pruning steps toward the target, each fine-tuned and validated (default: %(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs,
                   help="fine-tuning epochs after every step (default: %(default)s)")
    p.add_argument("--val-size", type=float, default=d.val_size,
                   help="share of the training split held back as validation data (default: %(default)s)")
    p.add_argument("--calibration-samples", type=int, default=d.calibration_samples,
                   help="training samples that calibrate int8 activation ranges (default: %(default)s)")
    p.add_argument("--no-retrain", action="store_true",
                   help="prune winner.pt itself instead of its architecture retrained without the validation part "
                        "(the winner has seen that part, which makes the budget overly cautious)")
    p.add_argument("--int8", default=d.int8, choices=INT8_MODES,
                   help="static QDQ, dynamic, auto (static for CNNs; for Linear-only models both are timed at "
                        "batch 64 and the faster kept) or none (default: %(default)s)")
    p.add_argument("--start", default="auto", choices=["auto", "winner", "model"],
                   help="start from winner.pt (unpruned) or model.pt (the search's pruned model); auto = winner.pt "
                        "when present (default: %(default)s)")
    p.add_argument("--data", help="the data, when report.json cannot locate it: a built-in name or a .csv/.npz "
                                  "file (split with the run's seed and test size)")
    p.add_argument("--target", help="the target column of a --data CSV file")
    p.add_argument("--seed", type=int, help="seed of the validation split, fine-tuning and calibration (default: "
                                            "the run's seed)")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"],
                   help="fine-tuning device (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def _compress_command(args: argparse.Namespace) -> str:
    from autoarch.compress import compress_run

    options: dict[str, Any] = {
        "target_params": args.target_params, "target_macs": args.target_macs, "target_latency": args.target_latency,
        "max_drop": args.max_drop, "importance": args.importance, "global_pruning": args.global_pruning,
        "round_to": args.round_to, "steps": args.steps, "finetune_epochs": args.finetune_epochs,
        "val_size": args.val_size, "calibration_samples": args.calibration_samples, "int8": args.int8,
        "retrain": not args.no_retrain,
        "device": args.device,
    }
    if args.seed is not None:
        options["seed"] = args.seed
    result = compress_run(args.run_dir, out=args.out, data=args.data, target=args.target, start=args.start,
                          on_stage=lambda s: logging.getLogger("autoarch").info("compression: %s", s), **options)
    pr = result.pruning
    plain = pr["metric"][4:] if pr["metric"].startswith("neg_") else pr["metric"]
    lines = [f"pruning: {pr['stop_reason']}; kept step {pr['kept_step']} "
             f"(target keep {pr['target']['keep']:g} of {pr['target']['kind']}: "
             f"{'reached' if pr['target_reached'] else 'NOT reached'})"]
    for s in result.steps:
        lines.append(f"  step {s['step']}: {s['params']:>9,} params {s['macs']:>12,} MACs  val {plain} "
                     f"{s[f'val_{plain}']:.4f}  drop {s['drop']:.2f}{'' if s['within_budget'] else '  over budget'}")
    for row in result.stages:
        lat = (f"  b1 {row['latency_b1_ms']:.3f} ms  b64 {row['latency_b64_ms']:.3f} ms"
               if "latency_b64_ms" in row else "")
        lines.append(f"  {row['stage']:<20} {row['params']:>9,} params  {row['bytes'] / 1024:>8.1f} KiB  "
                     f"held-out {plain} {row[plain]:.4f}{lat}")
    if result.verification.get("warnings"):
        lines.append(f"{len(result.verification['warnings'])} warning(s) above; see compression.md")
    out_dir = result.onnx_path.parent if result.onnx_path is not None else args.out
    lines.append(f"written to {out_dir}  (compression.md, model.onnx, model.int8.onnx, model.pt)")
    return "\n".join(lines)


def _add_predict_parser(sub: Any) -> None:
    p = sub.add_parser(
        "predict", help="predict with an exported ONNX model (onnxruntime + numpy, no torch)",
        description="Run an ONNX model exported by autoarch on the samples of a .csv (one sample per row; a "
                    "header is matched to the model's feature names) or .npz file (array X), with onnxruntime "
                    "and numpy only (and Pillow for image files, converted and resized to the model's input). "
                    "Writes a CSV: 'prediction' with the original class labels and, for "
                    "classification, one 'proba_<label>' column per class.",
        epilog=PREDICT_EPILOG, formatter_class=_Formatter)
    p.add_argument("model", help="an .onnx file written by 'autoarch search' or 'autoarch compress'")
    p.add_argument("input", help="a .csv or .npz file with the samples to predict, or (image models) an image "
                                 "file or a folder of images (decoded with Pillow; one row per file)")
    p.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    p.add_argument("--no-proba", action="store_true", help="leave out the class probability columns")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def _predict_command(args: argparse.Namespace) -> None:
    from autoarch.predict import predict_csv

    n = predict_csv(args.model, args.input, output=args.output, proba=not args.no_proba, threads=args.threads,
                    stream=sys.stdout)
    if args.output is not None and not args.quiet:
        print(f"{n} predictions written to {args.output}", file=sys.stderr)


USAGE_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EROFS,
                errno.ENAMETOOLONG, errno.ELOOP}
"""OSErrors a user causes with a path (exit 2); others (disk full, I/O errors) are runtime failures (exit 1)."""

EXIT_BROKEN_PIPE = 128 + 13
"""A closed stdout ends the command as SIGPIPE would end it, with 128 + SIGPIPE (what a shell reports)."""


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _unexpected(exc: Exception) -> tuple[int, str]:
    """``(exit status, message)`` for an exception that is not an :class:`AutoArchError`: a path error names
    the file, anything else says what it was and how to see more."""
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(repr(str(f)) for f in (exc.filename, exc.filename2) if f is not None)
        code = 2 if exc.errno in USAGE_ERRNOS else 1
        return code, f"{where + ': ' if where else ''}{exc.strerror}; check the path and its permissions."
    if isinstance(exc, MemoryError):
        return 1, "out of memory; lower --max-samples or the batch size, or use a machine with more memory."
    detail = _one_line(exc)
    return 1, (f"unexpected {type(exc).__name__}{': ' + detail if detail else ''} (rerun with --debug for the "
               "traceback, and report it)")


def _quiet_broken_pipe() -> int:
    """stdout was closed by its reader: point it at devnull so that the flush at exit cannot fail again (the
    "Note on SIGPIPE" in Python's ``signal`` documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


CONFIG_DESTS = {"study_name": "study", "warm_start": "no_warm_start"}
"""SearchConfig fields whose command-line flag stores under another name (``--no-warm-start`` inverted)."""


def _with_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None, args: argparse.Namespace
                      ) -> argparse.Namespace:
    """``args`` again, with the options of ``--config FILE`` as the defaults of ``autoarch search`` (so that a flag
    on the command line wins)."""
    from autoarch.config import load_config_file

    values = load_config_file(args.config)
    defaults = {CONFIG_DESTS.get(k, k): (not v if k == "warm_start" else v) for k, v in values.items()}
    search = next(p for p in _parsers(parser) if p.prog.split()[-1] == "search")
    search.set_defaults(**defaults)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s" if args.debug else "%(message)s")
    if args.command != "predict":  # predict runs with onnxruntime and numpy alone: no optuna, torch, pandas
        import optuna

        # Failed trials are summarised by autoarch (one line each, and in report.md); optuna's own warning
        # carries a traceback.
        optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.ERROR)
    for noisy in ("torch_pruning", "onnxruntime", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.ERROR)
    try:
        if getattr(args, "config", None):  # its errors are reported like every other usage error below
            args = _with_config_file(parser, argv, args)
        import warnings

        import autoarch

        if not args.debug:
            warnings.filterwarnings("ignore")
        if args.command == "search":
            from pathlib import Path

            out = args.out or str(Path("runs") / Path(args.data).stem)
            result = autoarch.search(
                args.data, target=args.target, task=args.task, out=out, progress=not args.quiet,
                space=args.space, controller=args.controller, metric=args.metric, cv=args.cv, trials=args.trials,
                timeout=args.timeout, seed=args.seed, epochs=args.epochs, patience=args.patience,
                test_size=args.test_size, prune=args.prune, finetune_epochs=args.finetune_epochs,
                calibration_samples=args.calibration_samples, max_samples=args.max_samples, device=args.device,
                workers=args.workers, early_stop=args.early_stop, trial_timeout=args.trial_timeout,
                max_params=args.max_params, max_macs=args.max_macs, storage=args.storage, study_name=args.study,
                test=args.test, image_size=args.image_size, on_bad_image=args.on_bad_image,
                text_column=args.text_column, max_length=args.max_length,
                warm_start=not args.no_warm_start, augment=args.augment, search_samples=args.search_samples,
            )
            print(_summary(result))
        elif args.command == "compress":
            print(_compress_command(args))
        elif args.command == "predict":
            _predict_command(args)
        elif args.command == "report":
            from autoarch.finish import rebuild_report

            print(f"wrote {rebuild_report(args.run_dir, args.storage)}")
        elif args.command == "dashboard":
            from autoarch.dashboard import serve

            serve(args.run_dir, args.storage, host=args.host, port=args.port,
                  announce=lambda line: print(line, flush=True))
        elif args.command == "worker":
            from autoarch.runner import run_worker

            n = run_worker(args.storage, args.study, threads=args.threads, progress=not args.quiet)
            print(f"this worker evaluated {n} trial(s); the study's budget is spent.")
        sys.stdout.flush()  # here, where a closed pipe is caught, rather than at exit
        return 0
    except AutoArchError as exc:
        if args.debug:
            raise
        print(f"autoarch: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1 if isinstance(exc, SearchFailedError) else 2
    except KeyboardInterrupt:
        print("autoarch: interrupted; run the same command again to resume.", file=sys.stderr)
        return 1
    except BrokenPipeError:
        if args.debug:
            raise
        return _quiet_broken_pipe()
    except Exception as exc:  # the guard: one line, never a traceback, on every path a user can reach
        if args.debug:
            raise
        code, message = _unexpected(exc)
        print(f"autoarch: error: {message}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
