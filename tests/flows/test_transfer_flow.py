"""End-to-end runs of the transfer-learning flow on a real Prefect engine with small real data."""

import json
from pathlib import Path

import pandas as pd
import pytest

from flows.transfer import transfer_learning
from tests.conftest import tiny_settings
from transferflow.config import DEMO_DIR, build_config
from transferflow.errors import GateFailedError


def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts() if a.key}


def test_flow_end_to_end(small_domains, tmp_path):
    cfg = build_config(tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs"))
    result = transfer_learning(cfg)
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == tmp_path / "runs"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # no staging left

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == result["metrics"]
    cands = metrics["candidates"]
    assert set(cands) == {"transfer", "target_only", "source_only", "tfidf_lr"}
    n_test = metrics["data"]["target"]["n_test"]
    assert n_test == 60  # 30 % of 200 target rows
    assert metrics["data"]["target"]["n_train"] == 60  # target_train_size
    for name, m in cands.items():
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0, name
        assert sum(map(sum, m["confusion_matrix"]["matrix"])) == n_test, name
        assert 0.0 <= m["roc_auc"] <= 1.0, name
    # Real signal, not chance: the linear baseline and the source model both beat a coin.
    assert cands["tfidf_lr"]["accuracy"] > 0.6
    assert cands["source_only"]["accuracy"] > 0.55
    assert metrics["transfer_gain"]["accuracy_vs_target_only"] == pytest.approx(
        cands["transfer"]["accuracy"] - cands["target_only"]["accuracy"], abs=1e-4
    )

    report = (run_dir / "report.md").read_text()
    assert "| transfer" in report and "| tfidf_lr" in report
    assert json.loads((run_dir / "config.json").read_text())["seed"] == cfg.seed
    for name in ("source.keras", "transfer.keras", "target_only.keras", "vectors.kv"):
        assert (run_dir / "artifacts" / name).is_file()
    assert "transfer-report" in _artifact_keys()


def test_same_seed_gives_same_metrics(small_domains, tmp_path):
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    first = transfer_learning(build_config({**raw, "run_name": "a"}))["metrics"]["candidates"]
    second = transfer_learning(build_config({**raw, "run_name": "b"}))["metrics"]["candidates"]
    assert first == second


def test_multiclass_target_with_other_labels_gets_new_head(small_domains, tmp_path):
    amazon = pd.read_csv(small_domains["target"])
    amazon["label"] = amazon["label"].map({0: "neg", 1: "pos"})
    movies = pd.read_csv(DEMO_DIR / "imdb.csv").head(100).assign(label="movie")
    target = tmp_path / "three.csv"
    pd.concat([amazon, movies]).to_csv(target, index=False)
    raw = tiny_settings(small_domains["source"], target, tmp_path / "runs")
    raw["data"]["target_train_size"] = 90
    result = transfer_learning(build_config(raw))
    cands = result["metrics"]["candidates"]
    assert "source_only" not in cands  # label sets differ
    assert cands["transfer"]["confusion_matrix"]["labels"] == ["movie", "neg", "pos"]
    assert "roc_auc" not in cands["transfer"]


def test_gate_failure_stops_the_flow_and_leaves_no_run_folder(small_domains, tmp_path):
    bad = pd.read_csv(small_domains["target"])
    bad.loc[5, "text"] = "   "
    target = tmp_path / "bad.csv"
    bad.to_csv(target, index=False)
    raw = tiny_settings(small_domains["source"], target, tmp_path / "runs")
    raw["data"]["target"]["test_paths"] = [str(small_domains["target"])]
    raw["data"]["target_train_size"] = None
    raw["checks"] = {"max_blank_text_share": 0.0}
    with pytest.raises(GateFailedError) as info:
        transfer_learning(build_config(raw))
    assert info.value.gate == "raw_input"
    assert "bad.csv row 6" in str(info.value)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_few_blank_texts_are_tolerated_dropped_and_reported(small_domains, tmp_path):
    data = pd.read_csv(small_domains["target"])
    data.loc[[3, 40], "text"] = None  # 1 % of the rows
    target = tmp_path / "gaps.csv"
    data.to_csv(target, index=False)
    raw = tiny_settings(small_domains["source"], target, tmp_path / "runs")
    raw["data"]["target_train_size"] = None
    metrics = transfer_learning(build_config(raw))["metrics"]
    dropped = metrics["data"]["target"]["dropped_blank_text"]
    assert sum(dropped.values()) == 2
    assert metrics["data"]["target"]["n_train"] + metrics["data"]["target"]["n_test"] == 198
