"""Model inputs from texts: the n-gram bag of the wide part and the token ids of the deep part.

A fitted :class:`NgramFeaturizer` is plain data (the n-gram list as JSON, the IDF weights as NPZ),
saved beside the ``.keras`` file; nothing executable is stored. Texts become fixed-shape arrays:
rows are grouped by how many distinct n-grams they have, and each group is padded to a width
from a short ladder (powers of two) and a row count from another, so XLA compiles each shape
once and reuses it from batch to batch and from run to run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferflow.files import npz_bytes
from transferflow.text import OOV_ID, PAD_ID, Vocabulary, tokenize

# Narrowest padded width of a group (n-grams or tokens); wider ones are 4x the previous. Few widths
# mean few XLA compilations per model (each costs ~0.3 s); the padding costs less than that.
MIN_WIDTH = 64


@dataclass
class Batch:
    """One fixed-shape group of rows: the model's three inputs and which rows they are.

    ``rows`` indexes the texts given to :meth:`FeatureEncoder.encode`; padded rows are not in it
    (the arrays have ``len(rows)`` real rows first, then all-padding rows).
    """

    rows: np.ndarray
    ngram_ids: np.ndarray  # int32 (r, L); 0 is padding
    ngram_values: np.ndarray  # float32 (r, L); 0 on padding
    token_ids: np.ndarray  # int32 (r, T); 0 is padding

    def inputs(self) -> dict[str, np.ndarray]:
        """The Keras model's input dict."""
        return {
            "ngram_ids": self.ngram_ids,
            "ngram_values": self.ngram_values,
            "token_ids": self.token_ids,
        }


def width(n: int) -> int:
    """``n`` rounded up to the ladder of padded widths (64, 256, 1024, ...)."""
    w = MIN_WIDTH
    while w < n:
        w *= 4
    return w


def padded_rows(n: int, batch_size: int) -> int:
    """``n`` rounded up to whole batches plus a power-of-two remainder (at least 32 rows)."""
    full, rest = divmod(int(n), batch_size)
    if rest == 0:
        return int(n)
    return full * batch_size + min(batch_size, max(32, 1 << (rest - 1).bit_length()))


