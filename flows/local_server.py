"""The local Prefect server that CLI calls share, started and stopped by Prefect's own commands.

Without ``PREFECT_API_URL``, Prefect runs every flow on a *temporary* server that it starts in the
calling process and stops at exit: 6-15 s per CLI call on a 2-core machine, and no UI to look at
afterwards. Instead, the first CLI call that needs a server runs ``prefect server start
--background`` on a free port of 127.0.0.1 (Prefect keeps its process id in
``$PREFECT_HOME/server.pid``), waits with ``prefect server status --wait``, and records the address
in ``$PREFECT_HOME/transferflow-server.json``; later calls reuse it after a health check (~50 ms).
``transferflow server stop`` runs ``prefect server stop``. This module adds only what Prefect's
commands leave to the caller: a free port, the recorded address, and a lock so that two calls at
once start one server.

``TRANSFERFLOW_SERVER=temporary`` runs ``prefect server start`` (foreground, no UI) as a child of
this call instead, stopped when the call ends; on Linux the kernel stops it when the call is killed
too (``PR_SET_PDEATHSIG``), so a throwaway container or CI job is left with no process.

The address reaches Prefect through ``prefect.settings.temporary_settings`` for this call, and
through the environment of the one child process that needs it: never through this process's
environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from transferflow.errors import ConfigError
from transferflow.storage.files import file_lock

STATE = "transferflow-server.json"
START_TIMEOUT_S = float(os.environ.get("TRANSFERFLOW_SERVER_START_TIMEOUT", "120"))


def healthy(url: str, timeout: float = 3.0) -> bool:
    """Whether the Prefect API at ``url`` (ending in ``/api``) answers its health check."""
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def prefect_home() -> Path:
    """``PREFECT_HOME`` as Prefect resolves it (its settings, profiles and database live there)."""
    from prefect.settings import PREFECT_HOME

    return Path(PREFECT_HOME.value()).expanduser()


def read_state(home: Path) -> dict | None:
    """The recorded background server (``url``, ``pid``), or None."""
    try:
        state = json.loads((home / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "url" in state else None


def _prefect(home: Path, *args: str, url: str | None = None, timeout: float = 60) -> str:
    """Run a ``prefect`` command for ``home`` (and ``url``, in its environment only); its output."""
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    if url:
        env["PREFECT_API_URL"] = url
        # The UI asks its own server for this address; without it the UI calls port 4200.
        env["PREFECT_UI_API_URL"] = url
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return (done.stdout + done.stderr).strip()


def ensure(home: Path) -> tuple[str, bool]:
    """The URL of a healthy background server for ``home``, started if there is none.

    Args:
        home: the ``PREFECT_HOME`` the server uses (database, pid file).

    Returns:
        (API URL, whether it was started by this call).

    Raises:
        ConfigError: the server did not come up; the message quotes Prefect's output.
    """
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / "transferflow-server.lock"):  # two calls at once start one server
        state = read_state(home)
        if state and healthy(state["url"]):
            return state["url"], False
        if (home / "server.pid").exists():
            # A server recorded by Prefect that no longer answers (killed, or the machine
            # restarted): Prefect's stop clears its pid file, without which start refuses.
            _prefect(home, "server", "stop")
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        started = _prefect(
            home, "server", "start", "--background", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "WARNING", url=url,
        )  # fmt: skip
        waited = _prefect(
            home, "server", "status", "--wait", "--timeout", str(int(START_TIMEOUT_S)),
            url=url, timeout=START_TIMEOUT_S + 30,
        )  # fmt: skip
        if not healthy(url):
            _prefect(home, "server", "stop")
            raise ConfigError(
                f"The local Prefect server did not start within {START_TIMEOUT_S:.0f} s. Set "
                "PREFECT_API_URL to a running server, or TRANSFERFLOW_SERVER=temporary to use a "
                f"per-call server. Prefect said:\n{started[-800:]}\n{waited[-800:]}"
            )
        pid = _read_pid(home)
        record = {"url": url, "pid": pid, "started": time.time()}
        tmp = home / f".{STATE}.tmp"
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, home / STATE)
        return url, True


def _read_pid(home: Path) -> int | None:
    try:
        return int((home / "server.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def stop(home: Path) -> str | None:
    """Stop the background server of ``home`` (``prefect server stop``); its URL, or None if
    none was recorded."""
    state = read_state(home)
    if state is None and not (home / "server.pid").exists():
        return None
    pid = _read_pid(home)
    _prefect(home, "server", "stop")
    if pid is not None:  # Prefect's stop sends SIGTERM and returns; wait for the port to close
        deadline = time.monotonic() + 15
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    (home / STATE).unlink(missing_ok=True)
    return str(state["url"]) if state else "the server Prefect recorded"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


@contextlib.contextmanager
def temporary() -> Iterator[str]:
    """A Prefect server for this call only (``TRANSFERFLOW_SERVER=temporary``): ``prefect server
    start`` without UI on a free port, a child of this process; yields its API URL and stops it on
    exit. On Linux it also gets ``SIGTERM`` when this process dies, even by ``kill -9``.

    Raises:
        ConfigError: the server did not come up.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--no-ui"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "ERROR"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=env,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not healthy(url, timeout=1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ConfigError(
                    f"The temporary Prefect server did not start within {START_TIMEOUT_S:.0f} s "
                    f"(exit code {proc.poll()}). Unset TRANSFERFLOW_SERVER to use the local "
                    "background server, or set PREFECT_API_URL to a running server."
                )
            time.sleep(0.1)
        yield url
    finally:
        _flush_prefect_clients()  # logs and events still queued go out before the server stops
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _flush_prefect_clients() -> None:
    """Send the run logs and events Prefect still holds in its background workers (they would
    otherwise be sent at interpreter exit, to a server that is already gone)."""
    with contextlib.suppress(Exception):
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)
        EventsWorker.drain_all(timeout=5)


