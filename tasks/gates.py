"""Data-quality gates: tasks between the stages that stop the run with every failed check.

A gate in ``fail`` mode raises :class:`GateFailedError`; in ``warn`` mode it logs a warning and the
run goes on. Either way its summary goes into ``metrics.json`` and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from transferflow.config.settings import (
    CacheConfig,
    DomainShiftGate,
    EmbeddingsGate,
    LeakageGate,
    PromotionGate,
    RawInputGate,
    SourceModelGate,
)
from transferflow.data import datasets
from transferflow.data.tables import TEXT
from transferflow.errors import GateFailedError
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks.caching import cached_json, cached_json_hit


def _conclude(report, subject: str) -> dict[str, Any]:
    """Log the gate's outcome; raise when it failed in ``fail`` mode; return its summary."""
    if report.status == "failed":
        raise GateFailedError(report.gate, report.failures, subject=subject)
    summary = report.summary()
    _log(report.gate, summary, subject)
    return summary


def _log(gate: str, summary: dict[str, Any], subject: str, reused: bool = False) -> None:
    logger = get_run_logger()
    how = " (verdict reused: same data, settings and checks as an earlier run)" if reused else ""
    if summary["status"] == "warned":
        logger.warning(
            "gate %s failed in warn mode for %s%s; continuing:\n  - %s",
            gate,
            subject,
            how,
            "\n  - ".join(summary["failed"]),
        )
    else:
        logger.info("gate %s passed for %s (%d checks)%s", gate, subject, summary["checks"], how)


