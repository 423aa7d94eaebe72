"""NB-weighted logistic regression (Wang & Manning 2012, "Baselines and bigrams") as a member of
the ``wide-deep`` network: binarised n-grams scaled by their log-count ratio, then softmax
regression fitted by :mod:`transferflow.models.solver`. In the network the member reads which
n-grams are
present (``NgramBag``'s binary units) with the scale folded into its kernel, so it needs no file
beyond ``model.keras``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from transferflow.models.member import Member

if TYPE_CHECKING:
    from transferflow.text.features import NgramFeaturizer


def log_count_ratio(csr, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-n-gram scale of NB-weighted logistic regression (Wang & Manning 2012): the log ratio of
    an n-gram's smoothed presence rate in one class to that in the others.

    For two classes this is ``|r|`` with ``r = log((p / |p|_1) / (q / |q|_1))``, ``p`` and ``q``
    the per-class presence counts plus one; with more classes, the largest one-vs-rest ``|r|``.
    The sign is left to the fitted weights (their penalty is symmetric).

    Args:
        csr: (rows x n-grams) matrix; only which entries are non-zero is read.
        y: class index per row.
        n_classes: classes.

    Returns:
        float32 array (n-grams,), every value above 0.
    """
    present = csr.copy()
    present.data = np.ones_like(present.data)
    per_class = (
        np.stack([np.asarray(present[y == c].sum(axis=0)).ravel() for c in range(n_classes)]) + 1.0
    )  # (classes, n-grams), add-one smoothing
    total = per_class.sum(axis=0)
    scale = np.zeros(per_class.shape[1])
    for c in range(n_classes):  # with two classes both give the same |r|
        p, q = per_class[c], total - per_class[c]
        scale = np.maximum(scale, np.abs(np.log((p / p.sum()) / (q / q.sum()))))
    # An n-gram equally frequent in both classes would get 0 and drop out; keep it usable.
    return np.maximum(scale, 1e-3).astype(np.float32)


def binarised(csr, scale: np.ndarray):  # -> scipy.sparse.csr_matrix
    """``csr``'s pattern with value ``scale[n-gram]``: presence times the NB scale."""
    out = csr.copy()
    out.data = np.asarray(scale, np.float32)[out.indices]
    return out


def fit_nb(
    featurizer: NgramFeaturizer,
    texts: list[str],
    y: np.ndarray,
    domain: np.ndarray,
    n_classes: int,
    seed: int,
    *,
    grid: tuple[float, ...] | None = None,
    folds: int = 3,
    target_weight: float = 1.0,
    zero_width: int = 0,
    c: float | None = None,
) -> tuple[Member, float, np.ndarray | None]:
    """NB-weighted logistic regression as one member: binarised n-grams scaled by their log-count
    ratio (:func:`log_count_ratio`), then softmax regression; ``C`` by
    cross-validation over the target rows (the source rows are always trained on).

    The scale is computed from labels, so each fold recomputes it without its held-out rows:
    the out-of-fold probabilities never saw the labels they are judged on.

    Args:
        featurizer: fitted n-grams.
        texts: training texts (source rows, then target rows).
        y: their class indices.
        domain: ``SOURCE``/``TARGET`` per row.
        n_classes: classes.
        seed: seed of the folds.
        grid: candidate values of ``C`` (default: the solver's grid).
        folds: folds at most.
        target_weight: loss weight of each target row, the source rows' being 1 (1: pooled
            alike; benchmarks/nb_target_weight_choice.py measures others).
        zero_width: the word vectors' width in the network this member joins: its rows are
            fitted with zero deep features of that width, so that it shares the compiled
            program of the other members fitted on the same rows (``Design.zero_width``: the
            same optimum, up to float rounding).
        c: ``C`` if already chosen: one fit, no cross-validation (out-of-fold probabilities
            ``None``).

    Returns:
        (member weights with their ``scale``, chosen ``C``, out-of-fold probabilities on the
        target rows or ``None``).
    """
    from transferflow.models.selection import choose_c
    from transferflow.models.solver import C_GRID, TARGET, fit, make_design

    csr = featurizer.transform(texts)
    y, domain = np.asarray(y), np.asarray(domain)

    def design_on(rows: np.ndarray):
        scale = log_count_ratio(csr[rows], y[rows], n_classes)
        design = make_design(binarised(csr, scale), None, y, domain)
        return scale, replace(design, zero_width=zero_width)

    scale, design = design_on(np.ones(len(y), dtype=bool))
    base = np.where(domain == TARGET, target_weight, 1.0).astype(np.float32)
    if c is not None:
        w = fit(design, n_classes, float(c), row_weight=base)
        return Member(wide_kernel=w[0], wide_bias=w[1], scale=scale), float(c), None
    c, _, oof = choose_c(
        design,
        n_classes,
        seed,
        cv_rows=domain == TARGET,
        grid=C_GRID if grid is None else tuple(grid),
        base_weight=base,
        k=folds,
        design_for=lambda held: design_on(~held)[1],
    )
    w = fit(design, n_classes, c, row_weight=base)
    return Member(wide_kernel=w[0], wide_bias=w[1], scale=scale), c, oof
