"""Numeric sequences (issue #14): the UCR/UEA .ts format, ragged and padded NPZ files with lengths, the mask
channel, the rnn space without an embedding, and search -> predict on .ts files with the official test split."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnxruntime.quantization import quantize_dynamic

import autoarch
from autoarch.cli import main
from autoarch.compress import check_onnx, export_onnx, model_metadata, run_onnx, session
from autoarch.compress.export import dynamic_steps, save_atomic, set_metadata
from autoarch.compress.run import reload_data
from autoarch.data import from_sequences
from autoarch.evaluate import build_model
from autoarch.exceptions import DataError
from autoarch.loaders import load_dataset
from autoarch.model import fit_standardizer
from autoarch.predict import Predictor
from autoarch.search_spaces import RNNSpace, get_space
from autoarch.search_spaces.testing import sample_architectures
from autoarch.sequences import from_lengths, pad_sequences, read_ts, sequence_lengths


def _toy(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """Two channels, lengths 5-15: class ``a`` oscillates slowly, ``b`` fast."""
    rng = np.random.default_rng(seed)
    seqs, labels = [], []
    for i in range(n):
        label = "ab"[i % 2]
        t = np.arange(int(rng.integers(5, 16)))
        f = 0.3 if label == "a" else 0.9
        seqs.append(np.stack([np.sin(f * t) + 0.1 * rng.normal(size=len(t)), np.cos(f * t)], axis=1))
        labels.append(label)
    return seqs, labels


def _write_ts(path: Path, seqs: list[np.ndarray], labels: list[str] | None) -> Path:
    head = ["# a comment", "@problemName toy", "@timeStamps false", "@univariate false", "@dimensions 2",
            "@equalLength false", "@classLabel true a b" if labels else "@classLabel false", "@data"]
    lines = [":".join(",".join(f"{v:.5f}" for v in seq[:, c]) for c in range(seq.shape[1]))
             + (f":{labels[i]}" if labels else "") for i, seq in enumerate(seqs)]
    path.write_text("\n".join(head + lines) + "\n", encoding="utf-8")
    return path


def test_read_ts_gives_each_case_its_own_length_channels_and_label(tmp_path):
    path = tmp_path / "x.ts"
    path.write_text("@problemName x\n@classLabel true up down\n@data\n1,2,3:4,5,6:up\n7,8:9,10:down\n",
                    encoding="utf-8")
    seqs, labels, task = read_ts(path)
    assert task == "classification" and labels == ["up", "down"]
    np.testing.assert_array_equal(seqs[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(seqs[1], [[7, 9], [8, 10]])
    path.write_text("@targetLabel true\n@data\n1,2:0.5\n", encoding="utf-8")
    assert read_ts(path)[1:] == (["0.5"], "regression")
    path.write_text("@classLabel false\n@data\n1,2:3,4\n", encoding="utf-8")  # data to predict: no labels
    seqs, labels, _ = read_ts(path)
    assert labels == [""] and seqs[0].shape == (2, 2)


@pytest.mark.parametrize("body, message", [
    ("@classLabel true a\n@data\n1,2:3:a\n", "line 3: its channels have different lengths"),
    ("@classLabel true a\n@data\n1,?,3:a\n", "line 3: a missing value"),
    ("@classLabel true a\n@data\n1,x:a\n", "line 3: 'x' is not a number"),
    ("@classLabel true a\n@data\n1,2:a\n1,2:3,4:a\n", "line 4: 2 channels, but the lines before have 1"),
    ("@classLabel true a\n@data\n1,2,3\n", "line 3: expected channels separated by ':'"),
    ("@classLabel true a\n1,2:a\n", "line 2: expected an '@' header line"),
    ("@classLabel true a\n", "no '@data' line"),
    ("@timeStamps true\n@classLabel true a\n@data\n(1,2):a\n", "'@timeStamps true' files are not supported"),
])
def test_a_malformed_ts_file_is_refused_naming_the_line(tmp_path, body, message):
    path = tmp_path / "bad.ts"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace("?", r"\?")):
        read_ts(path)


def test_padding_adds_the_mask_channel_and_lengths_read_it_back():
    X = pad_sequences([np.ones((3, 2)), 2 * np.ones((1, 2))], max_length=4)
    assert X.shape == (2, 4, 3) and X.dtype == np.float32
    np.testing.assert_array_equal(X[:, :, -1], [[1, 1, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(sequence_lengths(X), [3, 1])
    assert (X[1, 1:, :2] == 0).all()
    with pytest.raises(DataError, match="a sequence has 3 steps, more than the 2"):
        pad_sequences([np.ones((3, 2))], max_length=2)
    with pytest.raises(DataError, match="different channel counts"):
        pad_sequences([np.ones((3, 2)), np.ones((3, 1))])


def test_padded_and_ragged_npz_forms_give_the_same_array(tmp_path):
    seqs, labels = _toy(6)
    lengths = np.array([len(s) for s in seqs])
    padded = np.zeros((6, lengths.max(), 2), np.float32)
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
        padded[i, len(s):] = 99.0  # whatever is after a sequence's length is not part of it
    ragged = np.concatenate(seqs)
    a, b = from_lengths(padded, lengths), from_lengths(ragged, lengths)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sequence_lengths(a), lengths)
    np.savez(tmp_path / "s.npz", X=ragged, y=np.array(labels), lengths=lengths)
    data = load_dataset(str(tmp_path / "s.npz"))
    assert data.input_kind == "sequence" and data.input_shape == (int(lengths.max()), 3)
    np.testing.assert_array_equal(data.X, a)
    with pytest.raises(DataError, match="ragged X has .* steps in all, but 'lengths' sums to"):
        from_lengths(ragged, lengths + 1)


def test_the_standardizer_uses_valid_steps_only_and_leaves_the_mask_alone():
    X = pad_sequences([np.array([[1.0], [3.0]]), np.array([[5.0]])], max_length=6)  # padding: 3 zero steps
    mean, std = fit_standardizer(X)
    assert mean.shape == (1, 2)
    np.testing.assert_allclose(mean[0], [3.0, 0.0])
    np.testing.assert_allclose(std[0], [np.std([1, 3, 5]), 1.0], rtol=1e-6)


def test_the_rnn_space_is_the_default_for_sequences_and_searches_no_embedding():
    space = get_space("auto", "sequence")
    assert isinstance(space, RNNSpace) and space.input_kind == "sequence"
    for arch in sample_architectures(space, 5):
        assert "vocab_size" not in arch and "embedding_dim" not in arch
    assert "vocab_size" not in space.grid() and "vocab_size" in get_space("auto", "text").grid()
    with pytest.raises(Exception, match="does not take sequence"):
        get_space("cnn", "sequence")


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_sequence_s_output(pooling, bidirectional):
    arch = {"cell": "gru", "n_layers": 2, "hidden_0": 8, "hidden_1": 6, "bidirectional": bidirectional,
            "connectivity": "dense", "dropout": 0.0, "pooling": pooling, "head_width": 4,
            "head_activation": "relu", "grad_clip": 0.0}
    net = RNNSpace(input_kind="sequence").build(arch, (20, 3), 3).eval()
    seqs, _ = _toy(4)
    short, long = pad_sequences(seqs, 15), pad_sequences(seqs, 20)
    with torch.no_grad():
        torch.testing.assert_close(net(torch.as_tensor(short)), net(torch.as_tensor(long)))
        # a sequence alone gives what it gives in a batch beside longer ones
        alone = torch.as_tensor(pad_sequences(seqs[:1], len(seqs[0])))
        torch.testing.assert_close(net(alone), net(torch.as_tensor(long))[:1])


def test_thirty_sampled_sequence_architectures_build_round_trip_run_and_export(tmp_path):
    space = RNNSpace(input_kind="sequence")
    archs = sample_architectures(space, 30)
    seqs, labels = _toy(8)
    data = from_sequences(seqs, labels)
    x = torch.as_tensor(data.X)
    for i, arch in enumerate(archs):
        assert json.loads(json.dumps(arch)) == arch
        a = build_model(space, arch, data).eval()
        b = build_model(space, json.loads(json.dumps(arch)), data).eval()
        b.load_state_dict(a.state_dict())
        with torch.no_grad():
            out = a(x)
            torch.testing.assert_close(out, b(x))
        assert out.shape == (8, 2) and torch.isfinite(out).all(), space.describe(arch)
        if i % 5 == 0:  # every fifth one through ONNX too (export is the slow part)
            path = export_onnx(a, x[:2], tmp_path / f"m{i}.onnx")
            assert check_onnx(path)["checker"] == "ok"
            np.testing.assert_allclose(run_onnx(session(path), data.X), out.numpy(), atol=1e-4)


def test_sequence_metadata_describes_the_mask_and_the_steps():
    seqs, labels = _toy(10)
    data = from_sequences(seqs, labels)
    model = build_model(RNNSpace(input_kind="sequence"), RNNSpace(input_kind="sequence").warm_starts()[0][1], data)
    meta = model_metadata(model, task=data.task, classes=data.classes, input_shape=data.input_shape)
    assert meta["input_kind"] == "sequence"
    assert json.loads(meta["sequence"]) == {"max_length": 15, "channels": 2, "mask": "last channel",
                                            "padding": "right, zeros"}
    assert json.loads(meta["preprocessing"])["standardize"]["axis"].startswith("sequence channel")


def test_search_ts_with_its_official_test_then_predict_ts_and_npz(tmp_path, capsys):
    seqs, labels = _toy(120)
    train = _write_ts(tmp_path / "Toy_TRAIN.ts", seqs[:80], labels[:80])
    _write_ts(tmp_path / "Toy_TEST.ts", seqs[80:], labels[80:])
    out = tmp_path / "run"
    assert main(["search", str(train), "--trials", "2", "--cv", "2", "--epochs", "6", "--out", str(out), "--quiet",
                 "--seed", "0"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["test"] == "official"
    assert (report["data"]["n_train"], report["data"]["n_test"]) == (80, 40)
    assert report["test"]["accuracy"] >= 0.75
    assert json.loads((out / "architecture.json").read_text())["input_kind"] == "sequence"
    train_again, test_again = reload_data(report)  # what compress and resume reload: the official test again
    assert (len(train_again), len(test_again)) == (80, 40)
    # autoarch export (and a worker) reload the study's data with its recorded options: test = "official" is the
    # resolved value, not a file to load
    exported = autoarch.export_trial(out, report["best"]["trial"], out=tmp_path / "exported")
    assert exported.report["data"]["n_test"] == 40 and exported.report["config"]["test"] == "official"

    predictor = Predictor(out / "model.int8.onnx")
    assert predictor.sequence == {"max_length": 15, "channels": 2, "mask": "last channel",
                                  "padding": "right, zeros"}
    unlabelled = _write_ts(tmp_path / "new.ts", seqs[80:], None)
    capsys.readouterr()
    assert main(["predict", str(out / "model.int8.onnx"), str(unlabelled)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "prediction,proba_a,proba_b"
    predicted = [line.split(",")[0] for line in lines[1:]]
    assert np.mean([p == y for p, y in zip(predicted, labels[80:], strict=True)]) >= 0.75
    # the same sequences as a ragged NPZ, and shorter than the model's steps, predict the same
    lengths = np.array([len(s) for s in seqs[80:]])
    np.savez(tmp_path / "new.npz", X=np.concatenate(seqs[80:]), lengths=lengths)
    assert main(["predict", str(out / "model.int8.onnx"), str(tmp_path / "new.npz")]) == 0
    assert [line.split(",")[0] for line in capsys.readouterr().out.strip().splitlines()[1:]] == predicted
    assert predictor.predict_sequences(seqs[80:])[0] == predicted
    masked = pad_sequences(seqs[80:])  # the model's own input form, padded to the longest of these only
    np.savez(tmp_path / "masked.npz", X=masked)
    assert main(["predict", str(out / "model.int8.onnx"), str(tmp_path / "masked.npz")]) == 0
    assert [line.split(",")[0] for line in capsys.readouterr().out.strip().splitlines()[1:]] == predicted
    masked[0, 0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", X=masked)
    assert main(["predict", str(out / "model.int8.onnx"), str(tmp_path / "nan.npz")]) == 2
    assert "holds NaN or infinite values" in capsys.readouterr().err

    model = autoarch.load(out)  # the saved model reloads and agrees with its ONNX export
    with torch.no_grad():
        reloaded = model(torch.as_tensor(pad_sequences(seqs[80:], 15))).argmax(1).numpy()
    assert [["a", "b"][i] for i in reloaded] == Predictor(out / "model.onnx").predict_sequences(seqs[80:])[0]
    # the search pruned the recurrent winner (--prune 0.15: hidden units, the head's hidden layer)
    pruned, unpruned = (next(s for s in report["compression"]["stages"] if s["stage"] == name)
                        for name in ("torch pruned", "torch fp32"))
    assert pruned["params"] < unpruned["params"]
    # autoarch compress prunes it in steps toward a MACs target; the compressed int8 model predicts raw .ts files
    assert main(["compress", str(out), "--out", str(tmp_path / "c"), "--target-macs", "0.5", "--max-drop", "100",
                 "--steps", "2", "--finetune-epochs", "1", "--quiet"]) == 0
    compressed = json.loads((tmp_path / "c" / "compression.json").read_text())
    steps = compressed["steps"]
    assert compressed["pruning"]["kept_step"] >= 1 and steps[-1]["macs"] <= 0.5 * steps[0]["macs"]
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "c" / "model.int8.onnx"), str(unlabelled)]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 40


def test_a_stepped_compress_target_prunes_a_recurrent_winner(tmp_path):
    from autoarch.compress import CompressConfig

    seqs, labels = _toy(60)
    result = autoarch.search(from_sequences(seqs, labels), trials=1, cv=2, epochs=2, out=tmp_path / "run",
                             compress=CompressConfig(target_macs=0.5, max_drop=100.0, steps=2, finetune_epochs=1,
                                                     calibration_samples=16))
    pruning = result.report["compression"]["pruning"]
    assert pruning["kept_step"] >= 1
    stages = {s.stage: s for s in result.compression.stages}
    assert {"torch fp32", "torch pruned", "onnx fp32", "onnx int8"} <= set(stages)
    assert stages["torch pruned"].macs <= 0.5 * stages["torch fp32"].macs


def test_sequence_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    seqs, labels = _toy(30)
    bad = tmp_path / "Bad_TRAIN.ts"
    bad.write_text("@classLabel true a b\n@data\n1,2:3:a\n", encoding="utf-8")
    assert main(["search", str(bad), "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "line 3: its channels have different lengths" in err[0]
    unlabelled = _write_ts(tmp_path / "U_TRAIN.ts", seqs, None)
    assert main(["search", str(unlabelled), "--out", str(tmp_path / "b")]) == 2
    assert "have no labels" in capsys.readouterr().err
    assert main(["search", str(tmp_path / "missing.ts"), "--out", str(tmp_path / "c")]) == 2
    assert "does not exist" in capsys.readouterr().err
    labelled = _write_ts(tmp_path / "L_TRAIN.ts", seqs, labels)
    assert main(["search", str(labelled), "--task", "regression", "--out", str(tmp_path / "d")]) == 2
    assert "label 'a' is not a number, so it cannot be a regression target" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in "abcd")


def _exported(tmp_path: Path, cell: str) -> tuple[Predictor, torch.nn.Module, Path]:
    seqs, labels = _toy(10)
    data = from_sequences(seqs, labels)
    space = RNNSpace(input_kind="sequence")
    arch = {**space.warm_starts()[0][1], "cell": cell, "bidirectional": True, "pooling": "mean"}
    model = build_model(space, arch, data).eval()
    path = export_onnx(model, torch.as_tensor(data.X[:2]), tmp_path / f"{cell}.onnx")
    proto = onnx.load(str(path))
    set_metadata(proto, model_metadata(model, task=data.task, classes=data.classes, input_shape=data.input_shape))
    save_atomic(proto, path)
    return Predictor(path), model, path


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_lstm_and_gru_export_with_a_dynamic_length_and_agree_at_several_lengths(tmp_path, cell):
    predictor, model, path = _exported(tmp_path, cell)
    assert predictor.dynamic_steps and dynamic_steps(model)
    assert not isinstance(session(path).get_inputs()[0].shape[1], int)
    quantize_dynamic(str(path), str(tmp_path / "int8.onnx"))
    seqs, _ = _toy(6, seed=1)
    for steps in (15, 24, 60):  # the training length, longer padding, and sequences longer than any trained on
        batch = [np.tile(s, (4, 1))[:steps] for s in seqs] if steps == 60 else seqs
        X = pad_sequences(batch, steps)
        with torch.no_grad():
            expected = model(torch.as_tensor(X)).numpy()
        np.testing.assert_allclose(run_onnx(session(path), X), expected, atol=1e-4)
        np.testing.assert_allclose(run_onnx(session(tmp_path / "int8.onnx"), X), expected, atol=0.05)
    # the predictor reads a sequence longer than the model's 15 steps whole
    long_one = np.tile(seqs[0], (4, 1))[:40]
    with torch.no_grad():
        expected = model(torch.as_tensor(pad_sequences([long_one], 40))).argmax(1).item()
    assert predictor.predict_sequences([long_one])[0] == [["a", "b"][expected]]


def test_a_plain_rnn_is_exported_at_a_fixed_length_and_refuses_a_longer_sequence(tmp_path):
    predictor, model, _ = _exported(tmp_path, "rnn")
    assert not predictor.dynamic_steps and not dynamic_steps(model)
    with pytest.raises(DataError, match="a sequence has 16 steps, more than the 15 the model takes"):
        predictor.predict_sequences([np.zeros((16, 2))])
    with pytest.raises(DataError, match="takes sequences of 2 channel"):
        predictor.predict_sequences([np.zeros((4, 3))])


@pytest.mark.skipif(importlib.util.find_spec("sktime") is None and not os.environ.get("CI"),
                    reason="the JapaneseVowels files come with `pip install --no-deps sktime==1.2.0`")
def test_japanese_vowels_loads_its_official_train_and_test_files():
    from autoarch.loaders import official_test

    data = load_dataset("japanese-vowels")
    test = official_test("japanese-vowels")
    assert data.input_kind == "sequence" and (len(data), len(test)) == (270, 370)
    assert data.input_shape == test.input_shape == (29, 13)
    assert len(data.classes) == 9
    lengths = sequence_lengths(np.concatenate([data.X, test.X]))
    assert (lengths.min(), lengths.max()) == (7, 29)


def test_predicting_sequences_needs_neither_torch_optuna_sklearn_nor_pandas(tmp_path, env_without):
    """A device has onnxruntime and numpy: the .ts reader and the padding are numpy only."""
    predictor, _, path = _exported(tmp_path, "lstm")
    seqs, labels = _toy(6, seed=2)
    inputs = _write_ts(tmp_path / "new.ts", seqs, labels)
    env = env_without("torch", "optuna", "sklearn", "pandas")
    proc = subprocess.run([sys.executable, "-m", "autoarch.cli", "predict", str(path), str(inputs)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    predicted = [line.split(",")[0] for line in proc.stdout.strip().splitlines()[1:]]
    assert predicted == predictor.predict_sequences(seqs)[0]
