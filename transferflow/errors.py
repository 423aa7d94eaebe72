"""Errors that mean "the user's input is wrong", as opposed to bugs.

The CLI prints these as one paragraph without a traceback and exits non-zero; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass


class TransferflowError(Exception):
    """Base class of every error caused by the user's data, files or settings."""

    exit_code = 2


class ConfigError(TransferflowError):
    """A setting is missing, of the wrong type or out of range."""


class DataError(TransferflowError):
    """An input file cannot be read as the configuration says (missing, empty, wrong columns...)."""


class VectorsError(TransferflowError):
    """A word-vectors file is malformed or does not match the configuration."""


class UnreadableModelError(TransferflowError):
    """Saved model files fail the safe load (callers say which model; nothing from them ran)."""


@dataclass(frozen=True)
class FailedCheck:
    """One failed data-quality expectation, as reported to the user."""

    gate: str
    expectation: str
    column: str | None
    observed: str
    expected: str
    hint: str | None = None  # plain words: what is wrong, the setting, what to do

    def describe(self) -> str:
        """One line: what is wrong in words (when known), then the expectation, its column,
        observed versus expected."""
        where = f" on column '{self.column}'" if self.column else ""
        check = f"{self.expectation}{where}: observed {self.observed}, expected {self.expected}"
        return f"{self.hint} [{check}]" if self.hint else check


class GateFailedError(TransferflowError):
    """A data-quality gate failed; carries every failed check so the report can list them."""

    exit_code = 3

    def __init__(self, gate: str, failures: list[FailedCheck], subject: str = "") -> None:
        self.gate = gate
        self.failures = failures
        self.subject = subject
        about = f" for {subject}" if subject else ""
        lines = "\n".join(f"  - {f.describe()}" for f in failures)
        super().__init__(f"Gate '{gate}' failed{about} ({len(failures)} check(s)):\n{lines}")


class EnvironmentFailure(TransferflowError):
    """The machine refused a read or write: disk full, read-only folder, permission denied..."""


# errno -> what to do about it. These are the machine's state, not bugs: the CLI prints them as
# one paragraph (exit 2), the run's logs carry no traceback for them.
_ENVIRONMENT = {
    errno.ENOSPC: "free disk space, or choose a folder on another disk",
    errno.EDQUOT: "free space within your disk quota, or choose another folder",
    errno.EFBIG: "the file is larger than this file system or your limits allow",
    errno.EROFS: "the file system is read-only: choose a writable folder",
    errno.EACCES: "choose a folder you may write to, or change its permissions",
    errno.EPERM: "choose a folder you may write to, or change its permissions",
    errno.ENOTDIR: "a folder on the path is a file: choose another path",
    errno.EISDIR: "the path is a folder: give a file path",
    errno.ENAMETOOLONG: "choose a shorter path or name",
    errno.ELOOP: "the path has a loop of symbolic links: fix or remove them",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and try again",
    errno.ENOENT: "a folder on the path does not exist or cannot be made there (a virtual file "
    "system such as /proc, or a folder removed while the command ran): choose another path",
    errno.EIO: "the disk reported an input/output error: check it, or choose another disk",
    errno.EPIPE: "the program reading the output stopped before every row was written (a pipe "
    "into head, say): give an output file to keep every row",
}


ENVIRONMENT_ERRNOS = frozenset(_ENVIRONMENT)


def environment_failure(exc: BaseException) -> EnvironmentFailure | None:
    """The readable error for an OSError caused by the machine's state, else None (a bug).

    Args:
        exc: any exception.

    Returns:
        An :class:`EnvironmentFailure` naming the path, the cause and what to do, or None.
    """
    if isinstance(exc, EnvironmentFailure):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT:
        return None
    import os

    path = exc.filename if exc.filename is not None else "a file"
    cause = exc.strerror or os.strerror(exc.errno)
    return EnvironmentFailure(
        f"cannot write or read {path}: {cause}. {_ENVIRONMENT[exc.errno][0].upper()}"
        f"{_ENVIRONMENT[exc.errno][1:]}, then run the command again; nothing was registered or "
        "half-written."
    )


def is_user_error(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a user mistake or an environment failure (printed without traceback)."""
    return isinstance(exc, TransferflowError) or (
        exc is not None and environment_failure(exc) is not None
    )
