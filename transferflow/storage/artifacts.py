"""Small, serialisable references to artefacts on disk, verified by content hash.

Stages hand each other these references (a path and a SHA-256), never pickled models or frames, so
Prefect results stay small and a stale or damaged file is caught before it is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from transferflow.errors import TransferflowError
from transferflow.storage.files import atomic_path, sha256_file


class ArtifactError(TransferflowError):
    """An artefact is missing or its content does not match its recorded hash."""


class ArtifactRef(BaseModel):
    """A file and the SHA-256 of its content."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str

    @classmethod
    def of(cls, path: str | Path) -> ArtifactRef:
        """Reference an existing file, hashing its content now."""
        return cls(path=str(path), sha256=sha256_file(path))

    def verified_path(self) -> Path:
        """The file's path after checking it exists and still has the recorded content.

        Raises:
            ArtifactError: the file is missing or was changed since it was written.
        """
        path = Path(self.path)
        if not path.is_file():
            raise ArtifactError(f"Artefact {path} is missing.")
        actual = sha256_file(path)
        if actual != self.sha256:
            raise ArtifactError(
                f"Artefact {path} is corrupt or was modified: sha256 {actual[:12]}…, "
                f"expected {self.sha256[:12]}…."
            )
        return path


def write_artifact(path: str | Path, writer: Callable[[Path], Any]) -> ArtifactRef:
    """Write a file atomically with ``writer(tmp_path)`` and return its reference.

    Args:
        path: final location.
        writer: function that writes the complete file at the path it is given.

    Returns:
        The reference to the final file.
    """
    with atomic_path(path) as tmp:
        writer(tmp)
        digest = sha256_file(tmp)
    return ArtifactRef(path=str(path), sha256=digest)


class DatasetRef(BaseModel):
    """One domain's prepared data: labelled train (and target validation) rows, test rows, and the
    pool of all training texts read from the files."""

    model_config = ConfigDict(frozen=True)

    name: str
    parts: dict[str, ArtifactRef]  # pool, train, test -> Parquet files
    counts: dict[str, int]  # part -> rows
    labels: list[str]  # sorted training labels: the class order of every model of this domain
    label_counts: dict[str, dict[str, int]]  # part -> label -> rows
    test_from_split: bool
    label_kind: str
    input_sha256: dict[str, str]  # every input file -> its content hash
    dropped_blank_text: dict[str, int] = {}  # part -> rows dropped after the raw-input gate
    dropped_repeats: dict[str, int] = {}  # part -> exact (text, label) repeats dropped, one kept
    dropped_test_overlap: dict[str, int] = {}  # part -> training rows whose text is a test text
    # Labelled part (train, test) -> unlabelled texts left out because they are that part's
    # labelled texts: a user labels texts taken from the unlabelled file (the cold start).
    dropped_labelled: dict[str, int] = {}
    # Data rows in the training files when the pool is a sample of them (data.source_max_rows).
    rows_in_files: int | None = None
    # No labelled file: a target given by its unlabelled texts only (a cold start). Its training
    # part is empty, and so is its test part unless test files were given.
    unlabelled_only: bool = False

    @property
    def train(self) -> ArtifactRef:
        """The labelled training rows."""
        return self.parts["train"]

    @property
    def test(self) -> ArtifactRef:
        """The test rows."""
        return self.parts["test"]

    @property
    def pool(self) -> ArtifactRef:
        """All training rows read from the files, before any cap (texts usable without labels)."""
        return self.parts["pool"]

    @property
    def unlabeled(self) -> ArtifactRef | None:
        """The texts without labels (``data.target.unlabeled_paths`` and the training rows beyond
        the label cap), if any."""
        return self.parts.get("unlabeled")

    @property
    def text_parts(self) -> list[ArtifactRef]:
        """Every part whose texts may be learnt from without labels: the pool and the
        unlabelled texts (never the test part)."""
        return [self.pool] + ([self.unlabeled] if self.unlabeled is not None else [])

    @property
    def domain_parts(self) -> list[ArtifactRef]:
        """The parts whose texts stand for the domain (domain shift, word-vector coverage): the
        pool, or for a target of unlabelled texts alone (empty pool) those texts."""
        return self.text_parts if self.unlabelled_only else [self.pool]

    @property
    def n_train(self) -> int:
        """Labelled training rows."""
        return self.counts["train"]

    @property
    def n_test(self) -> int:
        """Test rows."""
        return self.counts["test"]


class EmbeddingsRef(BaseModel):
    """Word vectors restricted to the training vocabulary (their order is the vocabulary)."""

    model_config = ConfigDict(frozen=True)

    vectors: ArtifactRef
    vector_size: int
    vocab_size: int
    token_coverage: float
    origin: str


class ModelRef(BaseModel):
    """A trained candidate model: ``model.keras`` and its plain-data files, each by hash."""

    model_config = ConfigDict(frozen=True)

    role: str  # source | transfer | target_only | pooled_lr
    kind: str  # keras
    model: ArtifactRef  # the .keras file
    files: dict[str, ArtifactRef] = {}  # ngrams.json, idf.npz, vocab.json, model.json, oof.npz
    labels: list[str]
    architecture: str
    summary: dict[str, Any] = {}
