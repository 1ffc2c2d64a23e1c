"""An NNI 3.0 model space searched by autoarch: a small CNN space for scikit-learn's 8x8 digits (issue #16).

The class below is plain NNI (``ModelSpace``, ``LayerChoice``, ``InputChoice``, ``Repeat``, ``nni.choice`` inside
``Mutable*`` layers), as a user would have written it for NNI's own strategies. autoarch maps its mutables to
optuna parameters (autoarch.integrations.nni), so every autoarch controller, k-fold CV, pruning, int8 and ONNX
export apply to it. Needs the extra: ``pip install -c constraints-nni.txt -e ".[nni]"``.

Run it (about two minutes on 2 cores)::

    python examples/nni_digits.py --trials 12 --out runs/nni-digits

or from the command line, with this folder on the path::

    PYTHONPATH=examples autoarch search digits --space nni_digits:DigitsCNNSpace --trials 12 --cv 3
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import nni
import torch
from nni.nas.nn.pytorch import (
    InputChoice,
    LayerChoice,
    ModelSpace,
    MutableBatchNorm2d,
    MutableConv2d,
    MutableDropout,
    MutableLinear,
    Repeat,
)
from torch import nn


class Block(nn.Module):
    """A residual block whose operation NNI chooses: a 3x3 or 5x5 convolution, or nothing."""

    def __init__(self, channels: nni.mutable.MutableExpression, label: str) -> None:
        super().__init__()
        self.op = LayerChoice({
            "conv3": nn.Sequential(MutableConv2d(channels, channels, 3, padding=1), MutableBatchNorm2d(channels)),
            "conv5": nn.Sequential(MutableConv2d(channels, channels, 5, padding=2), MutableBatchNorm2d(channels)),
            "skip": nn.Identity(),
        }, label=label)
        self.act = LayerChoice({"relu": nn.ReLU(), "gelu": nn.GELU()}, label=f"{label}_act")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.op(x)) + x


class DigitsCNNSpace(ModelSpace, label_prefix="digits"):
    """Stem width, 1-3 residual blocks (each op and activation chosen), a long skip from the stem around the
    blocks or not (an InputChoice), dropout and the hidden layer's width.

    Every candidate of the InputChoice uses the blocks: an input no candidate reads would leave layers that
    compute but never reach the output, which structured pruning cannot shrink consistently."""

    def __init__(self, input_shape: tuple[int, ...] = (1, 8, 8), n_outputs: int = 10) -> None:
        super().__init__()
        width = nni.choice("width", [8, 16, 32])
        self.stem = nn.Sequential(MutableConv2d(input_shape[0], width, 3, padding=1), MutableBatchNorm2d(width),
                                  nn.ReLU())
        self.blocks = Repeat(lambda i: Block(width, f"block{i}"), (1, 3), label="depth")
        self.into_head = InputChoice(2, n_chosen=1, label="into_head")
        self.pool = nn.AdaptiveAvgPool2d(2)
        hidden = nni.choice("hidden", [32, 64, 128])
        self.drop = MutableDropout(nni.choice("dropout", [0.0, 0.1, 0.3]))
        self.fc = MutableLinear(width * 4, hidden)
        self.head = MutableLinear(hidden, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.stem(x)
        blocks = self.blocks(stem)
        x = self.into_head([blocks, blocks + stem])
        x = self.pool(x).flatten(1)
        return self.head(self.drop(torch.relu(self.fc(x))))


def main(argv: list[str] | None = None) -> None:
    import autoarch
    from autoarch.integrations.nni import NNISpace

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="epoch budget of each candidate")
    parser.add_argument("--controller", default="evolution")
    parser.add_argument("--out", default="runs/nni-digits")
    args = parser.parse_args(argv)
    # The class from its module (not __main__), so that the run records an import path that loads again.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    space_class = importlib.import_module("nni_digits").DigitsCNNSpace
    result = autoarch.search("digits", space=NNISpace(space_class), trials=args.trials, cv=args.cv,
                             epochs=args.epochs, controller=args.controller, out=args.out, seed=0, progress=True)
    mean, std = result.cv_scores["accuracy"]
    print("best NNI sample:", NNISpace(space_class).sample(result.architecture))
    print(f"CV accuracy {mean:.4f} ± {std:.4f}; held-out accuracy {result.test_scores['accuracy']:.4f}")
    int8 = result.compression.stage("onnx int8")
    print(f"shipped {result.compression.int8_path} ({int8.bytes / 1024:.1f} KiB, held-out accuracy "
          f"{int8.scores['accuracy']:.4f})")


if __name__ == "__main__":
    main()
