"""A tabular classifier: the breast-cancer table (569 rows, 30 numeric features), an MLP searched by
stratified 5-fold CV on macro F1, compared with a logistic regression tuned by a grid search on the same split.

    python examples/breast_cancer_tabular.py --trials 20
"""

from __future__ import annotations

import argparse

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import autoarch
from autoarch.data import train_test_split
from autoarch.loaders import load_dataset
from autoarch.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--out", default="runs/example-breast-cancer")
    args = parser.parse_args()

    result = autoarch.search("breast_cancer", space="mlp", metric="f1_macro", trials=args.trials, cv=args.cv,
                             epochs=args.epochs, out=args.out, progress=True)
    mean, std = result.cv_scores["f1_macro"]
    print("best:", result.report["best"]["summary"])
    print(f"CV f1_macro {mean:.4f} ± {std:.4f}; held-out f1_macro {result.test_scores['f1_macro']:.4f}, "
          f"accuracy {result.test_scores['accuracy']:.4f}")
    shipped = result.compression.stages[-1]  # the int8 ONNX model that ships, scored by onnxruntime
    print(f"shipped {shipped.stage} ({shipped.bytes / 1024:.1f} KiB): held-out f1_macro "
          f"{shipped.scores['f1_macro']:.4f}, accuracy {shipped.scores['accuracy']:.4f}")
    for name, scores in result.report["test_detail"]["per_class"].items():
        print(f"  class {name}: precision {scores['precision']:.3f} recall {scores['recall']:.3f} "
              f"(n={scores['support']})")

    # The same held-out split the search set aside (seed 0), for a baseline a user would try first.
    train, test = train_test_split(load_dataset("breast_cancer"), 0.2, 0)
    grid = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
                        {"logisticregression__C": [0.01, 0.1, 1, 10, 100]}, cv=args.cv, scoring="f1_macro")
    grid.fit(train.X, train.y)
    baseline = f1_score(test.y, grid.predict(test.X), average="macro")
    print(f"logistic regression (C={grid.best_params_['logisticregression__C']}): held-out f1_macro {baseline:.4f}")

    labels, proba = Predictor(result.compression.int8_path).predict(test.X[:5])
    print("int8 model on five held-out rows:", list(labels), "true:", test.labels(test.y[:5]))


if __name__ == "__main__":
    main()
