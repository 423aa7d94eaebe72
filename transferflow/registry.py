"""Model registry: every run's chosen model becomes a numbered version; a ``champion`` alias
names the version that scoring uses by default.

Layout::

    <root>/versions/<n>/     model file(s), vocabulary, version.json (immutable once written)
    <root>/aliases.json      {"champion": n, "history": [previous champions, oldest first]}
    <root>/registry.lock     held while versions or aliases change

A version folder is assembled under a temporary name and renamed into place; ``aliases.json`` is
replaced atomically; both happen under an exclusive file lock, so two runs finishing together
cannot corrupt the registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transferflow.errors import TransferflowError
from transferflow.files import file_lock, sha256_file, write_json_atomic


def default_registry_dir() -> Path:
    """``$TRANSFERFLOW_REGISTRY_DIR``, else ``./registry``."""
    return Path(os.environ.get("TRANSFERFLOW_REGISTRY_DIR", "registry"))


class RegistryError(TransferflowError):
    """A registry operation cannot be done (unknown version, no champion to roll back to...)."""


def git_commit(cwd: Path | None = None) -> str | None:
    """The current git commit of the working directory, if it is a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Registry:
    """A folder of model versions and their aliases."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry_dir()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / "registry.lock"):
            yield

    def _aliases(self) -> dict[str, Any]:
        path = self.root / "aliases.json"
        if not path.is_file():
            return {"champion": None, "history": []}
        try:
            aliases = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(aliases, dict) or "champion" not in aliases:
                raise ValueError("no 'champion' entry")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"{path} is damaged ({exc}); it names the champion. Restore it from a backup, or "
                "delete it and promote a version again with 'transferflow models promote N'."
            ) from None
        return aliases

    def versions(self) -> list[int]:
        """Registered version numbers, ascending."""
        folder = self.root / "versions"
        # Only folders named by a number are versions: stray files and folders are ignored.
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit() and p.is_dir())

    def show(self, version: int) -> dict[str, Any]:
        """A version's record (``version.json``).

        Raises:
            RegistryError: unknown version.
        """
        path = self.root / "versions" / str(version) / "version.json"
        if not path.is_file():
            known = ", ".join(map(str, self.versions())) or "none"
            raise RegistryError(f"No model version {version} in {self.root} (versions: {known}).")
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"{path} is damaged ({exc}); version {version} cannot be used. "
                "Register a new version with 'transferflow run'."
            ) from None
        return record

    def champion(self) -> int | None:
        """The champion version, if any."""
        return self._aliases()["champion"]

    def resolve(self, version: int | None) -> int:
        """``version``, or the champion when ``None``.

        Raises:
            RegistryError: no version given and no champion yet.
        """
        if version is not None:
            self.show(version)
            return version
        champ = self.champion()
        if champ is None:
            raise RegistryError(
                f"No champion model in {self.root}: run `transferflow run` until a model passes "
                "promotion, or name a version with --model."
            )
        return champ

    def path(self, version: int) -> Path:
        """Folder of a version."""
        return self.root / "versions" / str(version)

    def register(self, files: dict[str, Path], record: dict[str, Any]) -> int:
        """Add a version.

        Args:
            files: name in the version folder -> file to copy (``model.keras``, ``vocab.json``...).
            record: what to remember (kind, labels, metrics, config, data hashes...); the version
                number, files with hashes, time and git commit are added.

        Returns:
            The new version number.
        """
        with self._locked():
            version = (self.versions() or [0])[-1] + 1
            tmp = self.root / "versions" / f".{version}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            hashes = {}
            for name, src in files.items():
                shutil.copy2(src, tmp / name)
                hashes[name] = sha256_file(tmp / name)
            full = {
                **record,
                "version": version,
                "files": hashes,
                "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "git_commit": record.get("git_commit") or git_commit(),
            }
            write_json_atomic(tmp / "version.json", full)
            tmp.rename(self.path(version))
        return version

    def identical(self, hashes: dict[str, str]) -> int | None:
        """The version whose files have exactly these SHA-256 hashes, if any."""
        for v in self.versions():
            try:
                if self.show(v).get("files") == hashes:
                    return v
            except RegistryError:
                continue
        return None

    def verified_file(self, version: int, name: str) -> Path:
        """A version's file, after checking its hash (models are only loaded when it matches).

        Raises:
            RegistryError: missing or modified file.
        """
        record = self.show(version)
        path = self.path(version) / name
        if not path.is_file() or sha256_file(path) != record["files"].get(name):
            raise RegistryError(f"{path} is missing or was modified since it was registered.")
        return path

    def promote(self, version: int) -> None:
        """Make ``version`` the champion (the previous champion goes into the history)."""
        self.show(version)
        with self._locked():
            aliases = self._aliases()
            if aliases["champion"] is not None and aliases["champion"] != version:
                aliases["history"].append(aliases["champion"])
            aliases["champion"] = version
            write_json_atomic(self.root / "aliases.json", aliases)

    def rollback(self) -> int:
        """Make the previous champion the champion again.

        Returns:
            The version now champion.

        Raises:
            RegistryError: there is no previous champion.
        """
        with self._locked():
            aliases = self._aliases()
            if not aliases["history"]:
                raise RegistryError("No previous champion to roll back to.")
            aliases["champion"] = aliases["history"].pop()
            write_json_atomic(self.root / "aliases.json", aliases)
            return aliases["champion"]
