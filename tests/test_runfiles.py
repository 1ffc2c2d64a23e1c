"""The run directory's records (autoarch.runfiles): architecture.json as a typed record with a schema version,
report.json's version, and a run directory written before versions existed, kept in tests/data, that still
loads, compresses and predicts (issue #12)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import autoarch
from autoarch.exceptions import DataError
from autoarch.runfiles import SCHEMA_VERSION, ArchitectureSpec, read_model, read_report

OLD_RUN = Path(__file__).parent / "data" / "run-iris-schema0"
"""``autoarch search iris`` (1 trial) written by autoarch 0.1.0 before report.json and architecture.json had a
``schema_version`` (tests/data/README.md says how it was made)."""


@pytest.fixture
def old_run(tmp_path) -> Path:
    run = tmp_path / "old"
    shutil.copytree(OLD_RUN, run)
    return run


def _iris():
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def test_the_kept_run_really_is_of_the_version_before_schema_versions() -> None:
    for name in ("architecture.json", "report.json"):
        assert "schema_version" not in json.loads((OLD_RUN / name).read_text()), name


def test_a_run_written_before_schema_versions_loads_and_predicts_as_its_onnx_model(old_run) -> None:
    from autoarch.predict import Predictor

    X, _ = _iris()
    model = autoarch.load(old_run)
    import torch

    with torch.no_grad():
        torch_labels = model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()
    _, proba = Predictor(old_run / "model.onnx").predict(X.astype(np.float32))
    assert (proba.argmax(axis=1) == torch_labels).mean() == 1.0
    assert read_report(old_run).search.metric == "accuracy"


def test_a_run_written_before_schema_versions_compresses(old_run) -> None:
    from autoarch.compress import compress_run

    result = compress_run(old_run, out=old_run / "c", target_params=0.6, max_drop=100.0, steps=1,
                          finetune_epochs=0, round_to=1, int8="none", retrain=False, measure_memory=False)
    assert result.onnx_path is not None and result.onnx_path.exists()
    written = json.loads((old_run / "c" / "architecture.json").read_text())
    assert written["schema_version"] == SCHEMA_VERSION and written["pruning_history"]
    pruned, spec = read_model(old_run / "c")  # the compressed run reads back with its pruning replayed
    assert spec.pruning_history == written["pruning_history"]


def test_the_record_round_trips_and_keeps_what_it_does_not_know() -> None:
    record = json.loads((OLD_RUN / "architecture.json").read_text())
    spec = ArchitectureSpec.from_dict({**record, "added_later": {"x": 1}})
    assert spec.schema_version == 0 and spec.space == record["space"] and spec.kind == "tabular"
    again = spec.to_dict()
    assert again.pop("schema_version") == SCHEMA_VERSION and again == {**record, "added_later": {"x": 1}}


def test_a_record_of_a_newer_version_or_without_its_fields_is_refused_in_one_line(old_run) -> None:
    record = json.loads((old_run / "architecture.json").read_text())
    with pytest.raises(DataError, match="schema_version 99, newer than this autoarch reads"):
        ArchitectureSpec.from_dict({**record, "schema_version": 99})
    with pytest.raises(DataError, match=r"lacks \['n_outputs'\]"):
        ArchitectureSpec.from_dict({k: v for k, v in record.items() if k != "n_outputs"})
    (old_run / "manifest.json").unlink()  # edited by hand: read unchecked, then refused for what it says
    report = json.loads((old_run / "report.json").read_text())
    (old_run / "report.json").write_text(json.dumps({**report, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DataError, match="upgrade autoarch"):
        read_report(old_run)


def test_a_new_run_writes_the_schema_version(tmp_path) -> None:
    X, y = _iris()
    result = autoarch.search(X, y, out=tmp_path / "run", trials=1, cv=2, epochs=1, prune=0.0, workers=1,
                             warm_start=False, calibration_samples=16)
    for name in ("architecture.json", "report.json"):
        assert json.loads((result.out_dir / name).read_text())["schema_version"] == SCHEMA_VERSION
