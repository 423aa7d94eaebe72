"""Data-quality gates: tasks that raise :class:`GateFailedError` with every failed check."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.artifacts import DatasetRef
from transferflow.config import ChecksConfig
from transferflow.errors import GateFailedError
from transferflow.pipeline import drop_blank_texts, read_frame


@task(name="validate_dataset", cache_policy=NO_CACHE, task_run_name="validate_dataset[{role}]")
def validate_dataset(data: DatasetRef, role: str, cfg: ChecksConfig, out_dir: Path) -> DatasetRef:
    """Raw-input gate on one domain's data; returns it without the (tolerated) blank-text rows."""
    from data_checks.raw_input import validate_domain

    results = validate_domain(
        f"{role} '{data.name}'", read_frame(data.train), read_frame(data.test), cfg
    )
    failures = [f for r in results for f in r.failures]
    evaluated = sum(r.evaluated for r in results)
    if failures:
        raise GateFailedError("raw_input", failures, subject=f"{role} data '{data.name}'")
    logger = get_run_logger()
    logger.info("raw_input gate passed for %s: %d checks", role, evaluated)
    cleaned = drop_blank_texts(data, role=role, out_dir=out_dir)
    if cleaned.dropped_blank_text:
        logger.warning(
            "%s: dropped rows without text (train %d, test %d), within checks.max_blank_text_share",
            role, cleaned.dropped_blank_text["train"], cleaned.dropped_blank_text["test"],
        )
    return cleaned
