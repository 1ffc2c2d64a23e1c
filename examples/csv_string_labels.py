"""Your own table: a CSV file with numeric features and a text label column.

Writes the wine data set as ``wine.csv`` (labels ``"barolo"``, ``"grignolino"``, ``"barbera"``) into ``--out``,
searches an MLP for it with the TPE controller, and predicts with the exported int8 model: the predictions are
the original text labels, read from the model's own metadata (no autoarch needed to run it, only onnxruntime).

    python examples/csv_string_labels.py --trials 10
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_wine

import autoarch
from autoarch.predict import Predictor

CULTIVARS = ["barolo", "grignolino", "barbera"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("runs/example-wine"))
    args = parser.parse_args()

    wine = load_wine(as_frame=True)
    frame = wine.frame.drop(columns="target").assign(cultivar=[CULTIVARS[i] for i in wine.target])
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "wine.csv"
    frame.to_csv(csv, index=False)

    result = autoarch.search(str(csv), target="cultivar", controller="tpe", metric="f1_macro", trials=args.trials,
                             cv=args.cv, epochs=args.epochs, out=args.out / "run", progress=True)
    print("best:", result.report["best"]["summary"])
    print(f"CV f1_macro {result.cv_scores['f1_macro'][0]:.4f}; held-out accuracy "
          f"{result.test_scores['accuracy']:.4f}")

    predictor = Predictor(result.compression.int8_path)
    sample = frame.drop(columns="cultivar").sample(6, random_state=0)
    table = predictor.predict_frame(sample.to_numpy())
    table.insert(0, "true", frame.loc[sample.index, "cultivar"].to_numpy())
    with pd.option_context("display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
