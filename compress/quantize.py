"""int8 quantization with onnxruntime: static QDQ, per-channel weights, calibrated on training data."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from autoarch.compress.export import save_atomic

__all__ = ["quantize_int8"]

logger = logging.getLogger(__name__)


class _Batches(CalibrationDataReader):
    def __init__(self, X: np.ndarray, batch_size: int = 32) -> None:
        self._batches = iter([{"x": X[i:i + batch_size].astype(np.float32)} for i in range(0, len(X), batch_size)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize_int8(fp32_path: str | Path, out_path: str | Path, calibration: np.ndarray) -> Path:
    """Static int8 quantization (QDQ format, per-channel int8 weights, uint8 activations).

    Activation ranges are calibrated (min/max) on ``calibration``, a sample of *training* inputs. The graph is
    pre-processed (shape inference, optimisation) first, as onnxruntime recommends. The metadata of the fp32
    model is carried over. The output is written atomically.
    """
    out_path = Path(out_path)
    with tempfile.TemporaryDirectory() as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        quantized = os.path.join(tmp, "int8.onnx")
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=False)
        quantize_static(pre, quantized, _Batches(calibration), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        proto = onnx.load(quantized)
        source = onnx.load(str(fp32_path), load_external_data=False)
        del proto.metadata_props[:]
        proto.metadata_props.extend(source.metadata_props)
        save_atomic(proto, out_path)
    return out_path
