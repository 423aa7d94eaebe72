"""The bad-input catalogue, registry part: damaged or tampered registry files through the CLI end
with one clear paragraph (exit 2, no traceback) or are flagged, and nothing is promoted."""

import json

import pytest
from typer.testing import CliRunner

from transferflow.flows.cli import app
from transferflow.storage.registry import Registry

runner = CliRunner()


@pytest.fixture
def registry(tmp_path):
    """A registry with two versions (plain files stand in for models: nothing here loads them)."""
    reg = Registry(tmp_path / "reg")
    for n in (1, 2):
        f = tmp_path / f"m{n}.keras"
        f.write_bytes(f"model {n}".encode())
        reg.register({"model.keras": f}, {"kind": "keras", "source": "s", "target": "t"})[0]
    reg.promote(1)
    return reg


def _cli(*args):
    return runner.invoke(app, list(args))


def _one_paragraph(result, exit_code, words):
    assert result.exit_code == exit_code, result.output
    assert words in result.output, result.output
    assert "Traceback" not in result.output
    assert result.output.count("Error:") <= 1


def test_a_flipped_byte_is_flagged_and_the_version_is_not_promoted(registry):
    model = registry.path(2) / "model.keras"
    model.write_bytes(b"X" + model.read_bytes()[1:])
    listing = _cli("models", "list", "--registry", str(registry.root))
    assert listing.exit_code == 0
    line = next(row for row in listing.output.splitlines() if " v2 " in row)
    assert line.rstrip().endswith("MODIFIED")
    rows = json.loads(_cli("models", "list", "--json", "--registry", str(registry.root)).output)
    assert [r["files_ok"] for r in rows] == [True, False]
    shown = _cli("models", "show", "2", "--registry", str(registry.root))
    assert shown.exit_code == 0 and json.loads(shown.stdout)["files_ok"] is False
    _one_paragraph(
        _cli("models", "promote", "2", "--registry", str(registry.root)), 2, "not promoted"
    )
    assert registry.champion() == 1


def test_damaged_aliases_file_is_named(registry):
    (registry.root / "aliases.json").write_text("{broken")
    for command in (["models", "list"], ["models", "promote", "2"], ["models", "rollback"]):
        _one_paragraph(
            _cli(*command, "--registry", str(registry.root)), 2, "aliases.json is damaged"
        )
    assert (registry.root / "aliases.json").read_text() == "{broken"  # nothing rewritten


def test_damaged_version_record_and_stray_folders(registry):
    (registry.root / "versions" / "notes").mkdir()
    (registry.path(2) / "version.json").write_text("[1, 2")
    listing = _cli("models", "list", "--registry", str(registry.root))
    assert listing.exit_code == 0 and "Traceback" not in listing.output
    assert "v2" in listing.output and "version.json is damaged" in listing.output
    assert "notes" not in listing.output
    _one_paragraph(
        _cli("models", "show", "2", "--registry", str(registry.root)),
        2,
        "version.json is damaged",
    )
    _one_paragraph(
        _cli("models", "promote", "2", "--registry", str(registry.root)),
        2,
        "version.json is damaged",
    )
    assert registry.champion() == 1


def test_show_without_a_version_shows_the_champion(registry, tmp_path):
    """``models show`` alone is the champion's record (what ``score`` uses); without a champion
    it says how to get one."""
    shown = _cli("models", "show", "--registry", str(registry.root))
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["version"] == 1
    registry.promote(2)
    again = _cli("models", "show", "--registry", str(registry.root))
    assert json.loads(again.stdout)["version"] == 2
    bare = Registry(tmp_path / "none")
    f = tmp_path / "m.keras"
    f.write_bytes(b"model")
    bare.register({"model.keras": f}, {"kind": "keras", "source": "s", "target": "t"})
    _one_paragraph(_cli("models", "show", "--registry", str(bare.root)), 2, "No champion model")
