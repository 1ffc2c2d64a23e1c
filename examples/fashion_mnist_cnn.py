"""The MNIST/CIFAR-scale case study: a CNN for Fashion-MNIST (60,000 28x28 training images), scored on the
official 10,000 test images with the shipped int8 model.

    sudo apt-get install -y dataset-fashion-mnist             # the data (Debian package, read offline)
    python examples/fashion_mnist_cnn.py                       # 30 minutes on 2 cores, int8 model <= 100 KB
    python examples/fashion_mnist_cnn.py --timeout 300 --max-samples 12000   # a quick look

With 60,000 images every candidate is validated on a 10% holdout split, trained on a subset of at most 20,000
images (``--search-samples auto``) and stopped early by successive halving; the winner is retrained on all
training images. ``report.html`` in the run directory shows the search, the compression and the confusion matrix.
"""

from __future__ import annotations

import argparse

import numpy as np

import autoarch
from autoarch.loaders import official_test
from autoarch.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for the whole job")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--cv", default="auto")
    parser.add_argument("--epochs", type=int, default=20, help="epoch budget of each candidate")
    parser.add_argument("--max-samples", type=int, help="train on a stratified subset of this many images")
    parser.add_argument("--out", default="runs/example-fashion-mnist")
    args = parser.parse_args()

    cv = args.cv if args.cv in ("auto", "holdout") else int(args.cv)
    result = autoarch.search("fashion-mnist", trials=args.trials, timeout=args.timeout, cv=cv, epochs=args.epochs,
                             max_samples=args.max_samples, max_params=100_000, out=args.out, progress=True)
    print("best architecture:", result.report["best"]["summary"])
    for stage in result.compression.stages:
        print(f"{stage.stage:<24} {stage.params:>9,} params {stage.bytes / 1024:8.1f} KiB "
              f"accuracy {stage.scores['accuracy']:.4f}")

    # The shipped file on the official test images, with onnxruntime and numpy alone.
    test = official_test("fashion-mnist")
    labels, _ = Predictor(result.compression.int8_path).predict(test.X)
    accuracy = float(np.mean(np.asarray(labels) == np.asarray(test.labels(test.y))))
    size = result.compression.int8_path.stat().st_size
    print(f"int8 model ({size / 1024:.1f} KiB) on the official {len(test):,} test images: accuracy {accuracy:.4f}")
    print("charts:", result.out_dir / "report.html")


if __name__ == "__main__":
    main()
