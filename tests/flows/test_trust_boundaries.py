"""Trust boundaries through the CLI, as invariants on generated commands (Hypothesis), in a
sandbox folder.

For every generated command:

- the exit code is 0, 2 or 3 and no traceback is printed (no uncaught exception);
- nothing outside the roots the command may write is created, changed or removed (a snapshot of
  the sandbox, links not followed, before and after);
- every input file is byte-identical.

Each hostile example of issue #25 is also an explicit test below.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.conftest import make_small_domains, tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.cli import app
from transferflow.flows.transfer import transfer_learning

pytestmark = pytest.mark.slow

CLI = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # a fixed seed: the same examples in every CI run
    database=None,  # ... and on every machine (no examples replayed from an earlier run)
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): kind and content hash or link target."""
    out = {}
    for base, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(base) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            elif path.is_file():
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                out[rel] = ("special", path.stat().st_mode)
    return out


def changed_outside(before: dict, after: dict, allowed: list[str]) -> list[str]:
    """Entries created, changed or removed outside the ``allowed`` roots (relative paths)."""

    def ok(rel: str) -> bool:
        if any(rel == a or rel.startswith(a.rstrip("/") + "/") for a in allowed):
            return True
        # A new folder on the way to an allowed output (the user named a path in it).
        new_dir = rel not in before and after.get(rel) == ("dir",)
        return new_dir and any(a.startswith(rel + "/") for a in allowed)

    keys = set(before) | set(after)
    return sorted(k for k in keys if before.get(k) != after.get(k) and not ok(k))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A registry with one champion, trained once for the module."""
    base = tmp_path_factory.mktemp("trained")
    small_domains = make_small_domains(base)
    raw = tiny_settings(small_domains["source"], small_domains["target"], base / "runs")
    raw["registry"] = {"dir": str(base / "registry")}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    assert transfer_learning(build_config(raw))["registry"]["champion"] == 1
    return base / "registry"


@pytest.fixture
def box(tmp_path, trained, small_domains, monkeypatch):
    """The sandbox: inputs, a registry, a precious folder, a link out, a FIFO, and a folder
    outside the box that must never change."""
    box = tmp_path / "box"
    (box / "data").mkdir(parents=True)
    shutil.copy(small_domains["source"], box / "data" / "source.csv")
    shutil.copy(small_domains["target"], box / "data" / "target.csv")
    frame = pd.read_csv(small_domains["target"]).head(40)
    frame.drop(columns=["label"]).to_csv(box / "data" / "new.csv", index=False)
    shutil.copytree(trained, box / "registry")
    (box / "precious").mkdir()
    (box / "precious" / "keep.txt").write_text("keep")
    (box / "precious.failed").mkdir()
    (box / "precious.failed" / "keep.txt").write_text("keep")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("keep")
    (box / "escape").symlink_to(tmp_path / "outside")
    os.mkfifo(box / "fifo")
    monkeypatch.chdir(box)
    # Scoring in this process: the properties are about paths, not the warm service.
    monkeypatch.setenv("TRANSFERFLOW_SCORE_SERVICE", "off")
    monkeypatch.setenv("TRANSFERFLOW_CACHE_DIR", str(box / "cache"))
    return box


def invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    # An uncaught exception is a traceback for the user: only SystemExit is a clean exit.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        args,
        result.exception,
        result.output,
    )
    assert result.exit_code in (0, 2, 3), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output, (args, result.output)
    return result


def _model_root(box: Path) -> Path:
    """The folder of the box's one registered model (``registry/models/<name>``)."""
    from transferflow.storage.catalog import Catalog

    return Catalog(box / "registry").select(None).root


def _scored(box: Path, output: str) -> list[str]:
    """What a successful ``score`` writes: the output the user named, its monitoring figures
    beside it, and the batch's line in the model's history."""
    from transferflow.serving.scoring import monitoring_path
    from transferflow.storage.registry import Registry

    real = Path(os.path.realpath(box / output))
    return [str(real), str(monitoring_path(real)), str(_model_root(box) / Registry.HISTORY)]


