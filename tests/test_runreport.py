"""report.json as a typed record (autoarch.runreport): every version reads, and writes back what it read."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from autoarch.compress.rows import Stage
from autoarch.exceptions import DataError
from autoarch.runfiles import read_report
from autoarch.runreport import RunReport

OLD_RUN = Path(__file__).parent / "data" / "run-iris-schema0"


def _old() -> dict:
    return json.loads((OLD_RUN / "report.json").read_text())


def test_a_report_written_before_schema_versions_reads_typed_and_writes_back_unchanged() -> None:
    record = _old()
    report = RunReport.from_dict(record)
    assert report.schema_version == 0 and report.data.name == "iris" and report.search.space == "mlp"
    assert report.best.trial == record["best"]["trial"] and report.best.summary == record["best"]["summary"]
    assert all(isinstance(s, Stage) for s in report.compression.stages)
    assert report.compression.stage("onnx int8") is not None
    assert report.compression.pruning is None and report.front is None
    assert report.to_dict() == {**record, "schema_version": 0}


def test_read_report_returns_the_typed_record_of_a_run() -> None:
    report = read_report(OLD_RUN)
    assert isinstance(report, RunReport) and report.config["study_name"] == "autoarch"
    assert read_report(OLD_RUN / "nowhere") is None


def test_keys_a_section_does_not_declare_are_kept() -> None:
    record = _old()
    record["search"]["from_the_future"] = {"x": 1}
    record["something_new"] = [1, 2]
    report = RunReport.from_dict(record)
    assert report.search.extra == {"from_the_future": {"x": 1}} and report.extra == {"something_new": [1, 2]}
    assert report.to_dict() == {**record, "schema_version": 0}


@pytest.mark.parametrize(("damage", "named"), [
    (lambda r: r.pop("best"), "lacks ['best']"),
    (lambda r: r["data"].pop("n_test"), "'data' lacks ['n_test']"),
    (lambda r: r["compression"].pop("stages"), "'compression' lacks ['stages']"),
    (lambda r: r.update(search=[1]), "'search' must be an object, not list"),
])
def test_a_damaged_report_is_refused_in_one_line_naming_what_is_missing(damage, named) -> None:
    record = copy.deepcopy(_old())
    damage(record)
    with pytest.raises(DataError, match="report.json") as info:
        RunReport.from_dict(record)
    assert named in str(info.value) and "\n" not in str(info.value)
