"""The Prefect tasks that make a run's data and models: load, embed, train; they call a domain
function, move its files into the store and return a small reference. The flow turns on their
caching for a run with :func:`transferflow.tasks.caching.cached` (keyed on content). Evaluation
and the report are in ``tasks/reporting.py``, registering, scoring and suggesting in
``tasks/serving.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast
from uuid import UUID

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.settings import (
    CacheConfig,
    DatasetConfig,
    EmbeddingConfig,
    ModelConfig,
    TransferConfig,
)
from transferflow.data import datasets
from transferflow.data.vectors import ParsedVectors, make_embeddings, parse_vectors
from transferflow.models import candidates
from transferflow.reporting import words
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks.caching import Reads, in_store


class _Progress:
    """One Prefect progress artifact per model, titled with the model's role; it moves as the
    network's members are fitted (and says so in the log)."""

    def __init__(self, role: str) -> None:
        from prefect.artifacts import create_progress_artifact

        self.role = role
        # Called from a synchronous task: the call returns the artifact's id, not a coroutine.
        self.artifact_id = cast(
            UUID,
            create_progress_artifact(
                progress=0.0, description=f"Training progress: {role} model (members fitted)"
            ),
        )

    def __call__(self, share: float) -> None:
        from prefect.artifacts import update_progress_artifact

        if share == getattr(self, "last", None):
            return
        self.last = share
        update_progress_artifact(self.artifact_id, progress=round(100.0 * share, 1))
        get_run_logger().info("%s model: %.0f%% of its members fitted", self.role, 100 * share)


def _trained(role: str, train: Any) -> Any:
    progress = _Progress(role)
    result = train(progress)
    progress(1.0)
    summary = result.summary
    said = [f"members {words.items(summary['members'])}"]
    if "C" in summary:
        said.append(f"C {words.counts(summary['C'])}")
    if "strategy" in summary:
        said.append(f"strategy {summary['strategy']}")
    get_run_logger().info("%s model: %s", role, "; ".join(said))
    return result


@task(name="load_dataset", cache_policy=NO_CACHE, task_run_name="load_dataset[{role}]")
def load_dataset(
    cfg: DatasetConfig,
    role: str,
    test_size: float,
    seed: int,
    train_size: int | None,
    out_dir: Path,
    max_rows: int | None = None,
    beyond_cap: bool = True,
    unlabeled_max_rows: int | None = None,
) -> DatasetRef:
    """Read, split and store one domain's data (a sample of ``max_rows`` rows of larger files;
    the target's unlabelled texts as the part ``unlabeled``)."""
    ref = datasets.prepare_dataset(
        cfg,
        role=role,
        test_size=test_size,
        seed=seed,
        train_size=train_size,
        out_dir=out_dir,
        max_rows=max_rows,
        beyond_cap=beyond_cap,
        unlabeled_max_rows=unlabeled_max_rows,
    )
    logger = get_run_logger()
    if ref.rows_in_files is not None:
        logger.info(
            "%s '%s': a uniform sample of %d of the files' %d rows is used (data.source_max_rows)",
            role,
            ref.name,
            max_rows,
            ref.rows_in_files,
        )
    logger.info(
        "%s '%s': rows: %s; training labels: %s",
        role,
        ref.name,
        words.counts(ref.counts),
        words.counts(ref.label_counts["train"], sep=": "),
    )
    return ref


@task(name="convert_vectors", cache_policy=NO_CACHE, task_run_name="convert_vectors")
def convert_vectors(vectors: Path | str, fmt: str, cache: CacheConfig) -> ParsedVectors:
    """Parse a pretrained vectors file into native form (cached on its content: a large text
    file is parsed once)."""
    return in_store(cache, ParsedVectors, lambda out: parse_vectors(vectors, fmt, out))


