"""The one typed configuration of a transferflow run.

Every way of running transferflow (the CLI, a YAML config file, ``prefect.yaml`` deployment
parameters, a direct Python call) builds a :class:`RunConfig`. Each pipeline stage receives only its
own section of it. The data, gates' and serving sections are in :mod:`transferflow.config.data`,
:mod:`transferflow.config.gates` and :mod:`transferflow.config.serving` (re-exported here).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from transferflow.config.data import DEMO_DIR as DEMO_DIR
from transferflow.config.data import DataConfig, Location
from transferflow.config.data import DatasetConfig as DatasetConfig
from transferflow.config.gates import DomainShiftGate as DomainShiftGate
from transferflow.config.gates import EmbeddingsGate as EmbeddingsGate
from transferflow.config.gates import GatesConfig
from transferflow.config.gates import LeakageGate as LeakageGate
from transferflow.config.gates import PromotionGate as PromotionGate
from transferflow.config.gates import RawInputGate as RawInputGate
from transferflow.config.gates import SourceModelGate as SourceModelGate
from transferflow.config.section import Section as _Section
from transferflow.config.section import validation_lines
from transferflow.config.serving import RegistryConfig as RegistryConfig
from transferflow.config.serving import SuggestConfig as SuggestConfig
from transferflow.errors import ConfigError
from transferflow.storage.paths import check_name

MAX_SEED = 2**32 - 1


class EmbeddingConfig(_Section):
    """Word vectors: pretrained (loaded with gensim) or Word2Vec trained on the training texts."""

    pretrained_path: Location | None = Field(
        default=None,
        description="Pretrained vectors file (path or fsspec URL); when unset Word2Vec is trained.",
    )
    pretrained_format: Literal["auto", "word2vec", "word2vec-binary", "glove", "fasttext"] = Field(
        default="auto",
        description="Format of the vectors file; 'auto' decides from the extension and header.",
    )
    vector_size: int | None = Field(
        default=None,
        ge=2,
        le=1000,
        description="Vector dimension. Word2Vec: default 100. Pretrained: must match the file "
        "when set (unset = take the file's).",
    )
    window: int = Field(default=5, ge=1, le=50, description="Word2Vec context window.")
    min_count: int = Field(
        default=2, ge=1, le=1000, description="Word2Vec minimum token frequency."
    )
    epochs: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Word2Vec epochs; unset = enough passes for ~5M token updates (5 to 50), "
        "because small corpora need many epochs to give useful vectors.",
    )
    sg: bool = Field(
        default=True, description="Skip-gram (better on small corpora) instead of CBOW."
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Word2Vec threads. 1 makes training bit-for-bit reproducible; more is faster.",
    )


class ModelConfig(_Section):
    """The ``wide-deep`` Keras network every candidate is (see README "Models")."""

    architecture: Literal["wide-deep"] = Field(
        default="wide-deep",
        description="'wide-deep': a wide part (linear weights over TF-IDF word n-grams) beside a "
        "deep part (the unit-length mean of the gensim word vectors) and a softmax head, several "
        "weight sets averaged in one Keras network; weights fitted by full-batch L-BFGS.",
    )
    views: list[Literal["wide", "ngrams"]] = Field(
        default=["wide", "ngrams"],
        min_length=1,
        description="Members per strategy: 'wide' reads n-grams and word vectors, 'ngrams' the "
        "n-grams alone; their probabilities are averaged.",
    )
    ngram_max: int = Field(default=2, ge=1, le=3, description="Longest word n-gram (from 1).")
    min_df: int = Field(
        default=2,
        ge=1,
        le=1000,
        description="Fewest training texts an n-gram must occur in (1 under 50 texts).",
    )
    max_len: int = Field(
        default=256,
        ge=4,
        le=4096,
        description="Tokens per text the word-vector mean reads (longer are cut).",
    )
    cv_folds: int = Field(
        default=3,
        ge=2,
        le=20,
        description="Folds of the cross-validation that chooses C and yields the out-of-fold "
        "predictions the promotion decision compares (fewer when a class has fewer labels).",
    )
    c_grid: list[float] = Field(
        default=[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
        min_length=1,
        description="Candidate inverse L2 strengths C (larger follows the data more).",
    )

    @field_validator("c_grid")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(c <= 0 for c in value):
            raise ValueError("every C must be above 0")
        return sorted(set(value))


class Strategy(StrEnum):
    """How the source model is adapted to the target (``transfer.strategy``)."""

    ENSEMBLE = "ensemble"
    FINETUNE = "finetune"
    JOINT = "joint"
    SHARED_PRIVATE = "shared-private"

    def members(self) -> tuple[Strategy, ...]:
        """The strategies fitted as members: all three for ``ensemble``, else itself."""
        if self is Strategy.ENSEMBLE:
            return (Strategy.FINETUNE, Strategy.JOINT, Strategy.SHARED_PRIVATE)
        return (self,)


class TransferConfig(_Section):
    """How the source model is adapted to the target."""

    strategy: Strategy = Field(
        default=Strategy.ENSEMBLE,
        description="'finetune': refit on the target labels with an L2 penalty towards the source "
        "weights (L2-SP), C by cross-validation; 'joint': alpha * source loss + beta * target loss "
        "(alpha = beta: pooled); 'shared-private': shared plus per-domain weights (feature "
        "augmentation); 'ensemble': all three per view, averaged with a pooled NB-weighted "
        "logistic regression member.",
    )
    self_training: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Share of the unlabelled target texts the transfer model is refitted on with "
        "its own confident predictions as labels (self-training, one round; per predicted class "
        "the most confident, in proportion to the target's class shares). 0: off.",
    )
    self_training_c: Literal["first-fit", "search"] = Field(
        default="search",
        description="Self-training's second fit: 'search' cross-validates C again on the labels "
        "plus pseudo-labels; 'first-fit' keeps the C each 'finetune' and NB member got by "
        "cross-validation on the target labels in the first fit (folds over pseudo-labels the "
        "model made itself may flatter). Measured: first-fit higher on average at 50-400 labels, "
        "but lower on a 200,000-row source and fewer pairs rising from 50 to 200 labels "
        "(docs/models.md). Without target labels to fold, C is searched either way.",
    )
    ensemble_weights: Literal["fixed", "out-of-fold"] = Field(
        default="fixed",
        description="'ensemble': how the NB member's share of the mean is set. 'fixed': one "
        "half. 'out-of-fold': the share that makes the members' out-of-fold predictions on the "
        "target labels most likely, with a prior centred on one half worth 'weights_prior_rows' "
        "labels (one half with too few labels to fold); on validation splits it gained nothing "
        "over one half (docs/models.md, 'Ensemble weights').",
    )
    weights_prior_rows: float = Field(
        default=50.0,
        ge=0.0,
        description="'out-of-fold' ensemble weights: how many labelled rows the prior on one "
        "half weighs (0: the out-of-fold evidence alone).",
    )
    alpha: float = Field(default=1.0, ge=0.0, description="'joint': weight of the source loss.")
    beta: float = Field(default=1.0, ge=0.0, description="'joint': weight of the target loss.")

    @model_validator(mode="after")
    def _joint_needs_a_weight(self) -> TransferConfig:
        joint = (Strategy.JOINT, Strategy.ENSEMBLE)
        if self.strategy in joint and self.alpha == 0 and self.beta == 0:
            raise ValueError(f"strategy '{self.strategy}' needs alpha or beta above 0")
        return self


class BaselineConfig(_Section):
    """Reference candidates trained in the same run so each report shows what transfer earned."""

    target_only: bool = Field(default=True, description="Same architecture, target data only.")
    source_only: bool = Field(default=True, description="Source model as is (same labels only).")
    pooled_lr: bool = Field(
        default=True,
        description="NB-weighted logistic regression (binarised n-grams scaled by their log-count "
        "ratio, Wang & Manning 2012) on pooled source + target labels (same "
        "labels only): the strongest classic baseline measured.",
    )


class LearningCurveConfig(_Section):
    """How many target labels are needed? Transfer vs target-only at smaller label budgets."""

    enabled: bool = Field(
        default=False,
        description="Retrain transfer and target_only on balanced subsets of the target training "
        "labels and report test accuracy against the number of labels (table and plot).",
    )
    sizes: list[int] = Field(
        default=[25, 50, 100, 200, 400],
        min_length=1,
        description="Label budgets to try; those at or above the available training labels are "
        "skipped (the full run is the last point).",
    )

    @field_validator("sizes")
    @classmethod
    def _positive_sorted(cls, sizes: list[int]) -> list[int]:
        if any(n < 4 for n in sizes):
            raise ValueError("every label budget must be at least 4")
        return sorted(set(sizes))


class CacheConfig(_Section):
    """Reuse of expensive results (vectors, models) across runs, keyed on content."""

    enabled: bool = Field(default=True, description="Look up and store results in the cache.")
    dir: Location | None = Field(
        default=None,
        description="Artefact store: a folder or an fsspec URL (s3://bucket/prefix, gs://...) "
        "shared by workers on several machines; unset = $TRANSFERFLOW_CACHE_DIR or "
        "$TRANSFERFLOW_HOME/cache.",
    )
    refresh: bool = Field(
        default=False, description="Recompute every cached stage (and store the new results)."
    )


class RunConfig(_Section):
    """Everything a transferflow run needs, nested per stage."""

    data: DataConfig
    embeddings: EmbeddingConfig = EmbeddingConfig()
    model: ModelConfig = ModelConfig()
    transfer: TransferConfig = TransferConfig()
    baselines: BaselineConfig = BaselineConfig()
    learning_curve: LearningCurveConfig = LearningCurveConfig()
    gates: GatesConfig = GatesConfig()
    cache: CacheConfig = CacheConfig()
    registry: RegistryConfig = RegistryConfig()
    suggest: SuggestConfig = SuggestConfig()
    seed: int = Field(
        default=42,
        ge=0,
        le=MAX_SEED,
        description="Seed for splits, vectors and weights (0 to 2**32 - 1, the range NumPy, "
        "gensim and JAX all take).",
    )
    output_dir: Path | None = Field(
        default=None,
        description="Parent folder of run folders; unset = $TRANSFERFLOW_HOME/runs "
        "(`transferflow where`).",
    )
    run_name: str | None = Field(
        default=None,
        description="Run folder name (a plain name: letters, digits, '.', '_', '-', '+'); "
        "default '<source>-to-<target>-<time>'.",
    )

    def runs_parent(self) -> Path:
        """The folder run folders go in: ``output_dir``, else ``$TRANSFERFLOW_HOME/runs``."""
        from transferflow.storage import state

        return self.output_dir if self.output_dir is not None else state.runs_dir()

    def model_name(self) -> str:
        """The name the run registers its model under: ``registry.model_name``, else the target
        domain's name as a slug."""
        from transferflow.storage.catalog import model_name_for

        return self.registry.model_name or model_name_for(self.data.target.name)

    @field_validator("run_name")
    @classmethod
    def _plain_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                check_name(value, "run_name")
            except ConfigError as exc:
                raise ValueError(str(exc).removeprefix("run_name ")) from None
        return value


def build_config(raw: dict[str, Any]) -> RunConfig:
    """Validate a nested dict into a RunConfig, turning pydantic's errors into one readable error.

    Args:
        raw: nested settings, as read from YAML or assembled from CLI flags.

    Returns:
        The validated RunConfig.

    Raises:
        ConfigError: naming each wrong setting (dotted path), what was given and what was expected.
    """
    from pydantic import ValidationError

    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        lines = validation_lines(exc, RunConfig)
        raise ConfigError("Invalid configuration:\n" + "\n".join(lines)) from None


def set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw['a']['b']['c'] = value`` for ``dotted='a.b.c'``, creating sections as needed.

    Args:
        raw: nested settings dict, modified in place.
        dotted: the setting's path, e.g. ``model.epochs``.
        value: the value to set.

    Raises:
        ConfigError: when a path segment names a value that is not a section.
    """
    parts = dotted.split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"Setting '{dotted}': '{'.'.join(parts[: i + 1])}' is not a section.")
        node = child
    node[parts[-1]] = value
