from __future__ import annotations

import numpy as np
import pytest

from autoarch.data import from_arrays, infer_task, train_test_split
from autoarch.exceptions import DataError
from autoarch.loaders import BUILTIN_DATASETS, FASHION_MNIST_DIR, load_dataset, official_test


@pytest.mark.parametrize("name,task,shape,n_classes", [
    ("digits", "classification", (1, 8, 8), 10),
    ("iris", "classification", (4,), 3),
    ("wine", "classification", (13,), 3),
    ("breast_cancer", "classification", (30,), 2),
    ("diabetes", "regression", (10,), 0),
])
def test_builtin_data_sets(name: str, task: str, shape: tuple, n_classes: int) -> None:
    data = load_dataset(name)
    assert data.task == task and data.input_shape == shape and len(data.classes) == n_classes
    assert data.X.dtype == np.float32 and np.isfinite(data.X).all()  # digits too: its source is float64


def test_fashion_mnist_missing_names_the_install_command(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr("autoarch.loaders.FASHION_MNIST_DIR", tmp_path)
    with pytest.raises(DataError, match="apt-get install -y dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def test_fashion_mnist_reads_idx_files(monkeypatch, tmp_path) -> None:
    import gzip

    images = (np.arange(6 * 28 * 28) % 256).astype(np.uint8).reshape(6, 28, 28)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(b"\0" * 16 + images.tobytes())
    with gzip.open(tmp_path / "train-labels-idx1-ubyte.gz", "wb") as fh:
        fh.write(b"\0" * 8 + bytes([0, 9, 9, 1, 0, 1]))
    monkeypatch.setattr("autoarch.loaders.FASHION_MNIST_DIR", tmp_path)
    data = load_dataset("fashion-mnist")
    assert data.X.shape == (6, 1, 28, 28) and np.array_equal(data.X[1, 0], images[1])
    assert data.X.dtype == np.uint8 and data.X.flags.writeable  # 8-bit pixels stay 8-bit; torch needs writable
    assert data.labels(data.y[:2]) == ["T-shirt/top", "Ankle boot"]


@pytest.mark.skipif(not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_installed_fashion_mnist_is_held_as_uint8() -> None:
    data = load_dataset("fashion-mnist")
    assert data.X.dtype == np.uint8 and data.X.shape == (60_000, 1, 28, 28)
    assert data.X.nbytes == 60_000 * 28 * 28  # 47 MB, not the 188 MB of float32
    assert data.X.max() == 255 and data.X.flags.writeable
    assert official_test("fashion-mnist").X.dtype == np.uint8


def test_from_arrays_keeps_uint8_images_and_makes_tabular_float32(tmp_path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(8, 5, 5), dtype=np.uint8)
    images = from_arrays(pixels, np.arange(8) % 2)
    assert images.X.dtype == np.uint8 and images.X.shape == (8, 1, 5, 5)
    np.testing.assert_array_equal(images.X[:, 0], pixels)
    frozen = pixels.copy()
    frozen.flags.writeable = False
    assert from_arrays(frozen, np.arange(8) % 2).X.flags.writeable  # copied, so torch can take it
    assert from_arrays(pixels.reshape(8, -1), np.arange(8) % 2).X.dtype == np.float32  # tabular stays float32
    assert from_arrays(pixels.astype(np.int64), np.arange(8) % 2).X.dtype == np.float32  # not 8-bit: float32
    np.savez(tmp_path / "pixels.npz", X=pixels, y=np.arange(8) % 2)
    assert load_dataset(str(tmp_path / "pixels.npz")).X.dtype == np.uint8


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(DataError, match="Did you mean 'digits'"):
        load_dataset("digit")
    assert "fashion-mnist" in BUILTIN_DATASETS


def test_csv_keeps_string_labels(tmp_path) -> None:
    path = tmp_path / "d.csv"
    rows = ["a,b,label"] + [f"{i},{i % 3},{'cat' if i % 2 else 'dog'}" for i in range(20)]
    path.write_text("\n".join(rows))
    data = load_dataset(str(path), target="label")
    assert data.task == "classification" and data.classes == ["cat", "dog"]
    assert data.labels(data.y[:2]) == ["dog", "cat"]
    assert data.feature_names == ["a", "b"]


def test_csv_errors_name_the_problem(tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n" + "".join(f"{i},id{i},{i % 2}\n" for i in range(20)))
    with pytest.raises(DataError, match=r"columns \['b'\] have a different text in most rows"):
        load_dataset(str(path), target="label")
    with pytest.raises(DataError, match="Did you mean 'label'"):
        load_dataset(str(path), target="lable")
    with pytest.raises(DataError, match="needs --target"):
        load_dataset(str(path))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(str(empty), target="label")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.csv"), target="label")


def test_blank_csv_cells_are_missing_values_but_nan_in_arrays_is_rejected(tmp_path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,0\n,1\n3,0\n4,1\n5,0\n")
    data = load_dataset(str(path), target="label")
    assert data.columns[0].missing and np.isnan(data.X[1, 0])  # encoded by the model (autoarch.tables)
    npz = tmp_path / "d.npz"
    np.savez(npz, X=data.X, y=data.y)
    with pytest.raises(DataError, match="NaN or infinite"):
        load_dataset(str(npz))


def test_npz_keeps_image_shapes_and_checks_keys(tmp_path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.random.rand(12, 5, 6), y=np.arange(12) % 2)
    data = load_dataset(str(path))
    assert data.input_shape == (1, 5, 6) and data.input_kind == "image"
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(DataError, match="needs arrays 'X' and 'y'"):
        load_dataset(str(bad))


def test_length_mismatch_and_single_class() -> None:
    with pytest.raises(DataError, match="same length"):
        from_arrays(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(DataError, match="at least 2 classes"):
        from_arrays(np.zeros((5, 2)), np.zeros(5, dtype=int), task="classification")


def test_task_inference_and_override() -> None:
    assert infer_task(np.array(["a", "b"])) == "classification"
    assert infer_task(np.arange(100) % 3) == "classification"
    assert infer_task(np.linspace(0, 1, 100)) == "regression"
    data = load_dataset("iris", task="regression")
    assert data.task == "regression" and data.y.dtype == np.float32


def test_held_out_split_is_stratified_and_disjoint() -> None:
    data = from_arrays(np.arange(400).reshape(200, 2), np.arange(200) % 4)
    train, test = train_test_split(data, 0.2, seed=0)
    assert len(train) == 160 and len(test) == 40
    assert not set(train.X[:, 0]) & set(test.X[:, 0])
    assert np.bincount(test.y).tolist() == [10, 10, 10, 10]


def test_rare_class_cannot_be_split() -> None:
    data = from_arrays(np.random.rand(10, 2), ["a"] * 9 + ["b"])
    with pytest.raises(DataError, match=r"\['b'\] have fewer than 2 samples"):
        train_test_split(data)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_csv_delimiter_is_sniffed(tmp_path, sep: str) -> None:
    rows = ["a,b,label"] + [f"{i},{i * 0.5},{'cat' if i % 2 else 'dog'}" for i in range(20)]
    (tmp_path / "comma.csv").write_text("\n".join(rows))
    (tmp_path / "other.csv").write_text("\n".join(r.replace(",", sep) for r in rows))
    comma = load_dataset(str(tmp_path / "comma.csv"), target="label")
    other = load_dataset(str(tmp_path / "other.csv"), target="label")
    assert other.feature_names == ["a", "b"] and np.array_equal(other.X, comma.X)
    assert other.classes == comma.classes


@pytest.mark.parametrize("source", ["iris", "d.npz"])
def test_target_is_refused_where_there_is_no_column_to_name(tmp_path, source: str) -> None:
    np.savez(tmp_path / "d.npz", X=np.zeros((8, 2)), y=np.arange(8) % 2)
    with pytest.raises(DataError, match="names a column of a CSV file.*drop --target"):
        load_dataset(source if source == "iris" else str(tmp_path / source), target="foo")


def test_a_dataset_carries_an_explicit_input_kind() -> None:
    from dataclasses import replace

    from autoarch.data import Dataset

    y = np.array([0, 1, 0, 1])
    table = Dataset(X=np.zeros((4, 3), np.float32), y=y, task="classification", classes=[0, 1])
    images = Dataset(X=np.zeros((4, 1, 8, 8), np.float32), y=y, task="classification", classes=[0, 1])
    assert table.kind == "tabular" and images.kind == "image"  # set once from the shape, then carried
    sequences = Dataset(X=np.zeros((4, 5, 2), np.float32), y=y, task="classification", classes=[0, 1],
                        kind="sequence")
    assert sequences.subset(np.array([0, 1])).kind == "sequence"
    assert replace(sequences, X=np.ones((4, 6, 2), np.float32)).input_kind == "sequence"
    with pytest.raises(DataError, match="kind must be one of"):
        Dataset(X=np.zeros((4, 3), np.float32), y=y, task="classification", classes=[0, 1], kind="audio")
