"""Raw-input suite: is one domain's train/test data usable at all?"""

from __future__ import annotations

import pandas as pd

from data_checks.runner import SuiteResult, run_suite
from transferflow.config import ChecksConfig
from transferflow.data import LABEL, TEXT

GATE = "raw_input"


def table_expectations(cfg: ChecksConfig, min_rows: int = 1) -> list:
    """Expectations every train or test frame must meet.

    Args:
        cfg: thresholds (``max_blank_text_share`` becomes GX's ``mostly`` on the text checks).
        min_rows: fewest rows allowed.

    Returns:
        GX expectation objects.
    """
    import great_expectations as gx

    ex = gx.expectations
    mostly = 1.0 - cfg.max_blank_text_share
    return [
        ex.ExpectColumnToExist(column=TEXT),
        ex.ExpectColumnToExist(column=LABEL),
        ex.ExpectTableRowCountToBeBetween(min_value=min_rows),
        ex.ExpectColumnValuesToNotBeNull(column=TEXT, mostly=mostly),
        ex.ExpectColumnValuesToNotMatchRegex(column=TEXT, regex=r"^\s*$", mostly=mostly),
        ex.ExpectColumnValuesToNotBeNull(column=LABEL),
    ]


def train_expectations(cfg: ChecksConfig) -> list:
    """Train-only expectations: at least two classes."""
    import great_expectations as gx

    return [gx.expectations.ExpectColumnUniqueValueCountToBeBetween(column=LABEL, min_value=2)]


def class_count_frame(train: pd.DataFrame) -> pd.DataFrame:
    """One row per class with its training count (GX checks the minimum on this frame)."""
    counts = train[LABEL].dropna().value_counts()
    return pd.DataFrame({"class": counts.index.astype(str), "count": counts.to_numpy()})


def validate_domain(
    name: str, train: pd.DataFrame, test: pd.DataFrame, cfg: ChecksConfig
) -> list[SuiteResult]:
    """Run the raw-input suites on one domain.

    Checks: required columns, non-null and non-blank texts, non-null labels, at least 2 classes
    with ``cfg.min_class_count`` rows each, and test labels within the training labels.

    Args:
        name: the domain's name (``source``/``target`` role and data set name).
        train: training frame (``text``, ``label``, ``file``, ``row``).
        test: test frame.
        cfg: thresholds.

    Returns:
        One result per suite (train, class counts, test).
    """
    import great_expectations as gx

    ex = gx.expectations
    train_labels = sorted(str(v) for v in train[LABEL].dropna().unique())
    results = [
        run_suite(GATE, f"{name} train", train, table_expectations(cfg) + train_expectations(cfg)),
        run_suite(
            GATE,
            f"{name} classes",
            class_count_frame(train),
            [ex.ExpectColumnValuesToBeBetween(column="count", min_value=cfg.min_class_count)],
            index_columns=["class"],
        ),
        run_suite(
            GATE,
            f"{name} test",
            test,
            table_expectations(cfg)
            + [ex.ExpectColumnValuesToBeInSet(column=LABEL, value_set=train_labels)],
        ),
    ]
    return results