def check(box: Path, before: dict, allowed: list[str]) -> None:
    """Nothing under the test's folder (the box and the folder outside it) changed except the
    ``allowed`` paths (relative to the box, or absolute)."""
    root = box.parent
    allowed = [os.path.relpath(os.path.realpath(box / a), root) for a in allowed]
    assert changed_outside(before, snapshot(root), allowed) == []


path_parts = st.lists(
    st.sampled_from(
        [
            "data",
            "new.csv",
            "source.csv",
            "..",
            ".",
            "escape",
            "fifo",
            "precious",
            "keep.txt",
            "registry",
            "out.csv",
            "nosuch",
            "/dev/null",
            "-",
            "precious.failed",
        ]
    ),  # fmt: skip
    min_size=1,
    max_size=4,
)


def as_path(parts: list[str]) -> str:
    if parts[0] in ("/dev/null", "-") and len(parts) == 1:
        return parts[0]
    return str(Path(*[p for p in parts if p not in ("/dev/null", "-")] or ["out.csv"]))


@CLI
@given(parts=path_parts)
def test_score_writes_only_its_output_and_never_an_input(box, parts):
    output = as_path(parts)
    before = snapshot(box.parent)
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", output, "--registry", "registry"]
    )
    allowed = []
    if result.exit_code == 0 and output == "-":
        allowed = _scored(box, "out.csv")[2:]  # standard output: only the model's history
    elif result.exit_code == 0:
        allowed = _scored(box, output)  # links resolved
        assert all(Path(p).is_file() for p in allowed)
    check(box, before, allowed)


names = st.one_of(
    st.lists(st.sampled_from(["..", "/", ".", "a", "precious", "escape", "x", "\0", " "]))
    .map("".join)
    .filter(bool),
    st.text(max_size=12).filter(bool),
)


@CLI
@given(name=names)
def test_a_run_name_never_addresses_another_folder(box, name):
    from hypothesis import assume

    from transferflow.errors import ConfigError
    from transferflow.storage.paths import check_name

    try:
        check_name(name, "run_name")
        assume(False)  # a plain name trains a model: covered by the name property and below
    except ConfigError:
        pass
    before = snapshot(box.parent)
    result = invoke(
        ["run", "--source", "data/source.csv", "--target", "data/target.csv",
         "--output-dir", "runs", "--run-name", name]
    )  # fmt: skip
    assert result.exit_code == 2
    check(box, before, [])


@CLI
@given(
    folder=st.sampled_from(
        ["precious", "escape", "registry", "data", ".", "..", "fifo", "cache", "nosuch"]
    ),
    command=st.sampled_from(["clear", "prune"]),
)
def test_cache_commands_delete_only_a_store(box, folder, command):
    before = snapshot(box.parent)
    args = ["cache", command, "--cache-dir", folder]
    result = invoke(args + (["--older-than", "0s"] if command == "prune" else []))
    allowed = ["cache"] if folder == "cache" else []
    check(box, before, allowed)
    if folder not in ("cache", "nosuch"):
        assert result.exit_code in (0, 2)


aliases = st.fixed_dictionaries(
    {
        "champion": st.one_of(
            st.none(),
            st.integers(-2, 3),
            st.booleans(),
            st.sampled_from(["../../escape/1", "1", "../versions/1", 1.0]),
        ),
        "history": st.lists(st.one_of(st.integers(-1, 3), st.just("../x")), max_size=2),
    }
)


