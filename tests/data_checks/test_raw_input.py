"""The raw-input suite accepts good data and rejects crafted bad copies, naming what is wrong."""

import pandas as pd
import pytest

from data_checks.raw_input import validate_domain
from transferflow.config import ChecksConfig


def _frame(n=20, labels=("0", "1")):
    return pd.DataFrame(
        {
            "text": [f"review number {i}" for i in range(n)],
            "label": [labels[i % len(labels)] for i in range(n)],
            "file": "f.csv",
            "row": range(1, n + 1),
        }
    )


def _failures(train, test, **cfg):
    results = validate_domain("target 'x'", train, test, ChecksConfig(**cfg))
    return [f for r in results for f in r.failures]


def test_good_data_passes():
    assert _failures(_frame(), _frame(6)) == []


def test_null_and_blank_texts_are_located_by_file_and_row():
    bad = _frame()
    bad.loc[3, "text"] = None
    bad.loc[7, "text"] = "   "
    failures = _failures(bad, _frame(6), max_blank_text_share=0.0)
    by_type = {f.expectation: f for f in failures}
    assert "f.csv row 4" in by_type["expect_column_values_to_not_be_null"].observed
    assert "f.csv row 8" in by_type["expect_column_values_to_not_match_regex"].observed
    assert all(f.column == "text" for f in failures)


def test_a_small_share_of_blank_texts_is_tolerated_but_not_more():
    some = _frame(100)
    some.loc[[1, 2], "text"] = None
    assert _failures(some, _frame(6), max_blank_text_share=0.05) == []
    some.loc[range(10, 20), "text"] = ""
    (failure,) = _failures(some, _frame(6), max_blank_text_share=0.05)
    assert failure.expectation == "expect_column_values_to_not_match_regex"
    assert "mostly=0.95" in failure.expected


def test_missing_label():
    bad = _frame()
    bad.loc[0, "label"] = None
    (failure,) = _failures(bad, _frame(6))
    assert failure.column == "label" and "1 bad row" in failure.observed


def test_single_class_fails():
    failures = _failures(_frame(labels=("1",)), _frame(6, labels=("1",)))
    assert [f.expectation for f in failures] == ["expect_column_unique_value_count_to_be_between"]
    assert failures[0].observed == "1"


def test_too_few_rows_in_a_class_names_the_class():
    train = pd.concat([_frame(), _frame(2, labels=("2",))], ignore_index=True)
    (failure,) = _failures(train, _frame(6), min_class_count=5)
    assert failure.column == "count" and "class 2" in failure.observed


def test_test_labels_must_be_training_labels():
    (failure,) = _failures(_frame(), _frame(6, labels=("0", "1", "7")))
    assert failure.expectation == "expect_column_values_to_be_in_set"
    assert "'7'" in failure.observed


@pytest.mark.parametrize("part", ["train", "test"])
def test_empty_part_fails(part):
    frames = {"train": _frame(), "test": _frame(6)}
    frames[part] = frames[part].iloc[:0]
    failures = _failures(frames["train"], frames["test"])
    assert any(f.expectation == "expect_table_row_count_to_be_between" for f in failures)
