"""Sweep tasks: one sweep point (pair, architecture, strategy, seed; all label budgets) per task."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.settings import RunConfig
from transferflow.experiments.sweep import run_point


@task(name="run_sweep_point", cache_policy=NO_CACHE)
def run_sweep_point(
    config: RunConfig, budgets: list[int], references: bool
) -> list[dict[str, Any]]:
    """Train and score every candidate of one sweep point at each label budget."""
    rows = run_point(config, budgets, references)
    logger = get_run_logger()
    for row in rows:
        if row["candidate"] == "transfer":
            logger.info("n=%d transfer accuracy %.4f", row["n_requested"], row["accuracy"])
    return rows
