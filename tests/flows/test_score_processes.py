"""``transferflow score`` leaves no process behind but the Prefect server: its featurising processes
end with the call, whether it succeeds or stops at a bad row, and ``server stop`` ends the server.

The featurising processes stay in the call's session (they never call ``setsid``), so the test
starts the call in a session of its own and lists the session's members afterwards; the Prefect
server runs in a session of its own, recorded in ``$PREFECT_HOME/transferflow-server.json``."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.transfer import transfer_learning
from transferflow.serving import scoring


def _session_members(sid: int) -> list[str]:
    """The session's live processes (command lines), after up to 10 s for ones that are already
    exiting: multiprocessing's resource tracker ends when it reads EOF from the ended call."""
    deadline = time.monotonic() + 10
    while (members := _members_now(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return members


def _members_now(sid: int) -> list[str]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(") ", 1)[1].split()
        # fields[0] is the state, fields[3] the session id; a zombie has ended already.
        if int(fields[3]) == sid and fields[0] != "Z":
            members.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return members


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_score_leaves_only_the_prefect_server(small_domains, tmp_path):
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(tmp_path / "registry")}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    assert transfer_learning(build_config(raw))["registry"]["champion"] == 1
    rows = pd.read_csv(small_domains["target"]).drop(columns=["label"])
    # Large enough for the featurising processes (scoring.POOL_MIN_BYTES), several chunks.
    big = pd.concat([rows] * 250, ignore_index=True)
    big.insert(0, "id", range(len(big)))
    big.to_csv(tmp_path / "big.csv", index=False)
    assert (tmp_path / "big.csv").stat().st_size > scoring.POOL_MIN_BYTES
    bad = big.copy()
    bad.loc[len(bad) - 5, "text"] = ""  # a row without text in the last chunk
    bad.to_csv(tmp_path / "bad.csv", index=False)

    home = tmp_path / "prefect-home"
    env = {**os.environ, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)  # the call starts the local background server

    def cli(*args: str) -> tuple[subprocess.CompletedProcess, int]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "transferflow.flows.cli", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        out, err = proc.communicate(timeout=600)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid

    registry = ["--registry", str(tmp_path / "registry")]
    try:
        done, first = cli("score", "--input", str(tmp_path / "big.csv"),
                        "--output", str(tmp_path / "out.csv"), *registry)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"scored {len(big)} rows" in done.stdout
        server = json.loads((home / "transferflow-server.json").read_text())["pid"]
        assert _alive(server)
        assert _session_members(first) == []

        failed, sid = cli("score", "--input", str(tmp_path / "bad.csv"),
                          "--output", str(tmp_path / "bad_out.csv"), *registry)  # fmt: skip
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert f"data row {len(bad) - 4} has no text" in failed.stderr
        assert not (tmp_path / "bad_out.csv").exists()
        assert _session_members(sid) == []
        assert _alive(server)  # reused, not restarted

        # Predictions on standard output, read by a program that stops early (`| head -1`):
        # one line says so, no traceback, and no process is left.
        piped = subprocess.Popen(
            [sys.executable, "-m", "transferflow.flows.cli", "score", "--input",
             str(tmp_path / "big.csv"), "--output", "-", *registry],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            start_new_session=True,
        )  # fmt: skip
        assert piped.stdout is not None and piped.stdout.readline().startswith("id,")
        piped.stdout.close()
        err = piped.stderr.read() if piped.stderr else ""
        assert piped.wait(timeout=600) == 2, err
        assert "Broken pipe" in err and "give an output file" in err and "Traceback" not in err
        assert _session_members(piped.pid) == []
    finally:
        stopped, _ = cli("server", "stop")
    assert stopped.returncode == 0 and stopped.stdout.startswith("stopped http://127.0.0.1:")
    assert not (home / "transferflow-server.json").exists()
    assert not _alive(server)
