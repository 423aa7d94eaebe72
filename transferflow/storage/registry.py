"""Model registry: models by name (one per target task); each run's chosen model becomes a
numbered version of its name, and a ``champion`` alias per name says which version scoring uses.

Layout::

    <registry>/models/<name>/versions/<n>/   model file(s), vocabulary, version.json (immutable)
    <registry>/models/<name>/aliases.json    {"champion": n, "history": [earlier champions]}
    <registry>/models/<name>/registry.lock   held while that name's versions or aliases change
    <registry>/models/<name>/monitoring.jsonl  every scored batch's monitoring figures

:class:`Registry` is one name's versions; :class:`~transferflow.storage.catalog.Catalog` the
registry folder (its names).

A version folder is assembled under a temporary name and renamed into place; ``aliases.json`` is
replaced atomically; both happen under an exclusive file lock, so two runs finishing together
cannot corrupt the registry.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from transferflow.errors import TransferflowError
from transferflow.storage import state
from transferflow.storage.files import file_lock, sha256_file, write_json_atomic
from transferflow.storage.paths import is_within


def default_registry_dir() -> Path:
    """``$TRANSFERFLOW_REGISTRY_DIR``, else ``$TRANSFERFLOW_HOME/registry``
    (:mod:`transferflow.storage.state`)."""
    return state.registry_dir()


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


_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
ANY = object()  # promote()'s default: whatever the champion is


def _is_version(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class Registry:
    """A folder of model versions and their aliases."""

    def __init__(self, root: str | Path | None = None, name: str | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry_dir()
        self.name = name  # the model name (None: a bare folder of versions)

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
            # An alias names a version by number, never by path: anything else could point the
            # scorer at a folder outside the registry.
            history = aliases.get("history", [])
            if not isinstance(history, list):
                raise ValueError("'history' is not a list")
            for value in [aliases["champion"], *history]:
                if value is not None and not _is_version(value):
                    raise ValueError(f"{value!r} is not a version number")
            if aliases["champion"] is None and history:
                raise ValueError("a history without a champion")
            aliases["history"] = history
        except (ValueError, UnicodeDecodeError) as exc:
            raise RegistryError(
                f"{path} is damaged ({exc}); it names the champion. Restore it from a backup, or "
                "delete it and promote a version again with 'transferflow models promote N'."
            ) from None
        return aliases

    def versions(self) -> list[int]:
        """Registered version numbers, ascending."""
        folder = self.root / "versions"
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.root} is a file, not a model registry folder.")
        # Only folders named by a number are versions: stray files and folders are ignored.
        if not folder.is_dir():
            return []
        return sorted(
            int(p.name)
            for p in folder.iterdir()
            if p.name.isdigit()
            and p.name.isascii()
            and int(p.name) > 0
            and p.is_dir()
            and not p.is_symlink()
        )

    def show(self, version: int) -> dict[str, Any]:
        """A version's record (``version.json``).

        Raises:
            RegistryError: unknown version.
        """
        path = self.path(version) / "version.json"
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
                "promotion, or name a version ('transferflow models list' shows them; score takes "
                "--model N)."
            )
        return champ

    def path(self, version: int) -> Path:
        """Folder of a version (a positive whole number: never a path).

        Raises:
            RegistryError: ``version`` is not a version number, or its folder is a link that
                leads outside the registry.
        """
        if not _is_version(version):
            raise RegistryError(f"{version!r} is not a model version number (1, 2, ...).")
        folder = self.root / "versions" / str(version)
        if folder.is_symlink() or (folder.exists() and not is_within(folder, self.root)):
            raise RegistryError(
                f"{folder} is a link, not a version folder; the registry holds only folders it "
                "made. Remove the link."
            )
        return folder

    def register(self, files: dict[str, Path], record: dict[str, Any]) -> tuple[int, bool]:
        """Add a version, unless one with the same file bytes exists (checked under the lock, so
        two identical runs finishing together leave one version).

        Args:
            files: name in the version folder -> file to copy (``model.keras``, ``vocab.json``...).
            record: what to remember (kind, labels, metrics, config, data hashes...); the version
                number, files with hashes, time and git commit are added.

        Returns:
            (version, whether it is new).
        """
        hashes = {name: sha256_file(path) for name, path in files.items()}
        with self._locked():
            same = self.identical(hashes)
            if same is not None:
                return same, False
            version = (self.versions() or [0])[-1] + 1
            tmp = self.root / "versions" / f".{version}.tmp"
            if tmp.is_symlink():
                raise RegistryError(f"{tmp} is a symbolic link the registry did not make.")
            # Left by a registration that was killed (we hold the lock: none is under way).
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                for name, src in files.items():
                    shutil.copy2(src, tmp / name)
                full = {
                    **record,
                    "version": version,
                    "files": {name: sha256_file(tmp / name) for name in files},
                    "registered_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "git_commit": record.get("git_commit") or git_commit(),
                }
                write_json_atomic(tmp / "version.json", full)
                tmp.rename(self.path(version))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)  # nothing half-registered
                raise
        return version, True

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
        if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or ".." in name:
            raise RegistryError(
                f"Model version {version} lists a file named {name!r}, which is not a plain file "
                "name; version.json was edited. Register a new version."
            )
        path = self.path(version) / name
        if path.is_symlink():
            raise RegistryError(
                f"{path} is a symbolic link; a version's files are copies the registry made. "
                "Restore the file or register a new version."
            )
        files = record.get("files")
        if (
            not isinstance(files, dict)
            or not path.is_file()
            or sha256_file(path) != files.get(name)
        ):
            raise RegistryError(f"{path} is missing or was modified since it was registered.")
        return path

    def verified_files(self, version: int) -> dict[str, Path]:
        """Every file the version recorded, each checked against its hash (one rule for
        ``models show``, ``score`` and ``promote``: a version is usable only when all match).

        Raises:
            RegistryError: a missing, modified or linked file, or a damaged file list.
        """
        files = self.show(version).get("files")
        if not isinstance(files, dict) or not files:
            raise RegistryError(f"Model version {version} lists no files; it cannot be used.")
        return {name: self.verified_file(version, name) for name in files}

    def promote(self, version: int, *, if_champion: Any = ANY) -> bool:
        """Make ``version`` the champion (the previous champion goes into the history).

        Args:
            version: the version to promote.
            if_champion: promote only while the champion is still this version (``None``: no
                champion yet); checked under the lock, so of two runs that each saw no champion,
                only the first becomes "first champion".

        Returns:
            Whether ``version`` was promoted.
        """
        self.verified_files(version)
        with self._locked():
            aliases = self._aliases()
            if if_champion is not ANY and aliases["champion"] != if_champion:
                return False
            if aliases["champion"] is not None and aliases["champion"] != version:
                aliases["history"].append(aliases["champion"])
            aliases["champion"] = version
            write_json_atomic(self.root / "aliases.json", aliases)
        return True

    def rollback(self) -> int:
        """Make the previous champion the champion again.

        Returns:
            The version now champion.

        Raises:
            RegistryError: there is no previous champion.
        """
        if not self.root.is_dir():  # nothing to roll back: make no registry folder for it
            raise RegistryError(f"No model registry at {self.root}: nothing to roll back.")
        with self._locked():
            aliases = self._aliases()
            if not aliases["history"]:
                raise RegistryError("No previous champion to roll back to.")
            aliases["champion"] = aliases["history"].pop()
            write_json_atomic(self.root / "aliases.json", aliases)
            return aliases["champion"]

    # -- monitoring history ----------------------------------------------------------------------
    HISTORY = "monitoring.jsonl"

    def record_batch(self, figures: dict[str, Any]) -> None:
        """Append a scored batch's monitoring figures to this name's history (one JSON line,
        under the lock: two batches scored together both land, whole)."""
        line = json.dumps(figures, sort_keys=True, default=str)
        with self._locked(), open(self.root / self.HISTORY, "a", encoding="utf-8") as out:
            out.write(line + "\n")

    def batches(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` scored batches' figures, oldest first (unreadable lines skipped)."""
        path = self.root / self.HISTORY
        if not path.is_file() or path.is_symlink():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out
