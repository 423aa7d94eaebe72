"""Raw-input gate: is each domain's data usable at all?"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferflow.config.settings import RawInputGate
from transferflow.data.tables import LABEL, TEXT
from transferflow.data_checks.runner import GateReport, SuiteResult, run_suite

GATE = "raw_input"


def frame_expectations(cfg: RawInputGate, min_rows: int) -> list:
    """Expectations every frame of a domain (training pool, test) must meet.

    Args:
        cfg: thresholds; ``max_blank_text_share`` and ``max_duplicate_share`` become GX's
            ``mostly`` on their checks.
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
        ex.ExpectColumnValueLengthsToBeBetween(
            column=TEXT, min_value=cfg.min_text_chars, max_value=cfg.max_text_chars
        ),
        # Rows without text are the blank-text checks' business, not duplicates.
        ex.ExpectCompoundColumnsToBeUnique(
            column_list=[TEXT, LABEL],
            mostly=1.0 - cfg.max_duplicate_share,
            ignore_row_if="any_value_is_missing",
        ),
    ]


def class_frame(labelled: pd.DataFrame) -> pd.DataFrame:
    """One row per class with its count and share of the labelled training rows."""
    counts = labelled[LABEL].dropna().value_counts()
    total = max(int(counts.sum()), 1)
    return pd.DataFrame(
        {
            "class": counts.index.astype(str),
            "count": counts.to_numpy(),
            "share": counts.to_numpy() / total,
        }
    )


def validate_domain(
    name: str,
    pool: pd.DataFrame,
    labelled: pd.DataFrame,
    test: pd.DataFrame,
    cfg: RawInputGate,
    docs_dir: Path | None = None,
    *,
    classes: list[str] | None = None,
    unlabeled: pd.DataFrame | None = None,
    labelled_file: bool = True,
) -> list[SuiteResult]:
    """Run the raw-input suites on one domain.

    Args:
        name: the domain (e.g. ``target 'kitchen'``).
        pool: every training row read from the files.
        labelled: the labelled rows the models will learn from (train + validation, after any
            cap): class counts and balance are checked on these.
        test: test rows.
        cfg: thresholds.
        docs_dir: optional Data Docs folder.
        classes: the classes every test label must be one of (default: the labelled rows';
            the source's with zero target labels).
        unlabeled: the domain's unlabelled texts, if any: their own suite (rows, blank texts,
            lengths, repeats).
        labelled_file: False for a target given by unlabelled texts only (a cold start): it has
            no training rows to check, and a test set only when test files were given.

    Returns:
        One result per suite (training pool, classes, test, and unlabelled texts).
    """
    import great_expectations as gx

    ex = gx.expectations
    train_labels = (
        list(classes)
        if classes is not None
        else sorted(str(v) for v in labelled[LABEL].dropna().unique())
    )
    extra = []
    if unlabeled is not None:
        mostly = 1.0 - cfg.max_blank_text_share
        extra.append(
            run_suite(
                GATE,
                f"{name} unlabelled",
                unlabeled,
                [
                    ex.ExpectColumnToExist(column=TEXT),
                    ex.ExpectColumnValuesToNotBeNull(column=TEXT, mostly=mostly),
                    ex.ExpectColumnValuesToNotMatchRegex(
                        column=TEXT, regex=r"^\s*$", mostly=mostly
                    ),
                    ex.ExpectColumnValueLengthsToBeBetween(
                        column=TEXT, min_value=cfg.min_text_chars, max_value=cfg.max_text_chars
                    ),
                    ex.ExpectColumnValuesToBeUnique(
                        column=TEXT, mostly=1.0 - cfg.max_duplicate_share
                    ),
                    # Without a labelled file they are all the target there is: as many rows as
                    # a labelled file must have.
                    *(
                        []
                        if labelled_file
                        else [ex.ExpectTableRowCountToBeBetween(min_value=cfg.min_rows)]
                    ),
                ],
                docs_dir=docs_dir,
            )
        )
    if not labelled_file and test.empty:  # no labelled file, no test files: no labels at all
        return extra
    suites = []
    if labelled_file:
        suites += [
            run_suite(
                GATE,
                f"{name} train",
                pool,
                frame_expectations(cfg, cfg.min_rows)
                + [ex.ExpectColumnUniqueValueCountToBeBetween(column=LABEL, min_value=2)],
                docs_dir=docs_dir,
            ),
            run_suite(
                GATE,
                f"{name} classes",
                class_frame(labelled),
                [
                    ex.ExpectColumnValuesToBeBetween(column="count", min_value=cfg.min_class_count),
                    ex.ExpectColumnValuesToBeBetween(
                        column="share", min_value=cfg.min_minority_share
                    ),
                ],
                index_columns=["class"],
                docs_dir=docs_dir,
            ),
        ]
    suites.append(
        run_suite(
            GATE,
            f"{name} test",
            test,
            frame_expectations(cfg, 1)
            + [
                ex.ExpectColumnValuesToBeInSet(column=LABEL, value_set=train_labels),
                ex.ExpectColumnDistinctValuesToEqualSet(column=LABEL, value_set=train_labels),
            ],
            docs_dir=docs_dir,
        )
    )
    return suites + extra


def validate_label_kinds(
    kinds: dict[str, str],
    examples: dict[str, list[str]],
    cfg: RawInputGate,
    docs_dir: Path | None = None,
) -> SuiteResult:
    """Source and target labels must be of one kind (both numeric or both named).

    ``1`` in one file and ``positive`` in the other usually means the same classes spelled two
    ways; transfer would then treat them as unrelated.

    Args:
        kinds: domain -> ``numeric`` or ``text``.
        examples: domain -> a few of its labels, for the message.
        cfg: ``allow_label_type_mismatch`` skips the check.
        docs_dir: optional Data Docs folder.

    Returns:
        The suite's result.
    """
    import great_expectations as gx

    frame = pd.DataFrame(
        {
            "domain": list(kinds),
            "labels": [", ".join(examples[d][:4]) for d in kinds],
            "label_kind": list(kinds.values()),
        }
    )
    allowed = sorted(set(kinds.values())) if cfg.allow_label_type_mismatch else [kinds["source"]]
    return run_suite(
        GATE,
        "label kinds",
        frame,
        [gx.expectations.ExpectColumnValuesToBeInSet(column="label_kind", value_set=allowed)],
        index_columns=["domain", "labels"],
        docs_dir=docs_dir,
    )


def report(suites: list[SuiteResult], cfg: RawInputGate, figures: dict) -> GateReport:
    """Wrap suite results as this gate's report."""
    return GateReport(GATE, cfg.mode, suites, figures)