@CLI
@given(alias=aliases)
def test_a_damaged_alias_file_never_loads_a_model_from_elsewhere(box, alias):
    (_model_root(box) / "aliases.json").write_text(json.dumps(alias))
    before = snapshot(box.parent)
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", "out.csv", "--registry", "registry"]
    )
    ok = type(alias["champion"]) is int and alias["champion"] == 1
    ok = ok and all(type(h) is int and h > 0 for h in alias["history"])
    assert (result.exit_code == 0) == ok, result.output
    check(box, before, _scored(box, "out.csv") if ok else [])


def _corrupt(data: bytes, how: str, at: float, junk: bytes) -> bytes:
    cut = int(len(data) * at)
    if how == "truncate":
        return data[:cut]
    if how == "overwrite":
        return data[:cut] + junk + data[cut + len(junk) :]
    if how == "insert":
        return data[:cut] + junk + data[cut:]
    return junk  # "replace": nothing of the file is left


corruptions = st.tuples(
    st.sampled_from(["truncate", "overwrite", "insert", "replace"]),
    st.floats(min_value=0.0, max_value=1.0),
    st.binary(min_size=1, max_size=64),
    st.sampled_from(["csv", "csv.gz", "jsonl", "parquet"]),
)


def _write_corrupted(box: Path, source: Path, corruption, drop_label: bool) -> Path:
    how, at, junk, kind = corruption
    frame = pd.read_csv(source)
    if drop_label:
        frame = frame.drop(columns=["label"])
    clean = box / f"clean.{kind}"
    if kind == "parquet":
        frame.to_parquet(clean)
    elif kind == "jsonl":
        frame.to_json(clean, orient="records", lines=True)
    else:
        frame.to_csv(clean, index=False)
    bad = box / f"bad.{kind}"
    bad.write_bytes(_corrupt(clean.read_bytes(), how, at, junk))
    clean.unlink()
    return bad


@CLI
@given(corruption=corruptions)
def test_a_corrupted_file_to_score_is_scored_or_one_message(box, corruption):
    bad = _write_corrupted(box, box / "data" / "new.csv", corruption, drop_label=False)
    before = snapshot(box.parent)
    result = invoke(["score", "--input", str(bad), "--output", "o.csv", "--registry", "registry"])
    check(box, before, _scored(box, "o.csv") if result.exit_code == 0 else [])
    if result.exit_code != 0:
        assert result.output.count("Error:") == 1


@settings(CLI, max_examples=16)
@given(corruption=corruptions, role=st.sampled_from(["source", "target"]))
def test_a_corrupted_training_file_passes_or_stops_with_one_message(box, corruption, role):
    # The source is read in chunks into its sample (data.source_max_rows), the target whole:
    # both readers keep the rule.
    bad = _write_corrupted(box, box / "data" / f"{role}.csv", corruption, drop_label=False)
    files = {"source": "data/source.csv", "target": "data/target.csv", role: str(bad)}
    before = snapshot(box.parent)
    result = invoke(["validate", "--source", files["source"], "--target", files["target"]])
    check(box, before, ["cache"])  # gate verdicts go into the artefact store
    if result.exit_code != 0:
        assert result.output.count("Error:") == 1


# -- the examples of issue #25, one test each -----------------------------------------------------


def test_run_name_with_dots_is_refused_before_anything_is_written(box):
    before = snapshot(box.parent)
    for name in ("../../escape", "../precious", "a/b", ".hidden", "x.failed"):
        result = invoke(
            ["run", "--source", "data/source.csv", "--target", "data/target.csv",
             "--output-dir", "runs", "--run-name", name]
        )  # fmt: skip
        assert result.exit_code == 2 and "run_name" in result.output
    check(box, before, [])


