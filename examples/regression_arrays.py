"""Regression from numpy arrays: the diabetes data set, scored by RMSE in k-fold CV.

The exported model returns targets in their original units (the target scaling is inside the graph).

    python examples/regression_arrays.py --trials 10
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_diabetes

import autoarch
from autoarch.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="runs/example-diabetes")
    args = parser.parse_args()

    X, y = load_diabetes(return_X_y=True)
    result = autoarch.search(X.astype(np.float32), y.astype(np.float32), metric="neg_rmse", trials=args.trials,
                             cv=args.cv, epochs=args.epochs, out=args.out, progress=True)
    print("best:", result.report["best"]["summary"])
    for name in ("rmse", "mae", "r2"):
        mean, std = result.cv_scores[name]
        print(f"CV {name}: {mean:.3f} ± {std:.3f}   held-out {name}: {result.test_scores[name]:.3f}")

    values, _ = Predictor(result.compression.onnx_path).predict(X[:5].astype(np.float32))
    print("fp32 ONNX predictions:", np.round(values, 1).tolist(), "targets:", y[:5].tolist())


if __name__ == "__main__":
    main()
