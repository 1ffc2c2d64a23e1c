"""`autoarch dashboard RUN_DIR` serves optuna-dashboard on the run's study, on 127.0.0.1 by default; without the
extra, or on a folder with no study, it ends with one line and exit status 2."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from autoarch.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def run_dir(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    study = optuna.create_study(study_name="autoarch", storage=f"sqlite:///{run / 'study.db'}", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    return run


def test_the_dashboard_serves_the_runs_study_on_localhost(run_dir) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "autoarch.cli", "dashboard", str(run_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        studies = None
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as resp:
                    studies = json.loads(resp.read())["study_summaries"]
                break
            except OSError:
                time.sleep(0.3)
        assert studies is not None, proc.stderr.read() if proc.poll() is not None else "no answer in 60 s"
        assert [s["study_name"] for s in studies] == ["autoarch"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}",
                                    timeout=10) as resp:
            assert len(json.loads(resp.read())["trials"]) == 3
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/dashboard/" in out


def test_without_the_extra_the_dashboard_is_one_line_naming_the_install(run_dir, env_without) -> None:
    env = env_without("optuna_dashboard")
    proc = subprocess.run([sys.executable, "-m", "autoarch.cli", "dashboard", str(run_dir)], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "pip install 'autoarch[dashboard]'" in proc.stderr


def test_a_folder_without_a_study_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main(["dashboard", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no study.db" in err
