"""Data-quality gates: tasks between the stages that stop the run with every failed check.

A gate in ``fail`` mode raises :class:`GateFailedError`; in ``warn`` mode it logs a warning and the
run goes on. Either way its summary goes into ``metrics.json`` and the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prefect import Task, get_run_logger, task
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
from transferflow.errors import GateFailedError
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks.caching import Reads, Writes, cached


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


def _verdict(
    checks: Task,
    verdicts: CacheConfig | None,
    gate: str,
    subject: str,
    *args: Any,
) -> tuple[dict[str, Any], bool]:
    """Run a gate's checks as a task of their own, cached on their inputs' content and the checks'
    code: a verdict is reused when the same data, settings and checks passed before. A failure is
    never reused (Prefect records only completed tasks), so it is always re-checked and gets its
    Data Docs.

    Args:
        checks: the task that runs the checks and returns the summary (raises on failure).
        verdicts: cache settings, or ``None`` to always evaluate (e.g. Data Docs requested).
        gate: gate name, for the log.
        subject: what was checked, for the log.
        *args: the task's arguments.

    Returns:
        (summary, reused).
    """
    state = cached(checks, verdicts)(*args, return_state=True)
    summary = state.result()  # raises GateFailedError when the gate failed
    reused = state.name == "Cached"
    if reused:
        _log(gate, summary, subject, reused=True)
    return summary, reused


def _done(value: Any, reused: bool) -> Any:
    """The task's return: a ``Cached`` state (as the UI shows it) when the verdict was reused."""
    return Completed(data=value, name="Cached", message="verdict reused") if reused else value


@task(name="raw_input_checks", cache_policy=NO_CACHE, task_run_name="raw_input_checks[{role}]")
def raw_input_checks(
    data: DatasetRef,
    role: str,
    cfg: RawInputGate,
    docs_dir: Annotated[Path | None, Writes],
    reference: Annotated[DatasetRef | None, Reads("label_kind", "labels")],
) -> dict[str, Any]:
    """The raw-input checks of one domain (and, for the target, its labels against the
    source's); returns the gate's summary, raises GateFailedError."""
    from transferflow.data_checks.raw_input import report, validate_domain, validate_label_kinds

    frames = {part: datasets.read_frame(ref) for part, ref in data.parts.items()}
    labelled = (
        frames["train"] if "val" not in frames else pd.concat([frames["train"], frames["val"]])
    )
    suites = validate_domain(
        f"{role} '{data.name}'",
        frames["pool"],
        labelled,
        frames["test"],
        cfg,
        docs_dir,
        classes=data.labels,
        unlabeled=frames.get("unlabeled"),
        labelled_file=not data.unlabelled_only,
    )
    if reference is not None and (data.n_test or not data.unlabelled_only):
        # The target's labels are compared with the source's (a target of unlabelled texts
        # alone, without test files, has none).
        suites.append(
            validate_label_kinds(
                {"source": reference.label_kind, "target": data.label_kind},
                {"source": reference.labels, "target": data.labels},
                cfg,
                docs_dir,
            )
        )
    return _conclude(report(suites, cfg, {"rows": data.counts}), f"{role} data '{data.name}'")


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
    summary, reused = _verdict(
        raw_input_checks,
        verdicts,
        "raw_input",
        f"{role} data '{data.name}'",
        data,
        role,
        cfg,
        docs_dir,
        reference,
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
        from transferflow.data.labels import case_note

        note = case_note(reference.labels, data.labels)
        logger.warning(
            "source labels %s and target labels %s differ (compared by value: 1, 1.0 and '1' "
            "are one label): the source model's classes are not the target's, so the "
            "source_only and pooled_lr baselines are skipped.%s",
            reference.labels,
            data.labels,
            f" {note}" if note else "",
        )
    return _done((cleaned, summary), reused)


@task(name="leakage_checks", cache_policy=NO_CACHE, task_run_name="leakage_checks")
def leakage_checks(
    source: Annotated[DatasetRef | None, Reads("pool")],
    target: Annotated[DatasetRef, Reads("test", "pool", "unlabeled")],
    cfg: LeakageGate,
    docs_dir: Annotated[Path | None, Writes],
) -> dict[str, Any]:
    """The leakage checks: target test texts in the target's training data or the Word2Vec
    corpus (``source``: the source data when Word2Vec trains on it, else None); returns the gate's
    summary, raises GateFailedError."""
    from transferflow.data_checks.leakage import validate_leakage

    report = validate_leakage(
        datasets.read_frame(target.test),
        datasets.read_frame(target.pool),
        None if source is None else datasets.read_frame(source.pool),
        cfg,
        docs_dir,
        unlabeled=None if target.unlabeled is None else datasets.read_frame(target.unlabeled),
    )
    return _conclude(report, f"target '{target.name}'")


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
    summary, reused = _verdict(
        leakage_checks,
        verdicts,
        "leakage",
        f"target '{target.name}'",
        source if word2vec else None,
        target,
        cfg,
        docs_dir,
    )
    test = datasets.read_frame(target.test)
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
    return _conclude(validate_embeddings(kv, expected_size, texts, cfg, docs_dir), emb.origin)


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
    return _done(
        *_verdict(
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


@task(name="measure_domain_shift", cache_policy=NO_CACHE, task_run_name="measure_domain_shift")
def measure_domain_shift(
    source: Annotated[DatasetRef, Reads("pool", "train")],
    target: Annotated[DatasetRef, Reads("pool", "train", "unlabeled", "unlabelled_only")],
    seed: int,
) -> dict[str, Any]:
    """Vocabulary overlap, label distance and proxy A-distance of the two domains (the domain
    classifier is the costly part of the data gates)."""
    return datasets.domain_shift_figures(source, target, seed)


@task(name="domain_shift_checks", cache_policy=NO_CACHE, task_run_name="domain_shift_checks")
def domain_shift_checks(
    source: Annotated[DatasetRef, Reads("pool", "train")],
    target: Annotated[DatasetRef, Reads("pool", "train")],
    cfg: DomainShiftGate,
    seed: int,
    docs_dir: Annotated[Path | None, Writes],
    cache: CacheConfig | None,
) -> dict[str, Any]:
    """The domain-shift checks on the measured figures (kept in ``cache``); returns the gate's
    summary, raises GateFailedError."""
    from transferflow.data_checks.domain_shift import validate_domain_shift

    figures = cached(measure_domain_shift, cache)(source, target, seed)
    get_run_logger().info("domain shift %s -> %s: %s", source.name, target.name, figures)
    return _conclude(
        validate_domain_shift(figures, cfg, docs_dir), f"{source.name} → {target.name}"
    )


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

    ``cache`` keeps the measured figures; ``verdicts`` the gate's outcome on them."""
    return _done(
        *_verdict(
            domain_shift_checks,
            verdicts,
            "domain_shift",
            f"{source.name} → {target.name}",
            source,
            target,
            cfg,
            seed,
            docs_dir,
            cache,
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
    return _conclude(
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
    return _done(
        *_verdict(
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
    return _conclude(report, "transfer model")


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
    summary, reused = _verdict(
        promotion_checks, verdicts, "promotion", "transfer model", models, target, cfg, docs_dir
    )
    chosen, reason = summary["figures"]["chosen"], summary["figures"]["reason"]
    logger = get_run_logger()
    logger.info("chosen model: %s (%s)", chosen, reason)
    if chosen != "transfer":
        logger.warning("A baseline beat transfer: %s.", reason)
    return _done(summary, reused)
