"""What every gate task shares: its outcome logged once, a failure raised with every failed
check, and a verdict reused (shown as ``Cached`` in the UI) when the same data, settings and checks
passed before.

A gate in ``fail`` mode raises :class:`GateFailedError`; in ``warn`` mode it logs a warning and the
run goes on. Either way its summary goes into ``metrics.json`` and the report.
"""

from __future__ import annotations

from typing import Any

from prefect import Task, get_run_logger
from prefect.states import Completed

from transferflow.config.settings import CacheConfig
from transferflow.errors import GateFailedError
from transferflow.tasks.caching import cached


def conclude(report: Any, subject: str) -> dict[str, Any]:
    """Log the gate's outcome; raise when it failed in ``fail`` mode; return its summary."""
    if report.status == "failed":
        raise GateFailedError(report.gate, report.failures, subject=subject)
    summary = report.summary()
    log_outcome(report.gate, summary, subject)
    return summary


def log_outcome(gate: str, summary: dict[str, Any], subject: str, reused: bool = False) -> None:
    """Log a gate's outcome: its failed checks when it warned, else how many checks passed."""
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


def verdict(
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
        log_outcome(gate, summary, subject, reused=True)
    return summary, reused


def done(value: Any, reused: bool) -> Any:
    """The task's return: a ``Cached`` state (as the UI shows it) when the verdict was reused."""
    return Completed(data=value, name="Cached", message="verdict reused") if reused else value
