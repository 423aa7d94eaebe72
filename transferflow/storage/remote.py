"""The artefact store at an fsspec URL (``s3://``, ``gs://``, ...): objects and entries shared by
workers on several machines, used through a local, hash-verified working copy."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from transferflow.storage.files import atomic_path, local_root, sha256_text, url_fs
from transferflow.storage.paths import resolved
from transferflow.storage.store import ArtifactStore, Entry, NotAStoreError, hashes_in, with_paths


class RemoteArtifactStore(ArtifactStore):
    """The store at an fsspec URL, with a local working copy.

    Objects and entries live under the URL (``objects/``, ``entries/``, same layout as a local
    store); entries name their objects relative to the store, so any machine can resolve them.
    Stages read and write local files: new objects are written locally, then uploaded; a hit's
    objects are downloaded once into the local copy (``root``, under
    :func:`transferflow.storage.files.local_root`) and re-verified by hash before use.

    Writes stay all-or-nothing because object stores (S3, GCS, Azure) publish an upload only when
    it is complete. Locks are per machine: two machines computing the same stage at the same moment
    both compute it (same content, same object names) instead of one waiting for the other.
    """

    def __init__(self, url: str) -> None:
        from transferflow.errors import ConfigError

        self.location = url.rstrip("/")
        try:
            self.fs, self.base = url_fs(self.location)
        except FileNotFoundError as exc:
            raise ConfigError(f"cache.dir: {exc}") from None
        self.base = self.base.rstrip("/")
        # Resolved like a local store's folder (a relative $TRANSFERFLOW_LOCAL_DIR included).
        self.root = resolved(local_root() / "stores" / sha256_text(self.location)[:16])
        self._claimed = False

    def _remote(self, name: str) -> str:
        return f"{self.base}/{name}"

    def put(self, path: Path, suffix: str | None = None) -> dict[str, str]:
        """Move a finished file into the local copy and upload it (once) under its content hash."""
        ref = super().put(path, suffix)
        name = Path(ref["path"]).relative_to(self.root).as_posix()
        if not self.fs.exists(self._remote(name)):
            self.fs.put_file(ref["path"], self._remote(name))
        return ref

    def _fetch(self, name: str, sha256: str) -> str | None:
        """Local path of object ``name`` with the right hash (downloaded if needed), else None."""
        local = self.root / name
        if self._valid(str(local), sha256):
            return str(local)
        try:
            with atomic_path(local) as tmp:
                self.fs.get_file(self._remote(name), str(tmp))
        except OSError:
            return None
        return str(local) if self._valid(str(local), sha256) else None

    def _name(self, path: str) -> str:
        # Entries hold store-relative object names; this machine's local copy is not shared.
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError:
            return path

    def lookup(self, key: str) -> dict[str, Any] | None:
        """The cached result of ``key`` with paths into the local copy, or ``None`` when absent or
        when an object is missing or corrupt (the entry is then removed)."""
        entry_name = self._remote(f"entries/{key}.json")
        try:
            entry = json.loads(self.fs.cat_file(entry_name))
            result = entry["result"]
        except (OSError, ValueError, KeyError):
            return None
        missing = []

        def resolve(name: str, sha256: str) -> str:
            local = self._fetch(name, sha256)
            if local is None:
                missing.append(name)
            return local or name

        resolved = with_paths(result, resolve)
        if missing:
            self.fs.rm_file(entry_name)
            return None
        entry["last_used"] = time.time()
        self.fs.pipe_file(entry_name, json.dumps(entry, indent=2).encode())
        return resolved

    def record(self, key: str, stage: str, result: dict[str, Any]) -> None:
        """Upload a stage's (JSON) result under ``key``, objects named relative to the store."""
        now = time.time()
        entry = {
            "key": key,
            "stage": stage,
            "created": now,
            "last_used": now,
            "result": with_paths(result, lambda p, _h: self._name(p)),
        }
        self.fs.pipe_file(self._remote(f"entries/{key}.json"), json.dumps(entry, indent=2).encode())

    def _entries_raw(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for name in sorted(self.fs.glob(self._remote("entries/*.json"))):
            try:
                out.append((name, json.loads(self.fs.cat_file(name))))
            except (OSError, ValueError):
                continue
        return out

    def entries(self) -> list[Entry]:
        """Every cache entry with the total size of the objects it references."""
        out = []
        for name, entry in self._entries_raw():
            size = 0
            for obj, _ in hashes_in(entry.get("result")):
                with contextlib.suppress(OSError):
                    size += self.fs.size(self._remote(obj))
            out.append(Entry.of(entry, Path(name).stem, size))
        return out

    def remove_entries(self, keys: list[str]) -> int:
        """Delete entries, then every object no remaining entry references. Returns bytes freed."""
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._remote(f"entries/{key}.json"))
        return self.collect_garbage()

    def collect_garbage(self, min_age_s: float = 3600.0) -> int:
        """Delete remote objects no entry references (older than ``min_age_s``); bytes freed."""
        referenced = {
            self._remote(p) for _, e in self._entries_raw() for p, _ in hashes_in(e.get("result"))
        }
        freed, now = 0, time.time()
        for obj in self.fs.find(self._remote("objects")):
            try:
                age = now - self.fs.modified(obj).timestamp()
            except (NotImplementedError, OSError):
                age = float("inf")
            if obj not in referenced and age > min_age_s:
                freed += self.fs.size(obj)
                self.fs.rm_file(obj)
        return freed

    def clear(self) -> int:
        """Delete the whole remote store and the local copy. Returns bytes freed remotely.

        Raises:
            NotAStoreError: the URL holds no store entries; nothing is deleted.
        """
        size = 0
        if self.fs.exists(self.base) and not self.fs.exists(self._remote("entries")):
            raise NotAStoreError(
                f"{self.location} holds no transferflow store (no entries/); nothing was deleted."
            )
        if self.fs.exists(self.base):
            size = sum(self.fs.du(self.base, total=False).values())
            self.fs.rm(self.base, recursive=True)
        shutil.rmtree(self.root, ignore_errors=True)
        return size
