"""Scoring on Dask workers (``transferflow score --dask``): a real LocalCluster, the same numbers
as scoring in one process, one output in input order, and a clear message when no scheduler
answers."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.cli import app
from transferflow.flows.transfer import transfer_learning
from transferflow.serving.scoring import score_file
from transferflow.storage.catalog import Catalog


@pytest.fixture
def registered(small_domains, tmp_path):
    reg_dir = tmp_path / "registry"
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(reg_dir)}
    transfer_learning(build_config(raw))
    # Many chunks of uneven texts: rows come back from two workers out of order unless kept.
    yelp = pd.read_csv(small_domains["source"])
    rows = pd.concat([yelp] * 3, ignore_index=True)
    rows.insert(0, "id", range(len(rows)))
    rows.drop(columns=["label"]).to_csv(tmp_path / "batch.csv", index=False)
    return reg_dir, tmp_path / "batch.csv"


@pytest.mark.slow
def test_dask_workers_give_the_in_process_output_in_input_order(registered, tmp_path):
    reg_dir, batch = registered
    registry = Catalog(reg_dir).select(None)
    here = score_file(batch, tmp_path / "here.csv", registry, chunk_rows=97)
    there = score_file(
        batch, tmp_path / "there.csv", registry, chunk_rows=97, dask="local", dask_workers=2
    )
    assert here.rows == there.rows == len(pd.read_csv(batch))
    a, b = pd.read_csv(tmp_path / "here.csv"), pd.read_csv(tmp_path / "there.csv")
    assert b["id"].tolist() == list(range(len(b)))
    pd.testing.assert_frame_equal(a, b, atol=1e-5)
    # The monitoring figures are the batch's, whichever processes predicted it.
    assert here.monitoring["drift"]["score"] == pytest.approx(there.monitoring["drift"]["score"])

    # Through the CLI, as users call it.
    out = tmp_path / "cli.csv"
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(batch), "--output", str(out), "--registry", str(reg_dir)]
        + ["--dask", "local", "--dask-workers", "2"],
    )
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_csv(out), a, atol=1e-5)


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_message_and_no_output(registered, tmp_path):
    reg_dir, batch = registered
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(batch), "--output", str(out), "--registry", str(reg_dir)]
        + ["--dask", "tcp://127.0.0.1:9"],
    )
    assert result.exit_code == 2, result.output
    assert "no Dask scheduler answers" in result.output and "Traceback" not in result.output
    assert not out.exists()
