"""Cross-run caching of expensive tasks through transferflow's content-addressed store.

Prefect's own cache keys hash task inputs and the task's source, but not the files behind paths,
nor the helper code a task calls; here the key is built from content hashes, settings, the domain
package's code and library versions (:func:`transferflow.storage.store.cache_key`). A hit returns
the stored
reference in a ``Cached`` state, which the Prefect UI shows as such.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import get_run_logger
from prefect.states import Completed, State
from pydantic import BaseModel

from transferflow.config.settings import CacheConfig
from transferflow.storage import paths
from transferflow.storage.files import is_url, sha256_text
from transferflow.storage.store import ArtifactStore, cache_key, default_root, open_store

M = TypeVar("M", bound=BaseModel)


def store_for(cfg: CacheConfig) -> ArtifactStore:
    """The artefact store a run uses."""
    return open_store(cfg.dir or default_root())


def prefect_result_storage(cfg: CacheConfig) -> str | None:
    """Where Prefect persists task and flow results: beside a remote artefact store.

    For a store at an fsspec URL, saves (or updates) a ``RemoteFileSystem`` block whose base path is
    ``<store URL>/prefect-results`` and returns its slug, so results that Prefect persists (when
    persistence is switched on) are shared by every machine like the store. A local store keeps
    Prefect's own default (``PREFECT_LOCAL_STORAGE_PATH``): one machine needs nothing shared.

    Args:
        cfg: cache settings (``cfg.dir`` or ``$TRANSFERFLOW_CACHE_DIR``).

    Returns:
        ``remote-file-system/transferflow-<hash>``, or None for a local store.

    Raises:
        ConfigError: the URL's protocol is unknown or its fsspec package is not installed.
    """
    location = str(cfg.dir or default_root())
    if not is_url(location):
        return None
    from prefect.filesystems import RemoteFileSystem

    open_store(location)  # fails now, with a clear ConfigError, when the URL cannot be opened

    # Prefect needs result storage saved server-side; the name is derived from the URL so reruns
    # reuse (and overwrite) the same block instead of piling up new ones.
    name = f"transferflow-{sha256_text(location.rstrip('/'))[:12]}"
    RemoteFileSystem(basepath=f"{location.rstrip('/')}/prefect-results").save(name, overwrite=True)
    return f"remote-file-system/{name}"


def _adopt(value: Any, store: ArtifactStore) -> Any:
    """Move every artefact referenced in a JSON-like value into the store; return the value with
    store paths."""
    if isinstance(value, dict):
        if set(value) >= {"path", "sha256"}:
            stored = store.put(Path(value["path"]))
            return {**value, **stored}
        return {k: _adopt(v, store) for k, v in value.items()}
    if isinstance(value, list):
        return [_adopt(v, store) for v in value]
    return value


def cached(
    stage: str,
    inputs: dict[str, Any],
    cfg: CacheConfig,
    result_type: type[M],
    compute: Callable[[Path], M],
) -> M:
    """Return the cached result of ``stage`` for ``inputs``, or compute and cache it.

    Args:
        stage: stage name (part of the key).
        inputs: what the result depends on (content hashes, settings, seed).
        cfg: cache settings.
        result_type: the pydantic model of the result.
        compute: ``compute(out_dir)`` writes its artefacts into ``out_dir`` and returns the result.

    Returns:
        The result, or a ``Cached`` Completed state holding it (the task's final state). A task
        that returns the state ends in it, and its caller receives the result, so the state is
        typed as the result it holds; inside a task, :func:`value_of` unwraps it.
    """
    store = store_for(cfg)
    work = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=_tmp(store)))
    paths.claim_scratch(work)  # a killed run's scratch folder is removed by the next run
    try:
        if not cfg.enabled:
            return result_type.model_validate(_adopt(compute(work).model_dump(mode="json"), store))
        key = cache_key(stage, inputs)
        # The lock makes a second identical run wait for the first and then reuse its result.
        with store.lock(key):
            if not cfg.refresh and (hit := store.lookup(key)) is not None:
                get_run_logger().info("cache hit %s (%s)", key, store.location)
                state: State = Completed(
                    data=result_type.model_validate(hit), name="Cached", message=f"reused {key}"
                )
                return cast(M, state)
            result = result_type.model_validate(
                _adopt(compute(work).model_dump(mode="json"), store)
            )
            store.record(key, stage, result.model_dump(mode="json"))
            return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cached_json(
    stage: str,
    inputs: dict[str, Any],
    cfg: CacheConfig | None,
    compute: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """A small JSON result (no files) cached like :func:`cached`; computed when the cache is off."""
    return cached_json_hit(stage, inputs, cfg, compute)[0]


def cached_json_hit(
    stage: str,
    inputs: dict[str, Any],
    cfg: CacheConfig | None,
    compute: Callable[[], dict[str, Any]],
) -> tuple[dict[str, Any], bool]:
    """:func:`cached_json` that also says whether the result came from the cache.

    Returns:
        (result, reused). A ``compute`` that raises records nothing.
    """
    if cfg is None or not cfg.enabled:
        return compute(), False
    store = store_for(cfg)
    key = cache_key(stage, inputs)
    with store.lock(key):
        if not cfg.refresh and (hit := store.lookup(key)) is not None:
            return hit, True
        result = compute()
        store.record(key, stage, result)
        return result, False


def value_of(result: Any) -> Any:
    """The value of :func:`cached`'s return (a ``Cached`` state on a hit) inside another task."""
    return result.result() if isinstance(result, State) else result


def _tmp(store: ArtifactStore) -> Path:
    # Scratch space inside the store: same file system, so finished files move in by rename.
    store.claim()
    path = store.root / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    for folder, pid in paths.remove_abandoned(path, "*"):
        get_run_logger().info(
            "removed %s, left in the store by a run that was killed (process %d)", folder, pid
        )
    return path
