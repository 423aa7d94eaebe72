"""The cache's lock manager and the scope that lets a nested run release its locks.

Cached stages run as Prefect transactions at the ``SERIALIZABLE`` isolation level: one process
computes a stage, others wait for its record. Their locks are held by :class:`ProcessLockManager`.
"""

from __future__ import annotations

import functools
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any


def released_when_done() -> AbstractContextManager[Any]:
    """A scope whose cached stages commit, and release their locks, as each one ends.

    Inside a task (a sweep point running one flow per label budget) a flow's cached stages are
    child transactions of the task's, and Prefect commits children lazily: their locks would be
    released only when the task ends, and the next budget's first shared stage would wait forever
    on a lock its own process holds. An eager transaction around each run commits its stages as
    they end.
    """
    from prefect.transactions import CommitMode, transaction

    return transaction(commit_mode=CommitMode.EAGER)


class ProcessLockManager:
    """A Prefect ``LockManager`` on POSIX ``flock``: a lock is released by the kernel when its
    process ends, however it ends.

    Prefect's ``FileSystemLockManager`` marks a lock with a file that only its holder removes:
    after a run is killed (``kill -9``, a lost worker) the file stays, and with no hold timeout
    (Prefect's transactions set none) every later run of that task waits on it forever. This
    manager keeps Prefect's protocol and semantics (one holder per key; others wait, then read
    the holder's record) without that failure.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, tuple[Any, str]] = {}  # key -> (open lock file, holder)
        # (key, holder) released once and due to be released once more: see release_lock.
        self._released: set[tuple[str, str]] = set()

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.lock"

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``, waiting up to ``acquire_timeout`` seconds
        (forever by default). ``hold_timeout`` is not needed: a dead holder holds nothing."""
        import fcntl
        import time

        if self.is_lock_holder(key, holder):
            return True
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self._path(key), "a")  # noqa: SIM115 - held until release_lock
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    handle.close()
                    return False
                time.sleep(0.1)
                continue
            self._held[key] = (handle, holder)
            return True

    async def aacquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """:meth:`acquire_lock` without blocking the event loop."""
        import asyncio

        return await asyncio.to_thread(self.acquire_lock, key, holder, acquire_timeout)

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``.

        Raises:
            ValueError: ``holder`` does not hold it (as Prefect's lock managers do).
        """
        import fcntl

        if not self.is_lock_holder(key, holder):
            if (key, holder) in self._released:
                # Prefect's parent transaction commits its children when it commits, and
                # ``Transaction.commit`` on a child already committed (eagerly, see
                # :func:`released_when_done`) releases its lock a second time. The holder let
                # it go already; forget it now (there is no third release).
                self._released.discard((key, holder))
                return
            raise ValueError(f"No lock held by {holder} for transaction with key {key}")
        handle, _ = self._held.pop(key)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()
        self._released.add((key, holder))

    def is_locked(self, key: str) -> bool:
        """Whether a live process (this one included) holds the lock on ``key``."""
        import fcntl

        if key in self._held:
            return True
        try:
            handle = open(self._path(key))  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return False
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        """Whether ``holder`` holds the lock on ``key``."""
        held = self._held.get(key)
        return held is not None and held[1] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until nobody holds ``key`` (up to ``timeout`` seconds); whether it is free."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """:meth:`wait_for_lock` without blocking the event loop."""
        import asyncio

        return await asyncio.to_thread(self.wait_for_lock, key, timeout)


@functools.lru_cache(maxsize=8)
def lock_manager(folder: Path) -> ProcessLockManager:
    """The lock manager of a store's lock folder."""
    # One manager per folder and process: it knows which locks this process holds.
    return ProcessLockManager(folder)
