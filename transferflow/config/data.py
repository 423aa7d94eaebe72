"""The data sections of the run configuration: where each domain's files are and how they are
read (:class:`DatasetConfig`), and how the source and target are sampled and split
(:class:`DataConfig`). Re-exported by :mod:`transferflow.config.settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator, model_validator

from transferflow.config.section import Section as _Section
from transferflow.storage.files import as_local_path, is_url

DEMO_DIR = Path(__file__).parents[1] / "demo_data"


def _location(value: str | Path) -> str | Path:
    # A URL stays a string (Path("s3://b/k") would collapse the "//"); anything else is a Path.
    if not is_url(value):
        return as_local_path(value)
    text = str(value)
    scheme = text.split("://", 1)[0]
    if not scheme.replace("+", "").replace("-", "").isalnum():
        raise ValueError(f"'{text}' is neither a path nor a URL (scheme '{scheme}')")
    return text


# A local path or an fsspec URL (s3://bucket/key, gs://..., memory://...).
Location = Annotated[str | Path, AfterValidator(_location)]


class DatasetConfig(_Section):
    """Where one domain's labelled data comes from and how to read it."""

    name: str = Field(description="Short name of the domain, used in reports (e.g. 'books').")
    paths: list[Location] = Field(
        description="Training data files (CSV, TSV, Parquet or JSONL; local paths or fsspec URLs "
        "such as s3://bucket/key); several are concatenated. The target's may be empty when it "
        "has unlabelled texts (a cold start: no labels yet).",
    )
    test_paths: list[Location] = Field(
        default_factory=list,
        description="Optional test data files; when empty a seeded stratified split is made.",
    )
    text_columns: list[str] = Field(
        default=["text"],
        min_length=1,
        description="Column(s) holding the text; several are joined with a space (title, text).",
    )
    label_column: str = Field(default="label", description="Column holding the class label.")
    unlabeled_paths: list[Location] = Field(
        default_factory=list,
        description="Target only: files of unlabelled texts of the domain (same formats and text "
        "columns; any label column is ignored). They train the word vectors, the n-gram "
        "vocabulary and IDF, and the transfer model's self-training; never a target test text.",
    )

    @field_validator("paths", "test_paths", "unlabeled_paths", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value: Any) -> Any:
        if isinstance(value, (str, Path)):
            return [value]
        return value

    @model_validator(mode="after")
    def _label_is_not_text(self) -> DatasetConfig:
        if self.label_column in self.text_columns:
            raise ValueError(
                f"the label column '{self.label_column}' is also a text column; the model would "
                "read the answer. Name the text column(s) with --text-column."
            )
        return self


class DataConfig(_Section):
    """Source and target data sets and how they are split."""

    source: DatasetConfig
    target: DatasetConfig
    test_size: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="Test share when a domain has no test file."
    )
    target_train_size: int | None = Field(
        default=None,
        ge=0,
        description="Cap on target training labels (balanced by class) to study few-label regimes; "
        "0 uses none (zero labels: the transfer model learns from the source and the unlabelled "
        "target texts; the target file then only gives the test set). The training texts beyond "
        "the cap still serve without labels (see unlabeled_beyond_cap).",
    )
    unlabeled_beyond_cap: bool = Field(
        default=True,
        description="The target training rows beyond target_train_size serve as unlabelled "
        "texts (their labels dropped), like the files of data.target.unlabeled_paths. False: "
        "they are not used at all, as if the file held only the labelled rows.",
    )
    unlabeled_max_rows: int = Field(
        default=20_000,
        ge=100,
        description="The most unlabelled target texts a run uses: larger files are read in chunks "
        "and a seeded uniform sample is kept (self-training refits on a share of them).",
    )
    source_max_rows: int | None = Field(
        default=50_000,
        ge=100,
        description="The most source rows a run learns from: larger source files are read in "
        "chunks and a seeded uniform sample of this many rows is kept (memory and time stay "
        "bounded whatever the file's size; accuracy against sample size in docs/benchmarks.md). "
        "Unset (null) = every row.",
    )

    @model_validator(mode="after")
    def _unlabeled_is_for_the_target(self) -> DataConfig:
        if self.source.unlabeled_paths:
            raise ValueError(
                "data.source.unlabeled_paths: unlabelled texts are read for the target domain "
                "only; give them as data.target.unlabeled_paths (--target-unlabeled)."
            )
        if not self.source.paths:
            raise ValueError("data.source.paths: give at least one labelled source file.")
        if not self.target.paths:
            # A cold start: unlabelled target texts and no labelled target file, so zero labels
            # (the domain's training part is empty whatever the budget says).
            if not self.target.unlabeled_paths:
                raise ValueError(
                    "data.target.paths is empty and there are no unlabelled target texts: give "
                    "a labelled target file (--target) or unlabelled ones (--target-unlabeled)."
                )
            if self.target_train_size not in (None, 0):
                raise ValueError(
                    f"data.target_train_size is {self.target_train_size} but there is no "
                    "labelled target file (data.target.paths) to take labels from: give one "
                    "with --target, or leave the size unset."
                )
        return self

    drop_repeats: bool = Field(
        default=True,
        description="Drop exact repeats (the same text with the same label) from training rows, "
        "one kept, after the raw-input gate; counted in the log and the report. Real review "
        "data repeats reviews posted for several products. Test rows are never dropped.",
    )
