"""Registry and batch scoring through the real flows and CLI."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.cli import app
from transferflow.flows.transfer import transfer_learning
from transferflow.storage.catalog import Catalog


@pytest.mark.slow
def test_registered_models_score_a_file_and_the_champion_can_be_rolled_back(
    small_domains, tmp_path
):
    reg_dir = tmp_path / "registry"
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(reg_dir)}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    first = transfer_learning(build_config({**raw, "run_name": "one"}))["registry"]
    assert first == {
        "model_name": "amazon",  # the target's name
        "version": 1,
        "champion": 1,
        "promoted": True,
        "reason": "first champion",
    }

    # A second version (here from another seed); the champion stays until promoted.
    second = transfer_learning(build_config({**raw, "run_name": "two", "seed": 7}))["registry"]
    assert second["version"] == 2
    reg = Catalog(reg_dir).model("amazon")
    reg.promote(1)

    data = pd.read_csv(small_domains["target"]).reset_index().rename(columns={"index": "id"})
    data.drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(out),
            "--registry",
            str(reg_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "with model 'amazon' v1" in result.output
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["id", "predicted_label", "proba_0", "proba_1"]
    assert len(pred) == len(data) and pred["id"].tolist() == data["id"].tolist()
    assert ((pred["proba_0"] + pred["proba_1"]) - 1).abs().max() < 1e-4
    accuracy = (pred["predicted_label"].astype(str) == data["label"].astype(str)).mean()
    assert accuracy > 0.55  # a real model, not a constant

    # Explicit version, then rollback semantics through the CLI.
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(tmp_path / "p2.csv"),
            "--registry",
            str(reg_dir),
            "--model",
            "2",
        ],
    )
    assert result.exit_code == 0 and "with model 'amazon' v2" in result.output
    assert (
        CliRunner().invoke(app, ["models", "promote", "2", "--registry", str(reg_dir)]).exit_code
        == 0
    )
    listing = CliRunner().invoke(app, ["models", "list", "--registry", str(reg_dir)]).output
    assert any(line.startswith("* amazon") and " v2 " in line for line in listing.splitlines())
    assert (
        CliRunner().invoke(app, ["models", "rollback", "--registry", str(reg_dir)]).exit_code == 0
    )
    assert Catalog(reg_dir).model("amazon").champion() == 1

    # A header-only file: one clear paragraph, exit 2, no output file, input untouched.
    (tmp_path / "empty.csv").write_text("id,text\n")
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(tmp_path / "empty.csv"), "--output", str(tmp_path / "p3.csv")]
        + ["--registry", str(reg_dir)],
    )
    assert result.exit_code == 2, result.output
    assert "has a header but no data rows" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "p3.csv").exists()
    assert (tmp_path / "empty.csv").read_text() == "id,text\n"

    # A named id column must exist (the default 'id' is copied only when present); a missing
    # text column says which ones the model reads by default.
    base = ["score", "--output", str(tmp_path / "p4.csv"), "--registry", str(reg_dir)]
    result = CliRunner().invoke(
        app, [*base, "--input", str(tmp_path / "new.csv"), "--id-column", "ID"]
    )
    assert result.exit_code == 2 and result.output.count("no id column 'ID'") == 1
    assert "'id'" in result.output and not (tmp_path / "p4.csv").exists()
    data[["text"]].rename(columns={"text": "body"}).to_csv(tmp_path / "body.csv", index=False)
    result = CliRunner().invoke(app, [*base, "--input", str(tmp_path / "body.csv")])
    assert result.exit_code == 2 and "--text-column" in result.output, result.output
    assert not (tmp_path / "p4.csv").exists()
    result = CliRunner().invoke(
        app, [*base, "--input", str(tmp_path / "body.csv"), "--text-column", "body"]
    )
    assert result.exit_code == 0 and list(pd.read_csv(tmp_path / "p4.csv").columns) == [
        "predicted_label", "proba_0", "proba_1"
    ]  # fmt: skip


def test_scoring_errors_are_clear(tmp_path):
    args = ["--output", str(tmp_path / "o.csv"), "--registry", str(tmp_path / "empty")]
    result = CliRunner().invoke(app, ["score", "--input", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2 and "x.csv: file not found" in result.output  # before any work
    (tmp_path / "x.csv").write_text("id,text\n1,great phone\n")
    result = CliRunner().invoke(app, ["score", "--input", str(tmp_path / "x.csv"), *args])
    assert result.exit_code == 2 and result.output.count("No model registered") == 1
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_identical_reruns_add_no_version_and_a_new_model_is_compared_with_the_champion(
    small_domains, tmp_path
):
    """Byte-identical model files are one version (a nightly run on unchanged data registers
    nothing new); another model is compared with the champion on the new run's test data."""
    import json

    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(tmp_path / "registry")}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    assert transfer_learning(build_config({**raw, "run_name": "a"}))["registry"]["champion"] == 1
    again = transfer_learning(build_config({**raw, "run_name": "b"}))["registry"]
    assert again["version"] == 1 and not again["promoted"]
    assert "identical to v1" in again["reason"]
    listing = CliRunner().invoke(
        app, ["models", "list", "--json", "--registry", str(tmp_path / "registry")]
    )
    versions = json.loads(listing.output)
    assert [v["version"] for v in versions] == [1] and versions[0]["champion"]
    assert versions[0]["files_ok"] and versions[0]["test_set_sha256"]
    other = transfer_learning(build_config({**raw, "run_name": "c", "seed": 5}))["registry"]
    assert other["version"] == 2 and "vs champion v1" in other["reason"]
    # Lineage: another seed splits the target differently, so some of this run's test rows were
    # v1's training rows; those are left out of the comparison.
    import re

    import numpy as np

    from transferflow.evaluation import lineage
    from transferflow.storage.catalog import Catalog

    unseen, total = map(
        int, re.search(r"(\d+) of (\d+) test rows unseen", other["reason"]).groups()
    )
    reg = Catalog(tmp_path / "registry").model("amazon")
    trained_v1 = lineage.read(reg.verified_file(1, lineage.FILE))
    test_c = pd.read_parquet(sorted((tmp_path / "runs" / "c").rglob("target_test*.parquet"))[0])
    assert unseen == int(lineage.unseen(test_c["text"].tolist(), trained_v1).sum())
    assert 0 < unseen < total == len(test_c)
    assert np.all(np.diff(trained_v1.astype(np.float64)) > 0)  # sorted, unique hashes


