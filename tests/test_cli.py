from __future__ import annotations

import json
import re
import subprocess
import sys

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
    # the phases after the search have their own bars (epochs of the retrain and of the fine-tune)
    assert re.search(r"retrain: 100%.*epoch", proc.stderr) and re.search(r"fine-tune: 100%.*1/1", proc.stderr)
    assert "held-out accuracy" in proc.stdout and "onnx int8" in proc.stdout
    assert (tmp_path / "run" / "model.int8.onnx").exists()


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
    ('trials = "many"\n', "trials must be int, not 'many'"),
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
