"""Data gates: the raw-input, leakage and domain-shift checks that run before any model is
trained (:mod:`transferflow.flows.validate`); each stops the run with every failed check.
The model stages' gates are in :mod:`transferflow.tasks.model_gates`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.settings import CacheConfig, DomainShiftGate, LeakageGate, RawInputGate
from transferflow.data import datasets, shift
from transferflow.reporting import words
from transferflow.storage.artifacts import DatasetRef
from transferflow.tasks.caching import Reads, Writes, cached
from transferflow.tasks.gate_verdicts import conclude, done, verdict


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
    return conclude(report(suites, cfg, {"rows": data.counts}), f"{role} data '{data.name}'")


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
    summary, reused = verdict(
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
    if cleaned.dropped_blank_text or cleaned.dropped_repeats or cleaned.dropped_labelled:
        summary = {**summary, "figures": {**summary["figures"]}}
    if cleaned.dropped_blank_text:
        summary["figures"]["dropped_blank_text"] = cleaned.dropped_blank_text
        logger.warning(
            "%s: dropped rows without text: %s (within gates.raw_input.max_blank_text_share)",
            role,
            words.counts(cleaned.dropped_blank_text),
        )
    if cleaned.dropped_repeats:
        summary["figures"]["dropped_repeats"] = cleaned.dropped_repeats
    labelled_repeats = {k: v for k, v in cleaned.dropped_repeats.items() if k != "unlabeled"}
    if any(labelled_repeats.values()):
        logger.info(
            "%s: dropped exact repeats (same text and label, one kept) from training: %s "
            "(data.drop_repeats)",
            role,
            words.counts(labelled_repeats),
        )
    if cleaned.dropped_labelled:
        summary["figures"]["dropped_labelled"] = cleaned.dropped_labelled
    if left_out := words.unlabelled_left_out(
        cleaned.dropped_repeats.get("unlabeled", 0), cleaned.dropped_labelled
    ):
        logger.info(
            "%s: left out of the unlabelled texts: %s (a test text is never learnt from)",
            role,
            left_out,
        )
    if reference is not None and reference.labels != data.labels:
        from transferflow.data.labels import case_note

        note = case_note(reference.labels, data.labels)
        logger.warning(
            "source labels (%s) and target labels (%s) differ (compared by value: 1, 1.0 and '1' "
            "are one label): the source model's classes are not the target's, so the "
            "source_only and pooled_lr baselines are skipped.%s",
            words.items(reference.labels),
            words.items(data.labels),
            f" {note}" if note else "",
        )
    return done((cleaned, summary), reused)


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
    return conclude(report, f"target '{target.name}'")


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
    summary, reused = verdict(
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
                words.counts(roles[role].dropped_test_overlap),
            )
    return done((roles["source"], roles["target"], summary), reused)


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
    get_run_logger().info(
        "domain shift %s → %s: %s", source.name, target.name, words.figures(figures, shift.NAMES)
    )
    return conclude(validate_domain_shift(figures, cfg, docs_dir), f"{source.name} → {target.name}")


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
    return done(
        *verdict(
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
