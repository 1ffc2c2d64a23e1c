"""The ``autoarch`` command line.

Bad input ends with one line on stderr naming the problem and the fix, and exit status 2 (``--debug`` shows
the traceback).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from autoarch.exceptions import AutoArchError, did_you_mean

__all__ = ["main", "build_parser"]

EPILOG = """examples:
  autoarch search digits --trials 30 --out runs/digits
  autoarch search data.csv --target label --cv 5 --metric f1_macro --out runs/mine
  autoarch search data.npz --space cnn --controller tpe --timeout 600
"""


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
    from autoarch.config import SearchConfig
    from autoarch.controllers import CONTROLLERS
    from autoarch.data import BUILTIN_DATASETS
    from autoarch.metrics import OBJECTIVES

    d = SearchConfig()
    parser = _Parser(prog="autoarch", description="Neural architecture search for small, accurate edge models.")
    parser.add_argument("--version", action="version", version=f"autoarch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser(
        "search", help="search a network, retrain the winner, prune, int8-quantize and export it to ONNX",
        description="Search a network by k-fold cross-validation, retrain the best one on the training split, "
                    "score it once on a held-out split, prune it, export it to ONNX and quantize it to int8. "
                    "Re-running the same command with the same --out resumes the search.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help=f"a built-in data set ({', '.join(BUILTIN_DATASETS)}), a .csv file (numeric "
                                "features; needs --target) or a .npz file with arrays X and y")
    p.add_argument("--target", help="the CSV column to predict; string class labels are kept in every output")
    p.add_argument("--task", choices=["classification", "regression"],
                   help="override the task inferred from the target")
    p.add_argument("--space", default=d.space, choices=["auto", "mlp", "cnn"],
                   help="search space; auto = cnn for images, mlp otherwise (default: %(default)s)")
    p.add_argument("--controller", default=d.controller, choices=CONTROLLERS,
                   help="evolution = regularized (aging) evolution; random, tpe (Bayesian) and grid are optuna's "
                        "(default: %(default)s)")
    metrics = sorted({m for names in OBJECTIVES.values() for m in names})
    p.add_argument("--metric", choices=metrics, metavar="METRIC",
                   help=f"objective, one of {', '.join(metrics)} (default: accuracy for classification, "
                        "neg_rmse for regression)")
    p.add_argument("--cv", type=int, default=d.cv, help="folds of (stratified) k-fold CV, >= 2 (default: %(default)s)")
    p.add_argument("--trials", type=int, default=d.trials,
                   help="number of candidates to evaluate; a resumed run counts the trials already done "
                        "(default: %(default)s)")
    p.add_argument("--timeout", type=float, help="stop starting new trials after this many seconds")
    p.add_argument("--seed", type=int, default=d.seed, help="seed of splits, controller and training "
                                                             "(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=d.epochs,
                   help="maximum training epochs per fold; early stopping on 10%% of the fold's training part "
                        "picks the epoch (default: %(default)s)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="epochs without improvement before early stopping (default: %(default)s)")
    p.add_argument("--test-size", type=float, default=d.test_size,
                   help="share of the data held out before the search, stratified (default: %(default)s)")
    p.add_argument("--prune", type=float, default=d.prune, metavar="RATIO",
                   help="structural pruning of the winner: the share of channels (conv) or units (linear) removed "
                        "from every hidden layer, coupled layers together, output layer untouched; 0.3 removes "
                        "30%% of them (roughly halving the parameters); 0 disables (default: %(default)s)")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs,
                   help="fine-tuning epochs after pruning (default: %(default)s)")
    p.add_argument("--calibration-samples", type=int, default=d.calibration_samples,
                   help="training samples used to calibrate int8 activation ranges (default: %(default)s)")
    p.add_argument("--max-samples", type=int, help="use a stratified random subset of at most this many samples")
    p.add_argument("--device", default=d.device, choices=["auto", "cpu", "cuda"],
                   help="training device (default: %(default)s)")
    p.add_argument("--out", help="run directory (default: runs/<data name>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s" if args.debug else "%(message)s")
    import optuna

    # Failed trials are summarised by autoarch (one line each, and in report.md); optuna's own warning
    # carries a traceback.
    optuna.logging.set_verbosity(optuna.logging.DEBUG if args.debug else optuna.logging.ERROR)
    for noisy in ("torch_pruning", "onnxruntime", "onnxscript", "torch.onnx"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.ERROR)
    try:
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
            )
            print(_summary(result))
        return 0
    except AutoArchError as exc:
        if args.debug:
            raise
        print(f"autoarch: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("autoarch: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
