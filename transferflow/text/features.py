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

from transferflow.storage.files import npz_bytes
from transferflow.text.tokens import OOV_ID, PAD_ID, Tokens, Vocabulary, tokenize_many

# Narrowest padded width of a group (n-grams or tokens); wider ones are 4x the previous. Few widths
# mean few XLA compilations per model (each costs ~0.3 s); the padding costs less than that.
MIN_WIDTH = 64
MIN_TOKEN_WIDTH = 32
# Up to this many texts are one group, padded to the widest: every group shape compiles a predict
# program per model (~0.15 s each), and a cold books -> kitchen run compiled 74 of them, mostly
# for a few hundred texts split into six or so groups, where padding costs microseconds. Rows
# whose width would make the group hold over ONE_GROUP_CELLS n-gram slots (32 MB of ids and
# values) keep groups of their own: one very long text must not pad thousands of short ones.
ONE_GROUP_ROWS = 4096
ONE_GROUP_CELLS = 1 << 22


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


def _ladder(n, low: int, step: int) -> np.ndarray:
    """Each of ``n`` rounded up to the ladder ``low * step**k`` (k = 0, 1, ...)."""
    n = np.maximum(np.asarray(n, dtype=np.int64), 1)
    k = np.ceil(np.log(np.maximum(n / low, 1)) / np.log(step) - 1e-9).astype(np.int64)
    out = low * step ** np.maximum(k, 0)
    return np.where(out < n, out * step, out)  # guard against log rounding


def _one_group_width(widths: np.ndarray) -> int | None:
    """The width of a small input's shared group: the widest ladder width ``w`` for which (rows
    up to ``w``) x ``w`` stays within ``ONE_GROUP_CELLS`` (``None``: no such width)."""
    fits = [int(w) for w in np.unique(widths) if (widths <= w).sum() * int(w) <= ONE_GROUP_CELLS]
    return max(fits, default=None)


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
        self._lookup: _Tables | None = None

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
        vec.fit(tokenize_many(texts).lists())
        ngrams = vec.get_feature_names_out().tolist()
        return cls(ngrams, vec.idf_, ngram_range)

    @property
    def n_features(self) -> int:
        """Number of n-grams (the wide layer has one more row, for padding)."""
        return len(self.ngrams)

    def _tables(self) -> _Tables:
        if self._lookup is None:
            self._lookup = _Tables.build(self.ngrams, self.ngram_range)
        return self._lookup

    def transform(self, texts: list[str]):  # -> scipy.sparse.csr_matrix
        """TF-IDF rows (CSR, unit length) of ``texts``."""
        return self.transform_tokens(tokenize_many(texts))

    def transform_tokens(self, tokens: Tokens, ids: np.ndarray | None = None):
        """TF-IDF rows (``scipy.sparse.csr_matrix``) of tokenised texts (see
        :func:`tokenize_many`); ``ids``: each token's id in this vocabulary's word table, when
        the caller already looked them up (:class:`FeatureEncoder` does, for both of its parts).

        Vectorised over the whole batch: tokens become integer ids in one dictionary pass, an
        n-gram is a base-``V`` number of its token ids, looked up in a hash index of the
        vocabulary's keys, and repeated n-grams of a row are counted with one ``np.unique``. The
        result equals scikit-learn's ``TfidfVectorizer(sublinear_tf=True)`` with this vocabulary
        and IDF (tested), at a fraction of the cost: no n-gram strings are built.
        """
        import scipy.sparse as sp

        tables = self._tables()
        n = tokens.n_rows
        if ids is None:
            ids = tokens.ids(tables.token_ids, 0)
        row, pos = tokens.row, tokens.pos
        room = tokens.lengths[row] - pos  # tokens from here to the end of the row
        found_rows, found = [], []
        for k in range(self.ngram_range[0], self.ngram_range[1] + 1):
            keys, feats = tables.keys[k], tables.features[k]
            at = np.flatnonzero(room >= k)
            key = ids[at].copy()
            known = key > 0
            for j in range(1, k):
                nxt = ids[at + j]
                known &= nxt > 0
                key = key * tables.base + nxt
            at, key = at[known], key[known]
            hit = keys.get_indexer(key)  # hash lookup: ~6x faster than searchsorted here
            ok = hit >= 0
            found_rows.append(row[at[ok]])
            found.append(feats[hit[ok]])
        n_feat = self.n_features
        cells = np.concatenate(found_rows).astype(np.int64) * n_feat + np.concatenate(found)
        cells, counts = np.unique(cells, return_counts=True)
        r, c = np.divmod(cells, n_feat)
        vals = (1.0 + np.log(counts)) * self.idf[c]
        norms = np.sqrt(np.bincount(r, weights=vals * vals, minlength=n))
        vals /= norms[r]
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
        return sp.csr_matrix(
            (vals.astype(np.float32), c.astype(np.int32), indptr), shape=(n, n_feat)
        )

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


