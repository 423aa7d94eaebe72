"""Choosing a member's penalty ``C`` by stratified k-fold cross-validation on the solver's own
fits: folds are row-weight masks over one design (one compiled program for every fold and ``C``),
and each fold walks the grid with warm starts. The out-of-fold probabilities at the chosen ``C``
are what the ensemble's weights and the promotion gate are decided on.
"""

from __future__ import annotations

import numpy as np

from transferflow.models.solver import C_GRID, THREADS, Design, fit_copies, log_proba


def folds(y: np.ndarray, seed: int, k: int = 3) -> list[np.ndarray] | None:
    """Stratified fold masks (True = held out) over ``y``; ``None`` when a class has < 2 rows."""
    from sklearn.model_selection import StratifiedKFold

    _, counts = np.unique(y, return_counts=True)
    n_folds = int(min(k, counts.min())) if len(counts) > 1 else 0
    if n_folds < 2:
        return None
    out = []
    for _, held in StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(
        np.zeros(len(y)), y
    ):
        mask = np.zeros(len(y), dtype=bool)
        mask[held] = True
        out.append(mask)
    return out


def choose_c(
    design: Design,
    n_classes: int,
    seed: int,
    *,
    cv_rows: np.ndarray | None = None,
    grid: tuple[float, ...] = C_GRID,
    base_weight: np.ndarray | None = None,
    k: int = 3,
    design_for=None,
    **fit_kwargs,
) -> tuple[float, dict[float, float], np.ndarray | None]:
    """Pick ``C`` by stratified k-fold cross-validation (mean held-out log-loss).

    Args:
        design: all training rows.
        n_classes: classes.
        seed: seed of the folds.
        cv_rows: mask of the rows split into folds (default all); the other rows (e.g. the
            source rows of a joint fit) are always trained on.
        grid: candidate values of ``C``.
        base_weight: per-row weights before folding (default 1).
        k: folds at most (fewer when a class has fewer rows).
        design_for: optional ``design_for(held)`` -> the design a fold fits on (same shapes, so
            the same compiled program), for features fitted on labels (the NB scale), which
            must not see the held-out rows' labels; default ``design`` for every fold.
        **fit_kwargs: passed to :func:`fit` (prior, copies, mix).

    Returns:
        (best C, mean held-out log-loss per C, out-of-fold class probabilities at the best C for
        the ``cv_rows`` in order). Without 2 rows per class there is nothing to cross-validate:
        (middle of the grid, {}, None).
    """
    y = np.asarray(design.y)[: design.n]
    cv_rows = np.ones(design.n, dtype=bool) if cv_rows is None else cv_rows
    base = np.ones(design.n, np.float32) if base_weight is None else base_weight
    idx = np.flatnonzero(cv_rows)
    masks = folds(y[idx], seed, k)
    if masks is None:
        return grid[len(grid) // 2], {}, None

    def run_fold(mask: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
        held = np.zeros(design.n, dtype=bool)
        held[idx[mask]] = True
        fold_design = design if design_for is None else design_for(held)
        warm, out = None, []
        # Along the grid from the most regularised fit, each starting from the last: neighbouring
        # solutions are close, so L-BFGS needs a few dozen iterations instead of hundreds.
        for c in sorted(grid):
            params, warm = fit_copies(
                fold_design,
                n_classes,
                c,
                row_weight=np.where(held, 0.0, base),
                init=warm,
                **fit_kwargs,
            )
            logp = log_proba(params, fold_design)[held]
            out.append(
                (c, float(-np.take_along_axis(logp, y[held][:, None], axis=1).mean()), np.exp(logp))
            )
        return out

    from concurrent.futures import ThreadPoolExecutor

    # Folds in two threads: XLA runs each fit's small kernels on one core, and releases the GIL.
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(run_fold, masks))
    losses: dict[float, list[float]] = {c: [] for c in grid}
    oof = {c: np.zeros((len(idx), n_classes), np.float32) for c in grid}
    for mask, fold in zip(masks, results, strict=True):
        for c, loss, proba in fold:
            losses[c].append(loss)
            oof[c][mask] = proba
    scores = {c: float(np.mean(v)) for c, v in losses.items()}
    best = min(scores, key=lambda c: (scores[c], c))
    return best, scores, oof[best]
