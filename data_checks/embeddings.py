"""Embeddings gate: vectors of the configured size, all finite, covering the target's words."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from transferflow.config.settings import EmbeddingsGate
from transferflow.data_checks.runner import GateReport, one_row, run_suite
from transferflow.text.tokens import count_tokens

GATE = "embeddings"


def target_coverage(kv, target_texts: list[str]) -> float:
    """Share of target token occurrences that have a vector."""
    counts = count_tokens(target_texts)
    total = sum(counts.values())
    covered = sum(n for tok, n in counts.items() if tok in kv.key_to_index)
    return round(covered / total, 4) if total else 0.0


def validate_embeddings(
    kv,
    expected_size: int | None,
    target_texts: list[str],
    cfg: EmbeddingsGate,
    docs_dir: Path | None = None,
) -> GateReport:
    """Check the vectors the models will use.

    Args:
        kv: the (restricted) gensim KeyedVectors.
        expected_size: configured vector size, or ``None`` when any size is fine.
        target_texts: target training texts (coverage is measured on them).
        cfg: mode and coverage threshold.
        docs_dir: optional Data Docs folder.

    Returns:
        The gate report with ``vector_size``, ``vocab_size``, ``nonfinite_vectors`` and
        ``target_coverage`` figures.
    """
    import great_expectations as gx

    ex = gx.expectations
    finite = np.isfinite(kv.vectors).all(axis=1) if len(kv) else np.array([], dtype=bool)
    figures = {
        "vector_size": int(kv.vector_size),
        "vocab_size": len(kv),
        "nonfinite_vectors": int((~finite).sum()),
        "target_coverage": target_coverage(kv, target_texts),
    }
    summary: list[gx.expectations.Expectation] = [
        ex.ExpectColumnValuesToBeBetween(
            column="target_coverage", min_value=cfg.min_target_coverage
        ),
        ex.ExpectColumnValuesToBeBetween(column="vocab_size", min_value=1),
    ]
    if expected_size is not None:
        summary.append(
            ex.ExpectColumnValuesToBeInSet(column="vector_size", value_set=[expected_size])
        )
    vectors = pd.DataFrame({"token": list(kv.index_to_key), "finite": finite})
    suites = [
        run_suite(
            GATE, "vector summary", one_row(**figures), summary, index_columns=[], docs_dir=docs_dir
        ),
        run_suite(
            GATE,
            "vector values",
            vectors,
            [ex.ExpectColumnValuesToBeInSet(column="finite", value_set=[True])],
            index_columns=["token"],
            docs_dir=docs_dir,
        ),
    ]
    return GateReport(GATE, cfg.mode, suites, figures)
