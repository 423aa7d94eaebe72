"""The CLI: flags map onto the config, user mistakes end with one clear paragraph and exit != 0."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from transferflow.flows.cli import app, assemble_config
from transferflow.storage.store import ArtifactStore

runner = CliRunner()

TINY = [
    "--set",
    "embeddings.vector_size=16",
    "--set",
    "embeddings.epochs=3",
]


def test_flags_map_onto_config(tmp_path):
    cfg = assemble_config(
        None,
        {
            "data.source.paths": [tmp_path / "books" / "train.csv"],
            "data.target.paths": [tmp_path / "k.csv"],
            "text_columns": ["title", "text"],
            "label_column": "y",
            "data.target_train_size": 50,
        },
        ["transfer.strategy=joint", "transfer.alpha=0.5"],
    )
    assert cfg.data.source.name == "books" and cfg.data.target.name == "k"
    assert cfg.data.target.text_columns == ["title", "text"] and cfg.data.source.label_column == "y"
    assert cfg.transfer.strategy == "joint" and cfg.transfer.alpha == 0.5
    assert cfg.data.target_train_size == 50


def test_config_file_and_flag_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "data:\n  source: {name: s, paths: [a.csv]}\n  target: {name: t, paths: [b.csv]}\n"
        "model: {cv_folds: 7}\nseed: 3\n"
    )
    cfg = assemble_config(path, {"seed": 9}, [])
    assert cfg.model.cv_folds == 7 and cfg.seed == 9


def test_no_data_flags_means_demo():
    cfg = assemble_config(None, {}, [])
    assert cfg.data.target.name == "amazon"


@pytest.mark.slow
@pytest.mark.parametrize("warn", [False, True])
def test_run_on_files(small_domains, tmp_path, warn):
    """A run on the user's files; a gate in warn mode that fails is repeated in the summary (it
    is easy to miss among the logs). ``warn``: a domain-shift limit no pair can meet."""
    out = tmp_path / "runs"
    strict = ["--set", "gates.domain_shift.max_proxy_a_distance=0"] if warn else []
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(small_domains["target"]),
            "--target-train-size",
            "40",
            "--output-dir",
            str(out),
            *TINY,
            *strict,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Results:" in result.output and "pooled_lr" in result.output
    assert len(list(out.iterdir())) == 1
    said = "gate domain_shift warned: a classifier tells source from target texts too easily"
    assert (said in result.output) is warn, result.output


def test_what_a_run_records_names_the_same_files_from_any_working_folder(
    small_domains, tmp_path, monkeypatch
):
    """Every location given relative to the working folder: the registry's record (run folder,
    input hashes), the monitoring history and the store's entries name the files absolutely, so
    they hold from any other folder: the store's entries are sized and hit from there
    (``tests/unit/test_paths.py``: garbage collection keeps them, however the store is spelled)."""
    import json
    import shutil

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    shutil.copy(small_domains["source"], work / "src.csv")
    shutil.copy(small_domains["target"], work / "tgt.csv")
    monkeypatch.chdir(work)
    args = ["--source", "src.csv", "--target", "tgt.csv", "--target-train-size", "40",
            "--cache-dir", "store", "--set", "registry.dir=reg", *TINY]  # fmt: skip
    first = runner.invoke(app, ["run", *args, "--output-dir", "runs"])
    assert first.exit_code == 0, first.output
    monkeypatch.chdir(elsewhere)
    reg = ["--model-name", "tgt", "--registry", "../work/reg"]
    shown = runner.invoke(app, ["models", "show", "1", *reg])
    assert shown.exit_code == 0, shown.output
    record = json.loads(shown.output)
    assert os.path.isabs(record["run_dir"]) and os.path.isdir(record["run_dir"])
    assert all(os.path.isabs(p) and os.path.isfile(p) for p in record["data_sha256"])
    scored = runner.invoke(
        app, ["score", "--input", "../work/tgt.csv", "--output", "pred.csv", *reg]
    )
    assert scored.exit_code == 0, scored.output
    # The run's test set (20 % of tgt.csv) calibrates the model's confidence; the output says so.
    assert "confidence calibrated on the model's predictions on" in scored.output, scored.output
    history = (work / "reg" / "models" / "tgt" / "monitoring.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["input"] == str(work / "tgt.csv")
    listing = runner.invoke(app, ["cache", "list", "--cache-dir", "../work/store"])
    assert listing.exit_code == 0 and "train_source_model" in listing.output, listing.output
    model_rows = [line for line in listing.output.splitlines() if "train_" in line]
    assert model_rows and not [line for line in model_rows if line.endswith(" 0 B")]
    store = ArtifactStore(work / "store")
    created = {e.key: e.created for e in store.entries()}
    # The same run from here, every location spelled from here: every stage is a cache hit.
    here = {"src.csv": "../work/src.csv", "tgt.csv": "../work/tgt.csv", "store": "../work/store"}
    again = runner.invoke(app, ["run", *[here.get(a, a) for a in args], "--output-dir", "runs"])
    assert again.exit_code == 0, again.output
    assert {e.key: e.created for e in store.entries()} == created


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_column", "missing column(s) 'text'"),
        ("empty", "the file is empty"),
        ("extension", "cannot read files with extension '.xlsx'"),
        ("no_file", "file not found"),
        ("relative", "a relative path is read from the folder the command runs in"),
    ],
)
def test_user_mistakes_get_one_paragraph_and_exit_code(
    small_domains, tmp_path, case, message, monkeypatch
):
    bad = tmp_path / "bad.csv"
    if case == "missing_column":
        pd.read_csv(small_domains["target"]).rename(columns={"text": "review"}).to_csv(
            bad, index=False
        )
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "extension":
        bad = tmp_path / "bad.xlsx"
        bad.write_bytes(b"PK")
    elif case == "relative":  # e.g. a config file's path, read from the working folder
        monkeypatch.chdir(tmp_path)
        bad = Path("data") / "absent.csv"
    else:
        bad = tmp_path / "absent.csv"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(bad),
            "--output-dir",
            str(tmp_path / "runs"),
            *TINY,
        ],
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder, inputs untouched


def test_invalid_setting_is_named(small_domains):
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(small_domains["target"]),
            "--strategy",
            "magic",
        ],
    )
    assert result.exit_code == 2
    assert "transfer.strategy" in result.output and "'magic'" in result.output


def test_real_process_prints_no_traceback(small_domains, tmp_path):
    """The installed console script, in its own process with its own Prefect server."""
    bad = tmp_path / "bad.csv"
    pd.read_csv(small_domains["target"]).rename(columns={"label": "stars"}).to_csv(bad, index=False)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "transferflow.flows.cli",
            "run",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(bad),
            "--output-dir",
            str(tmp_path / "runs"),
            *TINY,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "missing column(s) 'label'" in proc.stderr
    assert "Columns present: 'text', 'stars'" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr

    # A mistake found inside a flow run (a bad JSONL line, read by the load task) is printed once:
    # Prefect's task and flow state lines about it stay in the server's log.
    from prefect.settings import PREFECT_API_URL

    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"text": "good phone", "label": 1}\n{"text": "bad" "label": 0}\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "transferflow.flows.cli",
            "validate",
            "--source",
            str(small_domains["source"]),
        ]  # fmt: skip
        + ["--target", str(bad_jsonl)],
        capture_output=True,
        text=True,
        env={**env, "PREFECT_API_URL": PREFECT_API_URL.value()},  # the session's test server
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert out.count("line 2 is not valid JSON") == 1, out
    assert "Traceback" not in out


def test_validate_runs_only_the_data_gates(small_domains, tmp_path):
    docs = tmp_path / "docs"
    result = runner.invoke(
        app,
        [
            "validate",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(small_domains["target"]),
            "--docs-dir",
            str(docs),
        ],
    )
    assert result.exit_code == 0, result.output
    for gate in ("raw_input[source]", "raw_input[target]", "leakage", "domain_shift"):
        assert gate in result.output
    assert "build_embeddings" not in result.output  # nothing is trained
    assert (docs / "index.html").is_file()
    assert not (tmp_path / "runs").exists()
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = {run.name for run in client.read_flow_runs()}
    assert "validate yelp_small → amazon_small" in names  # a readable run name in the UI
    # Without Data Docs the gates' verdicts are cached, in the store given as in `run`.
    store = tmp_path / "store"
    data = ["--source", str(small_domains["source"]), "--target", str(small_domains["target"])]
    cached = runner.invoke(app, ["validate", *data, "--cache-dir", str(store)])
    assert cached.exit_code == 0, cached.output
    assert {e.stage for e in ArtifactStore(store).entries()} >= {"raw_input_checks"}


def test_validate_fails_with_exit_code_3_on_leakage(small_domains, tmp_path):
    data = pd.read_csv(small_domains["target"])
    test, train = data.iloc[:60], data.iloc[60:]
    pd.concat([train, test.head(20)]).to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    result = runner.invoke(
        app,
        [
            "validate",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(tmp_path / "train.csv"),
            "--target-test",
            str(tmp_path / "test.csv"),
        ],
    )
    assert result.exit_code == 3, result.output
    assert "Gate 'leakage' failed" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_cli_starts_one_background_server_and_reuses_it(small_domains, tmp_path):
    """Without PREFECT_API_URL, the first call starts a local server; later calls run their flows
    on it (they show up in its API, so in its UI); `server stop` ends it."""
    import httpx

    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)

    def cli(*args, check=True):
        proc = subprocess.run(
            [sys.executable, "-m", "transferflow.flows.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert not check or proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    try:
        first = cli(
            "validate", "--source", str(small_domains["source"]), "--target",
            str(small_domains["target"]),
        )  # fmt: skip
        assert "Started a Prefect server in the background" in first.stderr
        status = cli("server", "status")
        assert status.stdout.startswith("running: http://127.0.0.1:")
        url = status.stdout.split()[1] + "/api"
        # The UI served there talks to this server (not to Prefect's default port).
        ui = httpx.get(status.stdout.split()[1] + "/ui-settings", timeout=10).json()
        assert ui["api_url"] == url
        again = cli("server", "start")
        assert again.stdout.startswith("already running")
        second = cli(
            "validate", "--source", str(small_domains["source"]), "--target",
            str(small_domains["target"]),
        )  # fmt: skip
        assert "Started a Prefect server" not in second.stderr
        runs = httpx.post(f"{url}/flow_runs/filter", json={}, timeout=10).json()
        assert sum(r["state_type"] == "COMPLETED" for r in runs) == 2
    finally:
        stopped = cli("server", "stop")
    assert stopped.stdout.startswith("stopped http://127.0.0.1:")
    assert cli("server", "status", check=False).returncode == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["score"], ["suggest"], ["validate"], ["models", "list"], ["cache", "clear"]],
)
def test_help_shows_flags_as_flags_and_defaults(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert "--help" in result.output and "<bool>" not in result.output  # a flag takes no value
    if command == ["run"]:
        assert "(default 42)" in result.output  # the seed's default is shown


def _children(pid: int) -> list[int]:
    from pathlib import Path

    kids = []
    for thread in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(k) for k in (thread / "children").read_text().split()]
    return kids


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended; only its parent's wait is missing


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux-only")
def test_temporary_server_dies_with_a_killed_cli(small_domains, tmp_path):
    """TRANSFERFLOW_SERVER=temporary: the call's own server works, and when the CLI process is
    killed (-9) mid-run its server (``prefect server start``, a child) goes too."""
    import signal
    import time
    from pathlib import Path

    env = {
        **os.environ,
        "TRANSFERFLOW_SERVER": "temporary",
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }
    env.pop("PREFECT_API_URL", None)
    args = ["--source", str(small_domains["source"]), "--target", str(small_domains["target"])]
    done = subprocess.run(
        [sys.executable, "-m", "transferflow.flows.cli", "validate", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Started a Prefect server" not in done.stderr  # no background server in this mode

    cli = subprocess.Popen(
        [sys.executable, "-m", "transferflow.flows.cli", "run", *args, *TINY,
         "--output-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    server, deadline = None, time.monotonic() + 120
    while server is None and time.monotonic() < deadline and cli.poll() is None:
        for pid in _children(cli.pid):
            if "prefect\x00server\x00start" in Path(f"/proc/{pid}/cmdline").read_text():
                server = pid
        time.sleep(0.2)
    assert server is not None, "the temporary server never started"
    time.sleep(3)  # well inside the run
    os.kill(cli.pid, signal.SIGKILL)
    cli.wait()
    deadline = time.monotonic() + 30
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(server)


def test_every_command_answers_under_python_m_too():
    """A command registered after ``main()`` runs exists for the console script but not for
    ``python -m transferflow.flows.cli`` (``where`` was such a command): every top-level command
    and group must answer ``--help`` both ways."""
    from transferflow.flows.cli import app

    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    assert {"run", "score", "sweep", "where", "models", "server", "cache"} <= set(names)
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "transferflow.flows.cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (name, done.stdout[-500:], done.stderr[-500:])


def test_modules_imported_while_the_server_starts_exist_and_keep_keras_on_jax():
    """What the CLI imports while the local server comes up is importable, and importing it
    first leaves Keras on the JAX backend (a bare ``import keras`` would pick TensorFlow)."""
    from transferflow.flows.cli_common import TRAINING_MODULES

    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = (
        "import importlib, sys\n"
        f"for m in {list(TRAINING_MODULES)!r}: importlib.import_module(m)\n"
        "assert 'keras' in sys.modules and 'jax' in sys.modules\n"
        "import keras\n"
        "print(keras.backend.backend())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "jax"


def _commands(group, path=()):
    """Every command of the CLI's click tree, with its path of names."""
    yield path, group
    for name, sub in getattr(group, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_text_reaches_the_user_whole():
    """Help is written as docstrings: what the terminal shows must keep every word of it (no
    ``<placeholder>`` swallowed as markup), show no reST/markdown quoting, and join a
    paragraph's lines instead of keeping the docstring's line breaks."""
    import re

    import typer.main

    root = typer.main.get_command(app)
    seen = 0
    for path, command in _commands(root):
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, path
        shown = result.output
        assert "``" not in shown and "`" not in shown, path
        assert "<bool>" not in shown, path  # a flag takes no value
        texts = [command.help or ""] + [p.help or "" for p in command.params if hasattr(p, "help")]
        shown_words = set(re.findall(r"\w+", shown))
        for text in texts:
            missing = set(re.findall(r"\w+", text)) - shown_words
            assert not missing, (path, missing)
        # At 400 columns no paragraph of a docstring needs more than one line.
        first = (command.help or "").strip().split("\n\n")[0]
        if first:
            assert " ".join(first.split()).replace("`", "") in " ".join(shown.split()), path
        seen += 1
    assert seen > 15  # the walk reached the subcommands


def test_help_fits_a_standard_terminal():
    """At 80 columns (a default terminal) no help line is cut short with an ellipsis, and no
    option shows a Python type such as ``<list[str]>`` for what it takes."""
    import typer.main

    for path, _ in _commands(typer.main.get_command(app)):
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "80"}).output
        assert "…" not in shown, (path, [line for line in shown.splitlines() if "…" in line])
        assert "[str]" not in shown and "int range" not in shown, path


