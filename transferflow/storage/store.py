"""Content-addressed artefact store and cache of expensive stage results.

Layout under the store's root::

    objects/ab/abcdef....keras   artefacts, named by the SHA-256 of their bytes (written once)
    entries/<key>.json           cache entries: a stage's result (small JSON references) by key
    locks/<key>.lock             one writer per key at a time (Prefect's isolation, through the
                                 task layer's lock manager: two identical runs, one computes,
                                 the other waits, then reuses)

Every write goes to a temporary file first and is renamed into place, so a killed run never leaves
a partial object or entry behind. Every read of a cache entry re-verifies the hashes of the objects
it
references; a missing or corrupt object turns the entry into a miss (recomputed, never a crash).

The store may also live at an fsspec URL (``s3://bucket/prefix``, ``gs://...``; see
:class:`transferflow.storage.remote.RemoteArtifactStore`), so that workers on several machines
share one cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from transferflow.errors import TransferflowError
from transferflow.storage import state
from transferflow.storage.files import (
    atomic_path,
    is_url,
    sha256_file,
    write_json_atomic,
)
from transferflow.storage.paths import files_under, is_within, resolved

_LIBRARIES = ("gensim", "keras", "jax", "jaxlib", "numpy", "scikit-learn", "pandas", "pyarrow")


def default_root() -> Path | str:
    """The store when ``cache.dir`` is unset: ``$TRANSFERFLOW_CACHE_DIR`` (a folder or an fsspec
    URL), else ``$TRANSFERFLOW_HOME/cache`` (:mod:`transferflow.storage.state`)."""
    location = state.store_location()
    return location if is_url(location) else Path(location)


def code_version() -> str:
    """Hash of the source of every module of the ``transferflow`` package.

    A cache key must change when any domain code a stage calls changes, not only the task's own
    body; hashing the whole (small) package is coarse but never wrong.
    """
    digest = hashlib.sha256()
    package = Path(__file__).parents[1]  # the transferflow package, every subpackage
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    """Versions of the libraries whose behaviour changes results."""
    out = {}
    for name in _LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def cache_key(stage: str, inputs: dict[str, Any]) -> str:
    """Key of a stage's result: its name, the code and library versions, and its inputs.

    Args:
        stage: stage name (e.g. ``train_source_model``).
        inputs: JSON-serialisable description of everything the result depends on: content hashes
            of input artefacts and files (never bare paths), relevant settings, seed.

    Returns:
        A hex digest.
    """
    payload = {
        "stage": stage,
        "code": code_version(),
        "libraries": library_versions(),
        "inputs": inputs,
    }
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return f"{stage}-{hashlib.sha256(blob).hexdigest()[:40]}"


def hashes_in(value: Any) -> Iterator[tuple[str, str]]:
    """Every (path, sha256) pair of artefact references nested in a JSON-like value."""
    if isinstance(value, dict):
        if set(value) >= {"path", "sha256"} and isinstance(value.get("sha256"), str):
            yield value["path"], value["sha256"]
        for v in value.values():
            yield from hashes_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from hashes_in(v)


@dataclass(frozen=True)
class Entry:
    """One cache entry as listed by :meth:`ArtifactStore.entries`."""

    key: str
    stage: str
    created: float
    last_used: float
    size: int

    @classmethod
    def of(cls, entry: dict[str, Any], name: str, size: int) -> Entry:
        """The listing of a cache entry's JSON; ``name`` (its file's stem) is the key, whatever
        the JSON says, so that deleting the entry deletes that file and nothing else."""
        if not isinstance(entry, dict):
            entry = {}
        return cls(
            name,
            entry.get("stage", "?"),
            entry.get("created", 0.0),
            entry.get("last_used", 0.0),
            size,
        )


def with_paths(value: Any, fn) -> Any:
    """A copy of a JSON-like value with ``fn(path, sha256)`` as the path of every artefact ref."""
    if isinstance(value, dict):
        out = {k: with_paths(v, fn) for k, v in value.items()}
        if set(value) >= {"path", "sha256"} and isinstance(value.get("sha256"), str):
            out["path"] = fn(value["path"], value["sha256"])
        return out
    if isinstance(value, list):
        return [with_paths(v, fn) for v in value]
    return value


def open_store(location: str | os.PathLike[str]) -> ArtifactStore:
    """The artefact store at a local folder or an fsspec URL.

    Args:
        location: a folder, or a URL such as ``s3://bucket/prefix`` (needs ``s3fs``) or
            ``gs://bucket/prefix`` (needs ``gcsfs``).

    Returns:
        An :class:`ArtifactStore` (local) or a :class:`RemoteArtifactStore`.
    """
    if is_url(location):
        # fsspec and the remote code load only when a URL is given
        from transferflow.storage.remote import RemoteArtifactStore

        return RemoteArtifactStore(str(location))
    return ArtifactStore(location)


MARKER = ".transferflow-store"
# What a store folder holds: commands that delete act on these names only.
STORE_PARTS = ("objects", "entries", "locks", "tmp", MARKER)


class NotAStoreError(TransferflowError):
    """A folder given as the artefact store holds other things and no store marker."""


class ArtifactStore:
    """A folder of content-addressed artefacts plus a cache of stage results.

    The folder is claimed with a marker file (``.transferflow-store``) when the store first writes
    to it; an existing folder with other content and no marker is never used or deleted.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # One spelling of the folder (absolute; links, '.' and '..' resolved): the object paths
        # entries record, and garbage collection compares, must not depend on the working
        # folder or on how the location was written (a relative --cache-dir once made another
        # spelling's garbage collection delete objects live entries referenced).
        self._given = Path(root)
        self.root = resolved(root)
        self.location = str(self.root)
        self._claimed = False

    def is_store(self) -> bool:
        """Whether the folder is a store: it holds the marker file the store writes when it first
        writes there (folder names alone prove nothing: any folder can hold ``entries/``)."""
        marker = self.root / MARKER
        return marker.is_file() and not marker.is_symlink()

    def _legacy_layout(self) -> bool:
        """Only store parts, no marker: a store made by a release before the marker. It is used
        (and marked on first write), but never deleted until marked."""
        try:
            names = {p.name for p in self.root.iterdir()}
        except OSError:
            return False
        return bool(names) and names <= set(STORE_PARTS) and "entries" in names

    def claim(self) -> None:
        """Make the folder a store (create it, write the marker) or refuse a foreign folder.

        Raises:
            NotAStoreError: the folder exists, is not empty and is not a store.
        """
        if self._claimed:
            return
        if self.root.exists() and not self.root.is_dir():
            raise NotAStoreError(
                f"cache.dir {self.root} is a file, not a folder; choose a folder "
                "for the artefact store."
            )
        if (
            self.root.is_dir()
            and any(self.root.iterdir())
            and not self.is_store()
            and not self._legacy_layout()
        ):
            raise NotAStoreError(
                f"cache.dir {self.root} already holds other files and is not a transferflow store "
                f"(no {MARKER} marker). Choose an empty or new folder for the cache."
            )
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / MARKER
        if not marker.is_file():
            marker.write_text(
                "transferflow artefact store: objects/, entries/, locks/, tmp/\n", encoding="utf-8"
            )
        self._claimed = True

    # -- objects ------------------------------------------------------------------------------
    def put(self, path: Path, suffix: str | None = None) -> dict[str, str]:
        """Move a finished file into the store under its content hash.

        Args:
            path: a complete file (it is moved, or removed when an identical object exists).
            suffix: file suffix to keep (default: the file's own, e.g. ``.keras``).

        Returns:
            ``{"path": <object path>, "sha256": <digest>}``.
        """
        self.claim()
        digest = sha256_file(path)
        suffix = path.suffix if suffix is None else suffix
        final = self.root / "objects" / digest[:2] / f"{digest}{suffix}"
        if final.is_file() and sha256_file(final) == digest:
            path.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(final) as tmp:
                shutil.move(str(path), tmp)
        return {"path": str(final), "sha256": digest}

    def _valid(self, path: str, sha256: str) -> bool:
        # An entry may only reference the store's own objects (a poisoned entry pointing
        # elsewhere is a miss, never a load).
        if not isinstance(path, str) or not is_within(path, self.root / "objects"):
            return False
        p = Path(path)
        return p.is_file() and not p.is_symlink() and sha256_file(p) == sha256

    # -- cache entries --------------------------------------------------------------------------
    def _entry_path(self, key: str) -> Path:
        if not isinstance(key, str) or "/" in key or key.startswith(".") or "\0" in key:
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / "entries" / f"{key}.json"

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The cached result of ``key``, or ``None`` when absent, unreadable, or when any object
        it references is missing or corrupt (the entry is then removed)."""
        path = self._entry_path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            result = entry["result"]
        except (OSError, ValueError, KeyError):
            return None
        if not all(self._valid(p, h) for p, h in hashes_in(result)):
            path.unlink(missing_ok=True)
            return None
        entry["last_used"] = time.time()
        write_json_atomic(path, entry)
        return result

    def record(self, key: str, stage: str, result: dict[str, Any]) -> None:
        """Store a stage's (JSON) result under ``key``, atomically."""
        now = time.time()
        write_json_atomic(
            self._entry_path(key),
            {"key": key, "stage": stage, "created": now, "last_used": now, "result": result},
        )

    def entries(self) -> list[Entry]:
        """Every cache entry with the total size of the objects it references."""
        out = []
        for path in sorted(files_under(self.root / "entries")):
            if path.suffix != ".json" or path.parent != self.root / "entries":
                continue
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                result = entry.get("result") if isinstance(entry, dict) else None
            except (OSError, ValueError):
                continue
            size = sum(
                Path(p).stat().st_size
                for p, _ in hashes_in(result)
                if isinstance(p, str) and is_within(p, self.root) and Path(p).is_file()
            )
            out.append(Entry.of(entry, path.stem, size))
        return out

    def remove_entries(self, keys: list[str]) -> int:
        """Delete entries, then every object no remaining entry references.

        Returns:
            Bytes freed from objects.
        """
        for key in keys:
            self._entry_path(key).unlink(missing_ok=True)
        return self.collect_garbage()

    def collect_garbage(self, min_age_s: float = 3600.0) -> int:
        """Delete objects no entry references (older than ``min_age_s``, so objects a running
        stage has just written but not yet recorded survive). Returns bytes freed."""
        referenced = set()
        for path in files_under(self.root / "entries"):
            try:
                result = json.loads(path.read_text()).get("result")
                # resolved: entries written before the store resolved its folder held it as given
                referenced |= {str(resolved(p)) for p, _ in hashes_in(result) if isinstance(p, str)}
            except (OSError, ValueError, AttributeError):
                continue
        freed, now = 0, time.time()
        # Only regular files inside objects/ (links are never followed, so nothing outside the
        # store is deleted).
        for obj in files_under(self.root / "objects"):
            if str(obj) not in referenced and now - obj.stat().st_mtime > min_age_s:
                freed += obj.stat().st_size
                obj.unlink()
        return freed

    def clear(self) -> int:
        """Delete what the store made (its parts, then the folder if that leaves it empty).

        Returns:
            Bytes freed.

        Raises:
            NotAStoreError: the folder is not a store; nothing is deleted.
        """
        if not self.root.exists():
            return 0
        if not self.is_store():
            raise NotAStoreError(
                f"{self.root} is not a transferflow store (no {MARKER} marker); nothing was "
                "deleted. Pass the folder that holds the cache (see 'transferflow cache list')."
            )
        size = 0
        for name in STORE_PARTS:
            part = self.root / name
            if part.is_symlink():
                continue  # not the store's own: never followed, never deleted
            if part.is_dir():
                size += sum(p.stat().st_size for p in files_under(part))
                shutil.rmtree(part)  # removes links inside without following them
            elif part.is_file():
                size += part.stat().st_size
                part.unlink()
        if not self._given.is_symlink() and not any(self.root.iterdir()):
            self.root.rmdir()  # the folder, not what a link given as the location points to
        return size