@task(name="build_embeddings", cache_policy=NO_CACHE, task_run_name="build_embeddings")
def build_embeddings(
    source: Annotated[DatasetRef, Reads("pool")],
    target: Annotated[DatasetRef, Reads("pool", "unlabeled")],
    cfg: EmbeddingConfig,
    seed: int,
    cache: CacheConfig,
    parsed: ParsedVectors | None = None,
) -> EmbeddingsRef:
    """Load or train word vectors on the training texts (``parsed``: the pretrained vectors
    file of ``cfg`` in native form)."""

    def compute(out: Path) -> EmbeddingsRef:
        ref = make_embeddings(source, target, cfg, seed=seed, out_dir=out, parsed=parsed)
        get_run_logger().info(
            "vectors: %s, %d tokens x %d dims, %.1f%% of training tokens covered",
            ref.origin,
            ref.vocab_size,
            ref.vector_size,
            100 * ref.token_coverage,
        )
        return ref

    return in_store(cache, EmbeddingsRef, compute)


@task(name="train_source_model", cache_policy=NO_CACHE, task_run_name="train_source_model")
def train_source_model(
    source: Annotated[DatasetRef, Reads("train", "pool", "labels")],
    # the n-grams are fitted on both domains' training texts (no labels)
    target: Annotated[DatasetRef, Reads("pool", "unlabeled")],
    emb: Annotated[EmbeddingsRef, Reads("vectors")],
    cfg: ModelConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Train the network on the source labels."""
    return in_store(
        cache,
        ModelRef,
        lambda out: _trained(
            "source",
            lambda report: candidates.train_source(
                source, target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )


@task(name="fine_tune_target_model", cache_policy=NO_CACHE, task_run_name="fine_tune_target_model")
def fine_tune_target_model(
    source_model: Annotated[ModelRef, Reads("model", "files")],
    source: Annotated[DatasetRef, Reads("train", "labels")],
    # self-training reads the unlabelled texts
    target: Annotated[DatasetRef, Reads("train", "labels", "unlabeled")],
    emb: Annotated[EmbeddingsRef, Reads("vectors")],
    model_cfg: ModelConfig,
    cfg: TransferConfig,
    seed: int,
    cache: CacheConfig,
    pooled: Annotated[ModelRef | None, Reads("model", "files")] = None,
) -> ModelRef:
    """Adapt the source model to the target labels (``pooled``: the run's ``pooled_lr``
    baseline, which is the ensemble's NB member: taken, not fitted again)."""
    return in_store(
        cache,
        ModelRef,
        lambda out: _trained(
            "transfer",
            lambda report: candidates.fine_tune(
                source_model,
                source,
                target,
                emb,
                model_cfg,
                cfg,
                seed=seed,
                out_dir=out,
                pooled=pooled,
                progress=report,
            ),
        ),
    )


@task(
    name="train_target_only_model", cache_policy=NO_CACHE, task_run_name="train_target_only_model"
)
def train_target_only_model(
    target: Annotated[DatasetRef, Reads("train", "pool", "unlabeled", "labels")],
    emb: Annotated[EmbeddingsRef, Reads("vectors")],
    cfg: ModelConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Baseline: the same network trained on the target labels only."""
    return in_store(
        cache,
        ModelRef,
        lambda out: _trained(
            "target_only",
            lambda report: candidates.train_target_only(
                target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )


@task(name="train_pooled_baseline", cache_policy=NO_CACHE, task_run_name="train_pooled_baseline")
def train_pooled_baseline(
    source: Annotated[DatasetRef, Reads("train", "pool", "labels")],
    target: Annotated[DatasetRef, Reads("train", "pool", "unlabeled", "labels")],
    emb: Annotated[EmbeddingsRef, Reads("vectors")],
    cfg: ModelConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Baseline: NB-weighted logistic regression on pooled source + target labels."""
    return in_store(
        cache,
        ModelRef,
        lambda out: _trained(
            "pooled_lr",
            lambda report: candidates.train_pooled_lr(
                source, target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )
