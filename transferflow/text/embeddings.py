"""Word vectors with gensim: load pretrained files or train Word2Vec on the training texts.

Whatever the origin, the result handed to the models is a small :class:`~gensim.models.KeyedVectors`
restricted to the tokens of the training texts, most frequent first. Its order *is* the model
vocabulary (token id = position + 2), so one file carries both the vectors and the tokeniser's
vocabulary.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferflow.config.settings import EmbeddingConfig
from transferflow.errors import VectorsError
from transferflow.storage.files import local_copy
from transferflow.text.tokens import Vocabulary, count_tokens, tokenize

DEFAULT_VECTOR_SIZE = 100
# Automatic Word2Vec epochs aim at this many token updates: measured on the demo and an MDSD pair,
# 10 epochs over a few hundred thousand tokens left the vectors near useless for sentiment.
AUTO_EPOCH_TOKENS = 5_000_000

# gensim logs every few thousand words at INFO; that is noise in a pipeline's logs.
logging.getLogger("gensim").setLevel(logging.WARNING)


def detect_format(path: Path) -> str:
    """Guess a vectors file's format: ``word2vec-binary`` for ``.bin``, else text with or without
    a ``<count> <dim>`` header line (``word2vec``/fastText ``.vec`` versus ``glove``).

    Args:
        path: the vectors file.

    Returns:
        ``word2vec-binary``, ``word2vec`` or ``glove``.
    """
    if path.suffix.lower() == ".bin":
        return "word2vec-binary"
    with open(path, "rb") as fh:
        first = fh.readline().split()
    if len(first) == 2 and all(p.isdigit() for p in first):
        return "word2vec"
    return "glove"


def _find_bad_line(path: Path, has_header: bool) -> str:
    """Scan a text vectors file for the first line that is not ``word v1 v2 ... vD``."""
    expected: int | None = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n\r ").split(" ")
            if lineno == 1 and has_header:
                expected = int(parts[1]) if len(parts) == 2 and parts[1].isdigit() else None
                continue
            if not line.strip():
                continue
            values = parts[1:]
            if not values:  # e.g. a CSV's header: one "token" with commas, no numbers
                return f"line {lineno} has no numbers after its token {parts[0][:30]!r}"
            if expected is None:
                expected = len(values)
            if len(values) != expected:
                return f"line {lineno} has {len(values)} values, expected {expected}"
            for v in values:
                try:
                    float(v)
                except ValueError:
                    return f"line {lineno} has a non-numeric value {v[:30]!r}"
    return "no malformed line found"


def load_pretrained(path: Path, fmt: str = "auto"):  # -> KeyedVectors
    """Load a pretrained vectors file with gensim.

    Args:
        path: word2vec text/binary, GloVe text (no header) or fastText ``.vec`` file.
        fmt: one of ``auto``, ``word2vec``, ``word2vec-binary``, ``glove``, ``fasttext``.

    Returns:
        gensim ``KeyedVectors``.

    Raises:
        VectorsError: missing file or malformed content, naming the offending line.
    """
    from gensim.models import KeyedVectors

    path = Path(path)
    if not path.is_file():
        raise VectorsError(f"{path}: vectors file not found.")
    if path.stat().st_size == 0:
        raise VectorsError(f"{path}: vectors file is empty.")
    kind = detect_format(path) if fmt == "auto" else fmt
    binary = kind == "word2vec-binary"
    no_header = kind == "glove"
    try:
        kv = KeyedVectors.load_word2vec_format(
            str(path), binary=binary, no_header=no_header, unicode_errors="replace"
        )
    except (ValueError, EOFError, IndexError, UnicodeDecodeError) as exc:
        detail = _find_bad_line(path, has_header=not no_header) if not binary else str(exc)
        raise VectorsError(
            f"{path}: not a valid {kind} vectors file ({detail}). Each line must be a token "
            f"followed by the same number of numbers"
            + ("" if no_header else ", after a '<count> <dimension>' header line")
            + "."
        ) from None
    if len(kv) == 0:
        raise VectorsError(f"{path}: contains no vectors.")
    return kv


def train_word2vec(texts: Iterable[str], cfg: EmbeddingConfig, seed: int):  # -> KeyedVectors
    """Train Word2Vec on tokenised texts.

    Args:
        texts: training texts (never test texts: that would leak them into the features).
        cfg: Word2Vec settings.
        seed: random seed; with ``cfg.workers == 1`` the vectors are bit-for-bit reproducible.

    Returns:
        The trained ``KeyedVectors``.
    """
    from gensim.models import Word2Vec

    sentences = [tokenize(t) for t in texts]
    sentences = [s for s in sentences if s]
    if not sentences:
        raise VectorsError("No tokens in the training texts: cannot train Word2Vec.")
    epochs = cfg.epochs or auto_epochs(sum(len(s) for s in sentences))
    model = Word2Vec(
        sentences=sentences,
        vector_size=cfg.vector_size or DEFAULT_VECTOR_SIZE,
        window=cfg.window,
        min_count=cfg.min_count,
        sg=int(cfg.sg),
        epochs=epochs,
        workers=cfg.workers,
        seed=seed,
    )
    return model.wv


def auto_epochs(n_tokens: int) -> int:
    """Word2Vec epochs for a corpus of ``n_tokens`` tokens: ~5M token updates, within 5..50."""
    return int(min(50, max(5, -(-AUTO_EPOCH_TOKENS // max(n_tokens, 1)))))


@dataclass(frozen=True)
class EmbeddingStats:
    """What the restricted vectors cover."""

    vector_size: int
    vocab_size: int
    token_coverage: float  # share of training-token occurrences that have a vector
    origin: str


STANDARDISE_ROWS = 200_000


def standardisation(kv) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of a vector set (its most frequent 200k rows).

    Raw word2vec vectors share a large common direction (Mu & Viswanath 2018, "all-but-the-top"),
    so averages of them barely differ between texts and a dense network trained on them stalls at
    chance; standardised, the same vectors train in a few epochs, and files of any scale behave
    alike. The statistics come from the whole vector set, not from a data set's vocabulary, so a
    token's standardised vector is the same whatever the target domain is (which lets a cached
    source model be reused when only the target data changes).

    Returns:
        (mean, std) arrays of shape (vector_size,); std has no zeros.
    """
    if len(kv) == 0:
        return np.zeros(kv.vector_size), np.ones(kv.vector_size)
    sample = np.asarray(kv.vectors[:STANDARDISE_ROWS], dtype=np.float64)
    mean = np.nan_to_num(np.nanmean(sample, axis=0))
    std = np.nan_to_num(np.nanstd(sample, axis=0))
    return mean, np.where(std > 0, std, 1.0)


