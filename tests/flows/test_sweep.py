"""The sweep flow: grid validation, a local run, and a 2-worker Dask LocalCluster run that must give
the same metrics as the sequential one; each budget is a run of the transfer-learning flow."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from transferflow.config.settings import DEMO_DIR
from transferflow.errors import ConfigError
from transferflow.experiments.grid import load_grid, points
from transferflow.flows.cli import app
from transferflow.flows.sweep import run_sweep


def _grid(tmp_path: Path, **extra) -> Path:
    raw = {
        "name": "tiny",
        "domains": {
            "yelp": {"paths": [str(DEMO_DIR / "yelp.csv")]},
            "amazon": {"paths": [str(DEMO_DIR / "amazon.csv")]},
        },
        "pairs": [["yelp", "amazon"]],
        "label_budgets": [40],
        "seeds": [0, 1],
        "references": False,
        "base": {"data": {"test_size": 0.3}, "embeddings": {"vector_size": 16, "epochs": 3}},
        "output_dir": str(tmp_path / "sweeps"),
        **extra,
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_grid_expands_and_rejects_bad_combinations(tmp_path):
    grid = load_grid(_grid(tmp_path, pairs="all", strategies=["finetune"], seeds=[0, 1, 2]))
    assert len(points(grid)) == 2 * 3  # yelp->amazon, amazon->yelp x 3 seeds
    with pytest.raises(ConfigError, match="strategy"):
        load_grid(_grid(tmp_path, strategies=["feature-extract"]))
    with pytest.raises(ConfigError, match="needs two different domains"):
        load_grid(_grid(tmp_path, pairs=[["yelp", "books"]]))
    with pytest.raises(ConfigError, match="grid file not found"):
        load_grid(tmp_path / "absent.yaml")


@pytest.mark.slow
def test_dask_local_cluster_sweep_matches_sequential_run(tmp_path):
    grid = load_grid(_grid(tmp_path))
    local = run_sweep(grid, "local")
    dask = run_sweep(grid, "dask", workers=2)
    cols = ["source", "target", "seed", "n_requested", "candidate", "accuracy", "macro_f1"]
    a = pd.DataFrame(local["rows"])[cols].sort_values(cols[:5]).reset_index(drop=True)
    b = pd.DataFrame(dask["rows"])[cols].sort_values(cols[:5]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["candidate"]) == {"transfer", "target_only", "source_only", "pooled_lr"}
    assert (a["accuracy"] > 0.5).all()
    out = Path(dask["dir"])
    assert (out / "results.csv").is_file() and (out / "curves.png").stat().st_size > 1000
    assert "Paired wins of transfer" in (out / "summary.md").read_text()
    # Each budget was a transfer-learning run of its own (gates, report), kept in the sweep folder.
    reports = sorted((out / "runs").glob("*/report.html"))
    assert len(reports) == 2  # 2 seeds x 1 budget
    assert (pd.DataFrame(dask["rows"])["stopped_at"] == "").all()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_point_runs_several_budgets_zero_labels_included(tmp_path):
    """Budgets of one point run one after another in one task: each run's cached stages must
    release their locks when they finish (they once waited forever on the previous budget's),
    and n = 0 is a zero-label run (transfer and source_only only)."""
    grid = load_grid(_grid(tmp_path, label_budgets=[0, 40], seeds=[0]))
    result = run_sweep(grid, "local")
    frame = pd.DataFrame(result["rows"])
    assert (frame["stopped_at"] == "").all()
    # What was not run at n = 0 reads "–" in the summary, not "nan ± 0.0".
    assert "nan" not in (Path(result["dir"]) / "summary.md").read_text()
    assert set(frame[frame["n_requested"] == 0]["candidate"]) == {"transfer", "source_only"}
    assert set(frame[frame["n_requested"] == 40]["candidate"]) == {
        "transfer",
        "target_only",
        "source_only",
        "pooled_lr",
    }


def test_sweep_cli_errors_are_one_paragraph(tmp_path):
    result = CliRunner().invoke(
        app, ["sweep", "--grid", str(_grid(tmp_path)), "--task-runner", "ray"]
    )
    assert result.exit_code == 2 and "expected 'local' or 'dask'" in result.output
    assert "Traceback" not in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("domains: {a: {paths: [x.csv]}}\nlabel_budgets: [2]\n")
    result = CliRunner().invoke(app, ["sweep", "--grid", str(bad)])
    assert result.exit_code == 2 and "invalid sweep grid" in result.output
