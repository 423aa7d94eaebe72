"""Data-quality gates: tasks between the stages that stop the run with every failed check.

A gate in ``fail`` mode raises :class:`GateFailedError`; in ``warn`` mode it logs a warning and the
run goes on. Either way its summary goes into ``metrics.json`` and the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.caching import cached_json
from transferflow import datasets
from transferflow.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.config import (
    CacheConfig,
    DomainShiftGate,
    EmbeddingsGate,
    LeakageGate,
    PromotionGate,
    RawInputGate,
    SourceModelGate,
)
from transferflow.data import TEXT
from transferflow.errors import GateFailedError


def _conclude(report, subject: str) -> dict[str, Any]:
    """Log the gate's outcome; raise when it failed in ``fail`` mode; return its summary."""
    logger = get_run_logger()
    summary = report.summary()
    if report.status == "failed":
        raise GateFailedError(report.gate, report.failures, subject=subject)
    if report.status == "warned":
        logger.warning(
            "gate %s failed in warn mode for %s; continuing:\n  - %s",
            report.gate,
            subject,
            "\n  - ".join(summary["failed"]),
        )
    else:
        logger.info("gate %s passed for %s (%d checks)", report.gate, subject, report.evaluated)
    return summary


@task(name="validate_dataset", cache_policy=NO_CACHE, task_run_name="validate_dataset[{role}]")
def validate_dataset(
    data: DatasetRef,
    role: str,
    cfg: RawInputGate,
    out_dir: Path,
    docs_dir: Path | None = None,
    reference: DatasetRef | None = None,
) -> tuple[DatasetRef, dict[str, Any]]:
    """Raw-input gate on one domain; returns it without the tolerated blank-text rows."""
    from data_checks.raw_input import report, validate_domain, validate_label_kinds

    frames = {part: datasets.read_frame(ref) for part, ref in data.parts.items()}
    labelled = (
        frames["train"] if "val" not in frames else pd.concat([frames["train"], frames["val"]])
    )
    suites = validate_domain(
        f"{role} '{data.name}'", frames["pool"], labelled, frames["test"], cfg, docs_dir
    )
    if reference is not None:  # the target is compared with the source
        suites.append(
            validate_label_kinds(
                {"source": reference.label_kind, "target": data.label_kind},
                {"source": reference.labels, "target": data.labels},
                cfg,
                docs_dir,
            )
        )
    summary = _conclude(report(suites, cfg, {"rows": data.counts}), f"{role} data '{data.name}'")
    cleaned = datasets.drop_blank_texts(data, role=role, out_dir=out_dir)
    if cleaned.dropped_blank_text:
        summary["figures"]["dropped_blank_text"] = cleaned.dropped_blank_text
        get_run_logger().warning(
            "%s: dropped rows without text %s (within gates.raw_input.max_blank_text_share)",
            role,
            cleaned.dropped_blank_text,
        )
    return cleaned, summary


@task(name="check_split_integrity", cache_policy=NO_CACHE, task_run_name="check_split_integrity")
def check_split_integrity(
    source: DatasetRef,
    target: DatasetRef,
    word2vec: bool,
    cfg: LeakageGate,
    out_dir: Path,
    docs_dir: Path | None = None,
) -> tuple[DatasetRef, DatasetRef, dict[str, Any]]:
    """Leakage gate: no target test text in the target training data or the Word2Vec corpus;
    a tolerated overlap leaves the training side."""
    from data_checks.leakage import validate_leakage

    test = datasets.read_frame(target.test)
    report = validate_leakage(
        test,
        datasets.read_frame(target.pool),
        datasets.read_frame(source.pool) if word2vec else None,
        cfg,
        docs_dir,
    )
    summary = _conclude(report, f"target '{target.name}'")
    roles = {"source": source, "target": target}
    for role, data in roles.items():
        roles[role] = datasets.drop_test_texts_from_training(data, test, role=role, out_dir=out_dir)
        if roles[role].dropped_test_overlap:
            summary["figures"][f"{role}_training_rows_removed"] = sum(
                roles[role].dropped_test_overlap.values()
            )
            get_run_logger().warning(
                "%s: removed training rows whose text is also a target test text: %s",
                role,
                roles[role].dropped_test_overlap,
            )
    return roles["source"], roles["target"], summary


