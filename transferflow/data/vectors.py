"""The word vectors as a stage: a pretrained file parsed once into native form, and the vectors
built from a run's training texts (Word2Vec, or the pretrained ones restricted to them). Each writes
its files and returns references with content hashes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from transferflow.config.settings import EmbeddingConfig
from transferflow.data.datasets import read_frame
from transferflow.data.tables import TEXT
from transferflow.storage.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, write_artifact
from transferflow.storage.files import local_copy


class ParsedVectors(BaseModel):
    """A pretrained vectors file in native form: a float32 ``.npy`` matrix and a JSON token list."""

    model_config = ConfigDict(frozen=True)

    vectors: ArtifactRef
    tokens: ArtifactRef


def vectors_file(path: Path | str) -> Path:
    """The local copy of a vectors file (fsspec URLs are downloaded).

    Raises:
        VectorsError: the file does not exist.
    """
    from transferflow.errors import VectorsError

    try:
        local = local_copy(path)  # a remote (fsspec URL) file is read from a local copy
    except FileNotFoundError as exc:
        raise VectorsError(str(exc)) from None
    if not local.is_file():
        raise VectorsError(f"{path}: vectors file not found.")
    return local


def parse_vectors(path: Path | str, fmt: str, out_dir: Path) -> ParsedVectors:
    """Parse a pretrained vectors file once into native form (the task layer caches it by the
    file's content hash: parsing a 400k-word text file takes ~18 s, loading the ``.npy`` well under
    a second).

    Args:
        path: the vectors file (local path or fsspec URL).
        fmt: its format (see :func:`transferflow.text.embeddings.load_pretrained`).
        out_dir: folder for the two files.

    Returns:
        References to the matrix and the token list.
    """
    from transferflow.text.embeddings import load_pretrained

    kv = load_pretrained(vectors_file(path), fmt)
    matrix = write_artifact(
        out_dir / "vectors.npy", lambda tmp: np.save(tmp, np.asarray(kv.vectors, dtype=np.float32))
    )
    tokens = write_artifact(
        out_dir / "tokens.json",
        lambda tmp: tmp.write_text(json.dumps(list(kv.index_to_key)), encoding="utf-8"),
    )
    return ParsedVectors(vectors=matrix, tokens=tokens)


def _load_parsed(parsed: ParsedVectors):  # -> KeyedVectors
    from gensim.models import KeyedVectors

    with open(parsed.vectors.verified_path(), "rb") as fh:
        vectors = np.load(fh, allow_pickle=False)
    tokens = json.loads(parsed.tokens.verified_path().read_text(encoding="utf-8"))
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(tokens, vectors)
    return kv


def make_embeddings(
    source: DatasetRef,
    target: DatasetRef,
    cfg: EmbeddingConfig,
    *,
    seed: int,
    out_dir: Path,
    parsed: ParsedVectors | None = None,
) -> EmbeddingsRef:
    """Build word vectors from all source and target *training* texts (never test texts).

    The target's whole training pool and its unlabelled texts are used (the rows beyond
    ``target_train_size`` among them): texts without labels are the in-domain data a few-label
    user has anyway.

    Args:
        source: prepared source data.
        target: prepared target data.
        cfg: embedding settings.
        seed: random seed.
        out_dir: folder for the vectors file.
        parsed: the pretrained file already parsed by :func:`parse_vectors` (else it is read
            from ``cfg.pretrained_path`` here).

    Returns:
        A reference to the restricted vectors.
    """
    from transferflow.text.embeddings import build_embeddings, save_vectors

    texts = [t for ref in [source.pool, *target.text_parts] for t in read_frame(ref)[TEXT].dropna()]
    pretrained = _load_parsed(parsed) if parsed is not None else None
    kv, stats = build_embeddings(texts, cfg, seed, kv=pretrained)
    ref = write_artifact(out_dir / "vectors.npz", lambda tmp: save_vectors(kv, tmp))
    return EmbeddingsRef(
        vectors=ref,
        vector_size=stats.vector_size,
        vocab_size=stats.vocab_size,
        token_coverage=stats.token_coverage,
        origin=stats.origin,
    )
