"""Split-integrity gate: no target test text may also be training data or Word2Vec corpus."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from transferflow.config.settings import LeakageGate
from transferflow.data.tables import TEXT
from transferflow.data.tables import normalise_text as normalise
from transferflow.data_checks.runner import GateReport, run_suite

GATE = "leakage"


def validate_leakage(
    test: pd.DataFrame,
    target_train: pd.DataFrame,
    corpus: pd.DataFrame | None,
    cfg: LeakageGate,
    docs_dir: Path | None = None,
    unlabeled: pd.DataFrame | None = None,
) -> GateReport:
    """Check that no target test text is in the target training data or the embedding corpus.

    Args:
        test: target test rows.
        target_train: every target training row (the whole pool, labelled or not).
        corpus: other texts Word2Vec trains on (the source training rows), or ``None`` when the
            vectors are pretrained.
        cfg: mode and tolerated overlap.
        docs_dir: optional Data Docs folder.
        unlabeled: the target's unlabelled texts, if any (a test text among them would be learnt
            from by the word vectors, the n-grams and self-training).

    Returns:
        The gate report; ``figures`` holds the overlapping row counts.
    """
    import great_expectations as gx

    normalised = test[TEXT].map(normalise)
    checks = {"target train": target_train}
    if unlabeled is not None:
        checks["target unlabelled"] = unlabeled
    if corpus is not None:
        checks["word2vec corpus"] = corpus
    suites, figures = [], {}
    for what, other in checks.items():
        seen = {normalise(t) for t in other[TEXT]} - {""}
        column = f"in_{what.replace(' ', '_')}"
        # A boolean column keeps the expectation small (and Data Docs readable) whatever the size
        # of the training data; the texts themselves are shown for the failing rows.
        frame = pd.DataFrame(
            {
                "file": test.get("file", ""),
                "row": test.get("row", range(1, len(test) + 1)),
                "text": normalised.str.slice(0, 60),
                column: normalised.isin(seen) & (normalised != ""),
            }
        )
        figures[f"test_rows_{column}"] = int(frame[column].sum())
        suites.append(
            run_suite(
                GATE,
                f"target test vs {what}",
                frame,
                [
                    gx.expectations.ExpectColumnValuesToBeInSet(
                        column=column, value_set=[False], mostly=1.0 - cfg.max_overlap_share
                    )
                ],
                index_columns=["file", "row", "text"],
                docs_dir=docs_dir,
            )
        )
    return GateReport(GATE, cfg.mode, suites, figures)
