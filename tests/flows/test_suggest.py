"""`transferflow suggest` end to end on the real Prefect engine: it writes the texts to label next,
never one that is labelled or in the test set, and bad input ends with one clear paragraph."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from transferflow.data.tables import normalise_text
from transferflow.flows.cli import app

runner = CliRunner()
TINY = ["--set", "embeddings.vector_size=16", "--set", "embeddings.epochs=3"]


@pytest.fixture
def unlabeled(small_domains, tmp_path):
    """The target's texts with an id and without labels, plus rows of another domain."""
    target = pd.read_csv(small_domains["target"])
    extra = pd.read_csv(small_domains["source"]).head(50)
    frame = pd.concat([target, extra], ignore_index=True).drop(columns=["label"])
    frame.insert(0, "id", [f"r{i}" for i in range(len(frame))])
    path = tmp_path / "unlabeled.csv"
    frame.to_csv(path, index=False)
    return path


def _args(small_domains, unlabeled, output, *extra):
    return [
        "suggest",
        "--source", str(small_domains["source"]),
        "--target", str(small_domains["target"]),
        "--target-train-size", "40",
        "--unlabeled", str(unlabeled),
        "--output", str(output),
        "--n", "15",
        *TINY,
        *extra,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "reason"),
    [(None, "margin "), ("random", "random sample"), ("committee", "members disagree")],
)
def test_suggest_writes_the_texts_to_label_next(small_domains, unlabeled, tmp_path, method, reason):
    out = tmp_path / "to_label.csv"
    extra = ["--method", method] if method else []  # None: the default
    result = runner.invoke(app, _args(small_domains, unlabeled, out, *extra))
    assert result.exit_code == 0, result.output
    assert "Suggested 15 of" in result.output
    # the target's own labelled and test texts are in the file: said in words
    assert "already labelled or in the test set" in result.output
    table = pd.read_csv(out)
    assert table.columns.tolist() == [
        "rank", "id", "text", "predicted_label", "confidence", "margin", "reason",
    ]  # fmt: skip
    assert table["rank"].tolist() == list(range(1, 16)) and table["id"].str.startswith("r").all()
    assert table["text"].map(normalise_text).is_unique
    # Never a text the model was trained on or that is in the test set: read both from the run.
    run = runner.invoke(
        app,
        [
            "run", "--source", str(small_domains["source"]), "--target",
            str(small_domains["target"]), "--target-train-size", "40", "--output-dir",
            str(tmp_path / "runs"), *TINY,
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    parts = {p.name: p for p in (run_dir / "artifacts").rglob("target_*.parquet")}
    used = set()
    for name in ("target_train.parquet", "target_test.parquet"):
        used |= set(pd.read_parquet(parts[name])["text"].map(normalise_text))
    assert not set(table["text"].map(normalise_text)) & used
    assert (table["margin"].between(0, 1)).all() and table["reason"].str.contains(reason).all()
    if method is None:  # the default, margin: the least sure first
        assert table["margin"].is_monotonic_increasing


def test_suggest_bad_input_is_one_clear_paragraph(small_domains, unlabeled, tmp_path):
    missing = runner.invoke(app, _args(small_domains, tmp_path / "nope.csv", tmp_path / "o.csv"))
    assert missing.exit_code == 2 and "--unlabeled" in missing.output
    assert "file not found" in missing.output
    same = runner.invoke(app, _args(small_domains, unlabeled, unlabeled))
    assert same.exit_code == 2 and "inputs are never overwritten" in same.output
    assert len(pd.read_csv(unlabeled)) == 250  # untouched
    no_demo = runner.invoke(
        app,
        ["suggest", "--source", str(small_domains["source"]), "--target",
         str(small_domains["target"]), "--output", str(tmp_path / "o.csv")],
    )  # fmt: skip
    assert no_demo.exit_code == 2 and "--unlabeled FILE is needed" in no_demo.output
    # Nothing is written into the working folder unless the user names it.
    no_output = runner.invoke(app, ["suggest"])
    assert no_output.exit_code == 2 and "--output FILE.csv is needed" in no_output.output
    wrong = tmp_path / "wrong.csv"
    pd.read_csv(unlabeled).rename(columns={"text": "review"}).to_csv(wrong, index=False)
    bad = runner.invoke(app, _args(small_domains, wrong, tmp_path / "o.csv"))
    assert bad.exit_code == 2, bad.output
    assert "missing text column(s) ['text']" in bad.output and "'review'" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "o.csv").exists()
    method = runner.invoke(
        app, _args(small_domains, unlabeled, tmp_path / "o.csv", "--method", "x")
    )
    assert method.exit_code == 2 and "suggest.strategy" in method.output


def test_suggest_uses_the_store_it_is_given(small_domains, unlabeled, tmp_path):
    """`--cache-dir` as in `run`: the stages suggest trains are cached in that store, and a
    second call reuses them (the same texts suggested)."""
    store = tmp_path / "store"
    outs = [tmp_path / "a.csv", tmp_path / "b.csv"]
    for out in outs:
        result = runner.invoke(app, _args(small_domains, unlabeled, out, "--cache-dir", str(store)))
        assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["cache", "list", "--cache-dir", str(store)])
    assert listing.exit_code == 0 and "train_source" in listing.output, listing.output
    assert pd.read_csv(outs[0]).equals(pd.read_csv(outs[1]))
