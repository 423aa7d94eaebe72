"""Errors that mean "the user's input is wrong", as opposed to bugs.

The CLI prints these as one paragraph without a traceback and exits non-zero; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

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
