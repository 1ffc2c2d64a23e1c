from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from autoarch.cli import build_parser, main


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoarch.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_documents_every_option() -> None:
    text = _run("search", "--help").stdout
    parser = build_parser()
    search = parser._subparsers._group_actions[0].choices["search"]
    flat = " ".join(text.split())
    for action in search._actions:
        assert action.help, action.dest
        # the option's own description is in the help (the usage line alone lists every flag)
        words = [w for w in action.help.split() if "%" not in w][:5]
        for flag in action.option_strings:
            assert f"{flag} " in flat or f"{flag}," in flat or f"{flag}\n" in text, flag
        assert " ".join(words) in flat, (action.dest, words)


def _bad_inputs(tmp_path):
    text = tmp_path / "text.csv"
    text.write_text("a,b,label\n" + "\n".join(f"{i},x{i},{i % 2}" for i in range(20)))
    inf = tmp_path / "inf.csv"  # a blank cell is a missing value (encoded), an infinite one is refused
    inf.write_text("a,label\n" + "\n".join(f"{'inf' if i == 3 else i},{i % 2}" for i in range(20)))
    rare = tmp_path / "rare.csv"
    rare.write_text("a,label\n" + "\n".join(f"{i},{'r' if i < 3 else 'c'}" for i in range(30)))
    return [
        (["search", str(tmp_path / "missing.csv"), "--target", "y"], "does not exist"),
        (["search", "digitz"], "Did you mean 'digits'"),
        (["search", "iris", "--trails", "3"], "Did you mean '--trials'"),
        (["compress", str(tmp_path), "--prune", "0.5"], "--prune is an option of 'autoarch search' only"),
        (["search", "iris", "--metric", "acc"], "invalid choice"),
        (["search", "iris", "--metric", "neg_mse"], "regression metric"),
        (["search", str(text), "--target", "label"], "different text in most rows"),
        (["search", str(inf), "--target", "label"], "infinite"),
        (["search", str(rare), "--target", "label", "--cv", "3"], "fewer than the 3 folds"),
        (["search", "iris", "--cv", "1"], "int >= 2"),
        (["search", "iris", "--search-samples", "5"], "'auto', 'all' or an integer >= 10"),
        (["search", "iris", "--out", str(text)], "is a file"),
    ]


def _exit_code(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code)


def test_bad_input_is_one_line_and_exit_status_2(tmp_path, capsys) -> None:
    for args, expected in _bad_inputs(tmp_path):
        assert _exit_code([*args, "--quiet"]) == 2, args
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, (args, err)
        assert expected in err, (args, err)
        assert "Traceback" not in err


