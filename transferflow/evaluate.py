"""Metrics of the candidates on the target test set (scikit-learn does the arithmetic)."""

from __future__ import annotations

from typing import Any

import numpy as np


def classification_metrics(
    y_true: list[str], proba: np.ndarray, labels: list[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class precision/recall, confusion matrix and (binary) ROC AUC.

    Args:
        y_true: true labels (strings).
        proba: predicted probabilities, one column per entry of ``labels``.
        labels: the class labels, in the order of ``proba``'s columns.

    Returns:
        A JSON-ready dict.

    Raises:
        ValueError: when ``proba`` does not have one column per label or one row per example.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape != (len(y_true), len(labels)):
        raise ValueError(
            f"proba has shape {proba.shape}; expected ({len(y_true)}, {len(labels)})"
        )
    y_pred = [labels[i] for i in proba.argmax(axis=1)]
    # Report over the union of true and known labels so an unseen test label is visible, not lost.
    classes = list(labels) + sorted(set(y_true) - set(labels))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    out: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "macro_f1": round(
            float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)), 4
        ),
        "per_class": {
            c: {
                "precision": round(float(p), 4),
                "recall": round(float(r), 4),
                "f1": round(float(f), 4),
                "support": int(s),
            }
            for c, p, r, f, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": classes,
            "matrix": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
        },
    }
    if len(labels) == 2 and set(y_true) <= set(labels) and len(set(y_true)) == 2:
        positive = labels[1]
        out["roc_auc"] = round(
            float(roc_auc_score([y == positive for y in y_true], proba[:, 1])), 4
        )
    return out
