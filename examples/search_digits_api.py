"""Search a CNN for the built-in digits images through the Python API, then use the exported model.

    python examples/search_digits_api.py                       # 12 trials, about a minute on 2 cores
    python examples/search_digits_api.py --trials 40 --cv 3    # the README's main job

The run directory (``--out``) holds the study, the leaderboard, the reports and the ONNX models; running the
script again with the same ``--out`` resumes the study.
"""

from __future__ import annotations

import argparse

import autoarch
from autoarch.loaders import load_dataset
from autoarch.predict import Predictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--cv", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="epoch budget of each candidate")
    parser.add_argument("--out", default="runs/example-digits")
    args = parser.parse_args()

    result = autoarch.search("digits", trials=args.trials, cv=args.cv, epochs=args.epochs, out=args.out,
                             progress=True)

    print("best architecture:", result.report["best"]["summary"])
    mean, std = result.cv_scores["accuracy"]
    print(f"CV accuracy {mean:.4f} ± {std:.4f}; held-out accuracy {result.test_scores['accuracy']:.4f}")
    print(result.leaderboard[["trial", "state", "value", "params", "architecture"]].head(5).to_string(index=False))
    for stage in result.compression.stages:
        print(f"{stage.stage:<24} {stage.params:>9,} params {stage.bytes / 1024:8.1f} KiB "
              f"accuracy {stage.scores['accuracy']:.4f}")

    # The int8 ONNX model runs with onnxruntime alone; its input is raw pixels, as in the data set.
    predictor = Predictor(result.compression.int8_path)
    images = load_dataset("digits").X[:5]
    labels, proba = predictor.predict(images)
    print("int8 model on the first five images:", labels, "confidence", proba.max(axis=1).round(3).tolist())

    # The same model rebuilt in torch from the run directory.
    model = autoarch.load(result.out_dir)
    print("torch model reloaded from", result.out_dir, "with", sum(p.numel() for p in model.parameters()),
          "parameters")


if __name__ == "__main__":
    main()
