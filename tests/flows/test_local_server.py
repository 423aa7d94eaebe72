"""The local background server's start: the call's own work (importing what its flow needs) runs
while the server comes up, and a failure in that work leaves no server behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from transferflow.flows import local_server


def _servers_of(home: Path) -> list[int]:
    """Live processes started with ``PREFECT_HOME=home``."""
    wanted = f"PREFECT_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc"),
]


def test_the_calls_work_runs_while_the_server_starts(tmp_path):
    home = tmp_path / "prefect-home"
    seen: dict = {}

    def work() -> None:  # the server's process exists, but it is not recorded nor healthy yet
        seen["servers"] = _servers_of(home)
        seen["state"] = local_server.read_state(home)

    try:
        url, started = local_server.ensure(home, work)
        assert started and seen["servers"] and seen["state"] is None
        assert local_server.healthy(url)
        # A second call finds it running: no start, so no work to overlap with.
        assert local_server.ensure(home, lambda: pytest.fail("no server was started")) == (
            url,
            False,
        )
    finally:
        local_server.stop(home)
    assert not _servers_of(home)


def test_a_failure_while_the_server_starts_leaves_no_server(tmp_path):
    home = tmp_path / "prefect-home"

    class Interrupted(BaseException):  # like Ctrl-C during the imports
        pass

    def work() -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        local_server.ensure(home, work)
    left = _servers_of(home)
    for pid in left:  # so that a failure here leaks nothing into the rest of the suite
        os.kill(pid, 9)
    assert local_server.read_state(home) is None
    assert not left