def _die_with_parent() -> None:
    """In the forked child: ask the kernel to send SIGTERM when the parent process dies."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def for_this_call() -> Iterator[None]:
    """The Prefect server this call's flow runs on, checked before any work.

    ``PREFECT_API_URL`` (environment or Prefect profile) wins and must answer its health check
    within 3 s. Without it, the local background server is reused or started (:func:`ensure`),
    unless ``TRANSFERFLOW_SERVER=temporary`` asks for a per-call server (:func:`temporary`). Every
    CLI command that runs a flow runs it inside this context; the address is a Prefect setting
    for this context only.
    """
    import typer

    from transferflow.flows import _logging

    def check(url: str) -> None:
        if not healthy(url):
            raise ConfigError(
                f"The Prefect server at PREFECT_API_URL={url} does not answer its health check. "
                "Start it ('prefect server start'), fix the URL, or unset PREFECT_API_URL to "
                "run on transferflow's local background server."
            )

    # Settings from the environment are checked before Prefect is imported (fail fast).
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if url:
        check(url)
    mode = os.environ.get("TRANSFERFLOW_SERVER", "background")
    if mode not in ("background", "temporary"):
        raise ConfigError(
            f"TRANSFERFLOW_SERVER={mode!r}: expected 'background' (the default: one local server "
            "that later calls reuse) or 'temporary' (a server for this call only)."
        )
    import prefect.main  # noqa: F401 - configures Prefect's logging, filtered next

    # The CLI prints a user mistake once, in full, at the end: Prefect's console lines about it
    # would repeat it three or four times (the server's run log keeps them).
    _logging.quiet_user_errors_on_console()
    if not url:  # a URL from the Prefect profile
        from prefect.settings import PREFECT_API_URL

        url = (PREFECT_API_URL.value() or "").rstrip("/")
        if url:
            check(url)
    if url:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if mode == "temporary":
        with temporary() as url, temporary_settings(updates={PREFECT_API_URL: url}):
            yield
        return

    url, started = ensure(prefect_home())
    if started:
        typer.echo(
            f"Started a Prefect server in the background at {url.removesuffix('/api')} (the UI "
            "is there); later calls reuse it. Stop it with 'transferflow server stop'.",
            err=True,
        )
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
