"""JapaneseVowels (UEA archive: 9 speakers, 12 channels, 7-29 steps) end to end on its official split, 270
training / 370 test utterances: the baselines a time-series user reaches for, then ``autoarch search
japanese-vowels`` itself.

    python benchmarks/japanese_vowels.py --timeout 600 --out runs/bench-jv
    python benchmarks/japanese_vowels.py --data osuleaf --timeout 900 --out runs/bench-osuleaf  # 200 / 242 leaf
        # outlines, one channel, 427 steps (the archive's 1-NN DTW: 0.591)
    python benchmarks/japanese_vowels.py --smoke --out /tmp/jv-smoke    # a minute: a tiny autoarch budget

Needs the archive's files: ``pip install --no-deps sktime==1.2.0`` (read from its data folder). MiniRocket
(row 3) needs sktime importable as well: ``pip install numba==0.68.1 scikit-base==1.2.0`` (without them the row
says "not run" and why).

1. 1-nearest neighbour with multivariate dynamic time warping (DTW_D: one warping path for all channels, squared
   Euclidean step cost, no window), the archive's standard baseline (its published accuracy on this problem is
   0.949, Ruiz et al. 2021, which checks this implementation: it gives 351/370 = 0.9486), on the values as the
   archive gives them (z-normalising each short utterance drops the level that tells speakers apart: 0.66).
   Nothing to tune.
2. 1-nearest neighbour with Euclidean distance (scikit-learn's ``KNeighborsClassifier(1)`` on the flattened
   series; series shorter than the longest are padded with their own last value), the archive's other standard
   baseline.
3. MiniRocket, the strong peer (Dempster et al. 2021; sktime's ``MiniRocket`` for one channel of one length,
   ``MiniRocketMultivariateVariable`` for JapaneseVowels, series shorter than 9 steps padded with 0 as sktime's
   own JapaneseVowels example does; 10,000 kernels, random_state 0) into a standardised ``RidgeClassifierCV``
   over alphas 1e-3..1e3, the authors' classifier.
4. Summary features (per channel mean, std, min, max, first and last value, and the length) into a standardised
   RBF SVC and a logistic regression, each tuned by a 5-fold grid search on the training part (SVC: C in 0.3-100,
   gamma in scale, 0.01, 0.03, 0.1; logistic regression: C in 0.1-100), refitted on all of it.
5. ``python -m autoarch.cli search japanese-vowels --timeout T --out OUT/autoarch`` in a subprocess, as a user
   runs it (its held-out part is the official test set); its ``model.onnx`` and ``model.int8.onnx`` are scored
   here with onnxruntime on the 370 test utterances.

Held-out accuracy and wall time of each. Writes OUT/summary.json and OUT/summary.md and prints the markdown. A
failed autoarch run is reported as failed (with the last lines of its stderr), never hidden.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _runs import (  # benchmarks/_runs.py (the script's own folder is on sys.path)
    run_search,
    search_benchmark_args,
    search_rows,
    write_summary,
)
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from autoarch.predict import Predictor
from autoarch.sequences import read_ts, sequence_builtin_files


def dtw_distances(query: np.ndarray, references: list[np.ndarray]) -> np.ndarray:
    """DTW_D distance of ``query`` (T, C) to each reference (T_j, C): the references are padded with +inf cost
    beyond their length and all aligned at once, one anti-diagonal of the dynamic-programming table at a time
    (every cell of a diagonal depends only on the two before it)."""
    longest = max(len(r) for r in references)
    refs = np.zeros((len(references), longest, query.shape[1]), np.float32)
    lengths = np.array([len(r) for r in references])
    for j, r in enumerate(references):
        refs[j, :len(r)] = r
    q = query.astype(np.float32)
    cost = ((q[None, :, None, :] - refs[:, None, :, :]) ** 2).sum(-1)  # (n_refs, T, longest)
    steps = len(query)
    acc = np.full((len(references), steps + 1, longest + 1), np.inf, np.float64)
    acc[:, 0, 0] = 0.0
    for d in range(2, steps + longest + 1):
        i = np.arange(max(1, d - longest), min(steps, d - 1) + 1)
        k = d - i
        best = np.minimum(np.minimum(acc[:, i - 1, k], acc[:, i, k - 1]), acc[:, i - 1, k - 1])
        acc[:, i, k] = cost[:, i - 1, k - 1] + best
    return acc[np.arange(len(references)), steps, lengths]


def _summary(seqs: list[np.ndarray]) -> np.ndarray:
    return np.array([np.concatenate([s.mean(0), s.std(0), s.min(0), s.max(0), s[0], s[-1], [len(s)]])
                     for s in seqs])


def _padded_flat(seqs: list[np.ndarray], length: int) -> np.ndarray:
    """Each (T, C) series padded to ``length`` steps with its own last value, flattened."""
    return np.stack([np.concatenate([s, np.repeat(s[-1:], length - len(s), 0)]).ravel() for s in seqs])


def minirocket(seq_train: list[np.ndarray], y_train: np.ndarray, seq_test: list[np.ndarray],
               y_test: np.ndarray) -> dict[str, Any]:
    """MiniRocket features into a ridge classifier; ``{"skipped": why}`` when sktime cannot be imported. The
    transform is the one sktime recommends for the data: ``MiniRocket`` (univariate) or ``MiniRocketMultivariate``
    for series of one length, ``MiniRocketMultivariateVariable`` otherwise."""
    try:
        import pandas as pd
        from sktime.transformations.panel.rocket import (
            MiniRocket,
            MiniRocketMultivariate,
            MiniRocketMultivariateVariable,
        )
    except ImportError as exc:
        return {"skipped": f"{exc} (pip install numba==0.68.1 scikit-base==1.2.0)"}

    t0 = time.perf_counter()
    channels = seq_train[0].shape[1]
    if len({len(s) for s in seq_train + seq_test}) == 1:  # numpy3D: (n, channels, steps)
        transform = (MiniRocket if channels == 1 else MiniRocketMultivariate)(random_state=0)

        def frame(seqs: list[np.ndarray]) -> Any:
            return np.stack([s.T for s in seqs]).astype(np.float64)
    else:  # sktime's nested frame: one pd.Series per cell
        transform = MiniRocketMultivariateVariable(pad_value_short_series=0.0, random_state=0)

        def frame(seqs: list[np.ndarray]) -> Any:
            return pd.DataFrame({f"dim_{c}": [pd.Series(s[:, c]) for s in seqs] for c in range(channels)})
    features_train = transform.fit_transform(frame(seq_train))
    ridge = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    ridge.fit(np.asarray(features_train), y_train)
    predicted = ridge.predict(np.asarray(transform.transform(frame(seq_test))))
    return {"accuracy": float(accuracy_score(y_test, predicted)), "seconds": time.perf_counter() - t0,
            "transform": type(transform).__name__}


def main(argv: list[str] | None = None) -> int:
    args = search_benchmark_args(__doc__, 600, argv, lambda parser: parser.add_argument(
        "--data", default="japanese-vowels", choices=("japanese-vowels", "osuleaf")))
    out = args.out

    train_file, test_file = sequence_builtin_files(args.data)
    seq_train, y_train, _ = read_ts(train_file)
    seq_test, y_test, _ = read_ts(test_file)
    y_train, y_test = np.array(y_train), np.array(y_test)
    results: dict[str, Any] = {"n_train": len(seq_train), "n_test": len(seq_test)}

    t0 = time.perf_counter()
    nearest = [y_train[int(np.argmin(dtw_distances(q, seq_train)))] for q in seq_test]
    results["dtw_1nn"] = {"accuracy": float(accuracy_score(y_test, nearest)), "seconds": time.perf_counter() - t0}

    t0 = time.perf_counter()
    longest = max(len(s) for s in seq_train + seq_test)
    knn = KNeighborsClassifier(n_neighbors=1).fit(_padded_flat(seq_train, longest), y_train)
    results["euclidean_1nn"] = {"accuracy": float(accuracy_score(y_test, knn.predict(_padded_flat(seq_test, longest)))),
                                "seconds": time.perf_counter() - t0}
    results["minirocket"] = minirocket(seq_train, y_train, seq_test, y_test)

    F_train, F_test = _summary(seq_train), _summary(seq_test)
    for key, estimator, grid in (
            ("summary_svc", SVC(), {"svc__C": [0.3, 1, 3, 10, 30, 100], "svc__gamma": ["scale", 0.01, 0.03, 0.1]}),
            ("summary_logreg", LogisticRegression(max_iter=5000),
             {"logisticregression__C": [0.1, 0.3, 1, 3, 10, 30, 100]})):
        t0 = time.perf_counter()
        search = GridSearchCV(make_pipeline(StandardScaler(), estimator), grid, cv=5, n_jobs=1).fit(F_train, y_train)
        results[key] = {"accuracy": float(accuracy_score(y_test, search.predict(F_test))),
                        "seconds": time.perf_counter() - t0, "best_params": search.best_params_}

    extra = shlex.split(args.autoarch_args) + (["--trials", "3", "--epochs", "3", "--cv", "2"] if args.smoke else [])

    def score(model: Path, report: dict[str, Any]) -> dict[str, Any]:
        predicted = Predictor(model).predict_sequences(seq_test)[0]
        return {"accuracy": float(accuracy_score(y_test, np.array(predicted)))}

    entry = run_search(args.data, args.timeout, out / "autoarch", extra, score)
    results["autoarch"] = entry
    (out / "summary.json").write_text(json.dumps(results, indent=2, default=str))

    lines = [f"{args.data}: {len(seq_train)} training / {len(seq_test)} official test series", "",
             "| method | wall time (s) | test accuracy |", "|---|---|---|"]
    for key, name in (("dtw_1nn", "1-NN DTW_D (no window)"), ("euclidean_1nn", "1-NN Euclidean"),
                      ("minirocket", "MiniRocket + ridge (sktime)"),
                      ("summary_svc", "summary features + RBF SVC, 5-fold grid"),
                      ("summary_logreg", "summary features + logistic regression, 5-fold grid")):
        r = results[key]
        if "skipped" in r:
            lines.append(f"| {name} | - | not run: {r['skipped']} |")
            continue
        lines.append(f"| {name} | {r['seconds']:.0f} | {r['accuracy']:.4f} |")
    lines += search_rows(entry, ("accuracy",))
    return write_summary(out, lines, entry)


if __name__ == "__main__":
    sys.exit(main())
