"""What the run report says (rendered from a metrics dict, as the flow writes it)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transferflow.reporting.report import render_report


def _metrics(source_labels: list[str], target_labels: list[str]) -> dict:
    def domain(name, labels):
        return {
            "name": name,
            "counts": {"train": 100, "test": 50},
            "labels": labels,
            "label_counts": {},
            "dropped_blank_text": {},
            "dropped_repeats": {},
            "dropped_test_overlap": {},
            "rows_in_files": None,
        }

    return {
        "candidates": {},
        "data": {"source": domain("s", source_labels), "target": domain("t", target_labels)},
    }


@pytest.mark.parametrize(
    ("source", "target", "said", "case"),
    [
        (["neg", "pos"], ["neg", "pos"], False, False),
        (["neg", "pos"], ["bad", "good", "ok"], True, False),
        (["negative", "positive"], ["Negative", "Positive"], True, True),
    ],
)
def test_the_report_says_when_the_source_classes_are_not_the_targets(source, target, said, case):
    report = render_report(_metrics(source, target), "t")
    assert ("are not the target's" in report) is said
    assert ("only in letter case" in report) is case
    if said:
        assert "`source_only` and `pooled_lr`" in report


def test_figures_in_words_show_no_python_reprs():
    """What logs and messages print: no braces, brackets or quotes of a dict or list repr."""
    from transferflow.reporting import words

    assert words.counts({"pool": 1400, "train": 4}) == "pool 1400, train 4"
    assert words.counts({"0": 700, "1": 700}, sep=": ") == "0: 700, 1: 700"
    assert words.counts({}) == "none"
    assert words.items(["neg", "pos"]) == "neg, pos"


def test_named_figures_in_words():
    from transferflow.data.shift import NAMES
    from transferflow.reporting import words

    said = words.figures({"vocab_overlap": 0.81374, "label_distance": None, "x": 1.0}, NAMES)
    assert said == "vocabulary overlap 0.814, label distance n/a, x 1.000"


@given(st.dictionaries(st.text(alphabet="abcdefgh0123456789_ ", min_size=1), st.integers(0, 10**6)))
def test_counts_in_words_carry_every_figure_and_no_repr(figures):
    """Any counts: every key and value is said, in order, and no dict repr punctuation appears."""
    from transferflow.reporting import words

    said = words.counts(figures)
    assert not set("{}'\"[]") & set(said)
    if figures:
        assert said == ", ".join(f"{k} {v}" for k, v in figures.items())
    else:
        assert said == "none"


def test_the_report_says_which_unlabelled_texts_were_left_out():
    metrics = _metrics(["neg", "pos"], ["neg", "pos"])
    metrics["data"]["target"]["dropped_repeats"] = {"unlabeled": 13}
    metrics["data"]["target"]["dropped_labelled"] = {"train": 40, "test": 10}
    report = render_report(metrics, "t")
    assert "target t: unlabelled texts left out: 13 repeats and 50 that are labelled" in report
    metrics["data"]["target"]["dropped_labelled"] = {}
    assert "left out: 13 repeats." in render_report(metrics, "t")
    assert "unlabelled texts left out" not in render_report(_metrics(["a", "b"], ["a", "b"]), "t")
