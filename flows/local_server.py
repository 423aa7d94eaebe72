"""The local Prefect server that CLI calls share, run by Prefect's own command.

Without ``PREFECT_API_URL``, Prefect runs every flow on a *temporary* server that it starts in the
calling process and stops at exit: 6-15 s per CLI call on a 2-core machine, and no UI to look at
afterwards. Instead, the first CLI call that needs a server runs ``prefect server start --host
127.0.0.1 --port <free port>`` in a session of its own (so it outlives the call), with its output
in ``$PREFECT_HOME/transferflow-server.log``, waits for its health check, and records its address
and process id in ``$PREFECT_HOME/transferflow-server.json``; later calls reuse it after a health
check (~50 ms). ``transferflow server stop`` ends it. This module adds only what Prefect's command
leaves to the caller: a free port, the health wait, the record, and a lock so that two calls at
once start one server.

Why not ``prefect server start --background``: in Prefect 3.9 it leaves the server's output on
pipes to the command, which exits at once, so the server's first log line after that kills it
(measured: on an offline machine the telemetry error ~15 s after start ends the server).

``TRANSFERFLOW_SERVER=temporary`` runs ``prefect server start`` (no UI) as a child of this call
instead, stopped when the call ends; on Linux the kernel stops it when the call is killed too
(``PR_SET_PDEATHSIG``), so a throwaway container or CI job is left with no process.

The address reaches Prefect through ``prefect.settings.temporary_settings`` for this call, and
through the environment of the one child process that needs it: never through this process's
environment.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from transferflow.errors import ConfigError
from transferflow.storage.files import file_lock

STATE = "transferflow-server.json"
LOG = "transferflow-server.log"
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


def ensure(home: Path, while_starting: Callable[[], None] | None = None) -> tuple[str, bool]:
    """The URL of a healthy background server for ``home``, started if there is none.

    Args:
        home: the ``PREFECT_HOME`` the server uses (database, log).
        while_starting: work for this process while a server it started comes up (~10 s on a
            fresh ``PREFECT_HOME``), e.g. importing the libraries the flow will need.

    Returns:
        (API URL, whether it was started by this call).

    Raises:
        ConfigError: the server did not come up; the message quotes its log.
    """
    home.mkdir(parents=True, exist_ok=True)
    with file_lock(home / "transferflow-server.lock"):  # two calls at once start one server
        state = read_state(home)
        if state and healthy(state["url"]):
            return state["url"], False
        if state and state.get("pid"):
            _kill(int(state["pid"]))  # recorded but not answering: a hung server of ours
        port = _free_port()
        url = f"http://127.0.0.1:{port}/api"
        log_path = home / LOG
        env = {**os.environ, "PREFECT_HOME": str(home)}
        env.pop("PREFECT_API_URL", None)
        # The UI asks its own server for this address; without it the UI calls port 4200.
        env["PREFECT_UI_API_URL"] = url
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start"]
                + ["--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives this call; stop() ends its whole group
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        if while_starting is not None:
            try:
                while_starting()
            except BaseException:
                _kill(proc.pid)  # not recorded yet: nothing else would stop it
                raise
        while not healthy(url, timeout=1.0):
            if proc.poll() is not None or time.monotonic() > deadline:
                _kill(proc.pid)
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-1500:]
                raise ConfigError(
                    f"The local Prefect server did not start within {START_TIMEOUT_S:.0f} s "
                    f"(log: {log_path}). Set PREFECT_API_URL to a running server, or "
                    f"TRANSFERFLOW_SERVER=temporary to use a per-call server.\n{tail}"
                )
            time.sleep(0.25)
        record = {"url": url, "pid": proc.pid, "log": str(log_path), "started": time.time()}
        tmp = home / f".{STATE}.tmp"
        tmp.write_text(json.dumps(record, indent=2), encoding="utf-8")
        os.replace(tmp, home / STATE)
        return url, True


def stop(home: Path) -> str | None:
    """Stop the recorded background server of ``home``; returns its URL, or None if none ran."""
    state = read_state(home)
    if state is None:
        return None
    if state.get("pid"):
        _kill(int(state["pid"]))
    (home / STATE).unlink(missing_ok=True)
    return str(state["url"])


def _kill(pid: int, wait_s: float = 15.0) -> None:
    """End the process group ``pid`` leads (the server and its workers): SIGTERM, then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.1)


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
def for_this_call(warm: tuple[str, ...] = ()) -> Iterator[None]:
    """The Prefect server this call's flow runs on, checked before any work.

    ``warm``: modules the call's flow imports, imported while a server this call starts comes up
    (otherwise when the flow first needs them): a cold first run waited ~10 s for the server
    doing nothing, then spent ~5 s importing.

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

    def import_warm() -> None:
        for module in warm:
            importlib.import_module(module)

    url, started = ensure(prefect_home(), import_warm if warm else None)
    if started:
        typer.echo(
            f"Started a Prefect server in the background at {url.removesuffix('/api')} (the UI "
            "is there); later calls reuse it. Stop it with 'transferflow server stop'.",
            err=True,
        )
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield
