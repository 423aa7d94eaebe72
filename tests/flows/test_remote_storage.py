"""The flow with its data and artefact store at fsspec URLs, shared by two "machines" (two local
folders): on fsspec's in-process ``memory://`` file system, and on S3 through s3fs against a local
S3-compatible server (moto, on 127.0.0.1; nothing leaves the machine)."""

import os
import socket
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pytest
import yaml
from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings
from typer.testing import CliRunner

from tests.conftest import tiny_settings
from tests.flows.test_cache import EXPENSIVE, _expensive_states, _run
from transferflow.flows.cli import app


def _upload(fs, base: str, domains: dict[str, Path]) -> dict[str, str]:
    urls = {}
    for role, path in domains.items():
        urls[role] = f"{base}/data/{path.name}"
        fs.put_file(str(path), urls[role].split("://", 1)[1])
    return urls


@pytest.mark.slow
def test_flow_shares_remote_store_between_machines(small_domains, tmp_path, monkeypatch):
    base = f"memory://tf-flow-{uuid.uuid4().hex[:8]}"
    urls = _upload(fsspec.filesystem("memory"), base, small_domains)
    raw = tiny_settings(urls["source"], urls["target"], tmp_path / "runs", run_name="a")
    raw["cache"] = {"dir": f"{base}/store"}

    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-a"))
    first, states1 = _run(raw)
    assert set(_expensive_states(states1).values()) == {"Completed"}

    # Another machine: nothing local, same store URL -> every expensive stage is reused.
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "machine-b"))
    second, states2 = _run({**raw, "run_name": "b"})
    assert _expensive_states(states2) == dict.fromkeys(EXPENSIVE, "Cached")
    assert second["candidates"] == first["candidates"]
    assert (tmp_path / "machine-b" / "stores").is_dir()


@pytest.fixture
def s3(monkeypatch):
    """A bucket on a local moto S3 server; AWS_ENDPOINT_URL points s3fs (and subprocesses) at it."""
    from moto.server import ThreadedMotoServer

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
    }.items():
        monkeypatch.setenv(key, value)
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    bucket = f"tf-{uuid.uuid4().hex[:8]}"
    fs.mkdir(bucket)
    try:
        yield fs, bucket
    finally:
        server.stop()


@pytest.mark.slow
def test_cli_run_on_s3_data_store_and_result_storage(s3, small_domains, tmp_path, monkeypatch):
    fs, bucket = s3
    urls = _upload(fs, f"s3://{bucket}", small_domains)
    raw = tiny_settings(urls["source"], urls["target"], tmp_path / "runs")
    config = tmp_path / "s3.yaml"
    config.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("TRANSFERFLOW_LOCAL_DIR", str(tmp_path / "local"))
    args = ["run", "--config", str(config), "--cache-dir", f"s3://{bucket}/store"]
    with temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: True}):
        result = CliRunner().invoke(app, [*args, "--run-name", "s3-a"])
    assert result.exit_code == 0, result.output
    entries = fs.find(f"{bucket}/store/entries")
    assert {Path(e).name.split("-")[0] for e in entries} >= {
        "build_embeddings",
        "train_source_model",
    }
    assert fs.find(f"{bucket}/store/objects")
    # Prefect's persisted results follow the store to S3.
    assert fs.find(f"{bucket}/store/prefect-results")
    listing = CliRunner().invoke(app, ["cache", "list", "--cache-dir", f"s3://{bucket}/store"])
    assert (
        listing.exit_code == 0
        and f"s3://{bucket}/store ({len(entries)} entries, " in listing.output
    )
    # A wrong bucket key is a clear, traceback-free error naming the URL.
    bad = {
        **raw,
        "data": {**raw["data"], "target": {"name": "t", "paths": [f"s3://{bucket}/nope.csv"]}},
    }
    config.write_text(yaml.safe_dump(bad))
    result = CliRunner().invoke(app, [*args, "--run-name", "s3-b"])
    assert result.exit_code != 0
    assert f"s3://{bucket}/nope.csv" in result.output and "Traceback" not in result.output
    assert os.environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1")


def test_cli_rejects_a_store_url_it_cannot_open(tmp_path):
    for url, reason in (
        ("nosuch://bucket/cache", "Protocol not known: nosuch"),
        ("gcs://bucket/cache", "gcsfs"),
    ):
        result = CliRunner().invoke(app, ["run", "--cache-dir", url, "--output-dir", str(tmp_path)])
        assert result.exit_code != 0
        assert (
            f"cache.dir: {url}: cannot open this URL" in result.output and reason in result.output
        )
        assert "Traceback" not in result.output and not any(tmp_path.iterdir())


@pytest.mark.slow  # two sweeps, one on a 2-worker Dask cluster: ~3 minutes
def test_dask_sweep_reads_s3_data_like_local_files(s3, tmp_path):
    from tests.flows.test_sweep import _grid
    from transferflow.config.settings import DEMO_DIR
    from transferflow.experiments.grid import load_grid
    from transferflow.flows.sweep import run_sweep

    fs, bucket = s3
    urls = _upload(
        fs, f"s3://{bucket}", {"yelp": DEMO_DIR / "yelp.csv", "amazon": DEMO_DIR / "amazon.csv"}
    )
    local = load_grid(_grid(tmp_path))
    remote = local.model_copy(
        update={
            "domains": {
                name: d.model_copy(update={"paths": [urls[name]]})
                for name, d in local.domains.items()
            }
        }
    )
    # Dask worker processes inherit AWS_ENDPOINT_URL and the credentials from this process.
    a = pd.DataFrame(run_sweep(local, "local")["rows"])
    b = pd.DataFrame(run_sweep(remote, "dask", workers=2)["rows"])
    cols = ["source", "target", "seed", "n_requested", "candidate", "accuracy", "macro_f1"]
    pd.testing.assert_frame_equal(
        a[cols].sort_values(cols[:5]).reset_index(drop=True),
        b[cols].sort_values(cols[:5]).reset_index(drop=True),
    )
