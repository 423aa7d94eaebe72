"""Cross-run caching of expensive tasks through transferflow's content-addressed store.

The key of a stage is derived from its signature by :class:`StageInputs`, a Prefect
``CachePolicy``: every parameter contributes its content (an artefact reference its SHA-256, a
settings section every field, a file or URL in a setting the file's hash; never a path), and a
parameter annotated ``Annotated[Ref, Reads("train", ...)]`` contributes only the parts the stage
reads. To those the key adds the stage name, the domain package's code and the library versions
(:func:`transferflow.storage.store.cache_key`). No hand-written list of inputs can forget one: a
new parameter is in the key by being a parameter (``tests/unit/test_stage_keys.py`` varies every
leaf of every stage's inputs). A hit returns the stored reference in a ``Cached`` state, which
the Prefect UI shows as such.

Prefect's policy machinery computes the key; the lookup, lock and record stay in the artefact
store (it holds the files the references point at, locally or at an fsspec URL, and verifies
them by hash on read).
"""

from __future__ import annotations

import functools
import inspect
import shutil
import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from prefect import get_run_logger
from prefect.cache_policies import CachePolicy
from prefect.context import TaskRunContext
from prefect.states import Completed, State
from pydantic import BaseModel

from transferflow.config.settings import CacheConfig
from transferflow.storage import paths
from transferflow.storage.artifacts import ArtifactRef
from transferflow.storage.files import is_url, local_copy, sha256_file, sha256_text
from transferflow.storage.store import ArtifactStore, cache_key, default_root, open_store

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, init=False)
class Reads:
    """Marks a reference parameter of a stage with the parts the stage reads (attributes of the
    reference, e.g. ``Reads("train", "labels")``): only those enter the cache key, so a result is
    reused when an unread part (another split, a report figure) changes."""

    parts: tuple[str, ...]

    def __init__(self, *parts: str) -> None:
        object.__setattr__(self, "parts", parts)


def _content(location: Path | str) -> str:
    """The content hash of a file named in a setting (an fsspec URL is read from a local copy)."""
    try:
        local = local_copy(location)
        stat = local.stat()
    except (FileNotFoundError, IsADirectoryError):
        return f"missing: {location}"  # the stage itself reports it
    if not local.is_file():
        return f"missing: {location}"
    return _hashed(str(local.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hashed(path: str, size: int, mtime_ns: int) -> str:
    # A vectors file can be gigabytes and one stage reads its hash twice (its key and the
    # parsed-vectors key): hashed once per process while its size and time stay the same.
    return sha256_file(path)


def fingerprint(value: Any, parts: tuple[str, ...] | None = None) -> Any:
    """What ``value`` contributes to a cache key: content, never paths.

    An artefact reference is its SHA-256; a file or URL in a setting the hash of its content; a
    settings section or reference every field (``parts``: only those); cache settings nothing
    (where results are kept changes no result).
    """
    if isinstance(value, CacheConfig):
        return None
    if isinstance(value, ArtifactRef):
        return value.sha256
    if parts is not None:
        return {part: fingerprint(getattr(value, part)) for part in parts}
    if isinstance(value, BaseModel):
        return {name: fingerprint(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, Path) or (isinstance(value, str) and is_url(value)):
        return _content(value)
    if isinstance(value, dict):
        return {str(k): fingerprint(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fingerprint(v) for v in value]
    return value


def stage_key(fn: Callable[..., Any], stage: str, parameters: dict[str, Any]) -> str:
    """The cache key of calling the stage function ``fn`` with ``parameters``: every parameter of
    its signature by content (defaults included), narrowed by its ``Reads`` annotation."""
    signature = inspect.signature(fn)
    bound = signature.bind_partial(**parameters)
    bound.apply_defaults()
    hints = typing.get_type_hints(fn, include_extras=True)
    described = {}
    for name, value in bound.arguments.items():
        reads = next(
            (m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, Reads)), None
        )
        described[name] = fingerprint(value, reads.parts if reads else None)
    return cache_key(stage, described)


class StageInputs(CachePolicy):
    """A Prefect cache policy whose key covers, by content, everything a stage reads: its
    parameters (see :func:`stage_key`), the domain package's code and the library versions."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return stage_key(task_ctx.task.fn, task_ctx.task.name, inputs)


STAGE_INPUTS = StageInputs()


def this_stage_key() -> tuple[str, str]:
    """Inside a stage task: its name and the key :data:`STAGE_INPUTS` derives for this call."""
    ctx = TaskRunContext.get()
    if ctx is None:  # pragma: no cover - a stage is always called as a task
        raise RuntimeError("this_stage_key() is called inside a task run")
    key = STAGE_INPUTS.compute_key(ctx, dict(ctx.parameters), {})
    assert key is not None
    return ctx.task.name, key


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
    key: str,
    cfg: CacheConfig,
    result_type: type[M],
    compute: Callable[[Path], M],
) -> M:
    """Return the cached result of ``stage`` under ``key``, or compute and cache it.

    Args:
        stage: stage name (names the scratch folder).
        key: the cache key (:func:`this_stage_key` inside a stage task, or :func:`cache_key`).
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
