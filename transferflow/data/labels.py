"""Labels compare by value: one spelling per label, whatever the file format wrote."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from transferflow.errors import DataError

# Spellings of "no value" that spreadsheets and exports write into label cells: never a class.
MISSING_SPELLINGS = frozenset({"nan", "null", "none", "n/a", "na", "<na>"})


_INTEGER = re.compile(r"[+-]?[0-9]+")


def canonical_label(value: object) -> str | None:
    """The one spelling of a label, so labels compare by value across files and formats.

    ``1``, ``1.0``, ``"1"``, ``"1.0"`` and ``"+1"`` are all ``"1"``; other finite numbers are
    written as Python writes floats (``"0.5"``); ``True`` and ``"TRUE"`` are ``"true"``; text is
    stripped. Missing values and their spellings (``NaN``, ``null``, ``n/a``...) are ``None``.
    """
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    text = str(value).strip()
    if text.lower() in MISSING_SPELLINGS or not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower()
    if _INTEGER.fullmatch(text):
        return str(int(text))
    try:
        number = float(text)
    except (ValueError, OverflowError):
        return text
    if "_" in text or not math.isfinite(number):
        return text  # '1_0', 'inf': not how anyone writes a numeric label
    return str(int(number)) if number.is_integer() else repr(number)


def _non_scalar(value: object) -> bool:
    return isinstance(value, (list, tuple, dict, set, np.ndarray))


def refuse_non_scalar(
    values: pd.Series, column: str, path: Path | str, what: str, offset: int = 0
) -> None:
    """Raise when a text or label column holds lists or records (Parquet and JSON Lines can):
    turned into strings they would become texts like ``"['a', 'b']"`` or labels like
    ``"['negative']"``.

    Args:
        values: the column.
        column: its name.
        path: the file, for the message.
        what: ``text`` or ``label``.
        offset: data rows before this chunk (row numbers count from the file's first data row).

    Raises:
        DataError: naming the column and the first rows.
    """
    if values.dtype != object:
        return  # numbers and strings only
    odd = [_non_scalar(v) for v in values.tolist()]
    if any(odd):
        rows = _rows(odd, offset + 1)
        advice = (
            "Store one string per row in the text column (join the parts)."
            if what == "text"
            else "Store one label per row (a text or a number)."
        )
        raise DataError(
            f"{path}: column '{column}' holds lists or records, not "
            f"{'text' if what == 'text' else 'one label'}, in data row(s) "
            f"{rows}. {advice}"
        )


def mixed_labels_error(path, column: str, number_rows: str, named_rows: str) -> DataError:
    """The error for a label column that mixes number labels with named ones (the rows given
    as text, e.g. ``"3, 9 and 2 more"``)."""
    return DataError(
        f"{path}: column '{column}' mixes number labels (data rows {number_rows}) with named "
        f"labels (data rows {named_rows}). Use one kind of label for every row, e.g. map 1/0 to "
        "positive/negative."
    )


def _rows(mask: list[bool], first: int = 1, limit: int = 3) -> str:
    rows = [str(i + first) for i, bad in enumerate(mask) if bad]
    return ", ".join(rows[:limit]) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _is_number(label: str) -> bool:
    try:
        return math.isfinite(float(label)) and "_" not in label
    except (ValueError, OverflowError):
        return False


def label_kind(labels: pd.Series) -> str:
    """``numeric`` when every label looks like a number, else ``text``."""
    values = labels.dropna().astype(str)
    return "numeric" if len(values) and all(_is_number(v) for v in values) else "text"


def same_but_for_case(source: list[str], target: list[str]) -> list[tuple[str, str]]:
    """The (source, target) label pairs that differ only in letter case, when the two label sets
    are the same but for case (``[]`` otherwise): ``Positive`` and ``positive`` are then most
    likely one class written two ways, which the user should know before training on both."""
    if set(source) == set(target):
        return []
    folded_s = {s.casefold(): s for s in source}
    folded_t = {t.casefold(): t for t in target}
    if len(folded_s) != len(source) or folded_s.keys() != folded_t.keys():
        return []
    return [(folded_s[k], folded_t[k]) for k in sorted(folded_s) if folded_s[k] != folded_t[k]]


def case_note(source: list[str], target: list[str]) -> str:
    """The sentence telling the user that two label sets differ only in letter case (naming the
    pairs), or ``""`` when they do not: one wording for the log and the report."""
    pairs = same_but_for_case(source, target)
    if not pairs:
        return ""
    named = ", ".join(f"{s!r} / {t!r}" for s, t in pairs)
    return (
        f"They differ only in letter case ({named}): if they are the same classes, write them "
        "the same way in both files."
    )
