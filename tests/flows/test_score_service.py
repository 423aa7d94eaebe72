"""The warm scoring service behind ``transferflow score`` (flows/score_service.py), through the CLI:
later calls reuse one service, its output equals scoring in the calling process, a user mistake is
printed once with exit 2, and the service stops with ``transferflow server stop`` and when idle."""

import os
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows import score_service
from flows.cli import app
from flows.transfer import transfer_learning
from tests.conftest import tiny_settings
from transferflow.config import build_config


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(") ")[1][0] != "Z"


@pytest.fixture
def scored_setup(small_domains, tmp_path, monkeypatch):
    """A registered champion, a file to score, and a service folder of this test's own (a
    short path: Unix socket paths are limited to 107 bytes)."""
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(tmp_path / "registry")}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    assert transfer_learning(build_config(raw))["registry"]["champion"] == 1
    data = pd.read_csv(small_domains["target"]).reset_index().rename(columns={"index": "id"})
    data.drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    folder = Path(tempfile.mkdtemp(prefix="svc"))
    monkeypatch.setenv("TRANSFERFLOW_SERVICE_DIR", str(folder))
    monkeypatch.delenv("TRANSFERFLOW_SCORE_SERVICE", raising=False)
    yield tmp_path, folder
    score_service.stop_all()


def _score(tmp_path: Path, out: str, file: str = "new.csv"):
    args = ["--input", str(tmp_path / file), "--output", str(tmp_path / out)]
    return CliRunner().invoke(app, ["score", *args, "--registry", str(tmp_path / "registry")])


@pytest.mark.slow
def test_calls_reuse_one_service_with_the_same_output_and_errors_once(scored_setup, monkeypatch):
    tmp_path, folder = scored_setup
    first, second = _score(tmp_path, "a.csv"), _score(tmp_path, "b.csv")
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "scored 200 rows with model v1" in second.output
    # The run's console lines reach the calling terminal.
    assert "Finished in state Completed()" in second.output
    (pid_file,) = folder.glob("*.pid")  # one service served both calls
    pid = int(pid_file.read_text())
    log = pid_file.with_suffix(".log").read_text()
    assert log.count("Beginning flow run") == 2

    # Scoring in the calling process gives the same bytes.
    monkeypatch.setenv("TRANSFERFLOW_SCORE_SERVICE", "off")
    third = _score(tmp_path, "c.csv")
    assert third.exit_code == 0, third.output
    monkeypatch.delenv("TRANSFERFLOW_SCORE_SERVICE")
    a, b, c = ((tmp_path / f).read_bytes() for f in ("a.csv", "b.csv", "c.csv"))
    assert a == b == c
    assert len(list(folder.glob("*.pid"))) == 1  # "off" started no service

    # A user mistake: printed once, exit 2, no traceback, nothing written, input untouched.
    pd.DataFrame({"id": [1], "body": ["great"]}).to_csv(tmp_path / "bad.csv", index=False)
    before = (tmp_path / "bad.csv").read_bytes()
    bad = _score(tmp_path, "bad_out.csv", file="bad.csv")
    assert bad.exit_code == 2, bad.output
    assert bad.output.count("missing text column") == 1 and "Traceback" not in bad.output
    assert not (tmp_path / "bad_out.csv").exists()
    assert (tmp_path / "bad.csv").read_bytes() == before
    assert int(pid_file.read_text()) == pid  # still the same service

    status = CliRunner().invoke(app, ["server", "status"])
    assert f"scoring services: pid {pid}" in status.output
    stopped = CliRunner().invoke(app, ["server", "stop"])
    assert "stopped 1 scoring service" in stopped.output
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid) and not list(folder.glob("*.sock"))


@pytest.mark.slow
def test_an_idle_service_exits(scored_setup, monkeypatch):
    tmp_path, folder = scored_setup
    monkeypatch.setenv("TRANSFERFLOW_SCORE_SERVICE_IDLE", "2")
    assert _score(tmp_path, "a.csv").exit_code == 0
    (pid_file,) = folder.glob("*.pid")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
    assert list(folder.iterdir()) == []  # socket, key, pid, lock and log removed
    # The next call starts a new service.
    assert _score(tmp_path, "b.csv").exit_code == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


@pytest.mark.slow
def test_an_interrupted_call_stops_its_run_and_writes_nothing(scored_setup):
    """Ctrl-C in the calling terminal stops the run in the service (no output appears later),
    and the service serves the next call."""
    import signal
    import subprocess
    import sys

    from prefect.settings import PREFECT_API_URL

    tmp_path, folder = scored_setup
    assert _score(tmp_path, "warm.csv").exit_code == 0  # the service is up and warm

    def logs() -> str:  # the call below may meet another service (its environment differs)
        return "".join(path.read_text() for path in folder.glob("*.log"))

    # ~100,000 rows of ~500 characters: several seconds of scoring, time to interrupt it.
    small = pd.read_csv(tmp_path / "new.csv")
    big = small.loc[small.index.repeat(500)].reset_index(drop=True)
    big["text"] = (big["text"] + " ") * 8
    big["id"] = range(len(big))
    big.to_csv(tmp_path / "big.csv", index=False)
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    args = ["score", "--input", str(tmp_path / "big.csv")]
    args += ["--output", str(tmp_path / "big_out.csv")]
    # As in a terminal, Ctrl-C raises KeyboardInterrupt in the CLI: a runner that started this
    # test in the background ignores SIGINT, and the child would inherit that.
    launcher = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'transferflow'; runpy.run_module('flows.cli', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, *args, "--registry", str(tmp_path / "registry")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while "Beginning flow run 'score big.csv" not in logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    output = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, output
    while "the caller went away" not in logs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "the caller went away: its run was stopped" in logs()
    assert "Crashed" in logs()  # the run's state, as the UI shows it
    assert not (tmp_path / "big_out.csv").exists()
    assert not [p for p in tmp_path.iterdir() if "big_out" in p.name]  # no temporary file left
    again = _score(tmp_path, "after.csv")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "after.csv").read_bytes() == (tmp_path / "warm.csv").read_bytes()


@pytest.mark.parametrize(
    ("name", "value"),
    [("TRANSFERFLOW_SCORE_SERVICE", "maybe"), ("TRANSFERFLOW_SCORE_SERVICE_IDLE", "ten")],
)
def test_bad_service_settings_are_named(tmp_path, monkeypatch, name, value):
    monkeypatch.setenv("TRANSFERFLOW_SERVICE_DIR", str(tmp_path))
    monkeypatch.setenv(name, value)
    (tmp_path / "x.csv").write_text("id,text\n1,great phone\n")
    result = _score(tmp_path, "o.csv", file="x.csv")
    assert result.exit_code == 2, result.output
    assert result.output.count(f"{name}={value!r}") == 1 and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "x.csv"]  # no service, no output
