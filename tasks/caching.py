"""Cross-run caching of expensive tasks through transferflow's content-addressed store.

Prefect's own cache keys hash task inputs and the task's source, but not the files behind paths,
nor the helper code a task calls; here the key is built from content hashes, settings, the domain
package's code and library versions (:func:`transferflow.store.cache_key`). A hit returns the stored
reference in a ``Cached`` state, which the Prefect UI shows as such.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.states import Completed, State
from pydantic import BaseModel

from transferflow.config import CacheConfig
from transferflow.store import ArtifactStore, cache_key, default_root

M = TypeVar("M", bound=BaseModel)


def store_for(cfg: CacheConfig) -> ArtifactStore:
    """The artefact store a run uses."""
    return ArtifactStore(cfg.dir or default_root())


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
) -> M | State:
    """Return the cached result of ``stage`` for ``inputs``, or compute and cache it.

    Args:
        stage: stage name (part of the key).
        inputs: what the result depends on (content hashes, settings, seed).
        cfg: cache settings.
        result_type: the pydantic model of the result.
        compute: ``compute(out_dir)`` writes its artefacts into ``out_dir`` and returns the result.

    Returns:
        The result, or a ``Cached`` Completed state holding it (the task's final state).
    """
    store = store_for(cfg)
    work = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=_tmp(store)))
    try:
        if not cfg.enabled:
            return result_type.model_validate(_adopt(compute(work).model_dump(mode="json"), store))
        key = cache_key(stage, inputs)
        # The lock makes a second identical run wait for the first and then reuse its result.
        with store.lock(key):
            if not cfg.refresh and (hit := store.lookup(key)) is not None:
                get_run_logger().info("cache hit %s (%s)", key, store.root)
                return Completed(data=result_type.model_validate(hit), name="Cached",
                                 message=f"reused {key}")
            result = result_type.model_validate(
                _adopt(compute(work).model_dump(mode="json"), store)
            )
            store.record(key, stage, result.model_dump(mode="json"))
            return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _tmp(store: ArtifactStore) -> Path:
    # Scratch space inside the store: same file system, so finished files move in by rename.
    path = store.root / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path
