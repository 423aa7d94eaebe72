"""Unlabelled target texts through the real flow: zero-label runs, unlabelled files, their gates."""

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import tiny_settings
from transferflow.config.settings import DEMO_DIR, build_config
from transferflow.flows.cli import app
from transferflow.flows.transfer import transfer_learning


def _unlabeled_file(tmp_path: Path, texts: list[str]) -> Path:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "unlabeled.csv"
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return path


def _more_amazon(n: int) -> list[str]:
    """Amazon reviews that are not in the small target file (its first 100 per class)."""
    amazon = pd.read_csv(DEMO_DIR / "amazon.csv")
    rest = amazon.drop(amazon.groupby("label").head(100).index)
    return rest["text"].head(n).tolist()


def test_zero_labels_train_transfer_from_source_and_unlabelled_texts(small_domains, tmp_path):
    """target_train_size 0: the target file gives the test set, its other rows are unlabelled
    texts; transfer self-trains on them, is evaluated and registered without out-of-fold
    evidence, and the report says what could not be measured."""
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["data"]["target_train_size"] = 0
    raw["registry"] = {"dir": str(tmp_path / "registry")}
    result = transfer_learning(build_config(raw))
    metrics = result["metrics"]
    assert set(metrics["candidates"]) == {"transfer", "source_only"}
    counts = metrics["data"]["target"]["counts"]
    # Every training text is unlabelled (repeats of one text count once).
    assert counts["train"] == 0 and counts["pool"] - 5 <= counts["unlabeled"] <= counts["pool"]
    assert metrics["domain_shift"]["label_distance"] is None
    assert metrics["selection"]["chosen"] == "transfer"
    assert "zero-label run" in metrics["selection"]["reason"]
    assert result["registry"]["version"] == 1 and result["registry"]["champion"] == 1
    # Self-training: at most 70 % of the unlabelled texts, at most half per class (the source's
    # class shares).
    pseudo = metrics["self_training"]["pseudo_labelled"]
    assert metrics["self_training"]["unlabeled_texts"] == counts["unlabeled"]
    assert set(pseudo) == {"0", "1"} and all(v > 0 for v in pseudo.values())
    assert all(v <= round(0.35 * counts["unlabeled"]) for v in pseudo.values())
    assert metrics["self_training"]["C_kept"] == []  # no first fit: C is searched
    report = (Path(result["run_dir"]) / "report.md").read_text()
    assert "n/a (no target labels)" in report and "Self-training: the transfer model" in report
    # Nothing was compared out-of-fold: no rule quoted, no claim about target_only.
    assert "Rule:" not in report and metrics["selection"]["transfer_beats_target_only"] is None
    assert metrics["selection"]["negative_transfer"] is False


@pytest.mark.slow
@pytest.mark.parametrize("keep_c", [None, "first-fit"])  # None: the default, 'search'
def test_an_unlabelled_file_feeds_the_vectors_and_self_training(small_domains, tmp_path, keep_c):
    unlabeled = _unlabeled_file(tmp_path, _more_amazon(150))
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["data"]["target"]["unlabeled_paths"] = [str(unlabeled)]
    raw["data"]["target_train_size"] = 40
    if keep_c is not None:
        raw["transfer"] = {"self_training_c": keep_c}
    result = transfer_learning(build_config(raw))
    counts = result["metrics"]["data"]["target"]["counts"]
    # The file's 150 texts plus the training rows beyond the 40 labels, repeats removed.
    assert 150 < counts["unlabeled"] <= 150 + counts["pool"] - 40
    st = result["metrics"]["self_training"]
    assert st["unlabeled_texts"] == counts["unlabeled"]
    # By default the second fit searches C again; 'first-fit' keeps the C that the searching
    # members' first fit chose on the 40 labels, and the report says so.
    kept = ["wide/finetune", "ngrams/finetune", "nb/pooled"] if keep_c == "first-fit" else []
    assert st["C_kept"] == kept
    report = (Path(result["run_dir"]) / "report.md").read_text()
    assert ("kept the one their first fit chose" in report) == (keep_c == "first-fit")


