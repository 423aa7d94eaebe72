"""Reading labelled text tables and preparing train/test splits.

Every domain ends up as two frames with the columns ``text`` (str) and ``label`` (str). Labels are
strings everywhere inside transferflow so that ``1`` read from a CSV and ``1`` read from Parquet are
the same class; integral floats (``1.0``, produced by missing values in a numeric column) become
``"1"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from transferflow.config import DatasetConfig
from transferflow.errors import DataError

TEXT = "text"
LABEL = "label"
# Where each row came from, so data-quality reports can point at a file and a data row.
FILE = "file"
ROW = "row"
COLUMNS = [TEXT, LABEL, FILE, ROW]

# Extension -> reader kind. Compression suffixes (.gz, .bz2, .zip, .xz, .zst) are stripped first and
# left to pandas, which infers them from the name.
_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSION = {".gz", ".bz2", ".zip", ".xz", ".zst"}


def table_format(path: Path) -> str:
    """Decide how to read a file from its extension.

    Args:
        path: the data file.

    Returns:
        One of ``csv``, ``tsv``, ``parquet``, ``jsonl``.

    Raises:
        DataError: for an extension transferflow cannot read.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in _FORMATS:
        known = ", ".join(sorted(_FORMATS))
        raise DataError(
            f"{path}: cannot read files with extension '{ext or '(none)'}'. "
            f"Supported extensions: {known} (optionally compressed: .gz, .bz2, .zip, .xz, .zst)."
        )
    return _FORMATS[ext]


def _utf8_error(path: Path, exc: UnicodeDecodeError) -> DataError:
    # pandas reports a byte offset inside its read buffer; find the real line by decoding the file
    # line by line (memory stays bounded by the longest line).
    offset = 0
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return DataError(
                    f"{path}: not valid UTF-8 at byte offset {offset + bad.start} (line {lineno}): "
                    f"{bad.object[bad.start:bad.end]!r}. Save the file as UTF-8 and try again."
                )
            offset += len(line)
    return DataError(f"{path}: not valid UTF-8 ({exc.reason}). Save the file as UTF-8.")


