"""Reading labelled text tables and preparing train/test splits.

Every domain ends up as two frames with the columns ``text`` (str) and ``label`` (str). Labels are
strings everywhere inside transferflow so that ``1`` read from a CSV and ``1`` read from Parquet are
the same class; integral floats (``1.0``, produced by missing values in a numeric column) become
``"1"``.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferflow.config.settings import DatasetConfig
from transferflow.data.labels import _is_number, _rows, canonical_label, refuse_non_scalar
from transferflow.data.labels import label_kind as label_kind
from transferflow.data.schema import FILE, LABEL, ROW, TEXT
from transferflow.data.schema import normalise_text as normalise_text
from transferflow.data.splits import balanced_sample, stratified_split
from transferflow.errors import DataError
from transferflow.storage.files import is_url, local_copy, location_path

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
    return next(iter_table(path))


def iter_table(path: Path | str, chunk_rows: int | None = None) -> Iterator[pd.DataFrame]:
    """Read one data file as :func:`read_table` does, in frames of at most ``chunk_rows`` rows
    (``None``: one frame), so that a file of any size is read in bounded memory.

    Raises:
        DataError: as :func:`read_table`, when the frame that meets the problem is read.
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
    if chunk_rows is not None:  # whole-file reads check these after parsing (clearer errors first)
        _check_structure(local, path, kind)
    frames = _frames(local, path, kind, chunk_rows)
    first = True
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            if first:  # a chunked reader of a header-only file yields nothing at all
                raise DataError(f"{path}: has a header but no data rows.") from None
            return
        if first and frame.empty:
            raise DataError(f"{path}: has a header but no data rows.")
        if first and chunk_rows is None:
            _check_structure(local, path, kind)
        first = False
        yield frame


def _check_structure(local: Path, path: Path | str, kind: str) -> None:
    if kind in ("csv", "tsv"):
        _check_header(local, path, "," if kind == "csv" else "\t")
    if kind == "jsonl":
        _check_json_keys(local, path)


def _frames(
    local: Path, path: Path | str, kind: str, chunk_rows: int | None
) -> Iterator[pd.DataFrame]:
    """The parser's frames, its errors turned into :class:`DataError`."""
    try:
        if kind in ("csv", "tsv"):
            # dtype=str keeps labels and ids exactly as written; the default quoting handles
            # fields with embedded newlines and doubled quotes. Compression is inferred from the
            # name, which the local copy keeps.
            options: dict[str, Any] = dict(
                sep="," if kind == "csv" else "\t",
                dtype=str,
                keep_default_na=False,
                na_values=[""],
                encoding="utf-8",
            )
            if chunk_rows is None:
                yield pd.read_csv(local, **options)
            else:
                with pd.read_csv(local, chunksize=chunk_rows, **options) as reader:
                    yield from reader
        elif kind == "parquet":
            if chunk_rows is None:
                yield pd.read_parquet(local)
            else:
                import pyarrow.parquet as pq

                handle = pq.ParquetFile(local)
                yielded = False
                for batch in handle.iter_batches(batch_size=chunk_rows):
                    yielded = True
                    yield batch.to_pandas()
                if not yielded:
                    yield handle.schema_arrow.empty_table().to_pandas()
        elif chunk_rows is None:
            yield pd.read_json(local, lines=True, dtype=False, encoding="utf-8")
        else:
            with pd.read_json(
                local, lines=True, dtype=False, encoding="utf-8", chunksize=chunk_rows
            ) as reader:
                yield from reader
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
        present = ", ".join(repr(str(c)) for c in frame.columns)
        raise DataError(
            f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}. "
            f"Columns present: {present}. Set the text/label column settings to match the file."
        )
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
        raise DataError(
            f"{path}: column '{cfg.label_column}' mixes number labels (data rows "
            f"{_rows(numeric, first_row)}) with named labels (data rows {_rows(named, first_row)})."
            " Use one kind of label for every row, "
            "e.g. map 1/0 to positive/negative."
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


def load_domain(
    cfg: DatasetConfig,
    test_size: float,
    seed: int,
    train_size: int | None = None,
    max_rows: int | None = None,
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

    Returns:
        The domain's data.
    """
    if max_rows is None:
        pool = read_domain_files(cfg.paths, cfg)
        rows_read = len(pool)
    else:
        from transferflow.data.sampling import sample_domain_files

        pool, rows_read = sample_domain_files(cfg.paths, cfg, max_rows, seed)
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
    return DomainData(
        name=cfg.name,
        pool=pool,
        train=train,
        test=test,
        test_from_split=from_split,
        rows_read=rows_read,
    )
