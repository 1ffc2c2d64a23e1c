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
            bad = message.split(":", 1)[1].split()[0].split("=")[0]
            owners = [p.prog for p in _parsers(self) if any(bad in a.option_strings for a in p._actions)]
            if owners:  # a real option, of another command (the top parser reports a subcommand's leftovers)
                message += f" ({bad} is an option of {', '.join(repr(o) for o in owners)} only)"
            else:
                options = [s for p in _parsers(self) for a in p._actions for s in a.option_strings]
                message += did_you_mean(bad, options)
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
    from autoarch.loaders import BUILTIN_DATASETS

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
    p.add_argument("--out", help="run directory (default: runs/<data name>)")
    p.add_argument("--config", metavar="FILE",
                   help="options from a TOML or JSON file (keys are the option names with underscores, e.g. "
                        "trials = 40, max_params = 100000), or a finished run's report.json to repeat it; flags "
                        "given on the command line win")
    add_config_arguments(p, SearchConfig)
    _common(p)

    w = sub.add_parser(
        "worker", help="join a study started by 'autoarch search --storage URL' and evaluate its trials",
        description="Join a study that 'autoarch search DATA --storage URL --study NAME' created, on this or "
                    "another machine, and evaluate trials until its --trials budget is spent or its --timeout "
                    "deadline passes. The data is "
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
    x = sub.add_parser(
        "export", help="ship another trial of a finished search (e.g. another point of its Pareto front)",
        description="Retrain trial N of a search on the whole training split, prune, int8-quantize, export and "
                    "verify it as the search shipped its winner, scored on the same held-out split, into a run "
                    "directory of its own (default: RUN_DIR/trial-N). The data is reloaded as the search loaded "
                    "it.", epilog=EXIT_HELP, formatter_class=_Formatter)
    _run_dir_arguments(x)
    x.add_argument("--trial", type=int, required=True, metavar="N",
                   help="the trial number (leaderboard.csv, pareto.csv)")
    x.add_argument("--out", help="where to write it (default: RUN_DIR/trial-N)")
    _common(x)
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


def add_config_arguments(parser: argparse.ArgumentParser, config: type) -> None:
    """One flag per field of the dataclass ``config``, from the field's :func:`~autoarch.config.option` metadata
    (help, section, flag, choices, metavar, parser), its default and its annotation (``int`` / ``float``). The
    flag stores under the field's name, so ``{f.name: getattr(args, f.name)}`` are the options."""
    import dataclasses

    groups: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        if meta["group"] not in groups:
            groups[meta["group"]] = parser.add_argument_group(f"{meta['group']} options")
        group = groups[meta["group"]]
        if meta["exclusive"]:
            key = f"{meta['group']}/{meta['exclusive']}"
            if key not in groups:
                groups[key] = group.add_mutually_exclusive_group()
            group = groups[key]
        default = f.default if meta["cli_default"] is ... else meta["cli_default"]
        if isinstance(f.default, bool):
            flag = meta["flag"] or ("--no-" if f.default else "--") + f.name.replace("_", "-")
            group.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true",
                               help=meta["help"])
            continue
        kinds = [part.strip() for part in str(f.type).split("|")]
        parse = meta["parse"] or (int if "int" in kinds else float if "float" in kinds else None)
        extra = {k: v for k, v in (("type", parse), ("metavar", meta["metavar"]), ("choices", meta["choices"]))
                 if v is not None}
        group.add_argument(meta["flag"] or "--" + f.name.replace("_", "-"), dest=f.name, default=default,
                           help=meta["help"], **extra)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


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
    from autoarch.compress.config import CompressConfig

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
    p.add_argument("--start", default="auto", choices=["auto", "winner", "model"],
                   help="start from winner.pt (unpruned) or model.pt (the search's pruned model); auto = winner.pt "
                        "when present (default: %(default)s)")
    p.add_argument("--data", help="the data, when report.json cannot locate it: a built-in name or a .csv/.npz "
                                  "file (split with the run's seed and test size)")
    p.add_argument("--target", help="the target column of a --data CSV file")
    add_config_arguments(p, CompressConfig)
    p.add_argument("--quiet", action="store_true", help="no log lines")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def _compress_command(args: argparse.Namespace) -> str:
    from dataclasses import fields

    from autoarch.compress import compress_run
    from autoarch.compress.config import CompressConfig

    # an option left at None is filled in by compress_run (--seed: the run's seed)
    options = {f.name: getattr(args, f.name) for f in fields(CompressConfig)
               if not (getattr(args, f.name) is None and f.metadata["cli_default"] is None)}
    result = compress_run(args.run_dir, out=args.out, data=args.data, target=args.target, start=args.start,
                          on_stage=lambda s: logging.getLogger("autoarch").info("compression: %s", s), **options)
    return result.summary(fallback_dir=args.out)


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


def _with_config_file(parser: argparse.ArgumentParser, argv: Sequence[str] | None, args: argparse.Namespace
                      ) -> argparse.Namespace:
    """``args`` again, with the options of ``--config FILE`` as the defaults of ``autoarch search`` (so that a flag
    on the command line wins)."""
    from autoarch.configfile import load_config_file

    values = load_config_file(args.config)  # field names: the flags store under them
    search = next(p for p in _parsers(parser) if p.prog.split()[-1] == "search")
    search.set_defaults(**values)
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
            from dataclasses import fields

            from autoarch.config import SearchConfig

            # a field without a flag (compress) is on args only when a --config file set it
            options = {f.name: getattr(args, f.name, f.default) for f in fields(SearchConfig)}
            result = autoarch.search(args.data, target=args.target, task=args.task, out=out,
                                     progress=not args.quiet, **options)
            print(result.summary())
        elif args.command == "compress":
            print(_compress_command(args))
        elif args.command == "predict":
            _predict_command(args)
        elif args.command == "report":
            from autoarch.finish import rebuild_report

            print(f"wrote {rebuild_report(args.run_dir, args.storage)}")
        elif args.command == "export":
            from autoarch.runner import export_trial

            print(export_trial(args.run_dir, args.trial, out=args.out, storage=args.storage,
                               progress=not args.quiet).summary())
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
