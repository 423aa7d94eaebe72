"""Cross-run caching of the expensive tasks, on Prefect's own caching.

**Keys.** :class:`StageInputs`, a Prefect ``CachePolicy``, derives a task's key from its
signature: every parameter contributes its content (an artefact reference its SHA-256, a settings
section every field, a file or URL in a setting the file's hash; never a path), and a parameter
annotated ``Annotated[Ref, Reads("train", ...)]`` contributes only the parts the task reads. To
those the key adds the task's name, the code (the domain package, the tasks and the data checks)
and the library versions. No hand-written list of inputs can forget one: a new parameter is in the
key by being a parameter (``tests/unit/test_stage_keys.py`` varies every leaf of every stage's
inputs).

**Storage, isolation, refresh.** :func:`cached` gives a task Prefect's options for this run:
the policy, ``SERIALIZABLE`` isolation with a lock manager on ``flock`` (a second identical run
waits for the first, then reuses its result; a killed run holds no lock), ``refresh_cache``
from ``cache.refresh``, and persisted results in :class:`StageRecords`. That storage keeps
Prefect's result records as entries of transferflow's content-addressed store (locally or at
an fsspec URL), so a record is only found while every file it references is present and has its
hash: a missing or corrupt object is a miss (recomputed), never a crash. Results are written
with :class:`StageResultSerializer`, plain JSON whose models come from a fixed list of result
types (nothing is imported or unpickled from a record).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import shutil
import tempfile
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from prefect import Task, get_run_logger
from prefect.cache_policies import NO_CACHE, CachePolicy
from prefect.context import TaskRunContext
from prefect.filesystems import WritableFileSystem
from prefect.serializers import Serializer
from pydantic import BaseModel, Field

from transferflow.config.settings import CacheConfig
from transferflow.data.vectors import ParsedVectors
from transferflow.storage import paths
from transferflow.storage.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef
from transferflow.storage.files import is_url, local_copy, sha256_file, sha256_text
from transferflow.storage.store import ArtifactStore, cache_key, default_root, open_store
from transferflow.tasks.locks import lock_manager

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, init=False)
class Reads:
    """Marks a reference parameter of a stage with the parts the stage reads (attributes of the
    reference, e.g. ``Reads("train", "labels")``): only those enter the cache key, so a result is
    reused when an unread part (another split, a report figure) changes."""

    parts: tuple[str, ...]

    def __init__(self, *parts: str) -> None:
        object.__setattr__(self, "parts", parts)


class Writes:
    """Marks a parameter that names where a task writes (a folder for Data Docs...): it is not an
    input, so it stays out of the cache key (``Annotated[Path | None, Writes]``)."""


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
    # A vectors file can be gigabytes and two tasks key on it (parsing, embeddings): hashed once
    # per process while its size and time stay the same.
    return sha256_file(path)


def fingerprint(value: Any, parts: tuple[str, ...] | None = None) -> Any:
    """What ``value`` contributes to a cache key: content, never paths.

    An artefact reference is its SHA-256; a file or URL in a setting the hash of its content; a
    settings section or reference every field (``parts``: only those); cache settings nothing
    (where results are kept changes no result).
    """
    if isinstance(value, CacheConfig) or value is None:
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


@functools.cache
def wiring_version() -> str:
    """Hash of the tasks' and the data checks' source (the domain package's is in
    :func:`~transferflow.storage.store.cache_key`): a gate's verdict is only valid for the checks
    that produced it, a task's result for the wrapper that made it."""
    from transferflow import data_checks, tasks

    digest = hashlib.sha256()
    for package in (tasks, data_checks):
        folder = Path(str(package.__file__)).parent
        for path in sorted(folder.glob("*.py")):
            digest.update(f"{package.__name__}/{path.name}".encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def stage_key(fn: Callable[..., Any], stage: str, parameters: dict[str, Any]) -> str:
    """The cache key of calling the stage function ``fn`` with ``parameters``: every parameter of
    its signature by content (defaults included), narrowed by its ``Reads`` annotation; a parameter
    marked ``Writes`` (an output location) is left out."""
    signature = inspect.signature(fn)
    bound = signature.bind_partial(**parameters)
    bound.apply_defaults()
    hints = typing.get_type_hints(fn, include_extras=True)
    described: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        marks = getattr(hints.get(name), "__metadata__", ())
        if Writes in marks:
            continue
        reads = next((m for m in marks if isinstance(m, Reads)), None)
        described[name] = fingerprint(value, reads.parts if reads else None)
    return cache_key(stage, {"parameters": described, "wiring": wiring_version()})


class StageInputs(CachePolicy):
    """A Prefect cache policy whose key covers, by content, everything a stage reads: its
    parameters (see :func:`stage_key`), the code and the library versions."""

    def compute_key(
        self,
        task_ctx: TaskRunContext,
        inputs: dict[str, Any],
        flow_parameters: dict[str, Any],
        **kwargs: Any,
    ) -> str | None:
        return stage_key(task_ctx.task.fn, task_ctx.task.name, inputs)


STAGE_INPUTS = StageInputs()

# -- results ------------------------------------------------------------------------------------

_RESULT_TYPES: dict[str, type[BaseModel]] = {
    cls.__name__: cls for cls in (ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef, ParsedVectors)
}


def stage_result(cls: type[M]) -> type[M]:
    """Class decorator: ``cls`` may be read back from a cache record (the serializer rebuilds only
    the models named here, so a record can never make it import or run anything else)."""
    _RESULT_TYPES[cls.__name__] = cls
    return cls


def _encode(value: Any) -> Any:
    if isinstance(value, BaseException):
        # A failed task's exception is written too (never read back as a cache hit): as text.
        return {"$exception": f"{type(value).__name__}: {value}"}
    if isinstance(value, BaseModel):
        name = type(value).__name__
        if _RESULT_TYPES.get(name) is not type(value):
            raise TypeError(f"{name} is not a registered stage result type (see stage_result)")
        return {"$model": name, "value": value.model_dump(mode="json")}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$model" in value:
            return _RESULT_TYPES[value["$model"]].model_validate(value["value"])
        if "$tuple" in value:
            return tuple(_decode(v) for v in value["$tuple"])
        if "$exception" in value:
            return RuntimeError(value["$exception"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class StageResultSerializer(Serializer):
    """Prefect result serializer for stage results: JSON; pydantic models by a registered name."""

    type: str = Field(default="transferflow-stage-result", frozen=True)

    def dumps(self, obj: Any) -> bytes:
        # Keys keep their order: a result read back from the cache must be the result computed,
        # order included (a rerun's metrics.json, tables and report list candidates as a cold
        # run does). The order is the computation's, so the record's bytes stay deterministic.
        return json.dumps(_encode(obj)).encode()

    def loads(self, blob: bytes) -> Any:
        return _decode(json.loads(blob))


class StageRecords(WritableFileSystem):
    """Prefect result storage that keeps each record as an entry of transferflow's store.

    The store verifies on every read that the objects an entry references are present and intact;
    when one is not, the entry is dropped and reading fails, which Prefect's cache treats as "no
    record": the stage is computed again.
    """

    _block_type_name = "transferflow stage records"

    location: str = Field(description="The artefact store: a folder or an fsspec URL.")

    def _store(self) -> ArtifactStore:
        return open_store(self.location)

    def read_path(self, path: str, _sync: bool = True) -> bytes:  # type: ignore[override]
        """The record under the key ``path``; FileNotFoundError when absent or stale."""
        entry = self._store().lookup(path)
        if entry is None:
            raise FileNotFoundError(f"no valid cache entry {path} in {self.location}")
        return json.dumps(
            {"metadata": entry["metadata"], "result": json.dumps(entry["result"])}
        ).encode()

    def write_path(self, path: str, content: bytes, _sync: bool = True) -> str:  # type: ignore[override]
        """Record Prefect's result record ``content`` under the key ``path``."""
        record = json.loads(content)
        result = record["result"]
        stage = path.rsplit("-", 1)[0]
        self._store().record(
            path,
            stage,
            {"metadata": record["metadata"], "result": json.loads(result)},
        )
        return path


def cached(task: Task[P, R], cache: CacheConfig | None) -> Task[P, R]:
    """``task`` with Prefect's caching set up for this run (see the module's docstring), or with
    caching off when ``cache`` is None or disabled (e.g. a gate asked for Data Docs)."""
    if cache is None or not cache.enabled:
        return task.with_options(cache_policy=NO_CACHE, persist_result=False)
    store = store_for(cache)
    store.claim()
    policy = STAGE_INPUTS.configure(
        isolation_level="SERIALIZABLE",
        lock_manager=lock_manager(store.root / "locks"),
    )
    return task.with_options(
        cache_policy=policy,
        persist_result=True,
        result_storage=_records(store.location),
        result_serializer=StageResultSerializer(),
        refresh_cache=cache.refresh,
    )


def _records(location: str) -> StageRecords:
    """The :class:`StageRecords` block of a store, saved on the Prefect server (Prefect keeps
    result storage server-side, so that any worker can read the results); one block per store,
    named after its location, saved again (not piled up) by every run."""
    from prefect.settings import PREFECT_API_URL

    return _saved_records(location, str(PREFECT_API_URL.value()))


@functools.lru_cache(maxsize=8)
def _saved_records(location: str, api_url: str) -> StageRecords:
    block = StageRecords(location=location)
    block.save(f"transferflow-{sha256_text(location)[:12]}", overwrite=True)
    return block


def store_for(cfg: CacheConfig) -> ArtifactStore:
    """The artefact store a run uses."""
    return open_store(cfg.dir or default_root())


def prefect_result_storage(cfg: CacheConfig) -> str | None:
    """Where Prefect persists flow results: beside a remote artefact store.

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


def in_store(cache: CacheConfig, result_type: type[M], compute: Callable[[Path], M]) -> M:
    """Compute a stage's files in scratch space and move them into the content-addressed store.

    Args:
        cache: cache settings (where the store is).
        result_type: the pydantic model of the result.
        compute: ``compute(out_dir)`` writes its artefacts into ``out_dir`` and returns the result.

    Returns:
        The result, its references pointing into the store (where a later cache hit finds them).
    """
    store = store_for(cache)
    ctx = TaskRunContext.get()
    stage = ctx.task.name if ctx is not None else result_type.__name__
    work = Path(tempfile.mkdtemp(prefix=f"{stage}-", dir=_tmp(store)))
    paths.claim_scratch(work)  # a killed run's scratch folder is removed by the next run
    try:
        return result_type.model_validate(_adopt(compute(work).model_dump(mode="json"), store))
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
