"""Reading one data file (CSV, TSV, Parquet, JSON Lines; compressed; local or at an fsspec
URL) into raw frames, whole or in chunks, with errors that name the file, line and what to do.
The text/label normalisation of those frames is :mod:`transferflow.data.tables`.
"""

from __future__ import annotations

import lzma
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from transferflow.data.schema import separator_hint
from transferflow.errors import DataError, environment_failure
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
    frames = _frames(local, path, kind, chunk_rows)
    first = True
    while True:
        try:
            frame = next(frames)
        except StopIteration:
            if first:  # no frame at all (the readers yield an empty one today): the same error
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
    """The parser's frames, its errors (and those of the structure checks) turned into
    :class:`DataError`."""
    try:
        if chunk_rows is not None:  # whole-file reads check after parsing (clearer errors first)
            _check_structure(local, path, kind)
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
    except OSError as exc:
        if environment_failure(exc) is not None:  # the machine (a read error), not the file
            raise
        raise _parse_error(local, path, kind, exc) from None
    except (pd.errors.ParserError, ValueError) as exc:
        raise _parse_error(local, path, kind, exc) from None


def _parse_error(local: Path, path: Path | str, kind: str, exc: Exception) -> DataError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if kind == "parquet" and "Multiple matches for FieldRef" in first:
        name = first.split("FieldRef.Name(", 1)[-1].split(")", 1)[0]
        return DataError(
            f"{path}: the file names column '{name}' more than once. Give each column its own name."
        )
    if kind == "jsonl":
        first = _bad_json_line(local) or first
    hint = separator_hint(header_columns(local) or []) if kind == "csv" else ""
    return DataError(f"{path}: cannot be parsed as {kind.upper()}: {first.rstrip('.')}.{hint}")


def header_columns(local: Path, sep: str = ",") -> list[str] | None:
    """The column names pandas reads from a CSV/TSV file's header alone (the preflight's
    missing-columns check and a parse error's separator hint both read them so), or None when
    even the header cannot be read (the file's reading then reports why)."""
    try:
        header = pd.read_csv(local, sep=sep, nrows=0, dtype=str, encoding="utf-8")
    except Exception:  # noqa: BLE001 - zlib/lzma/zip errors too: reported, with the reason, when read
        return None
    return [str(c) for c in header.columns]


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
