"""Model gates: the embeddings, the source model and the promotion rule, each between the
model stages it guards (:mod:`transferflow.flows.transfer`); each stops the run with every failed
check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.settings import (
    CacheConfig,
    EmbeddingsGate,
    PromotionGate,
    SourceModelGate,
)
from transferflow.data import datasets
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks.caching import Reads, Writes
from transferflow.tasks.gate_verdicts import conclude, done, verdict


@task(name="embeddings_checks", cache_policy=NO_CACHE, task_run_name="embeddings_checks")
def embeddings_checks(
    emb: Annotated[EmbeddingsRef, Reads("vectors")],
    target: Annotated[DatasetRef, Reads("pool", "unlabeled", "unlabelled_only")],
    expected_size: int | None,
    cfg: EmbeddingsGate,
    docs_dir: Annotated[Path | None, Writes],
) -> dict[str, Any]:
    """The embeddings checks; returns the gate's summary, raises GateFailedError."""
    from transferflow.data_checks.embeddings import validate_embeddings
    from transferflow.text.embeddings import load_vectors

    kv = load_vectors(emb.vectors.verified_path())
    texts = datasets.read_texts(target.domain_parts)
    return conclude(validate_embeddings(kv, expected_size, texts, cfg, docs_dir), emb.origin)


@task(name="check_embeddings", cache_policy=NO_CACHE, task_run_name="check_embeddings")
def check_embeddings(
    emb: EmbeddingsRef,
    target: DatasetRef,
    expected_size: int | None,
    cfg: EmbeddingsGate,
    docs_dir: Path | None = None,
    verdicts: CacheConfig | None = None,
) -> dict[str, Any]:
    """Embeddings gate: size as configured, finite values, coverage of the target's tokens."""
    return done(
        *verdict(
            embeddings_checks,
            verdicts,
            "embeddings",
            emb.origin,
            emb,
            target,
            expected_size,
            cfg,
            docs_dir,
        )
    )


@task(name="source_model_checks", cache_policy=NO_CACHE, task_run_name="source_model_checks")
def source_model_checks(
    source_model: Annotated[ModelRef, Reads("model", "files", "labels")],
    source: Annotated[DatasetRef, Reads("test", "labels")],
    cfg: SourceModelGate,
    docs_dir: Annotated[Path | None, Writes],
) -> dict[str, Any]:
    """The source model's accuracy on held-out source rows against the threshold; returns the
    gate's summary, raises GateFailedError."""
    from transferflow.data_checks.models import validate_source_model
    from transferflow.evaluation.metrics import source_holdout

    accuracy, majority, n = source_holdout(source_model, source)
    return conclude(
        validate_source_model(accuracy, majority, n, cfg, docs_dir),
        f"source model on '{source.name}' test rows",
    )


@task(name="check_source_model", cache_policy=NO_CACHE, task_run_name="check_source_model")
def check_source_model(
    source_model: ModelRef,
    source: DatasetRef,
    cfg: SourceModelGate,
    docs_dir: Path | None = None,
    verdicts: CacheConfig | None = None,
) -> dict[str, Any]:
    """Source-model gate: accuracy on held-out source data reaches the threshold."""
    return done(
        *verdict(
            source_model_checks,
            verdicts,
            "source_model",
            f"source model on '{source.name}' test rows",
            source_model,
            source,
            cfg,
            docs_dir,
        )
    )


@task(name="promotion_checks", cache_policy=NO_CACHE, task_run_name="promotion_checks")
def promotion_checks(
    models: dict[str, ModelRef],
    target: Annotated[DatasetRef, Reads("train", "pool", "labels")],
    cfg: PromotionGate,
    docs_dir: Annotated[Path | None, Writes],
) -> dict[str, Any]:
    """Out-of-fold comparison of transfer with the baselines; returns the gate's summary (with
    the chosen model), raises GateFailedError."""
    from transferflow.data_checks.models import validate_promotion
    from transferflow.evaluation.promotion import select_model
    from transferflow.models.candidates import oof_proba, source_only_oof

    oof = {
        name: (source_only_oof(ref, target) if name == "source_only" else oof_proba(ref))
        for name, ref in models.items()
    }
    y = datasets.read_frame(target.train)["label"].tolist()
    selection = select_model(oof, y, target.labels, cfg.significance)
    report = validate_promotion(selection, cfg, docs_dir)
    return conclude(report, "transfer model")


@task(name="check_promotion", cache_policy=NO_CACHE, task_run_name="check_promotion")
def check_promotion(
    models: dict[str, ModelRef],
    target: DatasetRef,
    cfg: PromotionGate,
    docs_dir: Path | None = None,
    verdicts: CacheConfig | None = None,
) -> dict[str, Any]:
    """Promotion gate: no baseline may be significantly better than transfer on out-of-fold
    predictions of the target training labels; if one is, it is the chosen model."""
    summary, reused = verdict(
        promotion_checks, verdicts, "promotion", "transfer model", models, target, cfg, docs_dir
    )
    chosen, reason = summary["figures"]["chosen"], summary["figures"]["reason"]
    logger = get_run_logger()
    logger.info("chosen model: %s (%s)", chosen, reason)
    if chosen != "transfer":
        logger.warning("A baseline beat transfer: %s.", reason)
    return done(summary, reused)
