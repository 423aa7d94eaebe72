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
from transferflow.data.labels import _is_number, mixed_labels_error
from transferflow.data.schema import LABEL, ROW, TEXT
from transferflow.data.tables import iter_table, to_text_label

CHUNK_ROWS = 100_000  # rows parsed at a time: ~50-100 MB of review text in pandas


def _hash_key(seed: int) -> str:
    return f"{seed % 10**16:016d}"  # pandas wants a 16-character key


def sample_domain_files(
    paths: list[Path | str],
    cfg: DatasetConfig,
    max_rows: int,
    seed: int,
    chunk_rows: int = CHUNK_ROWS,
    *,
    labelled: bool = True,
) -> tuple[pd.DataFrame, int]:
    """Read a domain's files in chunks and keep a seeded uniform sample of at most ``max_rows``.

    Args:
        paths: the files, in order.
        cfg: the domain's settings (columns).
        max_rows: the most rows kept.
        seed: the sample's seed.
        chunk_rows: rows parsed at a time.
        labelled: ``False`` for files of unlabelled texts: any label column is ignored (every
            row's label is missing).

    Returns:
        ``(rows, rows_read)``: the kept rows as :func:`~transferflow.data.tables.to_text_label`
        frames give them (``file``/``row`` name each row's place), in file order; and how many
        data rows the files hold.
    """
    kept: pd.DataFrame | None = None
    total = 0
    for index, path in enumerate(paths):
        first = 1
        kinds: dict[bool, int] = {}  # number labels? -> the first row with such a label
        for raw in iter_table(path, chunk_rows):
            if not labelled:
                raw = raw.assign(**{cfg.label_column: None})
            part = to_text_label(raw, cfg, path, first_row=first)
            first += len(raw)
            total += len(raw)
            # Each chunk holds one kind of label; across chunks the kinds may not mix either.
            if (first_label := _first_label(part)) is not None:
                kinds.setdefault(*first_label)
                if len(kinds) == 2:
                    raise mixed_labels_error(
                        path, cfg.label_column, str(kinds[True]), str(kinds[False])
                    )
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


def _first_label(part: pd.DataFrame) -> tuple[bool, int] | None:
    """Whether a chunk's labels are numbers, and the row of its first label (``None``: no
    label). One kind per chunk: :func:`~transferflow.data.tables.to_text_label` refused a mix."""
    labels = part[LABEL].dropna()
    if labels.empty:
        return None
    return _is_number(labels.iloc[0]), int(part.loc[labels.index[0], ROW])
