"""Shared fixtures: small real data, tiny settings, and where the MDSD benchmark data lives."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from transferflow.config.settings import DEMO_DIR

REPO = Path(__file__).resolve().parents[1]
# Tests never touch the user's state: one base folder (runs, sweeps, local copies) and one store
# and registry for the whole session (and its subprocesses).
os.environ["TRANSFERFLOW_HOME"] = tempfile.mkdtemp(prefix="transferflow-test-home-")
os.environ["TRANSFERFLOW_CACHE_DIR"] = tempfile.mkdtemp(prefix="transferflow-test-cache-")
os.environ["TRANSFERFLOW_REGISTRY_DIR"] = tempfile.mkdtemp(prefix="transferflow-test-registry-")
# XLA's compiled programs are shared by this session's processes, not with the user's cache.
os.environ["TRANSFERFLOW_XLA_CACHE"] = tempfile.mkdtemp(prefix="transferflow-test-xla-")
MDSD = Path(os.environ.get("TRANSFERFLOW_MDSD", REPO.parent / "shared" / "data" / "mdsd"))


@pytest.fixture
def mdsd() -> Path:
    """Path of the Multi-Domain Sentiment Dataset; skips the test when it is not there."""
    if not (MDSD / "books" / "train.csv").is_file():
        pytest.skip(f"MDSD data not found at {MDSD} (set TRANSFERFLOW_MDSD)")
    return MDSD


@pytest.fixture
def small_domains(tmp_path: Path) -> dict[str, Path]:
    """Small real source/target CSVs cut from the demo data (yelp -> amazon): 400 source rows,
    200 target rows. Every test that builds them gets the same bytes, so the session's shared
    artefact store serves the expensive stages once for all of them."""
    return make_small_domains(tmp_path)


def make_small_domains(tmp_path: Path) -> dict[str, Path]:
    """The files of :func:`small_domains`, written into ``tmp_path``."""
    yelp = pd.read_csv(DEMO_DIR / "yelp.csv")
    amazon = pd.read_csv(DEMO_DIR / "amazon.csv")
    src = yelp.groupby("label").head(200)
    tgt = amazon.groupby("label").head(100)
    paths = {"source": tmp_path / "yelp_small.csv", "target": tmp_path / "amazon_small.csv"}
    src.to_csv(paths["source"], index=False)
    tgt.to_csv(paths["target"], index=False)
    return paths


def tiny_settings(source: Path, target: Path, out: Path, **extra) -> dict:
    """Settings that train in seconds: the default model and strategy, small word vectors."""
    raw = {
        "data": {
            "source": {"name": "yelp", "paths": [str(source)]},
            "target": {"name": "amazon", "paths": [str(target)]},
            "test_size": 0.3,
            "target_train_size": 60,
        },
        "embeddings": {"vector_size": 32, "min_count": 1, "epochs": 5},
        "output_dir": str(out),
    }
    for key, value in extra.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw
