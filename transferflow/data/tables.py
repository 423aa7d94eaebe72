"""Reading labelled text tables and preparing train/test splits.

Every domain ends up as two frames with the columns ``text`` (str) and ``label`` (str). Labels are
strings everywhere inside transferflow so that ``1`` read from a CSV and ``1`` read from Parquet are
the same class; integral floats (``1.0``, produced by missing values in a numeric column) become
``"1"``.
"""

from __future__ import annotations

import lzma
import math
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferflow.config.settings import DatasetConfig
from transferflow.errors import DataError
from transferflow.storage.files import is_url, local_copy, location_path

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


def table_format(path: Path | str) -> str:
    """Decide how to read a file from its extension.

    Args:
        path: the data file.

    Returns:
        One of ``csv``, ``tsv``, ``parquet``, ``jsonl``.

    Raises:
        DataError: for an extension transferflow cannot read.
    """
    suffixes = [s.lower() for s in location_path(path).suffixes]
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


def _utf8_error(path: Path | str, exc: UnicodeDecodeError, local: Path | None = None) -> DataError:
    # pandas reports a byte offset inside its read buffer; find the real line by decoding the file
    # line by line (memory stays bounded by the longest line).
    offset = 0
    with open(local or path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as bad:
                return DataError(
                    f"{path}: not valid UTF-8 at byte offset {offset + bad.start} (line {lineno}): "
                    f"{bad.object[bad.start : bad.end]!r}. Save the file as UTF-8 and try again."
                )
            offset += len(line)
    return DataError(f"{path}: not valid UTF-8 ({exc.reason}). Save the file as UTF-8.")


def read_table(path: Path | str) -> pd.DataFrame:
    """Read one CSV/TSV/Parquet/JSONL file into a frame of strings, with clear errors.

    Args:
        path: the data file: a local path or an fsspec URL (``s3://``, ``gs://``, ... with the
            matching package installed), read from a local copy.

    Returns:
        The raw frame (all columns as read; CSV/TSV values as strings).

    Raises:
        DataError: missing or empty file, unknown extension, unparsable content, bad encoding.
    """
    try:
        local = local_copy(path)
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    if not is_url(path):
        path = local
    if not local.exists():
        raise DataError(f"{path}: file not found.")
    if local.is_dir():
        raise DataError(f"{path}: is a folder; expected a data file.")
    kind = table_format(path)
    if local.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty (0 bytes); expected a header and data rows.")
    try:
        if kind in ("csv", "tsv"):
            # dtype=str keeps labels and ids exactly as written; the default quoting handles
            # fields with embedded newlines and doubled quotes. Compression is inferred from the
            # name, which the local copy keeps.
            frame = pd.read_csv(
                local,
                sep="," if kind == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8",
            )
        elif kind == "parquet":
            frame = pd.read_parquet(local)
        else:
            frame = pd.read_json(local, lines=True, dtype=False, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _utf8_error(path, exc, local) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no header and no rows.") from None
    except EOFError:
        raise DataError(
            f"{path}: the compressed file is truncated (it ends before its data "
            "does). Copy or download it again."
        ) from None
    except (zlib.error, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise DataError(
            f"{path}: the compressed file is damaged ({exc}). Copy or download it again."
        ) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if kind == "parquet" and "Multiple matches for FieldRef" in first:
            name = first.split("FieldRef.Name(", 1)[-1].split(")", 1)[0]
            raise DataError(
                f"{path}: the file names column '{name}' more than once. Give each column its "
                "own name."
            ) from None
        if kind == "jsonl":
            first = _bad_json_line(local) or first
        raise DataError(f"{path}: cannot be parsed as {kind.upper()}: {first}") from None
    if frame.empty:
        raise DataError(f"{path}: has a header but no data rows.")
    if kind in ("csv", "tsv"):
        _check_header(local, path, "," if kind == "csv" else "\t")
    if kind == "jsonl":
        _check_json_keys(local, path)
    return frame


def _check_header(local: Path, path: Path | str, sep: str) -> None:
    """Refuse duplicated or blank column names (pandas would silently rename them)."""
    header = (
        pd.read_csv(
            local, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False, encoding="utf-8"
        )
        .iloc[0]
        .tolist()
    )
    blank = [i + 1 for i, name in enumerate(header) if not str(name).strip()]
    if blank:
        raise DataError(
            f"{path}: column {blank[0]} of the header has no name. Name every column "
            "(the text and label columns are chosen by name)."
        )
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in seen:
            raise DataError(
                f"{path}: the header names column '{name}' twice (columns "
                f"{seen[name] + 1} and {i + 1}). Give each column its own name."
            )
        seen[name] = i


def _check_json_keys(local: Path, path: Path | str) -> None:
    """Refuse a JSON Lines record that names a key twice (JSON parsers silently keep the last
    value, so one of the two texts or labels would vanish)."""
    import json

    def pairs(items: list[tuple[str, object]]) -> dict:
        keys = [k for k, _ in items]
        for key in keys:
            if keys.count(key) > 1:
                raise _RepeatedKey(key)
        return dict(items)

    with _open_text(local) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                json.loads(line, object_pairs_hook=pairs)
            except _RepeatedKey as exc:
                raise DataError(
                    f"{path}: line {number} names the key '{exc.args[0]}' twice. Give each "
                    "field its own name."
                ) from None
            except ValueError:
                return  # reported by the parser already


class _RepeatedKey(Exception):
    pass


def _open_text(path: Path):
    import bz2
    import gzip
    import lzma

    openers: dict[str, Callable[..., Any]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    return openers.get(Path(path).suffix.lower(), open)(path, "rt", encoding="utf-8")


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
        rows = _rows([False] * offset + odd)
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


def _rows(mask: list[bool], limit: int = 3) -> str:
    rows = [str(i + 1) for i, bad in enumerate(mask) if bad]
    return ", ".join(rows[:limit]) + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def _is_number(label: str) -> bool:
    try:
        return math.isfinite(float(label)) and "_" not in label
    except (ValueError, OverflowError):
        return False


def to_text_label(frame: pd.DataFrame, cfg: DatasetConfig, path: Path | str) -> pd.DataFrame:
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
    for col in cfg.text_columns:
        refuse_non_scalar(frame[col], col, path, "text")
    refuse_non_scalar(frame[cfg.label_column], cfg.label_column, path, "label")
    parts = frame[cfg.text_columns].astype("string").fillna("")
    joined = parts.agg(" ".join, axis=1) if len(cfg.text_columns) > 1 else parts.iloc[:, 0]
    text = [t.strip() or None for t in joined.tolist()]
    labels = [canonical_label(v) for v in frame[cfg.label_column].tolist()]
    numeric = [lab is not None and _is_number(lab) for lab in labels]
    named = [lab is not None and not _is_number(lab) for lab in labels]
    if any(numeric) and any(named):
        raise DataError(
            f"{path}: column '{cfg.label_column}' mixes number labels (data rows {_rows(numeric)}) "
            f"with named labels (data rows {_rows(named)}). Use one kind of label for every row, "
            "e.g. map 1/0 to positive/negative."
        )
    return pd.DataFrame(
        {
            TEXT: pd.Series(text, dtype=object),
            LABEL: pd.Series(labels, dtype=object),
            FILE: location_path(path).name,
            ROW: np.arange(1, len(frame) + 1),
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


def _bad_json_line(path: Path) -> str | None:
    """Where a JSON Lines file first goes wrong, as users count (line numbers from 1)."""
    import json

    try:
        with _open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    why = getattr(exc, "msg", str(exc))
                    return f"line {number} is not valid JSON ({why}): {line.strip()[:80]!r}"
                if not isinstance(value, dict):
                    return f"line {number} is not a JSON object: {line.strip()[:80]!r}"
    except (OSError, UnicodeDecodeError, EOFError):
        return None
    return None


def normalise_text(text: object) -> str:
    """Case-folded text with whitespace collapsed: the form in which texts are compared for
    duplicates and train/test leakage."""
    return " ".join(str(text).lower().split()) if isinstance(text, str) else ""


def stratified_split(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into train and test, keeping class shares, with duplicates kept together.

    Rows whose texts are equal after :func:`normalise_text` form one group and land on the same
    side: short reviews ("Great product.") repeat, and a text on both sides would be train/test
    leakage. Rows with a missing label stay in the training part so the data gate can report them.

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
    if len(labelled) < 2:
        raise DataError(f"Only {len(labelled)} labelled row(s): too few to split into train/test.")
    groups = labelled.groupby(labelled[TEXT].map(normalise_text), sort=True).groups
    # Each group is assigned to the test part as a whole, label by label (by its first row).
    by_label: dict[str, list[np.ndarray]] = {}
    for _, idx in sorted(groups.items()):
        idx = np.asarray(idx)
        by_label.setdefault(str(labelled.at[idx[0], LABEL]), []).append(idx)
    stratify = all(sum(len(g) for g in gs) >= 2 and len(gs) >= 2 for gs in by_label.values())
    pools = by_label if stratify else {"all": [g for gs in by_label.values() for g in gs]}
    test_idx: list[int] = []
    for label in sorted(pools):
        group_list = pools[label]
        n_rows = sum(len(g) for g in group_list)
        want = min(max(1, int(round(n_rows * test_size))), n_rows - 1)
        taken = 0
        for i in rng.permutation(len(group_list)):
            if taken >= want:
                break
            if taken + len(group_list[i]) > want and taken > 0:
                continue  # skip a large group that would overshoot; a smaller one may fit
            test_idx.extend(group_list[i].tolist())
            taken += len(group_list[i])
    is_test = frame.index.isin(test_idx)
    if is_test.all() or not is_test.any():
        raise DataError("Cannot split into train/test: every text is the same.")
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
    chosen = (
        np.concatenate([groups[lab][: quota[lab]] for lab in groups])
        if groups
        else np.array([], dtype=np.int64)
    )
    return frame.loc[rng.permutation(chosen)].reset_index(drop=True)


def load_domain(
    cfg: DatasetConfig,
    test_size: float,
    seed: int,
    train_size: int | None = None,
) -> DomainData:
    """Read one domain and produce its pool, train and test frames.

    Args:
        cfg: where the files are and which columns to use.
        test_size: test share when ``cfg.test_paths`` is empty.
        seed: seed for the splits and the sample.
        train_size: optional cap on labelled training rows, balanced by class (the test part and
            the pool are unaffected).

    Returns:
        The domain's data.
    """
    pool = read_domain_files(cfg.paths, cfg)
    if cfg.test_paths:
        test = read_domain_files(cfg.test_paths, cfg)
        from_split = False
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
    return DomainData(name=cfg.name, pool=pool, train=train, test=test, test_from_split=from_split)


def label_kind(labels: pd.Series) -> str:
    """``numeric`` when every label looks like a number, else ``text``."""
    values = labels.dropna().astype(str)
    return "numeric" if len(values) and all(_is_number(v) for v in values) else "text"