@task(name="check_embeddings", cache_policy=NO_CACHE, task_run_name="check_embeddings")
def check_embeddings(
    emb: EmbeddingsRef,
    target: DatasetRef,
    expected_size: int | None,
    cfg: EmbeddingsGate,
    docs_dir: Path | None = None,
) -> dict[str, Any]:
    """Embeddings gate: size as configured, finite values, coverage of the target's tokens."""
    from data_checks.embeddings import validate_embeddings
    from transferflow.embeddings import load_vectors

    kv = load_vectors(emb.vectors.verified_path())
    texts = datasets.read_frame(target.pool)[TEXT].dropna().tolist()
    return _conclude(validate_embeddings(kv, expected_size, texts, cfg, docs_dir), emb.origin)


@task(name="check_domain_shift", cache_policy=NO_CACHE, task_run_name="check_domain_shift")
def check_domain_shift(
    source: DatasetRef,
    target: DatasetRef,
    cfg: DomainShiftGate,
    seed: int,
    docs_dir: Path | None = None,
    cache: CacheConfig | None = None,
) -> dict[str, Any]:
    """Domain-shift gate: vocabulary overlap, label distance, proxy A-distance (warn by default)."""
    from data_checks.domain_shift import validate_domain_shift

    inputs = {
        "source": [source.pool.sha256, source.train.sha256],
        "target": [target.pool.sha256, target.train.sha256],
        "seed": seed,
    }
    # The domain classifier is the costly part of the data gates: computed once per data pair.
    figures = cached_json(
        "domain_shift", inputs, cache, lambda: datasets.domain_shift_figures(source, target, seed)
    )
    get_run_logger().info("domain shift %s -> %s: %s", source.name, target.name, figures)
    return _conclude(
        validate_domain_shift(figures, cfg, docs_dir), f"{source.name} → {target.name}"
    )


@task(name="check_source_model", cache_policy=NO_CACHE, task_run_name="check_source_model")
def check_source_model(
    source_model: ModelRef,
    source: DatasetRef,
    cfg: SourceModelGate,
    docs_dir: Path | None = None,
) -> dict[str, Any]:
    """Source-model gate: accuracy on held-out source data reaches the threshold."""
    from data_checks.models import validate_source_model
    from transferflow.evaluate import source_holdout

    accuracy, majority, n = source_holdout(source_model, source)
    report = validate_source_model(accuracy, majority, n, cfg, docs_dir)
    return _conclude(report, f"source model on '{source.name}' test rows")


@task(name="check_promotion", cache_policy=NO_CACHE, task_run_name="check_promotion")
def check_promotion(
    models: dict[str, ModelRef],
    target: DatasetRef,
    cfg: PromotionGate,
    docs_dir: Path | None = None,
) -> dict[str, Any]:
    """Promotion gate: no baseline may be significantly better than transfer on out-of-fold
    predictions of the target training labels; if one is, it is the chosen model."""
    from data_checks.models import validate_promotion
    from transferflow.candidates import oof_proba, source_only_oof
    from transferflow.promotion import select_model

    oof = {
        name: (source_only_oof(ref, target) if name == "source_only" else oof_proba(ref))
        for name, ref in models.items()
    }
    y = datasets.read_frame(target.train)["label"].tolist()
    selection = select_model(oof, y, target.labels, cfg.significance)
    summary = _conclude(validate_promotion(selection, cfg, docs_dir), "transfer model")
    logger = get_run_logger()
    logger.info("chosen model: %s (%s)", selection["chosen"], selection["reason"])
    if selection["chosen"] != "transfer":
        logger.warning("A baseline beat transfer: %s.", selection["reason"])
    return summary
