"""Every folder transferflow keeps state in, in one place, under one base folder.

The base is ``$TRANSFERFLOW_HOME`` (default ``~/.transferflow``). Each root below lives under it
unless its own variable moves it (a shared artefact store on S3, a registry on a team disk):

| root | default | its own variable |
|---|---|---|
| runs | ``<base>/runs`` | the ``output_dir`` setting / ``--output-dir`` |
| sweeps | ``<base>/sweeps`` | the grid's ``output_dir`` |
| registry | ``<base>/registry`` | ``TRANSFERFLOW_REGISTRY_DIR`` / ``--registry`` |
| cache (artefact store) | ``<base>/cache`` | ``TRANSFERFLOW_CACHE_DIR`` / ``cache.dir`` |
| local (copies of remote files and stores) | ``<base>/local`` | ``TRANSFERFLOW_LOCAL_DIR`` |
| xla (compiled programs) | ``<base>/local/xla`` | ``TRANSFERFLOW_XLA_CACHE`` |

Prefect keeps its own state (database, profiles, the local server's pid file) in ``PREFECT_HOME``
(default ``~/.prefect``); ``transferflow where`` lists it beside these. Nothing defaults to the
working folder: outputs land there only when the user names them. Deleting the base folder (and
``PREFECT_HOME`` for the run history) starts again from nothing.

An empty variable counts as unset (it would otherwise mean the working folder itself).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_VAR = "TRANSFERFLOW_HOME"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def home() -> Path:
    """The base folder: ``$TRANSFERFLOW_HOME``, else ``~/.transferflow``."""
    value = _env(HOME_VAR)
    return Path(value).expanduser() if value else Path.home() / ".transferflow"


def runs_dir() -> Path:
    """Where run folders go when ``output_dir`` is not set."""
    return home() / "runs"


def sweeps_dir() -> Path:
    """Where sweep folders go when the grid's ``output_dir`` is not set."""
    return home() / "sweeps"


def registry_dir() -> Path:
    """The model registry: ``$TRANSFERFLOW_REGISTRY_DIR``, else ``<base>/registry``."""
    value = _env("TRANSFERFLOW_REGISTRY_DIR")
    return Path(value) if value else home() / "registry"


def store_location() -> str:
    """The artefact store, a folder or an fsspec URL: ``$TRANSFERFLOW_CACHE_DIR``, else
    ``<base>/cache``."""
    return _env("TRANSFERFLOW_CACHE_DIR") or str(home() / "cache")


def local_dir() -> Path:
    """Local copies of remote files and stores: ``$TRANSFERFLOW_LOCAL_DIR``, else
    ``<base>/local``."""
    value = _env("TRANSFERFLOW_LOCAL_DIR")
    return Path(value) if value else home() / "local"


def xla_dir() -> Path:
    """XLA's persistent compilation cache: ``$TRANSFERFLOW_XLA_CACHE``, else ``<local>/xla``."""
    value = _env("TRANSFERFLOW_XLA_CACHE")
    return Path(value) if value else local_dir() / "xla"


@dataclass(frozen=True)
class Root:
    """One state root: its name, where it is now, what moves it and what it holds."""

    name: str
    location: str
    moved_by: str
    holds: str


def roots() -> list[Root]:
    """Every state root of this environment, as :func:`home` and the variables place them."""
    return [
        Root("base", str(home()), HOME_VAR, "the folders below, unless their own variable is set"),
        Root("runs", str(runs_dir()), "--output-dir / output_dir", "run folders and their reports"),
        Root("sweeps", str(sweeps_dir()), "the grid's output_dir", "sweep folders"),
        Root("registry", str(registry_dir()), "TRANSFERFLOW_REGISTRY_DIR", "model versions"),
        Root("cache", store_location(), "TRANSFERFLOW_CACHE_DIR", "cached vectors and models"),
        Root("local", str(local_dir()), "TRANSFERFLOW_LOCAL_DIR", "copies of remote files"),
        Root("xla", str(xla_dir()), "TRANSFERFLOW_XLA_CACHE", "compiled XLA programs"),
    ]