def restrict(kv, texts: Iterable[str], origin: str):  # -> (KeyedVectors, EmbeddingStats)
    """Keep only the vectors of tokens that occur in ``texts``, most frequent first.

    Args:
        kv: full ``KeyedVectors`` (pretrained or trained).
        texts: the training texts that define the model vocabulary.
        origin: a short description for reports (file name or ``word2vec``).

    Returns:
        (restricted, standardised ``KeyedVectors``, its :class:`EmbeddingStats`).
    """
    from gensim.models import KeyedVectors

    counts = count_tokens(texts)
    # Sort by frequency, then alphabetically, so the vocabulary order is deterministic.
    ranked = sorted(counts.items(), key=lambda kv_: (-kv_[1], kv_[0]))
    keep = [tok for tok, _ in ranked if tok in kv.key_to_index]
    total = sum(counts.values())
    covered = sum(counts[t] for t in keep)
    mean, std = standardisation(kv)
    small = KeyedVectors(vector_size=kv.vector_size, count=0, dtype=np.float32)
    if keep:
        rows = (np.asarray(kv[keep], dtype=np.float64) - mean) / std
        small.add_vectors(keep, rows.astype(np.float32))
    stats = EmbeddingStats(
        vector_size=int(kv.vector_size),
        vocab_size=len(keep),
        token_coverage=round(covered / total, 4) if total else 0.0,
        origin=origin,
    )
    return small, stats


def build_embeddings(train_texts: list[str], cfg: EmbeddingConfig, seed: int, kv=None):
    """Load or train vectors and restrict them to the training vocabulary.

    Args:
        train_texts: source + target *training* texts.
        cfg: embedding settings.
        seed: random seed.
        kv: the pretrained vectors already loaded (e.g. from a cached conversion); default: read
            ``cfg.pretrained_path``.

    Returns:
        (restricted ``KeyedVectors``, :class:`EmbeddingStats`).

    Raises:
        VectorsError: malformed vectors, or a vector size different from ``cfg.vector_size``.
    """
    if cfg.pretrained_path is not None:
        if kv is None:
            kv = load_pretrained(local_copy(cfg.pretrained_path), cfg.pretrained_format)
        if cfg.vector_size is not None and kv.vector_size != cfg.vector_size:
            raise VectorsError(
                f"{cfg.pretrained_path}: vectors have {kv.vector_size} dimensions but the "
                f"configuration says embeddings.vector_size = {cfg.vector_size}. Set it to "
                f"{kv.vector_size} or leave it unset."
            )
        origin = Path(cfg.pretrained_path).name
    else:
        kv = train_word2vec(train_texts, cfg, seed)
        origin = "word2vec trained on the training texts"
    return restrict(kv, train_texts, origin)


def save_vectors(kv, path: Path) -> None:
    """Save ``KeyedVectors`` as plain data: one ``.npz`` with the float32 matrix and the tokens
    (gensim's own format is a pickle, which could run code when loaded from a shared store)."""
    from transferflow.storage.files import npz_bytes

    tokens = np.array(list(kv.index_to_key), dtype=str)
    Path(path).write_bytes(
        npz_bytes(vectors=np.asarray(kv.vectors, dtype=np.float32), tokens=tokens)
    )


def load_vectors(path: Path):  # -> KeyedVectors
    """Load vectors written by :func:`save_vectors` (``allow_pickle=False``)."""
    from gensim.models import KeyedVectors

    with np.load(path, allow_pickle=False) as npz:
        vectors, tokens = npz["vectors"], npz["tokens"].tolist()
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    if tokens:
        kv.add_vectors(tokens, vectors)
    return kv


def vocabulary_of(kv) -> Vocabulary:
    """The model vocabulary defined by restricted vectors (token id = position + 2)."""
    return Vocabulary(list(kv.index_to_key))


def embedding_matrix(kv, tokens: list[str] | None = None) -> np.ndarray:
    """Matrix for a Keras ``Embedding``: rows 0 (padding) and 1 (unknown) are zeros, row i + 2 is
    the (already standardised) vector of ``tokens[i]``.

    Args:
        kv: vectors from :func:`restrict`.
        tokens: the model's vocabulary (default: every token of ``kv``, in its order).

    Returns:
        A float32 array of shape (len(tokens) + 2, vector_size).
    """
    tokens = list(kv.index_to_key) if tokens is None else tokens
    matrix = np.zeros((len(tokens) + 2, kv.vector_size), dtype=np.float32)
    if tokens:
        matrix[2:] = kv[tokens]
    return matrix