class NgramFeaturizer:
    """TF-IDF over word n-grams (sublinear term frequency, rows scaled to unit length), with a
    vocabulary and IDF weights fitted on unlabeled texts.

    Args:
        ngrams: the n-gram vocabulary (feature id = position + 1; 0 is padding).
        idf: IDF weight of each n-gram.
        ngram_range: smallest and largest n.
    """

    def __init__(self, ngrams: list[str], idf: np.ndarray, ngram_range: tuple[int, int] = (1, 2)):
        self.ngrams = list(ngrams)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
        if len(self.ngrams) != len(self.idf):
            raise ValueError(f"{len(self.ngrams)} n-grams but {len(self.idf)} IDF weights")
        self._vectorizer = None

    @classmethod
    def fit(
        cls, texts: list[str], ngram_range: tuple[int, int] = (1, 2), min_df: int = 2
    ) -> NgramFeaturizer:
        """Learn the vocabulary (n-grams in at least ``min_df`` texts) and IDF weights.

        Args:
            texts: unlabeled texts (training texts of both domains; never test texts).
            ngram_range: smallest and largest n.
            min_df: fewest texts an n-gram must occur in (1 when there are under 50 texts).

        Returns:
            The fitted featurizer.
        """
        vec = _vectorizer(ngram_range, min_df=min_df if len(texts) >= 50 else 1)
        vec.fit([tokenize(t) for t in texts])
        ngrams = vec.get_feature_names_out().tolist()
        return cls(ngrams, vec.idf_, ngram_range)

    @property
    def n_features(self) -> int:
        """Number of n-grams (the wide layer has one more row, for padding)."""
        return len(self.ngrams)

    def _fitted(self):
        if self._vectorizer is None:
            vec = _vectorizer(self.ngram_range, min_df=1)
            vec.vocabulary = {g: i for i, g in enumerate(self.ngrams)}
            vec.fit([[]])  # fixed vocabulary: nothing is learnt here; IDF is set next
            vec.idf_ = self.idf
            self._vectorizer = vec
        return self._vectorizer

    def transform(self, texts: list[str]):  # -> scipy.sparse.csr_matrix
        """TF-IDF rows (CSR, unit length) of ``texts``."""
        return self.transform_tokens([tokenize(t) for t in texts])

    def transform_tokens(self, tokens: list[list[str]]):  # -> scipy.sparse.csr_matrix
        """TF-IDF rows of already tokenised texts (see :func:`transferflow.text.tokenize`)."""
        return self._fitted().transform(tokens)

    def to_bytes(self) -> tuple[bytes, bytes]:
        """(JSON of the n-grams and settings, NPZ of the IDF weights): plain data only."""
        meta = json.dumps(
            {
                "format": "transferflow.ngrams/1",
                "ngram_range": self.ngram_range,
                "ngrams": self.ngrams,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        return meta, npz_bytes(idf=self.idf)

    @classmethod
    def from_files(cls, meta_path: Path, weights_path: Path) -> NgramFeaturizer:
        """Read what :meth:`to_bytes` wrote (``allow_pickle`` stays off)."""
        meta = json.loads(Path(meta_path).read_text(encoding="utf-8"))
        if meta.get("format") != "transferflow.ngrams/1":
            raise ValueError(f"{meta_path}: not a transferflow n-gram vocabulary")
        with np.load(weights_path, allow_pickle=False) as npz:
            idf = npz["idf"]
        return cls(meta["ngrams"], idf, tuple(meta["ngram_range"]))


class _Ngrams:
    """Word n-grams of a token list, as scikit-learn's word analyzer makes them (tokens joined
    by a space); texts are tokenised once and the tokens serve both model parts."""

    def __init__(self, ngram_range: tuple[int, int]) -> None:
        self.low, self.high = ngram_range

    def __call__(self, tokens: list[str]) -> list[str]:
        out = list(tokens) if self.low == 1 else []
        for n in range(max(2, self.low), self.high + 1):
            out.extend(map(" ".join, zip(*(tokens[i:] for i in range(n)), strict=False)))
        return out


def _vectorizer(ngram_range: tuple[int, int], min_df: int):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer=_Ngrams(ngram_range), sublinear_tf=True, min_df=min_df, dtype=np.float32
    )


class FeatureEncoder:
    """Texts -> fixed-shape :class:`Batch` groups for a model: n-gram bag plus token ids.

    Args:
        featurizer: the fitted n-grams.
        vocab: the word-vector vocabulary of the deep part.
        max_len: tokens of a text the deep part reads (the rest is cut).
    """

    def __init__(self, featurizer: NgramFeaturizer, vocab: Vocabulary, max_len: int) -> None:
        self.featurizer = featurizer
        self.vocab = vocab
        self.max_len = int(max_len)

    def encode(self, texts: list[str], batch_size: int | None = None) -> list[Batch]:
        """Group ``texts`` by padded width and pad each group.

        Args:
            texts: the texts (non-strings count as empty).
            batch_size: with a value, each group's row count is padded to whole batches plus a
                power-of-two remainder (scoring: few shapes); without, groups keep their rows.

        Returns:
            The groups, narrowest first; together their ``rows`` cover every text once.
        """
        tokens = [tokenize(t) for t in texts]  # once, for both parts
        csr = self.featurizer.transform_tokens(tokens)
        lengths = np.diff(csr.indptr)
        groups = (
            np.array([width(n) for n in lengths], dtype=np.int64)
            if len(texts)
            else np.zeros(0, dtype=np.int64)
        )
        out = []
        for w in np.unique(groups):
            rows = np.flatnonzero(groups == w)
            n = len(rows) if batch_size is None else padded_rows(len(rows), batch_size)
            sub = csr[rows]
            ids = np.zeros((n, w), dtype=np.int32)
            vals = np.zeros((n, w), dtype=np.float32)
            lens = np.diff(sub.indptr)
            r = np.repeat(np.arange(len(rows)), lens)
            pos = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], lens)
            ids[r, pos] = sub.indices + 1
            vals[r, pos] = sub.data
            out.append(Batch(rows, ids, vals, self._token_ids([tokens[i] for i in rows], n)))
        return out

    def _token_ids(self, tokens: list[list[str]], n_rows: int) -> np.ndarray:
        seqs = [self.vocab.ids_of(t[: self.max_len]) for t in tokens]
        t_width = min(width(max((len(s) for s in seqs), default=1)), width(self.max_len))
        out = np.full((n_rows, t_width), PAD_ID, dtype=np.int32)
        for i, seq in enumerate(seqs):
            out[i, : len(seq)] = seq
        return out


__all__ = ["Batch", "FeatureEncoder", "NgramFeaturizer", "OOV_ID", "padded_rows", "width"]