@pytest.mark.parametrize("command", [["where"], ["models", "list"], ["cache", "list"], ["--help"]])
def test_a_listing_read_by_a_program_that_stops_early_ends_quietly(tmp_path, command):
    """`transferflow where | head -1`: the reader has what it wanted; no message, no traceback,
    exit 1 as click ends its own --help (score's predictions on standard output are the
    exception: rows were lost, it says so, tests/flows/test_score_processes.py)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    env = {**os.environ, "TRANSFERFLOW_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "transferflow.flows.cli", *command],
            stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=120,
        )  # fmt: skip
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 1, done.stderr


@pytest.mark.slow
def test_the_demo_prints_what_the_readme_shows(tmp_path, monkeypatch):
    """``transferflow run`` with no flags (the README's first command, default settings) prints
    the README's results table and registration line, and the README's account of the choice
    (out-of-fold counts) is the report's: the README cannot drift from the product."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    shown = re.search(r"```\nResults: [^\n]*\n(.*?)```", readme, re.S)
    assert shown, "the README shows the demo's output"
    monkeypatch.setenv("TRANSFERFLOW_REGISTRY_DIR", str(tmp_path / "registry"))
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 0, result.output
    printed = result.output.split("\nResults: ", 1)[1].split("\n", 1)[1]
    keep = [line for line in shown.group(1).splitlines() if not line.startswith("  report: ")]
    assert [line for line in printed.splitlines() if not line.startswith("  report: ")] == keep
    run_dir = Path(result.output.split("\nResults: ", 1)[1].split("\n", 1)[0].strip())
    report = (run_dir / "report.md").read_text()
    candidates = report.split("## Candidates on the target test set", 1)[1].split("\n## ", 1)[0]
    oof = {
        m.group(1): round(float(m.group(2)) * 100)
        for m in re.finditer(r"^\| (\w+)(?: \*\*\(chosen\)\*\*)? \|(?:[^|]*\|){3} ([0-9.]+) \|",
                             candidates, re.M)
    }  # fmt: skip
    said = re.search(r"transfer had (\d+) correct, the best baseline \((\w+)\) (\d+)", readme)
    assert said, "the README says how the choice was made"
    best = max((n for n in oof if n != "transfer"), key=lambda n: oof[n])
    assert (int(said.group(1)), said.group(2), int(said.group(3))) == (
        oof["transfer"],
        best,
        oof[best],
    ), oof
    repeats = re.search(
        r"here (\d+) exact repeats from the source files\s+and (\d+) from the target's .*?, "
        r"and (\d+) repeats\s+among the target's texts beyond",
        readme,
        re.S,
    )
    assert repeats, "the README says what the demo drops"
    assert (
        f"source yelp+imdb: {repeats.group(1)} exact repeats; "
        f"target amazon: {repeats.group(2)} exact repeats, "
        f"unlabelled texts left out: {repeats.group(3)} repeats." in report
    ), report
