"""Keep user mistakes out of tracebacks in Prefect's logs."""

from __future__ import annotations

import logging

from transferflow.errors import TransferflowError


class UserErrorTracebackFilter(logging.Filter):
    """Drop the traceback from log records about a :class:`TransferflowError`.

    Prefect logs every failed task and flow run with ``exc_info``. For a bad input file or a failed
    data gate the message already says what is wrong; a stack trace would only bury it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, TransferflowError):
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    """Attach the filter to Prefect's run loggers (idempotent)."""
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.flow_engine", "prefect.task_engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorTracebackFilter) for f in logger.filters):
            logger.addFilter(UserErrorTracebackFilter())
