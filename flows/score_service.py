"""A warm scoring process that ``transferflow score`` calls reuse.

A ``transferflow score`` call spends ~10 s before it reads a row: Python, Prefect (~2 s), Keras
and JAX (~4 s), loading the model and compiling its prediction shapes. A scikit-learn loop pays
none of that. So, like the local Prefect server (:mod:`flows.local_server`), the first call starts
this service in the background and later calls hand their request to it: the service runs the
same ``score`` flow (the run, its logs and its state are in the Prefect UI as before) with Keras,
the model and the featurising processes already loaded, and streams the run's console output back
to the calling terminal. The calling process imports neither Prefect nor Keras.

- One service per code version, environment and working directory (the socket name hashes them),
  so a call never meets a service that runs other code or settings; relative paths mean the same.
- Requests and answers are JSON over a Unix socket in a folder only the user can open, with the
  ``multiprocessing`` HMAC handshake on top; nothing is unpickled.
- It runs one request at a time, exits after ``TRANSFERFLOW_SCORE_SERVICE_IDLE`` seconds without
  one (default 600), and stops with ``transferflow server stop``. Ctrl-C in the calling terminal
  stops the caller's run in the service too.
- ``TRANSFERFLOW_SCORE_SERVICE=off``, or ``TRANSFERFLOW_SERVER=temporary`` (leave no process
  behind), scores in the calling process instead.

This module's top level imports the standard library only: the client side must stay light, and
featurising processes spawned by the service import it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

# Environment variables that differ between shells but change nothing a run does.
_SHELL_NOISE = {"_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "PYTEST_CURRENT_TEST"}
START_TIMEOUT_S = 180.0


class ServiceUnavailable(RuntimeError):
    """The service could not be started or reached; the caller scores in-process instead."""


def enabled() -> bool:
    """Whether ``transferflow score`` goes through the service (see the module docstring).

    Raises:
        ConfigError: ``TRANSFERFLOW_SCORE_SERVICE`` or ``TRANSFERFLOW_SCORE_SERVICE_IDLE`` has a
            value they do not take.
    """
    from transferflow.errors import ConfigError

    value = os.environ.get("TRANSFERFLOW_SCORE_SERVICE", "on").strip().lower()
    if value not in ("on", "off"):
        raise ConfigError(
            f"TRANSFERFLOW_SCORE_SERVICE={value!r}: expected 'on' (the default: later score "
            "calls reuse a warm scoring service) or 'off' (score in the calling process)."
        )
    idle_seconds()  # checked here, where the error reaches the user
    if value == "off" or os.environ.get("TRANSFERFLOW_SERVER", "background") == "temporary":
        return False
    return hasattr(os, "getuid") and hasattr(os, "killpg")  # Unix sockets and sessions


def idle_seconds() -> float:
    """How long the service waits for the next request before it exits.

    Raises:
        ConfigError: ``TRANSFERFLOW_SCORE_SERVICE_IDLE`` is not a positive number of seconds.
    """
    from transferflow.errors import ConfigError

    text = os.environ.get("TRANSFERFLOW_SCORE_SERVICE_IDLE", "600")
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigError(
            f"TRANSFERFLOW_SCORE_SERVICE_IDLE={text!r}: expected a positive number of seconds "
            "(default 600); to score without the service, set TRANSFERFLOW_SCORE_SERVICE=off."
        )
    return value


def service_dir() -> Path:
    """The folder of the sockets, keys and logs (mode 0700; ``TRANSFERFLOW_SERVICE_DIR``)."""
    base = os.environ.get("TRANSFERFLOW_SERVICE_DIR") or os.path.join(
        tempfile.gettempdir(), f"transferflow-{os.getuid()}"
    )
    path = Path(base)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ServiceUnavailable(f"{path} must belong to this user with mode 0700")
    return path


def _environment() -> dict[str, str]:
    """The environment a service for this call runs in: this process's, plus the Prefect API
    URL of this process's Prefect settings when Prefect is already loaded here (a Python caller
    or a test harness may have set one that the environment does not show)."""
    env = dict(os.environ)
    settings = sys.modules.get("prefect.settings")
    if settings is not None and not env.get("PREFECT_API_URL"):
        url = settings.PREFECT_API_URL.value()
        if url:
            env["PREFECT_API_URL"] = str(url)
    return env


def _fingerprint(env: dict[str, str]) -> str:
    """Hash of the code (every module's path, size and mtime), interpreter, environment, Prefect
    profiles file and working directory: what a service must share with a call to serve it."""
    import data_checks
    import flows
    import tasks
    import transferflow

    digest = hashlib.sha256()
    home = Path(env.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    paths = [profiles] if profiles.is_file() else []
    for package in (transferflow, flows, tasks, data_checks):
        paths += sorted(Path(package.__file__).parent.rglob("*.py"))
    for path in paths:
        info = path.stat()
        digest.update(f"{path}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    kept = sorted((k, v) for k, v in env.items() if k not in _SHELL_NOISE)
    digest.update(json.dumps([sys.executable, os.getcwd(), kept]).encode())
    return digest.hexdigest()[:20]


def call(request: dict, echo: Callable[[str], None]) -> dict:
    """Run ``request`` (the ``score`` flow's arguments) on the service, starting it if needed.

    Args:
        request: keyword arguments of :func:`flows.score.score`.
        echo: writes the run's console output (stderr of the service while it runs this call).

    Returns:
        ``{"result": ...}``, or ``{"error": message, "exit_code": n}`` for a user mistake, or
        ``{"crash": traceback}``.

    Raises:
        ServiceUnavailable: no service could be started or reached.
    """
    from multiprocessing import AuthenticationError
    from multiprocessing.connection import Client

    folder = service_dir()
    env = _environment()
    name = _fingerprint(env)
    sock, key_file = folder / f"{name}.sock", folder / f"{name}.key"
    conn = None
    for attempt in range(2):
        if not sock.exists():
            _start(folder, name, env)
        try:
            conn = Client(str(sock), family="AF_UNIX", authkey=key_file.read_bytes())
            break
        except (ConnectionRefusedError, FileNotFoundError):  # a service that died: start anew
            if attempt:
                raise ServiceUnavailable(f"cannot reach the scoring service at {sock}") from None
            with contextlib.suppress(FileNotFoundError):
                sock.unlink()
        except (OSError, AuthenticationError, EOFError) as exc:
            raise ServiceUnavailable(f"the scoring service at {sock} refused: {exc}") from None
    assert conn is not None
    with conn:
        conn.send_bytes(json.dumps({"kwargs": request}).encode())
        while True:
            try:
                message = json.loads(conn.recv_bytes())
            except EOFError:
                raise ServiceUnavailable(
                    f"the scoring service stopped during the call (log: {folder / name}.log)"
                ) from None
            if "err" in message:
                echo(message["err"])
            else:
                return message


def _start(folder: Path, name: str, env: dict[str, str]) -> None:
    """Start the service for ``name`` (under a lock: two calls at once start one) and wait until
    it listens."""
    import fcntl

    sock, key_file, log = (folder / f"{name}{ext}" for ext in (".sock", ".key", ".log"))
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if sock.exists():
            return
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_bytes(32))
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "flows.score_service", str(folder), name],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # outlives this call, like the Prefect server
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                raise ServiceUnavailable(f"the scoring service did not start (log: {log})")
            time.sleep(0.05)


def stop_all() -> int:
    """Stop every scoring service of this user (``transferflow server stop``); returns how many."""
    pids = running()
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(ServiceUnavailable):
        for pid_file in service_dir().glob("*.pid"):  # stale ones (a crashed service) too
            pid_file.unlink(missing_ok=True)
    return len(pids)


def running() -> list[int]:
    """Pids of this user's scoring services that run now (``transferflow server status``)."""
    try:
        files = list(service_dir().glob("*.pid"))
    except ServiceUnavailable:
        return []
    pids = []
    for pid_file in files:
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text())
            if _is_service(pid):  # never count (or signal) a process that reused a stale pid
                pids.append(pid)
    return sorted(pids)


def _is_service(pid: int) -> bool:
    """Whether ``pid`` runs this module (from /proc; True where there is no /proc to ask)."""
    try:
        return b"flows.score_service" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()


class _Relay:
    """The service's stderr/stdout: to its log file always, and to the calling terminal while a
    call runs (Prefect's console handler and ``typer.echo`` write here)."""

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, log) -> None:
        self.log = log
        self.conn = None
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            self.log.write(text)
            self.log.flush()
            if self.conn is not None and text:
                try:
                    self.conn.send_bytes(json.dumps({"err": text}).encode())
                except OSError:  # the caller went away (Ctrl-C): _handle stops the run
                    self.conn = None
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def isatty(self) -> bool:
        return False

    def send(self, message: dict) -> None:
        with self.lock, contextlib.suppress(OSError):
            if self.conn is not None:
                self.conn.send_bytes(json.dumps(message).encode())


