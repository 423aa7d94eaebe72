"""The model registry's folder: one :class:`~transferflow.storage.registry.Registry` per model
name (one per target task), and the rule for what a model name is.

A registry written before names existed (``versions/`` and ``aliases.json`` at the top) is read in
place as one name: the slug of its champion's (else latest version's) target domain.
"""

from __future__ import annotations

import re
from pathlib import Path

from transferflow.storage.registry import Registry, RegistryError, default_registry_dir

MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_model_name(name: str, what: str = "model name") -> str:
    """``name`` when it is a model name (lowercase letters, digits, ``.``, ``_``, ``-``; up to 64,
    starting with a letter or digit), else RegistryError saying so."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        raise RegistryError(
            f"{what} {name!r} is not a model name: use lowercase letters, digits, '.', '_' and "
            "'-' (up to 64 characters, starting with a letter or digit), e.g. 'phone-reviews'."
        )
    return name


def model_name_for(target: str) -> str:
    """The default model name of a run: its target domain's name as a slug (``"Amazon phones"``
    -> ``"amazon-phones"``; ``"model"`` when nothing is left)."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(target).lower()).strip("-")[:64].strip("-")
    return slug or "model"


class Catalog:
    """The registry folder: one :class:`Registry` per model name."""

    def __init__(self, root: str | Path | None = None, name: str | None = None) -> None:
        self.root = Path(root) if root is not None else default_registry_dir()
        self.name = name  # the model name (None: a bare folder of versions)

    def _legacy_name(self) -> str | None:
        """The name a registry written before names existed is read as (None: there is none)."""
        legacy = Registry(self.root)
        versions = legacy.versions() if self.root.is_dir() else []
        if not versions:
            return None
        try:
            chosen = legacy.champion() or versions[-1]
            target = legacy.show(chosen).get("target")
        except RegistryError:
            target = None
        return model_name_for(target) if isinstance(target, str) else "model"

    def names(self) -> list[str]:
        """Every registered model name, sorted."""
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"{self.root} is a file, not a model registry folder.")
        folder = self.root / "models"
        names = set()
        if folder.is_dir():
            names = {
                p.name
                for p in folder.iterdir()
                if p.is_dir() and not p.is_symlink() and MODEL_NAME.fullmatch(p.name)
            }
        if (legacy := self._legacy_name()) is not None:
            names.add(legacy)
        return sorted(names)

    def model(self, name: str) -> Registry:
        """The versions of model ``name`` (a registry from before names: read in place).

        Raises:
            RegistryError: ``name`` is not a model name.
        """
        check_model_name(name)
        if name == self._legacy_name():
            return Registry(self.root, name=name)
        folder = self.root / "models" / name
        if folder.is_symlink():
            raise RegistryError(f"{folder} is a link; the registry holds only folders it made.")
        return Registry(folder, name=name)

    def select(self, name: str | None) -> Registry:
        """Model ``name``, or the only one when ``name`` is None.

        Raises:
            RegistryError: no model registered; or several and none named (they are listed);
                or ``name`` is not registered.
        """
        names = self.names()
        if name is not None:
            if check_model_name(name) not in names:
                known = ", ".join(names) or "none"
                raise RegistryError(
                    f"No model named '{name}' in {self.root} (names: {known}). "
                    "'transferflow models list' shows them."
                )
            return self.model(name)
        if not names:
            raise RegistryError(
                f"No model registered in {self.root}: run 'transferflow run' first (each run "
                "registers its model under --model-name, by default the target's name)."
            )
        if len(names) > 1:
            raise RegistryError(
                f"{self.root} holds {len(names)} models: {', '.join(names)}. Name one with "
                "--model-name."
            )
        return self.model(names[0])
