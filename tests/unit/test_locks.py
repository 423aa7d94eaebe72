"""The cache's lock manager (tasks/locks.py, ProcessLockManager): one holder per key, and a
holder that dies, however it dies, holds nothing (Prefect's file lock manager does not release a
killed run's lock, so every rerun of that task waited forever)."""

import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prefect.filesystems import LocalFileSystem

from transferflow.tasks.locks import ProcessLockManager

HOLD = """
import sys, time
from pathlib import Path
from transferflow.tasks.locks import ProcessLockManager
locks = ProcessLockManager(Path(sys.argv[1]))  # kept: it holds the open lock file
assert locks.acquire_lock(sys.argv[2], "child")
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("death", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_holder_releases_its_lock(tmp_path, death):
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), "stage-abc"], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "held"
    locks = ProcessLockManager(tmp_path)
    assert locks.is_locked("stage-abc")
    assert not locks.acquire_lock("stage-abc", "me", acquire_timeout=0.3)  # one holder
    os.kill(child.pid, death)
    child.wait(timeout=30)
    assert locks.wait_for_lock("stage-abc", timeout=5)
    assert locks.acquire_lock("stage-abc", "me", acquire_timeout=5)
    assert locks.is_lock_holder("stage-abc", "me") and not locks.is_lock_holder("stage-abc", "x")
    locks.release_lock("stage-abc", "me")
    assert not locks.is_locked("stage-abc")


def test_holders_in_one_process_exclude_each_other(tmp_path):
    a, b = ProcessLockManager(tmp_path), ProcessLockManager(tmp_path)
    assert a.acquire_lock("k", "a")
    start = time.monotonic()
    assert not b.acquire_lock("k", "b", acquire_timeout=0.2)
    assert time.monotonic() - start >= 0.2
    with pytest.raises(ValueError):
        b.release_lock("k", "b")
    a.release_lock("k", "a")
    assert b.acquire_lock("k", "b", acquire_timeout=1)


KEYS = ["gate-source", "gate-target", "embeddings", "source-model", "transfer"]


def _stage(store, key: str) -> None:
    """One cached stage as Prefect's task engine runs it: a keyed SERIALIZABLE transaction."""
    from prefect.transactions import IsolationLevel, transaction

    with transaction(key=key, store=store, isolation_level=IsolationLevel.SERIALIZABLE) as tx:
        if not tx.is_committed():
            tx.stage(f"record of {key}")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    budgets=st.lists(
        st.lists(st.sampled_from(KEYS), min_size=1, max_size=5, unique=True), min_size=1, max_size=4
    )
)
def test_every_stage_releases_its_lock_when_its_run_ends_however_nested(tmp_path, budgets):
    """Invariant: a run's cached stages hold no lock once the run ends, inside a task's
    transaction or not. A sweep point runs one flow per budget inside its task (a transaction);
    a stage of budget k still locked when budget k + 1 starts would wait on its own process
    forever (here: fail after a 2 s wait). Each budget's stages repeat earlier ones, as budgets
    share the source's stages."""
    import uuid

    from prefect.results import ResultStore
    from prefect.transactions import transaction

    from transferflow.tasks.locks import released_when_done

    folder = tmp_path / uuid.uuid4().hex
    locks = ProcessLockManager(folder)
    store = ResultStore(result_storage=LocalFileSystem(basepath=str(folder / "records")),
                        lock_manager=locks)  # fmt: skip
    observer = ProcessLockManager(folder)  # another open file: sees this process's locks too
    with transaction():  # the sweep point task's own transaction
        for keys in budgets:
            with released_when_done():
                for key in keys:
                    assert observer.wait_for_lock(key, timeout=2), f"{key} still locked"
                    _stage(store, key)
            assert not any(observer.is_locked(k) for k in KEYS)
    # The task's transaction committed its children again: no error, nothing held.
    assert not any(observer.is_locked(k) for k in KEYS) and not locks._held
    assert not locks._released  # each second release was the last
