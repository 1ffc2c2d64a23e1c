"""The compression stage's files: the int8 copy is atomic and every ONNX file gets the umask's mode (issue #15,
items 1 and 7). A hand-built Linear-only model keeps these tests free of the (slow) torch exporter."""

from __future__ import annotations

import os
import shutil
import stat

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from autoarch.compress.export import save_atomic
from autoarch.compress.quantize import choose_int8


def _linear_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(size=(4, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(np.zeros(3, dtype=np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], initializer=[w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_save_atomic_gives_the_umask_mode(tmp_path, umask_027) -> None:
    # tempfile.mkstemp made model.onnx 0600, unreadable to the service account that ships it.
    path = tmp_path / "model.onnx"
    save_atomic(_linear_model(), path)
    assert _mode(path) == 0o640
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_int8_copy_is_atomic_and_gets_the_umask_mode(tmp_path, umask_027, monkeypatch) -> None:
    fp32 = tmp_path / "model.onnx"
    save_atomic(_linear_model(), fp32)
    out = tmp_path / "model.int8.onnx"
    X = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    choose_int8(fp32, out, X, X, repeats=3)  # Linear-only: both methods are built and the faster copied
    assert _mode(out) == 0o640
    before = out.read_bytes()

    real = shutil.copyfile

    def killed_half_way(src, dst, **kwargs):  # as a kill during the copy would leave it
        with open(dst, "wb") as fh:
            fh.write(open(src, "rb").read()[:100])
        raise OSError("killed")

    monkeypatch.setattr(shutil, "copyfile", killed_half_way)
    with pytest.raises(OSError, match="killed"):
        choose_int8(fp32, out, X, X, repeats=3)
    monkeypatch.setattr(shutil, "copyfile", real)
    assert out.read_bytes() == before  # the previous model is whole, not a 100-byte stub
    assert sorted(os.listdir(tmp_path)) == ["model.int8.onnx", "model.onnx"]
