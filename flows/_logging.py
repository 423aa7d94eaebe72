"""Keep user mistakes out of tracebacks in Prefect's logs."""

from __future__ import annotations

import logging

from transferflow.errors import ENVIRONMENT_ERRNOS, TransferflowError, is_user_error


class UserErrorTracebackFilter(logging.Filter):
    """Drop the traceback from log records about a :class:`TransferflowError`.

    Prefect logs every failed task and flow run with ``exc_info``. For a bad input file or a failed
    data gate the message already says what is wrong; a stack trace would only bury it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if is_user_error(exc):
            record.exc_info = None
            record.exc_text = None
        return True


def install() -> None:
    """Attach the filter to Prefect's run loggers (idempotent)."""
    for name in (
        "prefect.task_runs",
        "prefect.flow_runs",
        "prefect.flow_engine",
        "prefect.task_engine",
    ):
        logger = logging.getLogger(name)
        if not any(isinstance(f, UserErrorTracebackFilter) for f in logger.filters):
            logger.addFilter(UserErrorTracebackFilter())


class ConsoleUserErrorFilter(logging.Filter):
    """On the terminal of a CLI call, drop Prefect's records that repeat a user mistake (the task
    and flow failure lines and the failure hook's line): the CLI prints the error once, in full,
    at the end. The run's log on the server (the UI) keeps every record."""

    @staticmethod
    def names() -> set[str]:
        """Names of every user-mistake class, wherever it is defined (``RegistryError`` lives in
        transferflow.storage.registry): walked at each record, as modules load later."""
        found, todo = set(), [TransferflowError]
        while todo:
            cls = todo.pop()
            found.add(cls.__name__)
            todo.extend(cls.__subclasses__())
        return found

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if is_user_error(exc) or getattr(record, "user_error", False):
            return False
        # ERROR lines, and the INFO "Finished in state Failed('... exception DataError: ...')".
        if record.name.startswith("prefect."):
            text = record.getMessage()
            return not _environment_failure_text(text) and not any(
                f"exception {n}:" in text or f"exception: {n}:" in text or f"{n}(" in text
                for n in self.names()
            )
        return True


def _environment_failure_text(text: str) -> bool:
    """Whether a log line repeats an environment failure: ``[Errno 28] ...`` (any case) or
    ``OSError(28, ...)``."""
    lowered = text.lower()
    return any(f"[errno {n}]" in lowered or f"error({n}," in lowered for n in ENVIRONMENT_ERRNOS)


def quiet_user_errors_on_console() -> None:
    """Install :class:`ConsoleUserErrorFilter` on Prefect's console handler (idempotent)."""
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, ConsoleUserErrorFilter) for f in handler.filters
        ):
            handler.addFilter(ConsoleUserErrorFilter())


def failure_cause(state) -> str:
    """One line saying why a run failed: the gate and subject, or the file and problem."""
    from transferflow.errors import GateFailedError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # noqa: BLE001 - the result itself may be unreadable
        exc = err
    if isinstance(exc, GateFailedError):
        first = exc.failures[0].describe() if exc.failures else ""
        return f"gate '{exc.gate}' failed for {exc.subject}: {first}"
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return state.message or "unknown cause"


def log_failure(flow, flow_run, state) -> None:
    """``on_failure`` hook: log the cause in one line, in the run's log (automations and the UI
    show it)."""
    from prefect.logging.loggers import flow_run_logger

    flow_run_logger(flow_run, flow).error(
        "Run failed: %s", failure_cause(state), extra={"user_error": _is_user_error(state)}
    )


def _is_user_error(state) -> bool:
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001
        return False
    return is_user_error(exc)