def test_score_output_examples(box):
    before = snapshot(box.parent)
    base = ["score", "--input", "data/new.csv", "--registry", "registry", "--output"]
    result = invoke([*base, "nosuchdir/../data/new.csv"])
    assert result.exit_code == 2 and "is an input file" in result.output
    result = invoke([*base, "/dev/null"])
    assert result.exit_code == 2 and "not a regular file" in result.output
    assert Path("/dev/null").is_char_device()
    result = invoke([*base, "fifo"])
    assert result.exit_code == 2 and "'-' to write to standard output" in result.output
    result = invoke([*base, "data/new.csv/../x.csv"])
    assert result.exit_code == 2
    check(box, before, [])
    result = invoke([*base, "-"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("predicted_label,") or lines[0].startswith("id,")
    assert sum(1 for line in lines if line.count(",") >= 2) == 41  # header + 40 rows
    check(box, before, _scored(box, "out.csv")[2:])  # standard output: only the model's history


def test_an_alias_pointing_outside_the_registry_is_refused(box, tmp_path):
    shutil.copytree(_model_root(box) / "versions" / "1", tmp_path / "outside" / "1")
    (_model_root(box) / "aliases.json").write_text('{"champion": "../../escape/1", "history": []}')
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", "o.csv", "--registry", "registry"]
    )
    assert result.exit_code == 2 and "aliases.json is damaged" in result.output
    assert not (box / "o.csv").exists()


def test_a_model_file_that_fails_the_safe_load_is_a_registry_error(box):
    """A version whose model.keras (and recorded hash) were replaced by a file Keras refuses in
    safe mode: a message naming the version, nothing scored."""
    import zipfile

    from transferflow.storage.files import sha256_file

    version = _model_root(box) / "versions" / "1"
    bad = version / "model.keras"
    with zipfile.ZipFile(bad, "w") as zf:  # a .keras archive whose config asks for a Lambda
        zf.writestr(
            "config.json",
            json.dumps(
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {"function": {"class_name": "__lambda__", "config": {"code": "x"}}},
                }
            ),
        )
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
    record = json.loads((version / "version.json").read_text())
    record["files"]["model.keras"] = sha256_file(bad)
    (version / "version.json").write_text(json.dumps(record))
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", "o.csv", "--registry", "registry"]
    )
    assert result.exit_code == 2
    assert "Model version 1 cannot be loaded safely" in result.output
    assert not (box / "o.csv").exists()


def test_a_model_file_that_is_a_link_is_refused(box):
    version = _model_root(box) / "versions" / "1"
    (version / "model.keras").unlink()
    (version / "model.keras").symlink_to(box / "data" / "new.csv")
    result = invoke(["models", "show", "1", "--registry", "registry"])
    assert '"files_ok": false' in result.output
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", "o.csv", "--registry", "registry"]
    )
    assert result.exit_code == 2 and "symbolic link" in result.output


def test_a_gate_stop_never_deletes_a_failed_folder_it_did_not_make(box):
    """A run named 'precious' whose '.failed' folder exists and is not the product's: refused
    before anything runs; the folder and its content stay."""
    before = snapshot(box.parent)
    result = invoke(
        ["run", "--source", "data/source.csv", "--target", "data/target.csv",
         "--output-dir", ".", "--run-name", "precious"]
    )  # fmt: skip
    assert result.exit_code == 2
    assert "already exists" in result.output or "not made by transferflow" in result.output
    check(box, before, [])


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        (["--set", "transfer.alpha=.inf"], "transfer.alpha"),
        (["--set", "transfer.beta=.nan"], "transfer.beta"),
        (["--seed", "-1"], "seed"),
        (["--seed", "99999999999"], "seed"),
        (["--set", "model.c_grid=[.nan]"], "model.c_grid"),
        (["--set", "model.c_grid=[.inf]"], "model.c_grid"),
        (["--set", "model.c_grid=[]"], "model.c_grid"),
        (["--set", "transfer.alpha=[unclosed"], "--set"),
        (["--set", "transfer.alpha=!!python/object/apply:os.system [echo]"], "--set"),
        (["--output-dir", "data/new.csv/runs"], "output_dir"),
        (["--output-dir", "/proc/transferflow-nowhere/runs"], "cannot be made there"),
        (["--set", "data.target.text_columns=[label]"], "the label column 'label'"),
    ],
)
def test_bad_settings_are_one_message(box, flag, expected):
    before = snapshot(box.parent)
    result = invoke(["run", "--source", "data/source.csv", "--target", "data/target.csv", *flag])
    assert result.exit_code == 2 and expected in result.output
    assert result.output.count("Error:") == 1
    check(box, before, [])