def serve(folder: Path, name: str) -> None:
    """The service's main loop (``python -m flows.score_service FOLDER NAME``)."""
    from multiprocessing.connection import Listener

    relay = _Relay(sys.stderr)
    sys.stdout = sys.stderr = relay  # before Prefect sets up its console handler
    from flows.score import score as score_flow
    from transferflow import network  # noqa: F401 - Keras and JAX, loaded before any call

    sock, pid_file = folder / f"{name}.sock", folder / f"{name}.pid"
    key = (folder / f"{name}.key").read_bytes()
    listener = Listener(str(sock), family="AF_UNIX", authkey=key)  # creates ``sock``
    pid_file.write_text(str(os.getpid()))
    api_url = os.environ.get("PREFECT_API_URL")
    last = [time.monotonic()]
    busy = threading.Lock()

    def leave(*_args) -> None:  # a clean exit leaves no file (a crash leaves its log)
        for ext in (".sock", ".pid", ".key", ".lock", ".log"):
            (folder / f"{name}{ext}").unlink(missing_ok=True)
        if os.getpgrp() == os.getpid():  # started in a session of its own: end the featurising
            os.killpg(os.getpid(), signal.SIGKILL)  # processes with it
        os._exit(0)

    def watch_idle() -> None:
        while True:
            time.sleep(1.0)
            if time.monotonic() - last[0] > idle_seconds() and busy.acquire(blocking=False):
                print(f"idle for {idle_seconds():.0f} s: exiting", file=relay.log, flush=True)
                leave()

    signal.signal(signal.SIGTERM, leave)
    threading.Thread(target=watch_idle, daemon=True).start()
    print(f"scoring service {name} (pid {os.getpid()}) ready", file=relay.log, flush=True)
    while True:
        try:
            conn = listener.accept()
        except Exception:  # noqa: BLE001 - a client that failed the handshake
            continue
        with busy, conn:
            last[0] = time.monotonic()
            try:
                _handle(conn, relay, score_flow)
            except KeyboardInterrupt:  # the caller went away (Ctrl-C): its run was stopped
                import transferflow.scoring

                transferflow.scoring.drop_featurising_pool()  # interrupted mid-use: start anew
                print("the caller went away: its run was stopped", file=relay.log, flush=True)
            finally:
                relay.conn = None
                # for_this_call sets PREFECT_API_URL to the background server for processes it
                # starts; the next call must find and health-check the server anew.
                if api_url is None:
                    os.environ.pop("PREFECT_API_URL", None)
            last[0] = time.monotonic()


