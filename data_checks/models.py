"""Model gates: a source model worth transferring, and a transfer model worth promoting."""

from __future__ import annotations

from pathlib import Path

from transferflow.config.settings import PromotionGate, SourceModelGate
from transferflow.data_checks.runner import GateReport, one_row, run_suite

SOURCE_GATE = "source_model"
PROMOTION_GATE = "promotion"


def source_threshold(cfg: SourceModelGate, majority_share: float) -> float:
    """The accuracy the source model must reach: configured, or majority-class share + 0.05."""
    return (
        cfg.min_accuracy
        if cfg.min_accuracy is not None
        else round(min(majority_share + 0.05, 1.0), 4)
    )


def validate_source_model(
    accuracy: float,
    majority_share: float,
    n: int,
    cfg: SourceModelGate,
    docs_dir: Path | None = None,
) -> GateReport:
    """The source model's accuracy on held-out source data must reach the threshold.

    Args:
        accuracy: accuracy on the source test rows (never trained on).
        majority_share: share of the most frequent class in those rows.
        n: number of rows.
        cfg: mode and threshold.
        docs_dir: optional Data Docs folder.

    Returns:
        The gate report.
    """
    import great_expectations as gx

    threshold = source_threshold(cfg, majority_share)
    figures = {
        "source_holdout_accuracy": accuracy,
        "majority_share": majority_share,
        "holdout_rows": n,
        "threshold": threshold,
    }
    suite = run_suite(
        SOURCE_GATE,
        "held-out source accuracy",
        one_row(source_holdout_accuracy=accuracy),
        [
            gx.expectations.ExpectColumnValuesToBeBetween(
                column="source_holdout_accuracy", min_value=threshold
            )
        ],
        index_columns=[],
        docs_dir=docs_dir,
    )
    return GateReport(SOURCE_GATE, cfg.mode, [suite], figures)


def validate_promotion(
    selection: dict, cfg: PromotionGate, docs_dir: Path | None = None
) -> GateReport:
    """No baseline may be significantly better than transfer out-of-fold (see
    :func:`transferflow.evaluation.promotion.select_model`): the gate checks that transfer was
    chosen.

    Args:
        selection: output of ``select_model``.
        cfg: mode and significance.
        docs_dir: optional Data Docs folder.

    Returns:
        The gate report; ``figures`` carries the selection.
    """
    import great_expectations as gx

    suite = run_suite(
        PROMOTION_GATE,
        "transfer vs baselines out-of-fold",
        one_row(transfer_chosen=int(selection["chosen"] == "transfer")),
        [gx.expectations.ExpectColumnValuesToBeBetween(column="transfer_chosen", min_value=1)],
        index_columns=[],
        docs_dir=docs_dir,
    )
    return GateReport(PROMOTION_GATE, cfg.mode, [suite], dict(selection))
