"""A bounded sample of a large domain: its files are read in chunks and at most ``max_rows`` rows
are kept, so reading a source of any size takes memory of the order of the sample, not the file.

The sample is a *bottom-k* sample on a seeded hash of each row's text: a row is kept when its
hash is among the ``max_rows`` smallest. That makes it uniform over the rows, the same for the same
rows whatever their order or the chunk size, and computable in one pass holding ``max_rows`` rows
plus one chunk. Rows with the same text share a hash, so repeats are kept or dropped together (the
repeat rule downstream then sees them as in the file).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferflow.config.settings import DatasetConfig
from transferflow.data.labels import _is_number
from transferflow.data.schema import LABEL, ROW, TEXT
from transferflow.data.tables import iter_table, to_text_label
from transferflow.errors import DataError

CHUNK_ROWS = 100_000  # rows parsed at a time: ~50-100 MB of review text in pandas


def _hash_key(seed: int) -> str:
    return f"{seed % 10**16:016d}"  # pandas wants a 16-character key


def sample_domain_files(
    paths: list[Path | str],
    cfg: DatasetConfig,
    max_rows: int,
    seed: int,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[pd.DataFrame, int]:
    """Read a domain's files in chunks and keep a seeded uniform sample of at most ``max_rows``.

    Args:
        paths: the files, in order.
        cfg: the domain's settings (columns).
        max_rows: the most rows kept.
        seed: the sample's seed.
        chunk_rows: rows parsed at a time.

    Returns:
        ``(rows, rows_read)``: the kept rows as :func:`~transferflow.data.tables.to_text_label`
        frames give them (``file``/``row`` name each row's place), in file order; and how many
        data rows the files hold.
    """
    kept: pd.DataFrame | None = None
    total = 0
    for index, path in enumerate(paths):
        first = 1
        kinds: dict[bool, list[int]] = {True: [], False: []}  # number label? -> first rows
        for raw in iter_table(path, chunk_rows):
            part = to_text_label(raw, cfg, path, first_row=first)
            first += len(raw)
            total += len(raw)
            _label_kinds(part, kinds, path, cfg.label_column)
            part["_file"] = index
            part["_key"] = pd.util.hash_pandas_object(
                part[TEXT].fillna(""), index=False, hash_key=_hash_key(seed)
            ).to_numpy()
            kept = part if kept is None else pd.concat([kept, part], ignore_index=True)
            if len(kept) > max_rows:
                # Ties (equal texts) are broken by place, so the sample is deterministic.
                kept = kept.sort_values(["_key", "_file", ROW], kind="stable").head(max_rows)
    assert kept is not None  # iter_table yields at least one frame or raises
    kept = kept.sort_values(["_file", ROW], kind="stable")
    return kept.drop(columns=["_file", "_key"]).reset_index(drop=True), total


def _label_kinds(
    part: pd.DataFrame, kinds: dict[bool, list[int]], path: Path | str, column: str
) -> None:
    """Refuse a file whose chunks mix number and named labels (each chunk is checked alone by
    :func:`~transferflow.data.tables.to_text_label`)."""
    labels = part[LABEL].dropna()
    for number in (True, False):
        rows = part.loc[labels.index[labels.map(_is_number) == number], ROW]
        kinds[number] += rows.head(3 - len(kinds[number])).tolist()
    if kinds[True] and kinds[False]:
        raise DataError(
            f"{path}: column '{column}' mixes number labels (data rows "
            f"{', '.join(map(str, kinds[True]))}...) with named labels (data rows "
            f"{', '.join(map(str, kinds[False]))}...). Use one kind of label for every row, "
            "e.g. map 1/0 to positive/negative."
        )
