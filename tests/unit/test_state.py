"""One module owns every state root (transferflow/storage/state.py): one variable moves them all,
each root's own variable moves it alone, an empty variable counts as unset, and `transferflow where`
lists exactly these roots."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from transferflow.config.settings import build_config
from transferflow.config.sources import demo_settings
from transferflow.flows.cli import app
from transferflow.storage import state
from transferflow.storage.files import local_root
from transferflow.storage.registry import Registry
from transferflow.storage.store import default_root

OWN = {
    "registry": "TRANSFERFLOW_REGISTRY_DIR",
    "cache": "TRANSFERFLOW_CACHE_DIR",
    "local": "TRANSFERFLOW_LOCAL_DIR",
    "xla": "TRANSFERFLOW_XLA_CACHE",
}


@pytest.fixture
def base(tmp_path, monkeypatch) -> Path:
    for var in OWN.values():
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRANSFERFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_one_variable_moves_every_root(base):
    roots = {r.name: r.location for r in state.roots()}
    assert set(roots) == {"base", "runs", "sweeps", "registry", "cache", "local", "xla"}
    for name, location in roots.items():
        assert Path(location) == base or base in Path(location).parents, name
    # What the stages use comes from here.
    assert build_config(demo_settings()).runs_parent() == base / "runs"
    assert Registry().root == base / "registry"
    assert default_root() == base / "cache"
    assert local_root() == base / "local"


@pytest.mark.parametrize("name", sorted(OWN))
def test_a_roots_own_variable_moves_it_alone(base, tmp_path, monkeypatch, name):
    monkeypatch.setenv(OWN[name], str(tmp_path / "elsewhere"))
    roots = {r.name: r.location for r in state.roots()}
    assert roots[name] == str(tmp_path / "elsewhere")
    moved = {name, "xla"} if name == "local" else {name}  # xla lives under local
    for other, location in roots.items():
        if other not in moved and other != "base":
            assert base in Path(location).parents, other


def test_an_empty_variable_is_unset(base, monkeypatch):
    for var in [*OWN.values(), "TRANSFERFLOW_HOME"]:
        monkeypatch.setenv(var, "")
    home = Path.home() / ".transferflow"
    assert state.home() == home
    assert all(Path(r.location) == home or home in Path(r.location).parents for r in state.roots())


def test_where_lists_the_roots_and_prefect_home(base):
    result = CliRunner().invoke(app, ["where", "--json"])
    assert result.exit_code == 0, result.output
    listed = {row["name"]: row["location"] for row in json.loads(result.output)}
    assert listed.pop("prefect")  # Prefect's own PREFECT_HOME, shown beside ours
    assert listed == {r.name: r.location for r in state.roots()}