@pytest.mark.slow
def test_each_target_task_keeps_its_own_model_name_and_champion(small_domains, tmp_path):
    """Two runs with different targets leave two names, each with its own champion; scoring
    with either name uses that model; without a name the command lists them and stops."""
    reg_dir = tmp_path / "registry"
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["registry"] = {"dir": str(reg_dir)}
    raw["baselines"] = {"target_only": False, "pooled_lr": False, "source_only": False}
    phones = transfer_learning(build_config({**raw, "run_name": "phones"}))["registry"]
    champion_files = Catalog(reg_dir).model("amazon").show(1)["files"]
    swapped = {
        **raw,
        "run_name": "restaurants",
        "data": {
            **raw["data"],
            "source": {**raw["data"]["target"], "name": "amazon"},
            "target": {**raw["data"]["source"], "name": "Yelp reviews"},
        },
    }
    restaurants = transfer_learning(build_config(swapped))["registry"]
    assert phones["model_name"] == "amazon" and restaurants["model_name"] == "yelp-reviews"
    assert phones["champion"] == 1 and restaurants["champion"] == 1  # one champion per name
    catalog = Catalog(reg_dir)
    assert catalog.names() == ["amazon", "yelp-reviews"]
    assert catalog.model("amazon").champion() == 1
    assert catalog.model("amazon").show(1)["files"] == champion_files  # unchanged

    data = pd.read_csv(small_domains["target"])
    data.drop(columns=["label"]).to_csv(tmp_path / "new.csv", index=False)
    args = ["score", "--input", str(tmp_path / "new.csv"), "--registry", str(reg_dir)]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and "amazon, yelp-reviews" in result.output
    assert "--model-name" in result.output and not (tmp_path / "p.csv").exists()
    outputs = {}
    for name in ("amazon", "yelp-reviews"):
        out = tmp_path / f"{name}.csv"
        result = CliRunner().invoke(app, [*args, "--output", str(out), "--model-name", name])
        assert result.exit_code == 0 and f"with model '{name}' v1" in result.output
        outputs[name] = pd.read_csv(out)
    # Two different models: their probabilities differ.
    assert not outputs["amazon"]["proba_1"].equals(outputs["yelp-reviews"]["proba_1"])
    listing = CliRunner().invoke(app, ["models", "list", "--registry", str(reg_dir)]).output
    assert sum(line.startswith("* ") for line in listing.splitlines()) == 2
