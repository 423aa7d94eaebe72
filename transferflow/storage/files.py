"""File helpers: content hashes, atomic writes, and local copies of fsspec URLs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePath, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

_CHUNK = 1 << 20
# Fields of fsspec's info() that change when a remote file changes (S3, GCS, Azure, memory, local).
_VERSION_KEYS = (
    "size",
    "ETag",
    "etag",
    "generation",
    "md5Hash",
    "LastModified",
    "last_modified",
    "mtime",
    "updated",
    "created",
)


def _read_umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# Read once at import: os.umask() can only be read by setting it, which is not thread-safe.
_UMASK = _read_umask()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks so memory stays bounded.

    Args:
        path: the file to hash.

    Returns:
        The 64-character hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def is_url(location: object) -> bool:
    """Whether ``location`` is an fsspec URL other than ``file://`` (e.g. ``s3://b/k``, ``gs://``,
    ``memory://``)."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def recorded(location: str | os.PathLike[str]) -> str:
    """A location as records kept for later hold it (registry versions, monitoring history,
    input hashes): a URL as given, a local path made absolute, so that it names the same file
    whatever the working folder of the process that reads the record."""
    if is_url(location):
        return str(location)
    return os.path.abspath(as_local_path(location))


def as_local_path(location: str | os.PathLike[str]) -> Path:
    """A local location as a Path (a ``file://`` prefix removed)."""
    text = str(location)
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def location_path(location: str | os.PathLike[str]) -> PurePath:
    """The path part of a location, for its name and suffixes: a local Path, or for a URL the
    path without scheme, bucket or query (``s3://b/x/train.csv?v=3`` -> ``/x/train.csv``)."""
    if is_url(location):
        return PurePosixPath(urlsplit(str(location)).path)
    return as_local_path(location)


def local_root() -> Path:
    """Local folder for copies of remote files: ``$TRANSFERFLOW_LOCAL_DIR``, else
    ``$TRANSFERFLOW_HOME/local`` (:mod:`transferflow.storage.state`)."""
    from transferflow.storage import state

    return state.local_dir()


def url_fs(url: str):  # -> (fsspec.AbstractFileSystem, path inside it)
    """The fsspec file system of ``url`` and the path within it.

    Raises:
        FileNotFoundError: (as a readable message) when the protocol is unknown or its fsspec
            package (``s3fs``, ``gcsfs``, ...) is not installed.
    """
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        # fsspec says e.g. "Install s3fs to access S3" or "Protocol not known: foo".
        raise FileNotFoundError(f"{url}: cannot open this URL: {exc}") from None


def local_copy(location: str | os.PathLike[str]) -> Path:
    """A local path with the content of ``location``: the path itself when local, else a copy of
    the remote file downloaded (atomically) into :func:`local_root`.

    The copy is reused only while the remote file's size and version stamp (ETag, generation or
    modification time, whichever the store reports) are unchanged, so a changed remote file is
    never read stale; cache keys use the copy's content hash, never the URL.

    Args:
        location: a local path or an fsspec URL.

    Returns:
        The local path.

    Raises:
        FileNotFoundError: the remote file does not exist or cannot be reached.
    """
    if not is_url(location):
        return as_local_path(location)
    url = str(location)
    fs, path = url_fs(url)
    try:
        try:
            info = fs.info(path)
        except FileNotFoundError as exc:
            # fsspec's HTTP file system reports a refused connection or a DNS failure as "not
            # found": say which it was.
            cause = exc.__cause__ or exc.__context__
            if cause is not None and not isinstance(cause, FileNotFoundError):
                raise FileNotFoundError(
                    f"{url}: cannot be reached ({type(cause).__name__}: "
                    f"{' '.join(str(cause).split())[:200]}). Check the address and that the "
                    "server is running."
                ) from None
            info = {}
        if info.get("type") != "file":
            raise FileNotFoundError(f"{url}: file not found.")
        stamp = json.dumps({k: info.get(k) for k in _VERSION_KEYS}, sort_keys=True, default=str)
        final = local_root() / "downloads" / sha256_text(url)[:16] / Path(path).name
        stamp_file = final.with_name(final.name + ".stamp")
        if final.is_file() and stamp_file.is_file() and stamp_file.read_text() == stamp:
            return final
        with atomic_path(final) as tmp:
            fs.get_file(path, str(tmp))
        write_text_atomic(stamp_file, stamp)
    except FileNotFoundError:
        raise
    except Exception as exc:  # network and credential errors come in many library-specific types
        raise FileNotFoundError(f"{url}: cannot be read: {type(exc).__name__}: {exc}") from None
    return final


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """Hex SHA-256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``final``; rename it onto ``final`` only on success.

    Readers therefore see either the old file or the complete new one, never half a file.

    Args:
        final: where the file must end up.

    Yields:
        A temporary path in the same folder (same file system, so the rename is atomic).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    # Keep the real suffix: some writers (Keras' model.save) insist on it.
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.tmp-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, final)
    except OSError as exc:
        if exc.filename is None:  # a failed write() names no file: name the one being written
            exc.filename = str(final)
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically.

    Args:
        path: destination.
        text: content.

    Returns:
        The destination path.
    """
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write indented JSON atomically (keys kept in insertion order)."""
    return write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def npz_bytes(**arrays: Any) -> bytes:
    """An ``.npz`` archive of ``arrays`` whose bytes depend only on the arrays (``np.savez`` stamps
    the current time into the zip entries). Object arrays are refused: the archive must load with
    ``allow_pickle=False``.

    Returns:
        The archive's bytes.
    """
    import io
    import zipfile

    import numpy as np

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, value in arrays.items():
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise ValueError(f"array {name!r} holds Python objects; it would need pickle")
            entry = io.BytesIO()
            np.lib.format.write_array(entry, array, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, entry.getvalue())
    return buf.getvalue()


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if missing) while in the block;
    other processes that ask for the same lock wait (POSIX ``flock``).

    Args:
        path: the lock file.
    """
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
