"""End-to-end runs of the transfer-learning flow on a real Prefect engine with small real data."""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import tiny_settings
from transferflow.config.settings import DEMO_DIR, build_config
from transferflow.errors import GateFailedError
from transferflow.flows.transfer import transfer_learning
from transferflow.storage.files import sha256_file


def _artifact_keys() -> set[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return {a.key for a in client.read_artifacts() if a.key}


def test_flow_end_to_end(small_domains, tmp_path, caplog):
    cfg = build_config(
        tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    )
    result = transfer_learning(cfg)
    run_dir = Path(result["run_dir"])
    assert run_dir.parent == tmp_path / "runs"
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [run_dir.name]  # no staging left

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == result["metrics"]
    cands = metrics["candidates"]
    assert set(cands) == {"transfer", "target_only", "source_only", "pooled_lr"}
    counts = metrics["data"]["target"]["counts"]
    n_test = counts["test"]
    assert abs(n_test - 60) <= 2  # ~30 % of 200 rows (duplicate texts stay on one side)
    assert counts["train"] == 60 and "val" not in counts  # every label trains: none held out
    assert counts["pool"] == 200 - n_test  # all training texts still feed Word2Vec
    assert set(metrics["gates"]) == {
        "raw_input[source]",
        "raw_input[target]",
        "leakage",
        "domain_shift",
        "embeddings",
        "source_model",
        "promotion",
    }
    assert all(g["status"] in ("passed", "warned") for g in metrics["gates"].values())
    assert metrics["selection"]["chosen"] in cands
    assert set(metrics["selection"]["oof_accuracy"]) == set(cands)  # out-of-fold, all labels
    assert metrics["selection"]["n"] == 60
    assert 0 <= metrics["domain_shift"]["proxy_a_distance"] <= 2
    for name, m in cands.items():
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0, name
        assert sum(map(sum, m["confusion_matrix"]["matrix"])) == n_test, name
        assert 0.0 <= m["roc_auc"] <= 1.0, name
    # Real signal, not chance: the linear baseline and the source model both beat a coin.
    assert cands["pooled_lr"]["accuracy"] > 0.6
    assert cands["source_only"]["accuracy"] > 0.55
    assert metrics["transfer_gain"]["accuracy_vs_target_only"] == pytest.approx(
        cands["transfer"]["accuracy"] - cands["target_only"]["accuracy"], abs=1e-4
    )

    # The ensemble's weights: the default half for the NB member, kept through self-training.
    weights = metrics["ensemble_weights"]
    assert weights["from"] == "fixed" and weights["members"]["nb/pooled"] == pytest.approx(0.5)
    report = (run_dir / "report.md").read_text()
    assert "| transfer" in report and "| pooled_lr" in report and "McNemar" in report
    assert "Ensemble weights: the NB-weighted member 50%" in report
    assert "## Data-quality gates" in report and "proxy A-distance" in report
    assert not (run_dir / "data_docs").exists()  # rendered on request or when a gate fails
    for png in ("candidates", "confusion", "domain_shift"):
        assert (run_dir / "figures" / f"{png}.png").read_bytes()[:4] == b"\x89PNG"
        # report.md shows them by paths relative to the run folder (true after its rename).
        assert f"![{png}](figures/{png}.png)" in report
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "http" not in page.split("<body>")[1]
    assert json.loads((run_dir / "config.json").read_text())["seed"] == cfg.seed
    for name in (
        "source_model.keras",
        "transfer.keras",
        "target_only.keras",
        "vectors.npz",
        "pooled_lr.keras",
    ):
        assert (run_dir / "artifacts" / name).is_file()
    # artifacts.json stays true after the staging folder's rename: paths relative to the run.
    listing = json.loads((run_dir / "artifacts.json").read_text())
    assert listing and all(
        sha256_file(run_dir / entry["path"]) == entry["sha256"] for entry in listing.values()
    )
    assert {"transfer-report", "html-report", "per-class-metrics"} <= _artifact_keys()
    # docs/gates.md's table of a run folder's files names only files a run leaves.
    import re

    table = (Path(__file__).resolve().parents[2] / "docs" / "gates.md").read_text()
    table = table.split("| file | content |", 1)[1].split("\n\n", 1)[0]
    named = set(re.findall(r"`([\w-]+\.[a-z]{2,7})`", table))  # every file name it gives
    optional = {"learning_curve.png"}  # with --learning-curve only
    assert len(named) > 10
    assert {n for n in named - optional if not list(run_dir.rglob(n))} == set()
    # The run's log is written for people: no Python dict or list repr in any line.
    said = [r.getMessage() for r in caplog.records if r.name.startswith("prefect.")]
    assert len(said) > 20
    assert [m for m in said if re.search(r"[{\[]'|np\.", m)] == []


@pytest.mark.slow
def test_same_seed_gives_same_metrics_and_artefact_bytes(small_domains, tmp_path):
    """Two cold runs (the cache off, so the second cannot be a cache hit): the same metrics and
    byte-identical vectors and models."""
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["cache"] = {"enabled": False}
    raw["registry"] = {"enabled": False}
    runs = [transfer_learning(build_config({**raw, "run_name": n})) for n in ("a", "b")]
    assert runs[0]["metrics"]["candidates"] == runs[1]["metrics"]["candidates"]
    hashes = [
        {
            k: v["sha256"]
            for k, v in json.loads((Path(r["run_dir"]) / "artifacts.json").read_text()).items()
        }
        for r in runs
    ]
    assert hashes[0] == hashes[1] and {"vectors", "source_model", "transfer"} <= set(hashes[0])


@pytest.mark.slow
def test_fine_tuning_takes_the_pooled_baseline_as_its_nb_member(small_domains, tmp_path):
    """The ``pooled_lr`` baseline is the ensemble's NB member (same rows, n-grams, seed): it is
    trained first and handed to fine-tuning (the task run records it as an input), and the
    transfer model is byte-identical to that of a run without the baseline, which fits the
    member itself."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["cache"] = {"enabled": False}
    raw["registry"] = {"enabled": False}
    states = {
        name: transfer_learning(build_config({**raw, **extra, "run_name": name}), return_state=True)
        for name, extra in (("with", {}), ("without", {"baselines": {"pooled_lr": False}}))
    }
    hashes = {}
    for name, state in states.items():
        listing = json.loads((Path(state.result()["run_dir"]) / "artifacts.json").read_text())
        hashes[name] = {k: v["sha256"] for k, v in listing.items()}
    assert "pooled_lr" in hashes["with"] and "pooled_lr" not in hashes["without"]
    assert hashes["with"]["transfer"] == hashes["without"]["transfer"]
    with get_client(sync_client=True) as client:
        runs = {
            r.name: r
            for r in client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[states["with"].state_details.flow_run_id])
                )
            )
        }
    pooled, fine_tune = runs["train_pooled_baseline"], runs["fine_tune_target_model"]
    assert [i.id for i in fine_tune.task_inputs["pooled"]] == [pooled.id]
    assert pooled.end_time <= fine_tune.start_time


@pytest.mark.slow
def test_multiclass_target_with_other_labels_gets_new_head(small_domains, tmp_path):
    amazon = pd.read_csv(small_domains["target"])
    amazon["label"] = amazon["label"].map({0: "neg", 1: "pos"})
    movies = pd.read_csv(DEMO_DIR / "imdb.csv").head(100).assign(label="movie")
    target = tmp_path / "three.csv"
    pd.concat([amazon, movies]).to_csv(target, index=False)
    raw = tiny_settings(small_domains["source"], target, tmp_path / "runs")
    raw["data"]["target_train_size"] = 90
    # Named labels against the source's 0/1 on purpose: a different task, not a spelling mistake.
    raw["gates"] = {"raw_input": {"allow_label_type_mismatch": True}}
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
    raw["gates"] = {"raw_input": {"max_blank_text_share": 0.0}}
    raw["run_name"] = "r"
    with pytest.raises(GateFailedError) as info:
        transfer_learning(build_config(raw))
    assert info.value.gate == "raw_input"
    assert "bad.csv row 6" in str(info.value)
    # Only the failure record is left: gates.md, Data Docs and the config, no models or metrics.
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["r.failed"]
    failed = tmp_path / "runs" / "r.failed"
    assert sorted(p.name for p in failed.iterdir()) == [
        ".transferflow",
        "config.json",
        "data_docs",
        "gates.md",
    ]
    assert "bad.csv row 6" in (failed / "gates.md").read_text()
    assert {"gate-results", "data-docs"} <= _artifact_keys()


@pytest.mark.slow
def test_a_few_blank_texts_are_tolerated_dropped_and_reported(small_domains, tmp_path):
    data = pd.read_csv(small_domains["target"])
    data.loc[[3, 40], "text"] = None  # 1 % of the rows
    target = tmp_path / "gaps.csv"
    data.to_csv(target, index=False)
    raw = tiny_settings(small_domains["source"], target, tmp_path / "runs")
    raw["data"]["target_train_size"] = None
    metrics = transfer_learning(build_config(raw))["metrics"]
    dropped = metrics["data"]["target"]["dropped_blank_text"]
    assert dropped["pool"] + dropped["test"] == 2
    counts = metrics["data"]["target"]["counts"]
    assert counts["pool"] + counts["test"] == 198


@pytest.mark.slow
def test_flow_with_learning_curve_registers_a_safe_model(small_domains, tmp_path):
    """A label-budget curve in metrics, report and figures, and a registered model (.keras plus
    plain data) that scores."""
    from transferflow.serving.scoring import Scorer
    from transferflow.storage.catalog import Catalog

    raw = tiny_settings(
        small_domains["source"],
        small_domains["target"],
        tmp_path / "runs",
        learning_curve={"enabled": True, "sizes": [16, 1000]},
        registry={"dir": str(tmp_path / "reg")},
    )
    cfg = build_config(raw)
    assert cfg.model.architecture == "wide-deep" and cfg.transfer.strategy == "ensemble"
    result = transfer_learning(cfg)
    run_dir = Path(result["run_dir"])
    metrics = result["metrics"]
    cands = metrics["candidates"]
    assert set(cands) == {"transfer", "target_only", "source_only", "pooled_lr"}
    assert cands["transfer"]["accuracy"] > 0.6 and cands["source_only"]["accuracy"] > 0.6

    curve = metrics["learning_curve"]
    n_train = metrics["data"]["target"]["counts"]["train"]
    assert curve["sizes"] == [16, n_train]  # 1000 > available labels: skipped
    assert curve["transfer"][-1] == cands["transfer"]["accuracy"]
    assert curve["target_only"][-1] == cands["target_only"]["accuracy"]
    assert all(0.0 <= v <= 1.0 for v in curve["transfer"] + curve["target_only"])
    assert json.loads((run_dir / "metrics.json").read_text())["learning_curve"] == curve
    assert "## How many target labels?" in (run_dir / "report.md").read_text()
    assert (run_dir / "figures" / "learning_curve.png").stat().st_size > 1000
    assert "<h3>Learning curve</h3>" in (run_dir / "report.html").read_text()

    reg = Catalog(tmp_path / "reg").model(result["registry"]["model_name"])
    version = result["registry"]["version"]
    record = reg.show(version)
    assert record["architecture"] == "wide-deep"
    assert sorted(record["files"]) == [
        "idf.npz",
        "lineage.npz",  # what it trained on: later comparisons leave those texts out
        "model.json",
        "model.keras",
        "ngrams.json",
        "reference.json",  # what scored batches are compared with
        "vocab.json",
    ]
    scorer = Scorer(reg, version)
    proba = scorer.predict_proba(["I love this phone, works great", "broke after a day, awful"])
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1.0)


def test_only_abandoned_staging_folders_of_this_product_are_removed(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from transferflow.storage.paths import OWNER, remove_abandoned

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    owners = {
        "killed": {"host": socket.gethostname(), "pid": int(dead)},
        "running": {"host": socket.gethostname(), "pid": os.getpid()},
        "elsewhere": {"host": "another-machine", "pid": int(dead)},
    }
    for name, owner in owners.items():
        (tmp_path / f".{name}.partial").mkdir()
        (tmp_path / f".{name}.partial" / OWNER).write_text(json.dumps(owner))
    (tmp_path / ".not-ours.partial").mkdir()  # no owner file: not made by transferflow
    remove_abandoned(tmp_path, ".*.partial")
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".elsewhere.partial", ".not-ours.partial", ".running.partial"]
