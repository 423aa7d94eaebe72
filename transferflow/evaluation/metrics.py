"""Scoring the candidates on the target test set (scikit-learn does the arithmetic), the source
model on held-out source rows, and the label-budget curve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transferflow.config.settings import ModelConfig, TransferConfig
from transferflow.data.datasets import read_frame
from transferflow.data.tables import LABEL, TEXT
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.storage.files import write_json_atomic


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
        raise ValueError(f"proba has shape {proba.shape}; expected ({len(y_true)}, {len(labels)})")
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


def label_budget_curve(
    source_model: ModelRef,
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    model_cfg: ModelConfig,
    transfer_cfg: TransferConfig,
    sizes: list[int],
    *,
    seed: int,
    out_dir: Path,
    full: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Target test accuracy of transfer and target_only against the number of target labels.

    Each budget below the available training labels gets a balanced subset of them (the same rows
    for both candidates; smaller subsets are not nested) and both models are retrained on it with
    the run's settings; the test set stays the run's.

    Args:
        source_model: the run's source model.
        source: prepared source data.
        target: prepared target data.
        emb: word vectors.
        model_cfg: model settings.
        transfer_cfg: transfer settings.
        sizes: label budgets to try.
        seed: random seed.
        out_dir: folder for the subsets and models.
        full: the run's own test accuracies (``transfer``, ``target_only``), added as the last
            point at the full label count.

    Returns:
        ``{"sizes": [...], "transfer": [...], "target_only": [...]}`` (accuracies in [0, 1]).
    """
    from transferflow.data.datasets import _dataset_ref
    from transferflow.data.splits import balanced_sample
    from transferflow.models.candidates import candidate_proba, fine_tune, train_target_only

    train, test = read_frame(target.train), read_frame(target.test)
    texts, truth = test[TEXT].tolist(), test[LABEL].tolist()
    curve: dict[str, list] = {"sizes": [], "transfer": [], "target_only": []}
    for n in [n for n in sizes if n < len(train)]:
        sub = balanced_sample(train, n, seed)
        if sub[LABEL].nunique() < train[LABEL].nunique():
            continue  # too few rows to show every class: not comparable with the full run
        folder = out_dir / f"labels_{n}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = {"pool": read_frame(target.pool), "train": sub, "test": test}
        subset = _dataset_ref(
            target.name,
            frames,
            "target",
            folder,
            label_kind=target.label_kind,
            input_sha256=target.input_sha256,
            test_from_split=target.test_from_split,
        )
        models = {
            "transfer": fine_tune(
                source_model,
                source,
                subset,
                emb,
                model_cfg,
                transfer_cfg,
                seed=seed,
                out_dir=folder,
            ),
            "target_only": train_target_only(subset, emb, model_cfg, seed=seed, out_dir=folder),
        }
        curve["sizes"].append(n)
        for name, ref in models.items():
            proba = candidate_proba(ref, texts)
            curve[name].append(classification_metrics(truth, proba, ref.labels)["accuracy"])
    if full is not None:
        curve["sizes"].append(len(train))
        for name in ("transfer", "target_only"):
            curve[name].append(full.get(name))
    return curve


def score_candidates(
    target: DatasetRef, candidates: dict[str, ModelRef], score=None
) -> dict[str, dict[str, Any]]:
    """Every candidate's metrics on the target test set, in candidate order.

    Args:
        target: prepared target data.
        candidates: role -> model reference (``source_only`` is the source model itself).
        score: ``score(ref, texts) -> probabilities`` (default: load and predict).

    Returns:
        candidate -> :func:`classification_metrics`; empty when the target has no test set (a
        cold start from unlabelled texts only, without test files).
    """
    from transferflow.models.candidates import CANDIDATE_ORDER, candidate_proba

    score = score or candidate_proba
    order = sorted(candidates, key=lambda n: CANDIDATE_ORDER.index(n))
    frame = read_frame(target.test)
    if frame.empty:
        return {}
    texts, y_true = frame[TEXT].tolist(), frame[LABEL].tolist()
    return {
        name: classification_metrics(
            y_true, score(candidates[name], texts), candidates[name].labels
        )
        for name in order
    }


def write_metrics(
    results: dict[str, dict[str, Any]], *, out_dir: Path, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Write ``metrics.json`` (atomically) from the candidates' test metrics and run facts.

    Returns:
        The metrics dict, as written: ``candidates`` holds the test-set metrics.
    """
    metrics: dict[str, Any] = {**(extra or {}), "candidates": results}
    if "transfer" in results and "target_only" in results:
        gain = results["transfer"]["accuracy"] - results["target_only"]["accuracy"]
        metrics["transfer_gain"] = {"accuracy_vs_target_only": round(gain, 4)}
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def source_holdout(source_model: ModelRef, source: DatasetRef) -> tuple[float, float, int]:
    """Accuracy of the source model on the source test rows (never trained on).

    Returns:
        (accuracy, share of the majority class, number of rows).
    """
    from transferflow.models.candidates import candidate_proba

    test = read_frame(source.test)
    proba = candidate_proba(source_model, test[TEXT].tolist())
    predicted = [source_model.labels[i] for i in proba.argmax(axis=1)]
    truth = test[LABEL].tolist()
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    majority = float(test[LABEL].value_counts(normalize=True).max())
    return round(accuracy, 4), round(majority, 4), len(test)
