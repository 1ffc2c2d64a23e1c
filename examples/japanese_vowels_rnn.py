"""Which of nine speakers said a Japanese vowel (UEA JapaneseVowels: 12 cepstral channels, 7-29 frames): a
searched recurrent network over variable-length numeric sequences, scored on the archive's official test file,
pruned and quantized, then the shipped int8 model predicting a .ts file with onnxruntime alone.

    pip install --no-deps sktime==1.2.0          # the archive's .ts files (read, never imported)
    python examples/japanese_vowels_rnn.py --timeout 600
"""

from __future__ import annotations

import argparse

import numpy as np

import autoarch
from autoarch.predict import Predictor
from autoarch.sequences import read_ts, sequence_builtin_files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--cv", default="5")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--out", default="runs/example-japanese-vowels")
    args = parser.parse_args()
    cv = args.cv if args.cv in ("auto", "holdout") else (float(args.cv) if "." in args.cv else int(args.cv))

    # the held-out part is the official JapaneseVowels_TEST.ts (370 utterances), never seen by the search
    result = autoarch.search("japanese-vowels", trials=args.trials, cv=cv, epochs=args.epochs,
                             timeout=args.timeout, out=args.out, progress=True)
    print("best:", result.report["best"]["summary"])
    print(f"official test accuracy {result.test_scores['accuracy']:.4f}")
    pruned = result.compression.stage("torch pruned")
    if pruned is not None:
        print(f"pruned: {result.compression.stage('torch fp32').params:,} -> {pruned.params:,} parameters")

    # onnxruntime + numpy: sequences of any length in, speaker labels out
    _, test_file = sequence_builtin_files("japanese-vowels")
    sequences, speakers, _ = read_ts(test_file)
    labels, _ = Predictor(result.out_dir / "model.int8.onnx").predict_sequences(sequences)
    print("int8 model on the first five test utterances:", labels[:5], "(true:", list(speakers[:5]), ")")
    accuracy = np.mean(np.array(labels) == np.array(speakers))
    print(f"int8 model on all {len(sequences)} test utterances: accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
