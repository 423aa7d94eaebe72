"""The columns every prepared domain frame has, and when two texts count as the same."""

from __future__ import annotations

TEXT = "text"
LABEL = "label"
# Where each row came from, so data-quality reports can point at a file and a data row.
FILE = "file"
ROW = "row"
COLUMNS = [TEXT, LABEL, FILE, ROW]


def normalise_text(text: object) -> str:
    """Case-folded text with whitespace collapsed: the form in which texts are compared for
    duplicates and train/test leakage."""
    return " ".join(str(text).lower().split()) if isinstance(text, str) else ""