def _handle(conn, relay: _Relay, score_flow) -> None:
    """Run one request and send its answer. A caller that closes the connection (Ctrl-C) stops
    its run: a watcher interrupts this thread (KeyboardInterrupt, as Ctrl-C in a terminal would),
    so no output appears after the caller was interrupted (the output is written atomically)."""
    import _thread

    from flows.cli_common import exit_code_of
    from flows.local_server import for_this_call

    try:
        request = json.loads(conn.recv_bytes())
    except (EOFError, OSError, ValueError):
        return
    relay.conn = conn
    done = threading.Event()

    def watch_caller() -> None:
        while not done.is_set():
            try:
                if conn.poll(0.2):  # a caller sends nothing during its run: readable = closed
                    conn.recv_bytes()
            except (EOFError, OSError):
                if not done.is_set():
                    relay.conn = None
                    _thread.interrupt_main()
                return

    watcher = threading.Thread(target=watch_caller, daemon=True)
    watcher.start()
    try:
        with for_this_call():
            answer = {"result": score_flow(**request["kwargs"])}
    except Exception as exc:  # noqa: BLE001 - sent to the caller, which exits with it
        code = exit_code_of(exc)
        if code is None:
            import traceback

            answer = {"crash": traceback.format_exc()}
        else:
            answer = {"error": str(exc), "exit_code": code}
    finally:
        done.set()
        watcher.join()  # an interrupt it raised lands here at the latest, inside the caller's try
        relay.flush()
    relay.send(answer)


if __name__ == "__main__":
    serve(Path(sys.argv[1]), sys.argv[2])