@pytest.mark.parametrize("spelling", ["1.0", " 1", "+1", "1e0"])
def test_numeric_labels_are_one_class_across_domains(tmp_path, small_domains, spelling):
    """Source labels 1/0, target labels 1.0/0.0 (or other spellings): one label set, so every
    baseline runs and the run compares like with like."""
    from transferflow.config.settings import DatasetConfig
    from transferflow.data.labels import canonical_label
    from transferflow.data.tables import load_domain

    target = pd.read_csv(small_domains["target"])
    target["label"] = target["label"].map({1: spelling, 0: spelling.replace("1", "0")})
    path = tmp_path / "t.csv"
    target.to_csv(path, index=False)
    source = load_domain(DatasetConfig(name="s", paths=[small_domains["source"]]), 0.3, 0)
    loaded = load_domain(DatasetConfig(name="t", paths=[path]), 0.3, 0)
    assert set(source.pool["label"]) == set(loaded.pool["label"]) == {"0", "1"}
    assert canonical_label(spelling) == "1"


def test_list_valued_labels_are_refused_with_their_rows(tmp_path, small_domains):
    from transferflow.config.settings import DatasetConfig
    from transferflow.data.tables import load_domain
    from transferflow.errors import DataError

    frame = pd.read_csv(small_domains["target"]).head(30)
    frame["label"] = [["negative"] if i % 2 else ["positive"] for i in range(len(frame))]
    path = tmp_path / "lists.parquet"
    frame.to_parquet(path)  # Parquet keeps them as lists: pandas reads them back as arrays
    with pytest.raises(DataError, match=r"column 'label' holds lists .* row\(s\) 1, 2, 3 and"):
        load_domain(DatasetConfig(name="t", paths=[path]), 0.3, 0)


def test_score_refuses_list_valued_text_like_run(box, tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3], "text": [["good"], ["a", "list"], ["bad"]]})
    frame.to_parquet(box / "lists.parquet")
    result = invoke(
        ["score", "--input", "lists.parquet", "--output", "o.csv", "--registry", "registry"]
    )
    assert result.exit_code == 2 and "holds lists or records" in result.output
    assert "row(s) 1, 2, 3" in result.output


def test_a_folder_as_score_input_is_named_a_folder(box):
    result = invoke(["score", "--input", "data", "--output", "o.csv", "--registry", "registry"])
    assert result.exit_code == 2 and "is a folder" in result.output


@pytest.fixture
def tiny_disk(tmp_path):
    """A 64 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    import subprocess

    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_score_is_one_message_and_no_half_file(box, tiny_disk):
    big = pd.read_csv(box / "data" / "new.csv")
    pd.concat([big] * 100).to_csv(box / "big.csv", index=False)
    out = tiny_disk / "pred.csv"
    result = invoke(["score", "--input", "big.csv", "--output", str(out), "--registry", "registry"])
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and str(out) in result.output
    assert list(tiny_disk.iterdir()) == []


def test_a_read_only_output_folder_is_one_message(box, tiny_disk):
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    result = invoke(
        ["score", "--input", "data/new.csv", "--output", str(tiny_disk / "p.csv"),
         "--registry", "registry"]
    )  # fmt: skip
    assert result.exit_code == 2 and "Read-only file system" in result.output
    result = invoke(
        ["run", "--source", "data/source.csv", "--target", "data/target.csv",
         "--output-dir", str(tiny_disk / "runs")]
    )  # fmt: skip
    assert result.exit_code == 2 and "Read-only file system" in result.output
