"""Data-quality gates: tasks that raise :class:`GateFailedError` with every failed check."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.artifacts import DatasetRef
from transferflow.config import ChecksConfig
from transferflow.errors import GateFailedError
from transferflow.pipeline import read_frame


@task(name="validate_dataset", cache_policy=NO_CACHE, task_run_name="validate_dataset[{role}]")
def validate_dataset(data: DatasetRef, role: str, cfg: ChecksConfig) -> int:
    """Raw-input gate on one domain's train and test data; returns the number of checks run."""
    from data_checks.raw_input import validate_domain

    results = validate_domain(
        f"{role} '{data.name}'", read_frame(data.train), read_frame(data.test), cfg
    )
    failures = [f for r in results for f in r.failures]
    evaluated = sum(r.evaluated for r in results)
    if failures:
        raise GateFailedError("raw_input", failures, subject=f"{role} data '{data.name}'")
    get_run_logger().info("raw_input gate passed for %s: %d checks", role, evaluated)
    return evaluated
