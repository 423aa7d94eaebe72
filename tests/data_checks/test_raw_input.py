"""The raw-input suite accepts good data and rejects crafted bad copies, naming what is wrong."""

import pandas as pd
import pytest

from transferflow.config.settings import RawInputGate
from transferflow.data_checks.raw_input import validate_domain, validate_label_kinds


def _frame(n=20, labels=("0", "1"), start=0):
    return pd.DataFrame(
        {
            "text": [f"review number {i}" for i in range(start, start + n)],
            "label": [labels[i % len(labels)] for i in range(n)],
            "file": "f.csv",
            "row": range(1, n + 1),
        }
    )


def _failures(train, test, **cfg):
    results = validate_domain("target 'x'", train, train, test, RawInputGate(**cfg))
    failures = [f for r in results for f in r.failures]
    for f in failures:  # what the user reads: values as written, not numpy's reprs
        assert "np." not in f.describe() and "numpy" not in f.describe(), f.describe()
    return failures


def test_good_data_passes():
    assert _failures(_frame(), _frame(6, start=100)) == []


def test_null_and_blank_texts_are_located_by_file_and_row():
    bad = _frame()
    bad.loc[3, "text"] = None
    bad.loc[7, "text"] = "   "
    failures = _failures(bad, _frame(6, start=100), max_blank_text_share=0.0)
    by_type = {f.expectation: f for f in failures}
    assert "f.csv row 4" in by_type["expect_column_values_to_not_be_null"].observed
    assert "f.csv row 8" in by_type["expect_column_values_to_not_match_regex"].observed


def test_a_small_share_of_blank_texts_is_tolerated_but_not_more():
    some = _frame(100)
    some.loc[[1, 2], "text"] = None
    assert _failures(some, _frame(6, start=100), max_blank_text_share=0.05) == []
    some.loc[range(10, 20), "text"] = None
    failures = _failures(some, _frame(6, start=200), max_blank_text_share=0.05)
    assert [f.expectation for f in failures] == ["expect_column_values_to_not_be_null"]
    assert "mostly=0.95" in failures[0].expected


def test_missing_label():
    bad = _frame()
    bad.loc[0, "label"] = None
    (failure,) = _failures(bad, _frame(6, start=100))
    assert failure.column == "label" and "1 bad row" in failure.observed


def test_single_class_fails():
    failures = _failures(_frame(labels=("1",)), _frame(6, labels=("1",), start=100))
    assert "expect_column_unique_value_count_to_be_between" in [f.expectation for f in failures]


def test_too_few_rows_in_a_class_names_the_class():
    train = pd.concat([_frame(), _frame(2, labels=("2",), start=50)], ignore_index=True)
    failures = _failures(train, _frame(6, labels=("0", "1", "2"), start=100), min_class_count=5)
    assert any(f.column == "count" and "class 2" in f.observed for f in failures)


def test_minority_class_share():
    train = pd.concat(
        [_frame(100, labels=("0",)), _frame(3, labels=("1",), start=500)], ignore_index=True
    )
    failures = _failures(train, _frame(6, start=900), min_class_count=1, min_minority_share=0.1)
    assert [(f.column, "class 1" in f.observed) for f in failures] == [("share", True)]


def test_test_labels_must_be_training_labels():
    failures = _failures(_frame(), _frame(6, labels=("0", "1", "7"), start=100))
    assert {f.expectation for f in failures} == {
        "expect_column_values_to_be_in_set",
        "expect_column_distinct_values_to_equal_set",
    }
    assert any("'7'" in f.observed for f in failures)
    distinct = [f for f in failures if f.expectation.endswith("distinct_values_to_equal_set")]
    assert distinct[0].observed == "unexpected ['7']"  # not "None"


def test_duplicate_rows_beyond_share():
    dup = pd.concat([_frame(), _frame().head(5)], ignore_index=True)
    failures = _failures(dup, _frame(6, start=100), max_duplicate_share=0.05)
    assert [f.expectation for f in failures] == ["expect_compound_columns_to_be_unique"]
    assert "10 bad row" in failures[0].observed


def test_text_length_bounds_catch_a_huge_line():
    huge = _frame()
    huge.loc[4, "text"] = "x" * 10_000_000
    (failure,) = _failures(huge, _frame(6, start=100), max_text_chars=100_000)
    assert failure.expectation == "expect_column_value_lengths_to_be_between"
    assert "f.csv row 5" in failure.observed


def test_min_rows():
    failures = _failures(_frame(8), _frame(4, start=100), min_rows=10, min_class_count=1)
    assert [f.expectation for f in failures] == ["expect_table_row_count_to_be_between"]
    assert failures[0].observed == "8"


@pytest.mark.parametrize("part", ["train", "test"])
def test_empty_part_fails(part):
    frames = {"train": _frame(), "test": _frame(6, start=100)}
    frames[part] = frames[part].iloc[:0]
    failures = _failures(frames["train"], frames["test"])
    assert any(f.expectation == "expect_table_row_count_to_be_between" for f in failures)


def test_label_kinds_must_match_unless_allowed():
    kinds = {"source": "numeric", "target": "text"}
    examples = {"source": ["0", "1"], "target": ["negative", "positive"]}
    result = validate_label_kinds(kinds, examples, RawInputGate())
    (failure,) = result.failures
    assert "domain target" in failure.observed and "negative, positive" in failure.observed
    assert validate_label_kinds(
        kinds, examples, RawInputGate(allow_label_type_mismatch=True)
    ).success
    same = {"source": "text", "target": "text"}
    assert validate_label_kinds(same, examples, RawInputGate()).success


def test_a_target_of_unlabelled_texts_alone_is_checked_on_its_texts_and_any_test_set():
    """No labelled file (a cold start): no training suites; the unlabelled texts are checked,
    and a test set, when given, must hold the (source's) classes."""
    empty = _frame(0)
    texts = _frame(30, start=500).assign(label=None)
    cfg = RawInputGate()

    def run(test, unlabeled):
        return validate_domain(
            "target 'x'", empty, empty, test, cfg, classes=["0", "1"], unlabeled=unlabeled,
            labelled_file=False,
        )  # fmt: skip

    only_texts = run(empty, texts)
    assert [r.suite.endswith("target 'x' unlabelled") for r in only_texts] == [True]
    assert all(r.success for r in only_texts)
    repeated = run(empty, pd.concat([texts] * 3, ignore_index=True))
    assert not repeated[0].success  # the texts' own checks still bite
    with_test = run(_frame(6, labels=("0", "2"), start=100), texts)
    assert [r.suite.rsplit(" ", 1)[-1] for r in with_test] == ["test", "unlabelled"]
    assert not with_test[0].success  # '2' is not a class
