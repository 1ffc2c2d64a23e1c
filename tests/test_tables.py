"""Tables as users have them (issue #17 item 8): text categories and missing cells, encoded inside the model,
fitted on each fold's training rows, exported into the ONNX graph, and predicted from the raw CSV rows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import palmerpenguins
import pandas as pd
import pytest
import torch

import autoarch
from autoarch.cli import main
from autoarch.compress import export_onnx, model_metadata
from autoarch.data import frame_dataset
from autoarch.evaluate import build_model
from autoarch.exceptions import DataError
from autoarch.loaders import load_dataset
from autoarch.predict import Predictor
from autoarch.predict_inputs import read_inputs
from autoarch.search_spaces import MLPSpace
from autoarch.tables import MAX_LEVELS, OTHER, TableEncoder, encode_cells, encode_frame

PENGUINS = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
"""The Palmer penguins table (CC-0; the palmerpenguins package of the dev extra): 344 rows, text columns
species / island / sex, 'NA' cells in five columns."""
MLP = {"n_layers": 1, "width_0": 16, "connectivity": "plain", "activation": "relu", "dropout": 0.0, "batch_norm": False}


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"colour": ["red", "blue", None, "red", " blue ", "green"] * 4,
                         "size": [1.0, 2.0, 3.0, np.nan, 5.0, 6.0] * 4,
                         "count": [1, 2, 3, 4, 5, 6] * 4})


def test_a_table_of_numbers_without_missing_cells_is_used_as_it_is():
    codes, columns = encode_frame(pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]}))
    assert columns is None
    np.testing.assert_array_equal(codes, [[1, 3], [2, 4]])


def test_text_columns_become_level_codes_and_blanks_nan():
    codes, columns = encode_frame(_frame())
    colour, size, count = columns
    assert colour.levels == ("blue", "green", "red") and colour.missing  # stripped, sorted
    assert size.levels is None and size.missing
    assert count.levels is None and not count.missing
    np.testing.assert_array_equal(codes[:6, 0], [2, 0, np.nan, 2, 0, 1])
    assert math.isnan(codes[3, 1]) and codes[5, 2] == 6


def test_a_column_with_many_levels_keeps_the_frequent_ones_and_other():
    values = [f"v{i:03d}" for i in range(MAX_LEVELS + 10)] + ["v000"] * 5
    _, (column,) = encode_frame(pd.DataFrame({"c": values}))
    assert len(column.levels) == MAX_LEVELS and column.levels[-1] == OTHER and column.other
    assert "v000" in column.levels
    unseen = encode_cells(column, ["never seen", None])
    assert unseen[0] == MAX_LEVELS - 1 and math.isnan(unseen[1])


def test_the_encoder_imputes_with_the_medians_of_the_rows_it_was_fitted_on_only():
    codes, columns = encode_frame(_frame())
    fit_rows = codes[:6]
    encoder = TableEncoder(columns).fit(fit_rows)
    # 'size' in rows 0-5: 1, 2, 3, nan, 5, 6 -> median 3; over all rows it is the same, so change the others
    other = codes.copy()
    other[6:, 1] = 100.0
    assert float(TableEncoder(columns).fit(other).medians[0]) == 100.0
    assert float(encoder.medians[0]) == 3.0
    out = encoder.transform(codes[3:4])  # the row whose size is missing
    # numeric (size, count), one-hot colour (3 levels), indicators (colour, size)
    np.testing.assert_array_equal(out, [[3.0, 4.0, 0, 0, 1, 0, 1]])
    assert encoder.width == out.shape[1]
    blank_colour = encoder.transform(codes[2:3])
    np.testing.assert_array_equal(blank_colour[0, 2:5], [0, 0, 0])
    assert blank_colour[0, 5] == 1


def test_the_model_and_its_onnx_graph_take_codes_with_nan(tmp_path):
    data = frame_dataset(_frame().assign(y=[0, 1] * 12), target="y")
    model = build_model(MLPSpace(), MLP, data).eval()
    meta = model_metadata(model, task=data.task, classes=data.classes, input_shape=data.input_shape,
                          feature_names=data.feature_names)
    path = export_onnx(model, torch.as_tensor(data.X[:2]), tmp_path / "m.onnx", meta)
    predictor = Predictor(path)
    with torch.no_grad():
        expected = model(torch.as_tensor(data.X)).numpy()
    assert np.isnan(data.X).any() and np.isfinite(expected).all()
    np.testing.assert_allclose(predictor.run(data.X), expected, rtol=1e-5, atol=1e-5)
    assert {n: c.levels for n, c in predictor.columns.items()} == {"colour": ("blue", "green", "red")}


def test_an_identifier_column_is_refused_in_one_line(tmp_path):
    frame = _frame().assign(id=[f"row{i}" for i in range(24)], y=[0, 1] * 12)
    with pytest.raises(DataError, match=r"\['id'\].*drop them"):
        frame_dataset(frame, target="y")
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    assert main(["search", str(path), "--target", "y", "--trials", "1", "--out", str(tmp_path / "run")]) == 2
    assert not (tmp_path / "run").exists()


def test_infinite_cells_are_still_refused(tmp_path):
    path = tmp_path / "t.csv"
    _frame().assign(size=[np.inf] + [1.0] * 23, y=[0, 1] * 12).to_csv(path, index=False)
    with pytest.raises(DataError, match="infinite"):
        load_dataset(str(path), target="y")


@pytest.fixture(scope="module")
def penguins_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("penguins") / "run"
    code = main(["search", str(PENGUINS), "--target", "species", "--trials", "3", "--cv", "3", "--epochs", "8",
                 "--seed", "0", "--workers", "1", "--out", str(out), "--quiet"])
    assert code == 0
    return out


def test_search_on_a_real_table_with_text_and_missing_cells_then_predict_the_raw_rows(penguins_run, tmp_path,
                                                                                       capsys):
    raw = pd.read_csv(PENGUINS)
    assert raw.isna().any(axis=1).sum() >= 10 and not pd.api.types.is_numeric_dtype(raw["island"])  # both
    # The raw rows, strings and 'NA' cells included, plus a level never seen in training.
    rows = PENGUINS.read_text().splitlines()
    header, body = rows[0], rows[1:]
    unseen = body[0].replace("Torgersen", "Atlantis")
    csv = tmp_path / "raw.csv"
    csv.write_text("\n".join([header.replace("species,", "", 1)]
                             + [r.split(",", 1)[1] for r in body] + [unseen.split(",", 1)[1]]) + "\n")
    capsys.readouterr()
    assert main(["predict", str(penguins_run / "model.int8.onnx"), str(csv), "--output", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")
    assert len(predicted) == len(body) + 1 and predicted["prediction"].notna().all()
    accuracy = (predicted["prediction"][:len(body)].to_numpy() == raw["species"].to_numpy()).mean()
    assert accuracy >= 0.9, accuracy  # species from island, bills, flippers and mass: an easy table
    # The row whose four measurements and sex are all NA still gets a finite probability.
    proba = predicted.filter(like="proba_").to_numpy()
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)


def test_a_reloaded_table_run_gives_the_onnx_models_outputs(penguins_run):
    model = autoarch.load(penguins_run)
    predictor = Predictor(penguins_run / "model.onnx")
    X = read_inputs(PENGUINS, predictor)
    assert np.isnan(X).any()
    with torch.no_grad():
        expected = model(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(predictor.run(X), expected, rtol=1e-4, atol=1e-4)


def test_autoarch_compress_reloads_a_table_run_and_its_int8_model_takes_raw_rows(penguins_run, tmp_path):
    out = tmp_path / "compressed"
    assert main(["compress", str(penguins_run), "--out", str(out), "--target-macs", "0.7", "--max-drop", "100",
                 "--steps", "1", "--finetune-epochs", "1", "--int8", "static", "--quiet"]) == 0
    predictor = Predictor(out / "model.int8.onnx")
    assert predictor.metadata["quantization"].startswith("static")
    X = read_inputs(PENGUINS, predictor)
    assert np.isnan(X).any() and np.isfinite(predictor.run(X)).all()
