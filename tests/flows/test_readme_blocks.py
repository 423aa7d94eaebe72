"""The README's command blocks work when pasted into a fresh shell, as written.

Each bash block after the quick start runs in ``bash -e`` from a folder that holds what a clone
has at its top (links to this checkout's ``.venv``, ``transferflow/``, ``flows/`` and
``prefect.yaml``), so whatever a block writes into the working folder lands in a temporary folder,
not in the checkout. The quick-start blocks create the environment itself; CI runs the test
command verbatim (``tests/unit/test_docs.py`` checks the two agree).

One change is made to the Prefect block: its ``PORT=4200`` line, which the README names as the one
place to change the port, gets a free port, so a test machine with a server on 4200 still passes.

Invariant: no process a block starts outlives it, except the background server the README says
ad-hoc runs leave (stopped here with ``transferflow server stop``, as the README tells users).
A block's processes are found by the fresh ``HOME`` each block gets, which they all inherit.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _blocks() -> dict[str, str]:
    """The bash blocks after the quick start, keyed by the heading they sit under."""
    blocks = {}
    heading = ""
    for part in re.split(r"(^## .*$)", README, flags=re.M):
        if part.startswith("## "):
            heading = part[3:].strip()
            continue
        for i, block in enumerate(re.findall(r"```bash\n(.*?)```", part, re.S)):
            if heading != "Quick start":
                blocks[f"{heading} #{i + 1}"] = block
    return blocks


def _processes_with_home(home: Path) -> dict[int, str]:
    """Live processes whose environment has ``HOME=home``: pid → command line."""
    wanted = f"HOME={home}".encode()
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if wanted in (proc / "environ").read_bytes().split(b"\0"):
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                found[int(proc.name)] = command.decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def _left_running(home: Path, grace_s: float = 30.0) -> dict[int, str]:
    """The block's processes still running after ``grace_s`` (a stop takes a moment); killed."""
    deadline = time.monotonic() + grace_s
    while (left := _processes_with_home(home)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # so that a failing check does not leak them into the rest of the suite
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return left


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def clone_top(tmp_path) -> Path:
    top = tmp_path / "clone"
    top.mkdir()
    for name in (".venv", "transferflow", "flows", "prefect.yaml"):
        (top / name).symlink_to(REPO / name)
    return top


def test_the_readme_has_the_blocks_this_file_runs():
    names = list(_blocks())
    assert any(n.startswith("Running on your own data") for n in names), names
    assert any(n.startswith("Scheduled retraining") for n in names), names
    prefect_block = next(b for n, b in _blocks().items() if n.startswith("Scheduled"))
    # The port is named once; the stop commands end the block.
    assert prefect_block.count("4200") == 1 and "PORT=4200" in prefect_block
    assert prefect_block.rstrip().splitlines()[-1].startswith("kill $WORKER $SERVER")


def _label_and_run_step_3(block: str, top: Path, env: dict) -> subprocess.CompletedProcess:
    """The cold start's last step, which the README leaves to the user as a comment: label the
    suggested texts (a ``label`` column added to ``to_label.csv``; here amazon's own labels) and
    run the commented command with them, the unlabelled file still given."""
    import pandas as pd

    assignments = re.search(r"^SOURCE=.*$", block, re.M).group(0)
    step_3 = re.search(
        r"^#\s+(\.venv/bin/transferflow run .*--target to_label\.csv.*)$", block, re.M
    )
    assert step_3, "the README's cold start no longer ends with a run on to_label.csv"
    labels = pd.read_csv(REPO / "transferflow" / "demo_data" / "amazon.csv")
    labels = dict(zip(labels["text"], labels["label"], strict=True))
    to_label = pd.read_csv(top / "to_label.csv")
    to_label["label"] = to_label["text"].map(labels)
    assert to_label["label"].notna().all()
    to_label.to_csv(top / "to_label.csv", index=False)
    return subprocess.run(
        ["bash", "-e", "-c", f"{assignments}\n{step_3.group(1)}"],
        cwd=top,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.skipif(not (REPO / ".venv" / "bin" / "transferflow").exists(), reason="no .venv")
@pytest.mark.parametrize("name", sorted(_blocks()))
def test_a_readme_block_runs_as_pasted(name, clone_top, tmp_path):
    block = _blocks()[name]
    if "PORT=4200" in block:
        block = block.replace("PORT=4200", f"PORT={_free_port()}")
    env = {
        key: value
        for key, value in os.environ.items()
        # A fresh shell: no Prefect server address or home of the test session.
        if not key.startswith("PREFECT_") and key != "VIRTUAL_ENV"
    }
    env["HOME"] = str(tmp_path / "home")  # a fresh user: ~/.transferflow and ~/.prefect are new
    env["PATH"] = f"/usr/bin:/bin:{os.path.dirname(sys.executable)}"
    for key in ("TRANSFERFLOW_CACHE_DIR", "TRANSFERFLOW_REGISTRY_DIR", "TRANSFERFLOW_HOME"):
        env.pop(key, None)
    try:
        done = subprocess.run(
            ["bash", "-e", "-c", block],
            cwd=clone_top,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if name == "Running on your own data #2" and done.returncode == 0:
            done = _label_and_run_step_3(block, clone_top, env)
    finally:
        # Stop what a failed block left running (the background server of a fresh home).
        if (clone_top / ".prefect").is_dir():  # the Prefect block's own home
            subprocess.run(
                [str(REPO / ".venv" / "bin" / "prefect"), "server", "stop"],
                cwd=clone_top,
                env={**env, "PREFECT_HOME": str(clone_top / ".prefect")},
                capture_output=True,
                timeout=60,
            )
        subprocess.run(
            [str(REPO / ".venv" / "bin" / "transferflow"), "server", "stop"],
            env=env,
            capture_output=True,
            timeout=60,
        )
    left = _left_running(tmp_path / "home")
    assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Traceback" not in done.stderr
    assert not left, f"{name} left these running: {left}"
    written = sorted(p.name for p in clone_top.iterdir() if not p.is_symlink())
    if name.startswith("Running on your own data"):
        # Only the outputs the block names land in the working folder (with the predictions,
        # their monitoring figures: docs/operations.md, "Watching scored batches").
        named = {
            "Running on your own data #1": [
                "predictions.csv",
                "predictions.monitoring.json",
                "to_label.csv",
            ],
            "Running on your own data #2": ["to_label.csv"],  # the zero-label cold start
        }
        assert written == named[name], written
        assert (tmp_path / "home" / ".transferflow" / "runs").is_dir()
    else:
        assert written == [".prefect"], written  # git ignores it (.gitignore)