def read_table(path: Path) -> pd.DataFrame:
    """Read one CSV/TSV/Parquet/JSONL file into a frame of strings, with clear errors.

    Args:
        path: the data file.

    Returns:
        The raw frame (all columns as read; CSV/TSV values as strings).

    Raises:
        DataError: missing or empty file, unknown extension, unparsable content, bad encoding.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found.")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; expected a data file.")
    kind = table_format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); expected a header and data rows.")
    try:
        if kind in ("csv", "tsv"):
            # dtype=str keeps labels and ids exactly as written; the default quoting handles
            # fields with embedded newlines and doubled quotes.
            frame = pd.read_csv(
                path,
                sep="," if kind == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8",
            )
        elif kind == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, exc) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no header and no rows.") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: cannot be parsed as {kind.upper()}: {first}") from None
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows.")
    return frame


def _label_to_str(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text or None


def to_text_label(frame: pd.DataFrame, cfg: DatasetConfig, path: Path) -> pd.DataFrame:
    """Select and normalise the text and label columns of a raw frame.

    Several text columns are joined with a space, skipping missing parts; a row whose parts are all
    missing or blank gets a missing text (the data gate reports it, with its row number).

    Args:
        frame: raw frame from :func:`read_table`.
        cfg: the domain's settings (text and label columns).
        path: the file the frame came from, for error messages.

    Returns:
        A frame with the columns ``text`` and ``label`` (strings or missing), plus ``file`` (the
        file's name) and ``row`` (1-based data row in that file, header not counted).

    Raises:
        DataError: when configured columns are missing (the message lists those present).
    """
    wanted = [*cfg.text_columns, cfg.label_column]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        present = ", ".join(repr(str(c)) for c in frame.columns)
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}. "
            f"Columns present: {present}. Set the text/label column settings to match the file."
        )
    parts = frame[cfg.text_columns].astype("string").fillna("")
    joined = parts.agg(" ".join, axis=1) if len(cfg.text_columns) > 1 else parts.iloc[:, 0]
    text = [t.strip() or None for t in joined.tolist()]
    labels = [_label_to_str(v) for v in frame[cfg.label_column].tolist()]
    return pd.DataFrame(
        {
            TEXT: pd.Series(text, dtype=object),
            LABEL: pd.Series(labels, dtype=object),
            FILE: path.name,
            ROW: np.arange(1, len(frame) + 1),
        }
    )


def read_domain_files(paths: list[Path], cfg: DatasetConfig) -> pd.DataFrame:
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
    """One domain's prepared data."""

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    test_from_split: bool


def stratified_split(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into train and test, keeping class shares when every class has 2+ rows.

    Rows with a missing label are kept in the training part so the data gate can report them.

    Args:
        frame: a ``text``/``label`` frame.
        test_size: share of rows for the test part, in (0, 1).
        seed: random seed.

    Returns:
        (train, test) frames with reset indexes.

    Raises:
        DataError: when the frame is too small to give both parts a row.
    """
    rng = np.random.default_rng(seed)
    labelled = frame[frame[LABEL].notna()]
    test_idx: list[int] = []
    counts = labelled[LABEL].value_counts()
    if len(labelled) < 2:
        raise DataError(f"Only {len(labelled)} labelled row(s): too few to split into train/test.")
    if (counts >= 2).all():
        for label in sorted(counts.index):
            idx = labelled.index[labelled[LABEL] == label].to_numpy()
            n_test = max(1, int(round(len(idx) * test_size)))
            n_test = min(n_test, len(idx) - 1)
            test_idx.extend(rng.choice(idx, size=n_test, replace=False).tolist())
    else:  # a class with a single row cannot be in both parts; the gate will flag it later
        n_test = max(1, int(round(len(labelled) * test_size)))
        test_idx = rng.choice(labelled.index.to_numpy(), size=n_test, replace=False).tolist()
    is_test = frame.index.isin(test_idx)
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def balanced_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Take ``size`` rows spread as evenly as possible over the classes.

    Classes with fewer rows than their share give all they have; the shortfall goes to the others.

    Args:
        frame: a ``text``/``label`` frame.
        size: rows wanted.
        seed: random seed.

    Returns:
        The sampled rows in a seeded random order (all rows when ``size`` >= len(frame)).
    """
    if size >= len(frame):
        return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    groups = {
        lab: rng.permutation(frame.index[frame[LABEL] == lab].to_numpy())
        for lab in sorted(frame[LABEL].dropna().unique())
    }
    quota = dict.fromkeys(groups, 0)
    left = size
    while left > 0:
        open_ = [lab for lab in groups if quota[lab] < len(groups[lab])]
        if not open_:
            break
        share = max(1, left // len(open_))
        for lab in open_:
            take = min(share, len(groups[lab]) - quota[lab], left)
            quota[lab] += take
            left -= take
            if left == 0:
                break
    chosen = np.concatenate([groups[lab][: quota[lab]] for lab in groups]) if groups else []
    return frame.loc[rng.permutation(chosen)].reset_index(drop=True)


def load_domain(
    cfg: DatasetConfig,
    test_size: float,
    seed: int,
    train_size: int | None = None,
) -> DomainData:
    """Read one domain and produce its train and test frames.

    Args:
        cfg: where the files are and which columns to use.
        test_size: test share when ``cfg.test_paths`` is empty.
        seed: seed for the split and the sample.
        train_size: optional cap on training rows, balanced by class (the test part is unaffected).

    Returns:
        The domain's data.
    """
    train = read_domain_files(cfg.paths, cfg)
    if cfg.test_paths:
        test = read_domain_files(cfg.test_paths, cfg)
        from_split = False
    else:
        train, test = stratified_split(train, test_size, seed)
        from_split = True
    if train_size is not None:
        train = balanced_sample(train, train_size, seed)
    return DomainData(name=cfg.name, train=train, test=test, test_from_split=from_split)


def label_kind(labels: pd.Series) -> str:
    """``numeric`` when every label looks like a number, else ``text``."""
    values = labels.dropna().astype(str)
    return "numeric" if len(values) and values.str.fullmatch(r"-?\d+(\.\d+)?").all() else "text"