@pytest.mark.slow
def test_test_texts_among_the_unlabelled_texts_are_never_learnt_from(small_domains, tmp_path):
    """None of the unlabelled texts may be a target test text: those that are (here every test
    text, as when a user labels texts taken from the unlabelled file: the README's cold start)
    are left out of the unlabelled texts and counted, and the run goes on."""
    target = pd.read_csv(small_domains["target"])
    test = tmp_path / "target_test.csv"
    target.tail(40).to_csv(test, index=False)
    train = tmp_path / "target_train.csv"
    target.head(160).to_csv(train, index=False)
    leaked = target.tail(40)["text"].tolist()
    raw = tiny_settings(small_domains["source"], train, tmp_path / "runs")
    raw["data"]["target"]["test_paths"] = [str(test)]
    raw["data"]["target"]["unlabeled_paths"] = [
        str(_unlabeled_file(tmp_path, [*_more_amazon(100), *leaked]))
    ]
    result = transfer_learning(build_config(raw))
    target_data = result["metrics"]["data"]["target"]
    # (Amazon repeats short reviews: a test text may also be a training text, counted there.)
    assert sum(target_data["dropped_labelled"].values()) >= len(leaked)
    assert target_data["dropped_labelled"]["test"] >= 30
    assert result["metrics"]["gates"]["leakage"]["figures"]["test_rows_in_target_unlabelled"] == 0
    assert target_data["counts"]["unlabeled"] <= 100 + target_data["counts"]["pool"]
    self_trained = result["metrics"]["self_training"]["unlabeled_texts"]
    assert self_trained == target_data["counts"]["unlabeled"]


@pytest.mark.slow
def test_out_of_fold_ensemble_weights_survive_self_training(small_domains, tmp_path):
    """``transfer.ensemble_weights: out-of-fold``: the NB member's share is chosen from the first
    fit's out-of-fold predictions and kept by the fit after self-training (whose pseudo-labels
    would flatter its own folds); the report says so."""
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["transfer"] = {"ensemble_weights": "out-of-fold"}
    result = transfer_learning(build_config(raw))
    metrics = result["metrics"]
    assert metrics["self_training"]["unlabeled_texts"] > 0  # the second fit happened
    weights = metrics["ensemble_weights"]
    assert weights["from"] == "chosen from out-of-fold predictions of the fit before self-training"
    assert sum(weights["members"].values()) == pytest.approx(1.0, abs=1e-5)
    assert weights["members"]["nb/pooled"] != pytest.approx(0.5, abs=1e-4)
    report = (Path(result["run_dir"]) / "report.md").read_text()
    assert "Ensemble weights: the NB-weighted member" in report and "before self-training" in report


def test_a_cold_start_from_unlabelled_texts_alone(small_domains, tmp_path):
    """No labelled target file and no test set: transfer is trained from the source and the
    texts, nothing is measured on the target (the report and metrics say so), the first version
    becomes the champion and a later one is registered without replacing it (nothing shows it
    is better)."""
    texts = _unlabeled_file(tmp_path, _more_amazon(150))
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["data"]["target"] = {"name": "phones", "paths": [], "unlabeled_paths": [str(texts)]}
    del raw["data"]["target_train_size"]
    raw["registry"] = {"dir": str(tmp_path / "registry")}
    first = transfer_learning(build_config(raw))
    metrics = first["metrics"]
    assert metrics["candidates"] == {}
    assert metrics["data"]["target"]["counts"]["train"] == 0
    assert metrics["data"]["target"]["counts"]["unlabeled"] >= 145
    assert metrics["self_training"]["unlabeled_texts"] >= 145
    assert metrics["embeddings"]["token_coverage"] > 0.5
    assert first["registry"]["champion"] == first["registry"]["version"] == 1
    report = (Path(first["run_dir"]) / "report.md").read_text()
    assert "No target test set" in report and "--target-test" in report
    assert "Per-class results" not in report  # no empty section
    # Another seed: another model, registered but not promoted.
    second = transfer_learning(build_config({**raw, "seed": 7}))
    assert second["registry"]["version"] == 2 and second["registry"]["champion"] == 1
    assert "no target labels and no test set" in second["registry"]["reason"]
    # The champion scores a batch, watched against the texts it was adapted to (no label
    # shares to compare with).
    batch = _unlabeled_file(tmp_path / "batch", _more_amazon(200)[150:])
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app,
        ["score", "--input", str(batch), "--output", str(out), "--model-name", "phones",
         "--registry", str(tmp_path / "registry")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 50
    watched = json.loads((tmp_path / "pred.monitoring.json").read_text())
    assert watched["drift"]["score"] is not None and watched["label_distance"] is None
    assert watched["accuracy"]["expected"] is None
    assert "(no target labels to compare with)" in result.output  # not an empty "training:"
    # A version without test figures is listed like any other.
    listing = CliRunner().invoke(app, ["models", "list", "--registry", str(tmp_path / "registry")])
    assert listing.exit_code == 0 and "phones" in listing.output, listing.output
