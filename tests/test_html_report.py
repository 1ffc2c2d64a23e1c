"""report.html: self-contained, every chart drawn in a real browser (headless Chromium) with no JavaScript error,
rebuilt by `autoarch report RUN_DIR`."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import autoarch
from autoarch.cli import main

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # the dev extra installs it; CI must have it
    sync_playwright = None

TINY = dict(trials=4, epochs=2, patience=1, finetune_epochs=1, calibration_samples=32, seed=0, cv=2,
            controller="random")
CHROMIUM = next((p for p in (os.environ.get("AUTOARCH_CHROMIUM"), shutil.which("chromium"),
                             shutil.which("chromium-browser"), shutil.which("chromium-headless-shell")) if p), None)


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "run"
    autoarch.search("iris", out=out, **TINY)
    return out


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("html") / "run"
    autoarch.search("diabetes", out=out, **{**TINY, "prune": 0.0})
    return out


def _charts(page: str) -> int:
    return int(re.search(r"id='autoarch-charts'>(\d+)<", page).group(1))


def test_the_report_is_self_contained_and_holds_every_chart(classification_run) -> None:
    page = (classification_run / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page)  # no file loaded (the browser test: no request)
    assert "Plotly" in page  # plotly.js embedded
    # history, importances (4 completed trials), folds, compression, confusion matrix
    assert _charts(page) == 5
    detail = json.loads((classification_run / "report.json").read_text())["test_detail"]
    assert detail["model"] == "model.int8.onnx" and len(detail["confusion_matrix"]) == 3
    assert sum(map(sum, detail["confusion_matrix"])) == sum(v["support"] for v in detail["per_class"].values())


def test_a_regression_report_draws_residuals(regression_run) -> None:
    detail = json.loads((regression_run / "report.json").read_text())["test_detail"]
    assert "y_true" in detail and len(detail["y_true"]) == len(detail["y_pred"]) > 0
    assert "Held-out residuals" in (regression_run / "report.html").read_text()


def test_autoarch_report_rebuilds_the_page_from_the_study(classification_run, capsys) -> None:
    page = classification_run / "report.html"
    before = _charts(page.read_text())
    page.unlink()
    assert main(["report", str(classification_run), "--quiet"]) == 0
    assert page.is_file() and _charts(page.read_text()) == before
    assert "wrote" in capsys.readouterr().out


def test_autoarch_report_on_a_folder_that_is_no_run_is_one_line_exit_2(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no report.json" in err


@pytest.mark.skipif((CHROMIUM is None or sync_playwright is None) and os.environ.get("CI") != "true",
                    reason="no Chromium or playwright here (.ci/run installs Debian's chromium, the dev extra "
                           "playwright)")
@pytest.mark.parametrize("run", ["classification_run", "regression_run"])
def test_every_chart_renders_in_headless_chromium_without_a_javascript_error(run, request) -> None:
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs Debian's chromium"
    assert sync_playwright is not None, "CI must have playwright: the dev extra installs it"
    run_dir = request.getfixturevalue(run)
    page_file = run_dir / "report.html"
    expected = _charts(page_file.read_text())
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        requests: list[str] = []
        page.on("request", lambda req: requests.append(req.url))
        page.goto(page_file.as_uri())
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected}",
                               timeout=30_000)
        drawn = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(div =>
            div.querySelectorAll('.main-svg path, .main-svg .point, .main-svg .bars path, .hm image').length)""")
        browser.close()
    assert not errors, errors
    assert requests == [page_file.as_uri()], requests  # self-contained: nothing but the page itself is loaded
    assert len(drawn) == expected and all(n > 0 for n in drawn), drawn