def test_argparse_errors_exit_2() -> None:
    proc = _run("search", "iris", "--trails", "3")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback() -> None:
    proc = _run("search", "digitz", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_search_shows_progress_and_summary(tmp_path) -> None:
    np.savez(tmp_path / "d.npz", X=np.random.default_rng(0).normal(size=(60, 6, 6)), y=np.arange(60) % 2)
    proc = _run("search", str(tmp_path / "d.npz"), "--trials", "2", "--cv", "2", "--epochs", "1",
                "--finetune-epochs", "1", "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    assert "2/2" in proc.stderr and "best=" in proc.stderr
    # the phases after the search have their own bars (epochs of the retrain and of the fine-tune: early-stopped
    # on a held-back part, then on the whole split, so a count)
    assert re.search(r"retrain: 100%.*epoch", proc.stderr) and re.search(r"fine-tune: 2epoch", proc.stderr)
    assert "held-out accuracy" in proc.stdout and "onnx int8" in proc.stdout
    assert (tmp_path / "run" / "model.int8.onnx").exists()
    # the report says how the fine-tune's length was chosen
    assert "choose the fine-tune's length by early stopping" in (tmp_path / "run" / "report.md").read_text()


def test_config_file_gives_the_options_and_a_flag_wins(tmp_path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('trials = 2\ncv = 2\nepochs = 1\npatience = 1\nprune = 0.0\ncalibration_samples = 32\n'
                      'controller = "random"\nwarm_start = false\nworkers = 1\n')
    out = tmp_path / "run"
    assert main(["search", "iris", "--config", str(config), "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    used = json.loads((out / "report.json").read_text())["config"]
    assert (used["trials"], used["cv"], used["epochs"], used["controller"]) == (2, 2, 2, "random")
    assert used["warm_start"] is False and used["prune"] == 0.0


def test_a_finished_runs_report_json_repeats_the_run(tmp_path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["search", "iris", "--trials", "2", "--cv", "2", "--epochs", "1", "--prune", "0", "--workers", "1",
                 "--out", str(first), "--quiet"]) == 0
    assert main(["search", "iris", "--config", str(first / "report.json"), "--out", str(second), "--quiet"]) == 0
    a, b = (json.loads((d / "report.json").read_text()) for d in (first, second))
    assert a["config"] == b["config"]
    assert a["best"]["architecture"] == b["best"]["architecture"] and a["test"] == b["test"]


@pytest.mark.parametrize(("text", "expected"), [
    ("trails = 3\n", "unknown option 'trails'. Did you mean 'trials'?"),
    ('trials = "many"\n', "trials must be int or null, not 'many'"),
    ("cv = 1\n", "The 'cv' parameter of search must be"),
    ("trials = [\n", "is not valid TOML"),
])
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path, capsys, text, expected) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    out = tmp_path / "run"
    assert main(["search", "iris", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not out.exists()


def test_help_documents_the_exit_statuses() -> None:
    for command in ([], ["search"], ["worker"], ["report"], ["dashboard"], ["compress"], ["predict"]):
        text = _run(*command, "--help").stdout
        assert "exit status:" in text, command
        lines = text.split("exit status:", 1)[1].splitlines()
        assert any(line.split()[:1] == ["1"] and "runtime failure" in line for line in lines), command
        assert any(line.split()[:1] == ["2"] and "usage or data error" in line for line in lines), command


def test_a_search_without_a_completed_trial_is_a_runtime_failure_exit_1(tmp_path, capsys) -> None:
    # not bad input: the search ran and had nothing to ship (issue #17: runtime failures exit 1, usage errors 2)
    code = _exit_code(["search", "iris", "--timeout", "0.001", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1, err
    assert len(err.splitlines()) == 1 and "no trial started before --timeout" in err and "Traceback" not in err


def test_an_interrupted_search_exits_1_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    import autoarch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(autoarch, "search", interrupted)
    code = _exit_code(["search", "iris", "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err == "autoarch: interrupted; run the same command again to resume."


# A value other than the default for every option of a search, as given on the command line and as search() gets it.
EVERY_OPTION = {
    "space": (["--space", "mlp"], "mlp"), "controller": (["--controller", "tpe"], "tpe"),
    "metric": (["--metric", "f1_macro"], "f1_macro"),
    "objectives": (["--objectives", "f1_macro,latency"], "f1_macro,latency"),
    "pick": (["--pick", "best-under:latency=0.5"], "best-under:latency=0.5"),
    "cv": (["--cv", "0.25"], 0.25), "trials": (["--trials", "7"], 7),
    "timeout": (["--timeout", "90"], 90.0), "seed": (["--seed", "3"], 3), "epochs": (["--epochs", "4"], 4),
    "patience": (["--patience", "2"], 2), "test_size": (["--test-size", "0.3"], 0.3),
    "prune": (["--prune", "0.2"], 0.2), "finetune_epochs": (["--finetune-epochs", "3"], 3),
    "calibration_samples": (["--calibration-samples", "64"], 64), "max_samples": (["--max-samples", "100"], 100),
    "device": (["--device", "cpu"], "cpu"), "workers": (["--workers", "2"], 2),
    "early_stop": (["--early-stop", "hyperband"], "hyperband"), "trial_timeout": (["--trial-timeout", "30"], 30.0),
    "max_params": (["--max-params", "5000"], 5000), "max_macs": (["--max-macs", "9000"], 9000),
    "max_latency_ms": (["--max-latency-ms", "0.5"], 0.5), "max_size_kb": (["--max-size-kb", "50"], 50.0),
    "latency_batch": (["--latency-batch", "8"], 8),
    "storage": (["--storage", "sqlite:///x.db"], "sqlite:///x.db"), "study_name": (["--study", "s1"], "s1"),
    "test": (["--test", "split"], "split"), "image_size": (["--image-size", "12"], 12),
    "on_bad_image": (["--on-bad-image", "skip"], "skip"), "text_column": (["--text-column", "review"], "review"),
    "max_length": (["--max-length", "32"], 32), "warm_start": (["--no-warm-start"], False),
    "augment": (["--augment", "off"], "off"), "search_samples": (["--search-samples", "all"], "all"),
    "compress": None,  # no flag: the API and a --config file's [compress] table (below)
}
COMPRESS_TABLE = {"target_macs": 0.3, "max_drop": 0.5, "importance": "taylor"}


def _options_search_gets(monkeypatch, argv: list[str]) -> dict:
    import autoarch.runner
    from autoarch.exceptions import SearchFailedError

    seen: dict = {}

    def fake_search(data, **kwargs):
        seen.update(kwargs)
        raise SearchFailedError("stopped by the test")

    monkeypatch.setattr(autoarch.runner, "search", fake_search)
    assert main(["search", "iris", "--quiet", *argv]) == 1
    return {k: v for k, v in seen.items() if k not in ("target", "task", "out", "progress")}


def test_every_search_option_is_one_flag_that_reaches_search(monkeypatch) -> None:
    from dataclasses import asdict, fields

    from autoarch.config import SearchConfig

    assert set(EVERY_OPTION) == {f.name for f in fields(SearchConfig)}  # a new option needs its flag tested here
    assert _options_search_gets(monkeypatch, []) == asdict(SearchConfig())  # the flags' defaults are the fields'
    argv = [arg for given in EVERY_OPTION.values() if given for arg in given[0]]
    assert _options_search_gets(monkeypatch, argv) == {name: given[1] if given else None
                                                       for name, given in EVERY_OPTION.items()}


def test_a_config_file_sets_every_option(tmp_path, monkeypatch) -> None:
    config = tmp_path / "all.json"
    values = {name: given[1] if given else COMPRESS_TABLE for name, given in EVERY_OPTION.items()}
    values.update(prune=0.15, finetune_epochs=20, calibration_samples=256)  # compress replaces these three
    config.write_text(json.dumps(values))
    got = _options_search_gets(monkeypatch, ["--config", str(config)])
    assert got == values


def test_a_compress_table_gives_the_search_any_compression_target(tmp_path, monkeypatch) -> None:
    from autoarch.config import SearchConfig
    from autoarch.configfile import load_config_file

    config = tmp_path / "c.toml"
    config.write_text('trials = 3\n[compress]\ntarget_macs = 0.3\nmax_drop = 0.5\nimportance = "taylor"\n')
    got = _options_search_gets(monkeypatch, ["--config", str(config)])
    assert got["compress"] == COMPRESS_TABLE and got["trials"] == 3
    cfg = SearchConfig(**load_config_file(str(config)), seed=4)
    compression = cfg.compression
    assert compression.target == ("macs", 0.3) and compression.importance == "taylor"
    assert compression.seed == 4 and compression.max_drop == 0.5  # the search's seed
    assert cfg.finetune_budget == compression.finetune_epochs * (compression.steps + 2)
    # without it, --prune is a one-shot channel target
    assert SearchConfig(prune=0.3).compression.target == ("channels", 0.7)
    assert SearchConfig(prune=0.3).finetune_budget == 20 and SearchConfig(prune=0.0).finetune_budget == 0
    # --timeout reserves the one-shot pruning's early-stopped fine-tune on 1 - val_size of the split and the one
    # on all of it; checked, the reference's too; the checked one without early stopping: two on 1 - val_size
    from autoarch.compress.config import CompressConfig

    assert SearchConfig(prune=0.3).finetune_factor == pytest.approx(1.85) and cfg.finetune_factor == 1.0
    checked = SearchConfig(compress=CompressConfig(target_channels=0.7, check=True, val_size=0.2))
    assert checked.finetune_factor == pytest.approx(2.6)
    unstopped = SearchConfig(compress=CompressConfig(target_channels=0.7, finetune_stop=False))
    assert unstopped.finetune_factor == 1.0
    assert replace(unstopped, compress=replace(unstopped.compression, check=True, val_size=0.2)
                   ).finetune_factor == pytest.approx(1.6)
    assert SearchConfig(compress=CompressConfig(target_channels=1.0, check=True)).finetune_factor == 1.0


@pytest.mark.parametrize(("text", "expected"), [
    ('[compress]\ntarget_mac = 0.3\n', "[compress] compress got unknown option 'target_mac'. Did you mean "
                                       "'target_macs'?"),
    ('[compress]\nmax_drop = -1\n', "[compress] The 'max_drop' parameter of compress must be"),
    ("compress = 3\n", "compress must be a table or null, not 3"),
])
def test_a_bad_compress_table_is_one_line_and_exit_2(tmp_path, capsys, text, expected) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    assert main(["search", "iris", "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "run").exists()


def test_compress_and_prune_together_are_refused(tmp_path, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[compress]\ntarget_macs = 0.3\n')
    assert main(["search", "iris", "--config", str(config), "--prune", "0.3", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "either as 'compress' or as prune, not both" in err and not (tmp_path / "run").exists()


EVERY_COMPRESS_OPTION = {
    "target_params": (["--target-params", "0.3"], 0.3), "target_macs": None, "target_latency": None,
    "target_channels": None,
    "max_drop": (["--max-drop", "0.5"], 0.5), "confidence": (["--confidence", "0.9"], 0.9),
    "importance": (["--importance", "taylor"], "taylor"),
    "global_pruning": (["--global-pruning"], True), "round_to": (["--round-to", "4"], 4),
    "steps": (["--steps", "2"], 2), "finetune_epochs": (["--finetune-epochs", "1"], 1),
    "val_size": (["--val-size", "0.2"], 0.2), "calibration_samples": (["--calibration-samples", "64"], 64),
    "retrain": (["--no-retrain"], False), "final_finetune": (["--no-final-finetune"], False),
    "check": (["--check"], True), "finetune_stop": (["--no-finetune-stop"], False),
    "int8": (["--int8", "dynamic"], "dynamic"), "seed": (["--seed", "5"], 5), "device": (["--device", "cpu"], "cpu"),
}


def test_every_compress_option_is_one_flag_that_reaches_compress_run(monkeypatch, capsys) -> None:
    from dataclasses import fields

    import autoarch.compress
    from autoarch.compress.config import CompressConfig
    from autoarch.exceptions import SearchFailedError

    assert set(EVERY_COMPRESS_OPTION) == {f.name for f in fields(CompressConfig)}
    seen: dict = {}

    def fake_compress_run(run_dir, **kwargs):
        seen.clear()
        seen.update({k: v for k, v in kwargs.items() if k not in ("out", "data", "target", "start", "on_stage")})
        raise SearchFailedError("stopped by the test")

    monkeypatch.setattr(autoarch.compress, "compress_run", fake_compress_run)
    assert main(["compress", "runs/x", "--quiet"]) == 1
    defaults = {f.name: f.default for f in fields(CompressConfig) if f.name != "seed"}
    assert seen == defaults  # no --seed: compress_run takes the run's
    argv = [arg for given in EVERY_COMPRESS_OPTION.values() if given for arg in given[0]]
    assert main(["compress", "runs/x", "--quiet", *argv]) == 1
    expected = {name: given[1] if given else None for name, given in EVERY_COMPRESS_OPTION.items()}
    assert seen == expected
    # the targets are mutually exclusive on the command line
    assert _exit_code(["compress", "runs/x", "--target-params", "0.3", "--target-macs", "0.2"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
