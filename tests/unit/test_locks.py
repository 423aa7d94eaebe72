"""The cache's lock manager (tasks/caching.py, ProcessLockManager): one holder per key, and a
holder that dies, however it dies, holds nothing (Prefect's file lock manager does not release a
killed run's lock, so every rerun of that task waited forever)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from transferflow.tasks.caching import ProcessLockManager

HOLD = """
import sys, time
from pathlib import Path
from transferflow.tasks.caching import ProcessLockManager
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
