"""Self-training: the transfer model labels the unlabelled target texts it is surest of, and is
refitted with them (one round).

What was tried (docs/models.md, "Unlabelled target texts and zero labels"): one round labelling
30%, 70% or 100% of the unlabelled texts, on four MDSD pairs at 0, 50 and 200 labels; 70% was
best or within 0.25 points of best at every budget (30% gained less at 0 and 50 labels, 100%
less at 200); the
pseudo-labelled rows are chosen per predicted class in proportion to the target's class shares,
so a model that leans to one class does not teach itself to lean further (the classic failure
of confidence-only selection).
"""

from __future__ import annotations

import numpy as np


def class_shares(counts: dict[str, int], classes: list[str]) -> np.ndarray | None:
    """Each class's share of ``counts`` in ``classes`` order; ``None`` when a class has fewer
    than 5 rows (too few to estimate its share)."""
    values = np.array([counts.get(c, 0) for c in classes], dtype=float)
    if values.min() < 5:
        return None
    return values / values.sum()


def pseudo_labels(
    proba: np.ndarray, classes: list[str], share: float, shares: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """Which unlabelled rows to label with the model's own prediction.

    Args:
        proba: the model's class probabilities on the unlabelled texts (rows x classes).
        classes: the class order of ``proba``.
        share: the share of the rows to label (0..1).
        shares: the class shares to keep (sums to 1): class ``c`` gets about
            ``share * rows * shares[c]`` rows, the most confident predicted as ``c`` (fewer
            when fewer are predicted as ``c``).

    Returns:
        (row indexes in ascending order, their labels).
    """
    pred = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    keep: list[int] = []
    for k in range(len(classes)):
        rows = np.flatnonzero(pred == k)
        quota = int(round(share * len(proba) * float(shares[k])))
        # Stable order: equal confidences keep file order, so the choice is reproducible.
        keep.extend(rows[np.argsort(-confidence[rows], kind="stable")[:quota]].tolist())
    chosen = np.array(sorted(keep), dtype=np.int64)
    return chosen, [classes[int(pred[i])] for i in chosen]
