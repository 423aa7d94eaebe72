"""Labelled text tables: the text and label of each row, and the train/test splits (the files
themselves are read by :mod:`transferflow.data.readers`).

Every domain ends up as two frames with the columns ``text`` (str) and ``label`` (str). Labels are
strings everywhere inside transferflow so that ``1`` read from a CSV and ``1`` read from Parquet are
the same class; integral floats (``1.0``, produced by missing values in a numeric column) become
``"1"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from transferflow.config.settings import DatasetConfig
from transferflow.data.labels import (
    _is_number,
    _rows,
    canonical_label,
    mixed_labels_error,
    refuse_non_scalar,
)
from transferflow.data.labels import label_kind as label_kind
from transferflow.data.readers import iter_table as iter_table
from transferflow.data.readers import read_table as read_table
from transferflow.data.readers import table_format as table_format
from transferflow.data.schema import FILE, LABEL, ROW, TEXT, missing_columns
from transferflow.data.schema import normalise_text as normalise_text
from transferflow.data.splits import balanced_sample, stratified_split
from transferflow.errors import DataError
from transferflow.storage.files import location_path


def to_text_label(
    frame: pd.DataFrame, cfg: DatasetConfig, path: Path | str, first_row: int = 1
) -> pd.DataFrame:
    """Select and normalise the text and label columns of a raw frame.

    Several text columns are joined with a space, skipping missing parts; a row whose parts are all
    missing or blank gets a missing text (the data gate reports it, with its row number).

    Args:
        frame: raw frame from :func:`read_table`.
        cfg: the domain's settings (text and label columns).
        path: the file the frame came from, for error messages.
        first_row: the data row number of the frame's first row (a file read in chunks).

    Returns:
        A frame with the columns ``text`` and ``label`` (strings or missing), plus ``file`` (the
        file's name) and ``row`` (1-based data row in that file, header not counted).

    Raises:
        DataError: when configured columns are missing (the message lists those present).
    """
    wanted = [*cfg.text_columns, cfg.label_column]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise missing_columns(path, missing, [str(c) for c in frame.columns], cfg.label_column)
    for col in cfg.text_columns:
        refuse_non_scalar(frame[col], col, path, "text", first_row - 1)
    refuse_non_scalar(frame[cfg.label_column], cfg.label_column, path, "label", first_row - 1)
    parts = frame[cfg.text_columns].astype("string").fillna("")
    joined = parts.agg(" ".join, axis=1) if len(cfg.text_columns) > 1 else parts.iloc[:, 0]
    text = [t.strip() or None for t in joined.tolist()]
    labels = [canonical_label(v) for v in frame[cfg.label_column].tolist()]
    numeric = [lab is not None and _is_number(lab) for lab in labels]
    named = [lab is not None and not _is_number(lab) for lab in labels]
    if any(numeric) and any(named):
        raise mixed_labels_error(
            path, cfg.label_column, _rows(numeric, first_row), _rows(named, first_row)
        )
    return pd.DataFrame(
        {
            TEXT: pd.Series(text, dtype=object),
            LABEL: pd.Series(labels, dtype=object),
            FILE: location_path(path).name,
            ROW: np.arange(first_row, first_row + len(frame)),
        }
    )


def read_domain_files(paths: list[Path | str], cfg: DatasetConfig) -> pd.DataFrame:
    """Read and concatenate several files of one domain into one ``text``/``label`` frame.

    Args:
        paths: the files to read, in order.
        cfg: the domain's settings.

    Returns:
        The concatenated, normalised frame.
    """
    frames = [to_text_label(read_table(p), cfg, p) for p in paths]
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class DomainData:
    """One domain's prepared data.

    ``pool`` is every training row read from the files (before any cap): its texts, without labels,
    may train Word2Vec. ``train`` is the labelled rows the models learn from (all of them: model
    selection uses out-of-fold predictions, no hold-out).
    """

    name: str
    pool: pd.DataFrame
    train: pd.DataFrame
    test: pd.DataFrame
    test_from_split: bool
    rows_read: int  # data rows in the training files (more than the pool holds when sampled)
    # Texts without labels (label missing): the unlabelled files' rows and, by default, the
    # training rows beyond the label cap; ``None`` when there are none.
    unlabeled: pd.DataFrame | None = None


def load_domain(
    cfg: DatasetConfig,
    test_size: float,
    seed: int,
    train_size: int | None = None,
    max_rows: int | None = None,
    *,
    beyond_cap: bool = True,
    unlabeled_max_rows: int | None = None,
) -> DomainData:
    """Read one domain and produce its pool, train and test frames.

    Args:
        cfg: where the files are and which columns to use.
        test_size: test share when ``cfg.test_paths`` is empty.
        seed: seed for the splits and the sample.
        train_size: optional cap on labelled training rows, balanced by class (the test part and
            the pool are unaffected).
        max_rows: read the training files in chunks and keep a seeded uniform sample of at most
            this many rows (:mod:`transferflow.data.sampling`); ``None``: every row.
        beyond_cap: the training rows beyond ``train_size`` become unlabelled texts (else they
            are not used: the pool is the labelled rows).
        unlabeled_max_rows: the most rows kept of ``cfg.unlabeled_paths`` (a seeded sample).

    Returns:
        The domain's data.
    """
    if not cfg.paths:  # a target with unlabelled texts only (a cold start): no labelled rows
        pool = pd.DataFrame({TEXT: [], LABEL: [], FILE: [], ROW: []}).astype(
            {TEXT: object, LABEL: object, FILE: object, ROW: np.int64}
        )
        rows_read = 0
    elif max_rows is None:
        pool = read_domain_files(cfg.paths, cfg)
        rows_read = len(pool)
    else:
        from transferflow.data.sampling import sample_domain_files

        pool, rows_read = sample_domain_files(cfg.paths, cfg, max_rows, seed)
    if cfg.test_paths:
        test = read_domain_files(cfg.test_paths, cfg)
        from_split = False
    elif not cfg.paths:  # nothing labelled to split a test set from: no test set
        test, from_split = pool.copy(), False
    else:
        try:
            pool, test = stratified_split(pool, test_size, seed)
        except DataError as exc:
            files = ", ".join(str(p) for p in cfg.paths)
            raise DataError(
                f"{cfg.name} ({files}): {exc} Give more rows, or a test file of its own."
            ) from None
        from_split = True
    # A capped label budget is drawn from distinct rows: a repeat would spend a label on a text
    # already labelled.
    train = (
        balanced_sample(pool.drop_duplicates(subset=[TEXT, LABEL]), train_size, seed)
        if train_size is not None
        else pool
    )
    unlabeled = []
    if train_size is not None:
        labelled = pd.MultiIndex.from_frame(train[[FILE, ROW]])
        beyond = ~pd.MultiIndex.from_frame(pool[[FILE, ROW]]).isin(labelled)
        if beyond_cap and beyond.any():
            unlabeled.append(pool[beyond].assign(**{LABEL: None}))
        else:  # as if the files held only the labelled rows
            pool = pool[~beyond].reset_index(drop=True)
    if cfg.unlabeled_paths:
        from transferflow.data.sampling import sample_domain_files

        rows, _ = sample_domain_files(
            cfg.unlabeled_paths, cfg, unlabeled_max_rows or 2**62, seed, labelled=False
        )
        unlabeled.append(rows)
    return DomainData(
        name=cfg.name,
        pool=pool,
        train=train,
        test=test,
        test_from_split=from_split,
        rows_read=rows_read,
        unlabeled=pd.concat(unlabeled, ignore_index=True) if unlabeled else None,
    )