@dataclass
class _Tables:
    """Integer lookup of a vocabulary: token ids (1..V, 0 unknown) and, per n, the sorted
    base-``V+1`` keys of the n-grams with their feature ids."""

    token_ids: dict[str, int]
    base: int
    keys: dict  # n -> pandas.Index of int64 keys
    features: dict[int, np.ndarray]

    @classmethod
    def build(cls, ngrams: list[str], ngram_range: tuple[int, int]) -> _Tables:
        split = [g.split(" ") for g in ngrams]
        token_ids: dict[str, int] = {}
        for parts in split:
            for p in parts:
                token_ids.setdefault(p, len(token_ids) + 1)
        base = len(token_ids) + 1
        if base ** ngram_range[1] >= 2**63:
            raise ValueError(f"{base - 1} distinct words are too many for {ngram_range[1]}-grams")
        keys: dict[int, list[int]] = {n: [] for n in range(ngram_range[0], ngram_range[1] + 1)}
        feats: dict[int, list[int]] = {n: [] for n in keys}
        for f, parts in enumerate(split):
            key = 0
            for p in parts:
                key = key * base + token_ids[p]
            keys[len(parts)].append(key)
            feats[len(parts)].append(f)
        import pandas as pd

        return cls(
            token_ids,
            base,
            {n: pd.Index(np.asarray(keys[n], np.int64)) for n in keys},
            {n: np.asarray(feats[n], np.int64) for n in keys},
        )


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
        self._merged: tuple[dict[str, int], np.ndarray, np.ndarray] | None = None

    def _both_ids(self, tokens: Tokens) -> tuple[np.ndarray, np.ndarray]:
        """Each token's id in the n-gram word table and in the word-vector vocabulary, from one
        dictionary pass over the tokens (two passes cost ~10 % of featurising)."""
        if self._merged is None:
            table, vocab = self.featurizer._tables().token_ids, self.vocab.id_table
            keys = list(dict.fromkeys([*table, *vocab]))
            ngram = np.zeros(len(keys) + 1, np.int64)  # index 0: a token neither part knows
            word = np.full(len(keys) + 1, OOV_ID, np.int64)
            ngram[1:] = [table.get(t, 0) for t in keys]
            word[1:] = [vocab.get(t, OOV_ID) for t in keys]
            self._merged = ({t: i for i, t in enumerate(keys, 1)}, ngram, word)
        index, ngram, word = self._merged
        at = tokens.ids(index, 0)
        return ngram[at], word[at]

    def encode(self, texts: list[str], batch_size: int | None = None) -> list[Batch]:
        """Group ``texts`` by padded width and pad each group (up to ``ONE_GROUP_ROWS`` texts:
        one group, but for rows too wide to pad the others to).

        Args:
            texts: the texts (non-strings count as empty).
            batch_size: with a value, each group's row count is padded to whole batches plus a
                power-of-two remainder (scoring: few shapes); without, groups keep their rows.

        Returns:
            The groups, narrowest first; together their ``rows`` cover every text once.
        """
        tokens = tokenize_many(texts)  # once, for both parts
        ngram_ids, word_ids = self._both_ids(tokens)
        csr = self.featurizer.transform_tokens(tokens, ngram_ids)
        # Group key: n-gram width (x4 ladder) and token width (x2 ladder, up to max_len): the
        # word-vector gather is the costliest step of predicting, so token padding is kept tight.
        n_tokens = np.minimum(np.maximum(tokens.lengths, 1), self.max_len)
        widths = _ladder(np.diff(csr.indptr), MIN_WIDTH, 4)
        token_widths = _ladder(n_tokens, MIN_TOKEN_WIDTH, 2)
        limit = _one_group_width(widths) if len(widths) <= ONE_GROUP_ROWS else None
        if limit is not None:
            merged = widths <= limit
            widths = np.where(merged, limit, widths)
            token_widths = np.where(merged, token_widths[merged].max(), token_widths)
        groups = widths * (1 << 32) + token_widths
        token_ids = self._token_ids(tokens, word_ids)
        out = []
        for g in np.unique(groups):
            w = int(g >> 32)
            rows = np.flatnonzero(groups == g)
            n = len(rows) if batch_size is None else padded_rows(len(rows), batch_size)
            sub = csr[rows]
            ids = np.zeros((n, w), dtype=np.int32)
            vals = np.zeros((n, w), dtype=np.float32)
            lens = np.diff(sub.indptr)
            r = np.repeat(np.arange(len(rows)), lens)
            pos = np.arange(sub.nnz) - np.repeat(sub.indptr[:-1], lens)
            ids[r, pos] = sub.indices + 1
            vals[r, pos] = sub.data
            out.append(Batch(rows, ids, vals, token_ids(rows, n)))
        return out

    def _token_ids(self, tokens: Tokens, ids: np.ndarray):
        """A function (rows, padded row count) -> padded token-id matrix of those rows: the
        first ``max_len`` tokens of each, ``OOV_ID`` alone for a text without tokens; ``ids``:
        each token's word-vector id."""
        keep = tokens.pos < self.max_len
        row, pos, ids = tokens.row[keep], tokens.pos[keep], ids[keep]
        lengths = np.minimum(tokens.lengths, self.max_len)
        empty = np.flatnonzero(lengths == 0)  # no tokens: one unknown-word id, never all padding
        row = np.concatenate([row, empty])
        pos = np.concatenate([pos, np.zeros(len(empty), np.int64)])
        ids = np.concatenate([ids, np.full(len(empty), OOV_ID, np.int64)])
        lengths = np.maximum(lengths, 1)

        def matrix(rows: np.ndarray, n_rows: int) -> np.ndarray:
            at = np.full(tokens.n_rows, -1, np.int64)
            at[rows] = np.arange(len(rows))
            t_width = int(_ladder(lengths[rows].max(initial=1), MIN_TOKEN_WIDTH, 2))
            out = np.full((n_rows, t_width), PAD_ID, dtype=np.int32)
            sel = at[row] >= 0
            out[at[row[sel]], pos[sel]] = ids[sel]
            return out

        return matrix


__all__ = ["Batch", "FeatureEncoder", "NgramFeaturizer", "OOV_ID", "padded_rows"]
