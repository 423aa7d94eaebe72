from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.data.shift import label_distance, proxy_a_distance, vocab_overlap
from transferflow.evaluation.promotion import mcnemar_p, select_model


def test_vocab_overlap():
    assert vocab_overlap(["a b c"], ["a a d"]) == round(2 / 3, 4)
    assert vocab_overlap(["a"], []) == 0.0


def test_label_distance():
    assert label_distance({"0": 5, "1": 5}, {"0": 10, "1": 10}) == 0.0
    assert label_distance({"0": 10}, {"pos": 3}) == 1.0
    with pytest.raises(ValueError):
        label_distance({}, {"0": 1})


def test_proxy_a_distance_separates_distinct_domains_more_than_similar_ones():
    books = [f"this novel has a great plot and author chapter {i}" for i in range(60)]
    kitchen = [f"this blender has a great motor and blade speed {i}" for i in range(60)]
    far = proxy_a_distance(books, kitchen, seed=0)
    near = proxy_a_distance(books[:30], books[30:], seed=0)  # one domain split in two
    assert far > 1.5 and near < 0.5


def test_proxy_a_distance_needs_data():
    with pytest.raises(ValueError, match="at least 5"):
        proxy_a_distance(["a"], ["b"], seed=0)


def _oof(correct: list[bool]) -> np.ndarray:
    """Out-of-fold probabilities whose argmax is right where ``correct`` says (truth: all 'p')."""
    return np.array([[0.2, 0.8] if c else [0.8, 0.2] for c in correct])


def test_one_example_cannot_make_a_baseline_replace_transfer():
    y = ["p"] * 100
    transfer = _oof([True] * 80 + [False] * 20)
    one_better = _oof([True] * 81 + [False] * 19)
    out = select_model({"transfer": transfer, "pooled_lr": one_better}, y, ["n", "p"], 0.05)
    assert out["chosen"] == "transfer" and out["p_vs_transfer"]["pooled_lr"] > 0.05
    tie = select_model({"transfer": transfer, "target_only": transfer}, y, ["n", "p"], 0.05)
    assert tie["chosen"] == "transfer" and tie["transfer_beats_target_only"]


def test_a_clearly_better_baseline_replaces_transfer_and_says_why():
    y = ["p"] * 100
    transfer = _oof([True] * 70 + [False] * 30)
    better = _oof([True] * 95 + [False] * 5)
    out = select_model({"transfer": transfer, "target_only": better}, y, ["n", "p"], 0.05)
    assert out["chosen"] == "target_only" and not out["transfer_beats_target_only"]
    assert "significantly better" in out["reason"] and out["oof_accuracy"]["target_only"] == 0.95
    assert mcnemar_p(np.array([True, False]), np.array([True, False])) == 1.0
    with pytest.raises(ValueError):
        select_model({"target_only": better}, y, ["n", "p"], 0.05)


def test_without_out_of_fold_predictions_transfer_is_kept_and_it_is_said():
    out = select_model({"transfer": None, "target_only": None}, ["p"] * 3, ["n", "p"], 0.05)
    assert out["chosen"] == "transfer" and "too few" in out["reason"]
    # nothing was compared, so nothing is claimed either way
    assert out["transfer_beats_target_only"] is None and out["oof_accuracy"] == {}


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(
    labels=st.lists(st.sampled_from(["n", "p"]), max_size=40),
    baselines=st.lists(st.sampled_from(["target_only", "source_only", "pooled_lr"]), unique=True),
)
def test_without_evidence_nothing_is_claimed_either_way(labels, baselines):
    """Whatever the labels and baselines, a transfer model without out-of-fold predictions is
    kept, claims neither to beat target_only nor negative transfer, and its report quotes no
    rule it did not apply."""
    import tempfile

    from transferflow.evaluation.promotion import finalise_metrics
    from transferflow.reporting.report import render_report

    oof = {"transfer": None, **{b: None for b in baselines}}
    out = select_model(oof, labels, ["n", "p"], 0.05)
    assert out["chosen"] == "transfer" and out["transfer_beats_target_only"] is None
    with tempfile.TemporaryDirectory() as tmp:
        # the promotion gate's summary as the flow records it (it passed: transfer was chosen)
        gate = {"status": "passed", "mode": "warn", "checks": 1, "failed": [], "figures": out}
        metrics = finalise_metrics({"candidates": {}}, {"promotion": gate}, Path(tmp))
    assert metrics["selection"]["negative_transfer"] is False
    report = render_report(metrics, "t")
    assert "Rule:" not in report and "Negative transfer" not in report