def _suites_version() -> str:
    """Hash of the gate code (``data_checks``) and the Great Expectations version: a cached
    verdict is only valid for the checks that produced it."""
    import hashlib
    from importlib import metadata

    from transferflow import data_checks

    digest = hashlib.sha256(metadata.version("great-expectations").encode())
    for path in sorted(Path(data_checks.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _verdict(
    gate: str,
    inputs: dict[str, Any],
    verdicts: CacheConfig | None,
    subject: str,
    evaluate: Callable[[], Any],
) -> tuple[dict[str, Any], bool]:
    """A gate's summary: reused when the same data, settings and checks passed before, else
    evaluated (and recorded when it passes or warns; a failure is never reused, so it is always
    re-checked and gets its Data Docs).

    Args:
        gate: gate name (part of the key).
        inputs: content hashes and settings the verdict depends on.
        verdicts: cache settings, or ``None`` to always evaluate (e.g. Data Docs requested).
        subject: what was checked, for the log and the error.
        evaluate: runs the checks; returns a ``GateReport``.

    Returns:
        (summary, reused).
    """
    summary, reused = cached_json_hit(
        f"gate_{gate}",
        {**inputs, "suites": _suites_version()},
        verdicts,
        lambda: _conclude(evaluate(), subject),  # raises on failure: nothing is recorded
    )
    if reused:
        _log(gate, summary, subject, reused=True)
    return summary, reused


def _done(value: Any, reused: bool) -> Any:
    """The task's return: a ``Cached`` state (as the UI shows it) when the verdict was reused."""
    return Completed(data=value, name="Cached", message="verdict reused") if reused else value


def _hashes(data: DatasetRef) -> dict[str, str]:
    return {part: ref.sha256 for part, ref in sorted(data.parts.items())}


@task(name="validate_dataset", cache_policy=NO_CACHE, task_run_name="validate_dataset[{role}]")
def validate_dataset(
    data: DatasetRef,
    role: str,
    cfg: RawInputGate,
    out_dir: Path,
    docs_dir: Path | None = None,
    reference: DatasetRef | None = None,
    verdicts: CacheConfig | None = None,
    drop_repeats: bool = True,
) -> tuple[DatasetRef, dict[str, Any]]:
    """Raw-input gate on one domain; returns it without the tolerated blank-text rows and, with
    ``drop_repeats``, without exact repeats in its training parts."""

    def evaluate():
        from transferflow.data_checks.raw_input import report, validate_domain, validate_label_kinds

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
        return report(suites, cfg, {"rows": data.counts})

    inputs = {
        "role": role,
        "name": data.name,
        "data": _hashes(data),
        "counts": data.counts,
        "kind": data.label_kind,
        "labels": data.labels,
        "reference": None if reference is None else [reference.label_kind, reference.labels],
        "settings": cfg.model_dump(mode="json"),
    }
    summary, reused = _verdict(
        "raw_input", inputs, verdicts, f"{role} data '{data.name}'", evaluate
    )
    cleaned = datasets.drop_after_gate(data, role=role, out_dir=out_dir, drop_repeats=drop_repeats)
    logger = get_run_logger()
    if cleaned.dropped_blank_text or cleaned.dropped_repeats:
        summary = {**summary, "figures": {**summary["figures"]}}
    if cleaned.dropped_blank_text:
        summary["figures"]["dropped_blank_text"] = cleaned.dropped_blank_text
        logger.warning(
            "%s: dropped rows without text %s (within gates.raw_input.max_blank_text_share)",
            role,
            cleaned.dropped_blank_text,
        )
    if cleaned.dropped_repeats:
        summary["figures"]["dropped_repeats"] = cleaned.dropped_repeats
        logger.info(
            "%s: dropped exact repeats (same text and label, one kept) from training %s "
            "(data.drop_repeats)",
            role,
            cleaned.dropped_repeats,
        )
    if reference is not None and reference.labels != data.labels:
        logger.warning(
            "source labels %s and target labels %s differ (compared by value: 1, 1.0 and '1' "
            "are one label): the source model's classes are not the target's, so the "
            "source_only and pooled_lr baselines are skipped",
            reference.labels,
            data.labels,
        )
    return _done((cleaned, summary), reused)


@task(name="check_split_integrity", cache_policy=NO_CACHE, task_run_name="check_split_integrity")
def check_split_integrity(
    source: DatasetRef,
    target: DatasetRef,
    word2vec: bool,
    cfg: LeakageGate,
    out_dir: Path,
    docs_dir: Path | None = None,
    verdicts: CacheConfig | None = None,
) -> tuple[DatasetRef, DatasetRef, dict[str, Any]]:
    """Leakage gate: no target test text in the target training data or the Word2Vec corpus;
    a tolerated overlap leaves the training side."""

    test = datasets.read_frame(target.test)

    def evaluate():
        from transferflow.data_checks.leakage import validate_leakage

        return validate_leakage(
            test,
            datasets.read_frame(target.pool),
            datasets.read_frame(source.pool) if word2vec else None,
            cfg,
            docs_dir,
        )

    inputs = {
        "test": target.test.sha256,
        "target": target.pool.sha256,
        "source": source.pool.sha256 if word2vec else None,
        "settings": cfg.model_dump(mode="json"),
    }
    summary, reused = _verdict("leakage", inputs, verdicts, f"target '{target.name}'", evaluate)
    roles = {"source": source, "target": target}
    for role, data in roles.items():
        roles[role] = datasets.drop_test_texts_from_training(data, test, role=role, out_dir=out_dir)
        if roles[role].dropped_test_overlap:
            summary = {**summary, "figures": {**summary["figures"]}}
            summary["figures"][f"{role}_training_rows_removed"] = sum(
                roles[role].dropped_test_overlap.values()
            )
            get_run_logger().warning(
                "%s: removed training rows whose text is also a target test text: %s",
                role,
                roles[role].dropped_test_overlap,
            )
    return _done((roles["source"], roles["target"], summary), reused)


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

    def evaluate():
        from transferflow.data_checks.embeddings import validate_embeddings
        from transferflow.text.embeddings import load_vectors

        kv = load_vectors(emb.vectors.verified_path())
        texts = datasets.read_frame(target.pool)[TEXT].dropna().tolist()
        return validate_embeddings(kv, expected_size, texts, cfg, docs_dir)

    inputs = {
        "vectors": emb.vectors.sha256,
        "target": target.pool.sha256,
        "size": expected_size,
        "settings": cfg.model_dump(mode="json"),
    }
    return _done(*_verdict("embeddings", inputs, verdicts, emb.origin, evaluate))


@task(name="check_domain_shift", cache_policy=NO_CACHE, task_run_name="check_domain_shift")
def check_domain_shift(
    source: DatasetRef,
    target: DatasetRef,
    cfg: DomainShiftGate,
    seed: int,
    docs_dir: Path | None = None,
    cache: CacheConfig | None = None,
    verdicts: CacheConfig | None = None,
) -> dict[str, Any]:
    """Domain-shift gate: vocabulary overlap, label distance, proxy A-distance (warn by default).

    ``cache`` keeps the measured figures (the domain classifier is the costly part of the data
    gates); ``verdicts`` the gate's outcome on them."""
    inputs = {
        "source": [source.pool.sha256, source.train.sha256],
        "target": [target.pool.sha256, target.train.sha256],
        "seed": seed,
    }

    def evaluate():
        from transferflow.data_checks.domain_shift import validate_domain_shift

        figures = cached_json(
            "domain_shift",
            inputs,
            cache,
            lambda: datasets.domain_shift_figures(source, target, seed),
        )
        get_run_logger().info("domain shift %s -> %s: %s", source.name, target.name, figures)
        return validate_domain_shift(figures, cfg, docs_dir)

    settings = {**inputs, "names": [source.name, target.name], "settings": cfg.model_dump()}
    return _done(
        *_verdict("domain_shift", settings, verdicts, f"{source.name} → {target.name}", evaluate)
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

    def evaluate():
        from transferflow.data_checks.models import validate_source_model
        from transferflow.evaluation.metrics import source_holdout

        accuracy, majority, n = source_holdout(source_model, source)
        return validate_source_model(accuracy, majority, n, cfg, docs_dir)

    inputs = {
        "model": source_model.model.sha256,
        "test": source.test.sha256,
        "settings": cfg.model_dump(mode="json"),
    }
    return _done(
        *_verdict(
            "source_model", inputs, verdicts, f"source model on '{source.name}' test rows", evaluate
        )
    )


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

    def evaluate():
        from transferflow.data_checks.models import validate_promotion
        from transferflow.evaluation.promotion import select_model
        from transferflow.models.candidates import oof_proba, source_only_oof

        oof = {
            name: (source_only_oof(ref, target) if name == "source_only" else oof_proba(ref))
            for name, ref in models.items()
        }
        y = datasets.read_frame(target.train)["label"].tolist()
        return validate_promotion(
            select_model(oof, y, target.labels, cfg.significance), cfg, docs_dir
        )

    inputs = {
        "models": {name: ref.model.sha256 for name, ref in sorted(models.items())},
        "target": target.train.sha256,
        "labels": target.labels,
        "settings": cfg.model_dump(mode="json"),
    }
    summary, reused = _verdict("promotion", inputs, verdicts, "transfer model", evaluate)
    chosen, reason = summary["figures"]["chosen"], summary["figures"]["reason"]
    logger = get_run_logger()
    logger.info("chosen model: %s (%s)", chosen, reason)
    if chosen != "transfer":
        logger.warning("A baseline beat transfer: %s.", reason)
    return _done(summary, reused)
