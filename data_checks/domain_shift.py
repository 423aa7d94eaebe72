"""Domain-shift gate: vocabulary overlap, label-distribution distance, proxy A-distance."""

from __future__ import annotations

from pathlib import Path

from transferflow.config.settings import DomainShiftGate
from transferflow.data_checks.runner import GateReport, one_row, run_suite

GATE = "domain_shift"


def validate_domain_shift(
    figures: dict[str, float], cfg: DomainShiftGate, docs_dir: Path | None = None
) -> GateReport:
    """Gate the measured shift figures on their thresholds (``warn`` mode by default).

    Args:
        figures: ``vocab_overlap``, ``label_distance``, ``proxy_a_distance`` (see
            :mod:`transferflow.data.shift`).
        cfg: mode and thresholds.
        docs_dir: optional Data Docs folder.

    Returns:
        The gate report carrying the figures.
    """
    import great_expectations as gx

    ex = gx.expectations
    expectations = [
        ex.ExpectColumnValuesToBeBetween(column="vocab_overlap", min_value=cfg.min_vocab_overlap),
        ex.ExpectColumnValuesToBeBetween(column="label_distance", max_value=cfg.max_label_distance),
        ex.ExpectColumnValuesToBeBetween(
            column="proxy_a_distance", max_value=cfg.max_proxy_a_distance
        ),
    ]
    suite = run_suite(
        GATE,
        "source vs target",
        one_row(**figures),
        expectations,
        index_columns=[],
        docs_dir=docs_dir,
    )
    return GateReport(GATE, cfg.mode, [suite], dict(figures))
