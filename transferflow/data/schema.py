"""The columns every prepared domain frame has, and when two texts count as the same."""

from __future__ import annotations

from transferflow.errors import DataError

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


def separator_hint(header: list[str]) -> str:
    """When a comma-separated header came out as one column holding another separator (a
    spreadsheet's export with ';', say): a sentence saying so; else ``""``."""
    if len(header) != 1:
        return ""
    others = ((";", "';'"), ("|", "'|'"), ("\t", "tabs"))
    seps = [name for sep, name in others if sep in header[0]]
    if not seps:
        return ""
    return (
        f" The header looks separated by {seps[0]}: save the file comma-separated (.csv) or "
        "tab-separated (.tsv)."
    )


def missing_columns(path: object, missing: list[str], present: list[str]) -> DataError:
    """The error for a file without the configured columns: which are missing, which are there
    (and :func:`separator_hint`)."""
    return DataError(
        f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}. "
        f"Columns present: {', '.join(repr(str(c)) for c in present)}. "
        f"Set the text/label column settings to match the file.{separator_hint(present)}"
    )
