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


def missing_columns(
    path: object,
    missing: list[str],
    present: list[str],
    label_column: str | None = None,
    role: str | None = None,
) -> DataError:
    """The error for a file without the configured columns: which are missing, which are there,
    which setting names them (``label_column``: the configured label column; ``role``: source or
    target, when known) and :func:`separator_hint`."""
    section = f"data.{role}" if role else "data.<source|target>"
    settings = []
    if any(c != label_column for c in missing):
        settings.append(
            "the text columns with --text-column NAME (repeat for several; both domains) or, "
            f"for one domain, --set {section}.text_columns=[NAME, ...]"
        )
    if label_column is not None and label_column in missing:
        settings.append(
            "the label column with --label-column NAME (both domains) or, for one domain, "
            f"--set {section}.label_column=NAME"
        )
    how = "Name " + "; and ".join(settings) + "."  # something is missing: one of the two
    return DataError(
        f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}. "
        f"Columns present: {', '.join(repr(str(c)) for c in present)}. "
        f"{how}{separator_hint(present)}"
    )
