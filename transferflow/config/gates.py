"""The settings of the data-quality gates (``gates.*``), one section per gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from transferflow.config.section import Section as _Section

if TYPE_CHECKING:
    from transferflow.config.settings import CacheConfig

GateMode = Literal["fail", "warn"]


class RawInputGate(_Section):
    """Is each domain's train/test data usable at all?"""

    mode: GateMode = Field(default="fail", description="'fail' stops the run; 'warn' logs.")
    min_rows: int = Field(default=10, ge=1, description="Fewest training rows per domain.")
    min_class_count: int = Field(
        default=5, ge=1, description="Fewest training rows any class may have."
    )
    min_minority_share: float = Field(
        default=0.02, ge=0.0, le=0.5, description="Smallest share of training rows of any class."
    )
    max_blank_text_share: float = Field(
        default=0.05,
        ge=0.0,
        lt=1.0,
        description="Share of rows with a missing or blank text that is tolerated; such rows are "
        "dropped after the gate and counted in the report (real review data has a few).",
    )
    max_duplicate_share: float = Field(
        default=0.3,
        ge=0.0,
        lt=1.0,
        description="Share of repeated (text, label) rows tolerated (repeats are then dropped, "
        "see data.drop_repeats); more suggests broken data, such as a file joined to itself.",
    )
    min_text_chars: int = Field(default=1, ge=0, description="Shortest text allowed (characters).")
    max_text_chars: int = Field(
        default=100_000, ge=1, description="Longest text allowed (characters)."
    )
    allow_label_type_mismatch: bool = Field(
        default=False,
        description="Accept numeric labels in one domain and named labels in the other "
        "(usually a mistake: 1 vs 'positive').",
    )


class LeakageGate(_Section):
    """No target test text may be trained on (target training data or the Word2Vec corpus)."""

    mode: GateMode = Field(default="fail", description="'fail' stops the run; 'warn' logs.")
    max_overlap_share: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="Share of target test rows whose text may also occur in training texts; "
        "those training rows are then removed (the test set stays whole). Real data has such "
        "repeats (MDSD: up to 4 % of a test set, reviews posted in two categories); a larger "
        "share suggests a broken split, such as a test file that copies training rows.",
    )


class EmbeddingsGate(_Section):
    """Are the word vectors sound and do they cover the target's words?"""

    mode: GateMode = Field(default="fail", description="'fail' stops the run; 'warn' logs.")
    min_target_coverage: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Share of target training-token occurrences that must have a vector.",
    )


class DomainShiftGate(_Section):
    """How far apart are source and target? Reported every run; gated only on the thresholds."""

    mode: GateMode = Field(default="warn", description="'fail' stops the run; 'warn' logs.")
    min_vocab_overlap: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Share of target token occurrences whose token also occurs in the source.",
    )
    max_label_distance: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Total-variation distance between source and target label shares.",
    )
    max_proxy_a_distance: float = Field(
        default=1.9,
        ge=0.0,
        le=2.0,
        description="Proxy A-distance 2(1-2·err) of a TF-IDF classifier telling source from target "
        "texts (0 = indistinguishable, 2 = fully separable).",
    )


class SourceModelGate(_Section):
    """Is the source model worth transferring?"""

    mode: GateMode = Field(default="fail", description="'fail' stops the run; 'warn' logs.")
    min_accuracy: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Accuracy needed on held-out source data; unset = majority-class share + 0.05.",
    )


class PromotionGate(_Section):
    """Is transfer at least as good as every baseline, on out-of-fold predictions of the target
    training labels (every label is used; none is held out)?"""

    mode: GateMode = Field(
        default="warn",
        description="'warn': when a baseline is significantly better, it is chosen and the run "
        "completes; 'fail': the run fails instead.",
    )
    significance: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="A baseline replaces transfer only when it has more correct out-of-fold "
        "predictions and an exact McNemar test gives p below this.",
    )


class GatesConfig(_Section):
    """Data-quality gates between the steps, each with its mode and thresholds."""

    raw_input: RawInputGate = RawInputGate()
    leakage: LeakageGate = LeakageGate()
    embeddings: EmbeddingsGate = EmbeddingsGate()
    domain_shift: DomainShiftGate = DomainShiftGate()
    source_model: SourceModelGate = SourceModelGate()
    promotion: PromotionGate = PromotionGate()
    data_docs: bool = Field(
        default=False,
        description="Render Great Expectations Data Docs (HTML) into the run folder even when "
        "every gate passes (a run stopped by a gate always gets them). Off, a gate's verdict on "
        "the same data, settings and checks is reused from the cache instead of re-checked.",
    )

    def verdicts(self, cache: CacheConfig) -> CacheConfig | None:
        """Where gate verdicts are reused from: the cache, unless Data Docs are wanted (then
        every check runs, so the docs show them all)."""
        return None if self.data_docs else cache
