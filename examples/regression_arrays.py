"""Regression from numpy arrays: the diabetes data set, scored by RMSE in k-fold CV, compared with the models a
scikit-learn user would tune on the same held-out split (ridge regression and an RBF SVR, each by a grid search).

The exported model returns targets in their original units (the target scaling is inside the graph).

    python examples/regression_arrays.py --trials 10
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

import autoarch
from autoarch.data import from_arrays, train_test_split
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

    shipped = result.compression.stages[-1]  # the int8 ONNX model that ships, scored by onnxruntime
    print(f"shipped {shipped.stage} ({shipped.bytes / 1024:.1f} KiB): held-out rmse {shipped.scores['rmse']:.3f}")

    # The same held-out split the search set aside (seed 0, 20%), for the baselines a user would tune first.
    train, test = train_test_split(from_arrays(X.astype(np.float32), y.astype(np.float32), task="regression"), 0.2, 0)
    baselines = {
        "ridge": GridSearchCV(make_pipeline(StandardScaler(), Ridge()),
                              {"ridge__alpha": [0.001, 0.01, 0.1, 1, 3, 10, 30, 100]}, cv=args.cv,
                              scoring="neg_root_mean_squared_error"),
        "rbf SVR": GridSearchCV(make_pipeline(StandardScaler(), SVR()),
                                {"svr__C": [10, 30, 100, 300, 1000], "svr__gamma": [0.003, 0.01, 0.03, 0.1],
                                 "svr__epsilon": [1, 10]}, cv=args.cv, scoring="neg_root_mean_squared_error"),
    }
    for name, grid in baselines.items():
        grid.fit(train.X, train.y)
        rmse = mean_squared_error(test.y, grid.predict(test.X)) ** 0.5
        print(f"{name} (grid search, {grid.best_params_}): held-out rmse {rmse:.3f}")

    values, _ = Predictor(result.compression.onnx_path).predict(X[:5].astype(np.float32))
    print("fp32 ONNX predictions:", np.round(values, 1).tolist(), "targets:", y[:5].tolist())


if __name__ == "__main__":
    main()
