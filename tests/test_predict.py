"""``autoarch predict``: self-describing ONNX models run with onnxruntime and numpy alone."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from autoarch.cli import main
from autoarch.compress import export_onnx, model_metadata
from autoarch.data import from_arrays
from autoarch.evaluate import build_model
from autoarch.exceptions import DataError
from autoarch.predict import Predictor, predict_file
from autoarch.search_spaces import CNNSpace, MLPSpace

MLP = {"n_layers": 1, "width_0": 16, "connectivity": "plain", "activation": "relu", "dropout": 0.0, "batch_norm": False}
CNN = {"n_stages": 1, "channels_0": 8, "n_convs_0": 1, "kernel_0": 3, "connectivity": "plain", "pooling": "max",
       "activation": "relu", "dropout": 0.0, "batch_norm": True}


def _export(model, data, path):
    meta = model_metadata(model, task=data.task, classes=data.classes, input_shape=data.input_shape,
                          feature_names=data.feature_names)
    return export_onnx(model.eval(), torch.as_tensor(data.X[:2]), path, meta)


@pytest.fixture(scope="module")
def tabular(tmp_path_factory):
    """An (untrained) MLP on 4 named features with string class labels; its mean/std are not trivial."""
    rng = np.random.default_rng(0)
    X = rng.normal(loc=5.0, scale=3.0, size=(40, 4))
    data = from_arrays(X, np.array(["no", "yes", "maybe", "no"] * 10), task="classification",
                       feature_names=["a", "b", "c", "d"])
    torch.manual_seed(0)
    model = build_model(MLPSpace(), MLP, data).eval()
    path = _export(model, data, tmp_path_factory.mktemp("tab") / "model.onnx")
    return model, data, path


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    rng = np.random.default_rng(1)
    data = from_arrays(rng.uniform(0, 16, size=(30, 8, 8)), np.arange(30) % 3, task="classification")
    torch.manual_seed(0)
    model = build_model(CNNSpace(), CNN, data).eval()
    return model, data, _export(model, data, tmp_path_factory.mktemp("img") / "model.onnx")


def _torch_labels(model, data, X):
    out = model(torch.as_tensor(X, dtype=torch.float32)).detach().numpy()
    return [data.classes[i] for i in out.argmax(1)], out


def test_predictions_carry_the_original_labels_and_probabilities(tabular, tmp_path) -> None:
    model, data, path = tabular
    labels, logits = _torch_labels(model, data, data.X)
    frame = Predictor(path).predict_frame(data.X)
    assert list(frame["prediction"]) == labels
    proba = frame[[f"proba_{c}" for c in data.classes]].to_numpy()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(proba, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_csv_columns_are_matched_by_name(tabular, tmp_path) -> None:
    model, data, path = tabular
    frame = pd.DataFrame(data.X, columns=["a", "b", "c", "d"])
    frame.insert(0, "id", range(len(frame)))  # extra columns are ignored, order follows the model
    frame = frame[["d", "id", "b", "a", "c"]]
    frame.to_csv(tmp_path / "rows.csv", index=False)
    got = predict_file(path, tmp_path / "rows.csv", output=tmp_path / "out.csv")
    assert list(got["prediction"]) == _torch_labels(model, data, data.X)[0]
    assert list(pd.read_csv(tmp_path / "out.csv")["prediction"]) == list(got["prediction"])
    # Without a header the numbers are taken in order.
    np.savetxt(tmp_path / "bare.csv", data.X[:5], delimiter=",")
    assert list(predict_file(path, tmp_path / "bare.csv")["prediction"]) == list(got["prediction"][:5])


def test_images_from_npz_and_flattened_csv(image, tmp_path) -> None:
    model, data, path = image
    labels = _torch_labels(model, data, data.X)[0]
    np.savez(tmp_path / "x.npz", X=data.X[:, 0])  # (n, H, W): reshaped to the model's (n, 1, 8, 8)
    assert list(predict_file(path, tmp_path / "x.npz")["prediction"]) == labels
    pd.DataFrame(data.X.reshape(len(data.X), -1)).to_csv(tmp_path / "x.csv", index=False)
    assert list(predict_file(path, tmp_path / "x.csv")["prediction"]) == labels


def test_regression_values(tmp_path) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(30, 3))
    data = from_arrays(X, X @ np.array([1.0, -2.0, 0.5]) + 10.0, task="regression")
    model = build_model(MLPSpace(), MLP, data).eval()
    path = _export(model, data, tmp_path / "reg.onnx")
    got = Predictor(path).predict_frame(data.X)
    assert list(got.columns) == ["prediction"]
    expected = model(torch.as_tensor(data.X)).detach().numpy().reshape(-1)
    np.testing.assert_allclose(got["prediction"].to_numpy(), expected, rtol=1e-5, atol=1e-5)


def test_bad_inputs_raise_one_clear_data_error(tabular, tmp_path) -> None:
    _, data, path = tabular
    np.savez(tmp_path / "wide.npz", X=np.zeros((2, 5)))
    with pytest.raises(DataError, match="takes 4 features"):
        predict_file(path, tmp_path / "wide.npz")
    np.savez(tmp_path / "cube.npz", X=np.zeros((2, 2, 2)))  # 4 values a sample, but not a table's shape
    with pytest.raises(DataError, match=r"input of shape \(n, 4\), but the input has shape \[2, 2, 2\]"):
        predict_file(path, tmp_path / "cube.npz")
    for dtype in (complex, "U1", "datetime64[s]"):
        np.savez(tmp_path / "typed.npz", X=np.zeros((2, 4), dtype=dtype))
        with pytest.raises(DataError, match=r"is not numeric \(dtype "):
            predict_file(path, tmp_path / "typed.npz")
    with pytest.raises(DataError, match="takes real numbers, but the input's dtype is complex128"):
        Predictor(path).predict(np.zeros((2, 4), dtype=complex))
    assert len(Predictor(path).predict(data.X[0])[0]) == 1  # one sample as a 1-D array
    pd.DataFrame({"a": [1.0], "b": [2.0], "x": [0.0], "y": [0.0]}).to_csv(tmp_path / "cols.csv", index=False)
    with pytest.raises(DataError, match=r"needs columns \['c', 'd'\]"):
        predict_file(path, tmp_path / "cols.csv")
    (tmp_path / "wide.txt").write_text("1,2,3,4")
    with pytest.raises(DataError, match=".csv or .npz"):
        predict_file(path, tmp_path / "wide.txt")
    bare = tmp_path / "bare.onnx"
    export_onnx(torch.nn.Linear(4, 2), torch.zeros(2, 4), bare)
    with pytest.raises(DataError, match="lacks autoarch's metadata"):
        Predictor(bare)
    (tmp_path / "junk.onnx").write_text("not a model")
    with pytest.raises(DataError, match="not a loadable ONNX model"):
        Predictor(tmp_path / "junk.onnx")


@pytest.mark.parametrize("kind", ["csv", "npz", "image-folder"])
def test_cli_predict_needs_neither_torch_optuna_sklearn_nor_pandas(tabular, image, tmp_path, kind,
                                                                 env_without) -> None:
    """What a device has: onnxruntime and numpy (and Pillow for image files). The four heavy packages are made
    unimportable in the child process, and its output is the same table as predict_file's."""
    if kind == "csv":
        _, data, path = tabular
        pd.DataFrame(data.X, columns=["a", "b", "c", "d"]).to_csv(tmp_path / "rows.csv", index=False)
        inputs = tmp_path / "rows.csv"
    elif kind == "npz":
        _, data, path = tabular
        np.savez(tmp_path / "rows.npz", X=data.X)
        inputs = tmp_path / "rows.npz"
    else:
        from PIL import Image

        _, data, path = image
        inputs = tmp_path / "images"
        inputs.mkdir()
        for i in range(4):
            Image.fromarray(np.uint8(data.X[i, 0] * 15)).save(inputs / f"{i}.png")
    env = env_without("torch", "optuna", "sklearn", "pandas")
    proc = subprocess.run([sys.executable, "-m", "autoarch.cli", "predict", str(path), str(inputs)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    expected = predict_file(path, inputs)
    got = pd.read_csv(io.StringIO(proc.stdout))
    assert list(got.columns) == list(expected.columns)
    assert list(got["prediction"].astype(str)) == list(expected["prediction"].astype(str))
    proba = [c for c in got.columns if c.startswith("proba_")]
    np.testing.assert_allclose(got[proba].to_numpy(), expected[proba].to_numpy(), rtol=1e-12)
    # and the blocker works: the same child cannot import them
    check = subprocess.run([sys.executable, "-c", "import pandas"], capture_output=True, text=True, env=env)
    assert check.returncode != 0 and "made unimportable" in check.stderr


def test_cli_predict_runs_without_torch(tabular, tmp_path) -> None:
    model, data, path = tabular
    pd.DataFrame(data.X, columns=["a", "b", "c", "d"]).to_csv(tmp_path / "rows.csv", index=False)
    code = textwrap.dedent(f"""
        import sys
        from autoarch.cli import main
        rc = main(["predict", {str(path)!r}, {str(tmp_path / "rows.csv")!r}, "-o", {str(tmp_path / "p.csv")!r},
                   "--quiet"])
        heavy = sorted(m for m in ("torch", "torch_pruning", "onnxscript", "onnx") if m in sys.modules)
        print("heavy modules:", heavy)
        sys.exit(rc if rc else (3 if heavy else 0))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "heavy modules: []" in proc.stdout
    written = pd.read_csv(tmp_path / "p.csv")
    assert list(written["prediction"]) == _torch_labels(model, data, data.X)[0]
    assert [c for c in written.columns if c.startswith("proba_")] == [f"proba_{c}" for c in data.classes]


def test_cli_predict_writes_csv_to_stdout_and_errors_exit_2(tabular, tmp_path, capsys) -> None:
    _, data, path = tabular
    np.savez(tmp_path / "x.npz", X=data.X[:3])
    assert main(["predict", str(path), str(tmp_path / "x.npz"), "--no-proba"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "prediction" and len(out) == 4
    assert main(["predict", str(path), str(tmp_path / "missing.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err and "Traceback" not in err


def test_image_files_and_folders_for_an_image_model(tmp_path) -> None:
    from PIL import Image

    from autoarch.images import load_image_folder

    rng = np.random.default_rng(3)
    folder = tmp_path / "imgs"
    for k, label in enumerate(["ant", "bee", "cat"]):
        (folder / label).mkdir(parents=True)
        for i in range(4):
            arr = rng.integers(0, 60, size=(12, 12), dtype=np.uint8)
            arr[4 * k:4 * k + 4] = 240  # a bright band, one position per class
            Image.fromarray(arr, mode="L").save(folder / label / f"{i}.png")
    (folder / "notes.txt").write_text("not an image: ignored when predicting a folder")
    data = load_image_folder(folder)
    assert data.input_shape == (1, 12, 12)
    model = build_model(CNNSpace(), CNN, data).eval()
    path = _export(model, data, tmp_path / "cnn.onnx")
    labels = _torch_labels(model, data, data.X)[0]

    got = predict_file(path, folder, output=tmp_path / "p.csv")
    assert list(got.columns) == ["file", "prediction", "proba_ant", "proba_bee", "proba_cat"]
    assert list(got["file"]) == [f"{c}/{i}.png" for c in ("ant", "bee", "cat") for i in range(4)]
    assert list(got["prediction"]) == labels
    written = pd.read_csv(tmp_path / "p.csv")
    assert list(written["file"]) == list(got["file"]) and len(written) == len(data)

    one = predict_file(path, folder / "bee" / "2.png", proba=False)
    assert list(one.columns) == ["file", "prediction"] and len(one) == 1
    assert one["file"][0] == str(folder / "bee" / "2.png") and one["prediction"][0] == labels[6]
    # An RGB file of another size is converted to L and resized to the model's 12x12.
    Image.fromarray(np.zeros((24, 30, 3), np.uint8)).save(tmp_path / "big.jpg")
    assert len(predict_file(path, tmp_path / "big.jpg")) == 1
    with pytest.raises(DataError, match="an image"):
        predict_file(path, folder / "notes.txt")


def test_image_inputs_for_a_tabular_model_raise_one_clear_data_error(tabular, tmp_path) -> None:
    from PIL import Image

    _, _, path = tabular
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(DataError, match=r"\.csv or \.npz file for this tabular model") as err:
        predict_file(path, tmp_path / "x.png")
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="but has a folder"):
        predict_file(path, tmp_path)


def test_a_headerless_csv_keeps_a_first_row_that_repeats_a_value(tmp_path) -> None:
    """Real digits rows (0, 0, 5, 13, 9, 1, 0, 0, ...): pandas renames the repeated header names ('0.000e+00.1'),
    which no longer parse as numbers; the first row must still be read as data."""
    from sklearn.datasets import load_digits

    X = load_digits().data[:20]
    data = from_arrays(X, np.arange(20) % 2, task="classification")
    path = _export(build_model(MLPSpace(), MLP, data).eval(), data, tmp_path / "digits.onnx")
    for fmt in ("%.18e", "%g"):  # numpy's default, and the short form
        np.savetxt(tmp_path / "rows.csv", X, delimiter=",", fmt=fmt)
        frame = predict_file(path, tmp_path / "rows.csv")
        assert len(frame) == 20
        assert list(frame["prediction"]) == list(Predictor(path).predict_frame(X)["prediction"])


def test_a_semicolon_delimited_csv_is_read(tabular, tmp_path) -> None:
    _, data, path = tabular
    pd.DataFrame(data.X, columns=["a", "b", "c", "d"]).to_csv(tmp_path / "semi.csv", sep=";", index=False)
    got = predict_file(path, tmp_path / "semi.csv")
    assert list(got["prediction"]) == list(Predictor(path).predict_frame(data.X)["prediction"])
