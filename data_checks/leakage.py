"""Split-integrity gate: no target test text may also be training data or Word2Vec corpus."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_checks.runner import GateReport, run_suite
from transferflow.config import LeakageGate
from transferflow.data import TEXT, normalise_text as normalise

GATE = "leakage"
NORM = "text_normalised"


def validate_leakage(
    test: pd.DataFrame,
    target_train: pd.DataFrame,
    corpus: pd.DataFrame | None,
    cfg: LeakageGate,
    docs_dir: Path | None = None,
) -> GateReport:
    """Check that no target test text is in the target training data or the embedding corpus.

    Args:
        test: target test rows.
        target_train: every target training row (the whole pool, labelled or not).
        corpus: other texts Word2Vec trains on (the source training rows), or ``None`` when the
            vectors are pretrained.
        cfg: mode and tolerated overlap.
        docs_dir: optional Data Docs folder.

    Returns:
        The gate report; ``figures`` holds the overlapping row counts.
    """
    import great_expectations as gx

    frame = test.assign(**{NORM: test[TEXT].map(normalise)})
    frame = frame[frame[NORM] != ""]
    mostly = 1.0 - cfg.max_overlap_share
    checks = {"target train": target_train}
    if corpus is not None:
        checks["word2vec corpus"] = corpus
    suites, figures = [], {}
    for what, other in checks.items():
        seen = sorted({normalise(t) for t in other[TEXT]} - {""})
        figures[f"test_rows_in_{what.replace(' ', '_')}"] = int(frame[NORM].isin(seen).sum())
        suites.append(
            run_suite(
                GATE,
                f"target test vs {what}",
                frame[[c for c in frame.columns if c != TEXT]],
                [gx.expectations.ExpectColumnValuesToNotBeInSet(column=NORM, value_set=seen, mostly=mostly)],
                docs_dir=docs_dir,
            )
        )
    return GateReport(GATE, cfg.mode, suites, figures)
