"""The transfer ensemble's member weights, chosen from the run's out-of-fold evidence.

The ensemble's output is a weighted mean of its members' class probabilities. With the members'
out-of-fold (OOF) probabilities on the target labels, the weights that make that mean most likely
on those labels are a mixture-proportion problem: the log-likelihood is concave in the weights.
With two groups (the ensemble's) the maximum is the root of its slope in the one free share; with
more, EM's update ``w_g <- mean_i(responsibility of g for row i)`` climbs it monotonically to the
optimum (no step size). A Dirichlet prior centred on the default weights, worth ``strength`` rows,
keeps the choice near the default when there are few labels and lets the evidence take over as
labels accumulate: with 50 labels and ``strength`` 50 the prior weighs as much as the labels.

Members are tied in *groups* (for example the TF-IDF members and the NB member): a group's
members keep their default ratio within the group, and only the groups' shares are chosen.
What was tried, and why these defaults: docs/models.md, "Ensemble weights".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from transferflow.config.settings import TransferConfig


FROM_OOF = "chosen from out-of-fold predictions"  # ``weights_from`` of weights chosen by a run


def group_weights(
    probas: list[np.ndarray],
    y: np.ndarray,
    groups: list[int],
    default: np.ndarray,
    *,
    strength: float,
    iters: int = 500,
    tol: float = 1e-9,
) -> np.ndarray:
    """Member weights from out-of-fold probabilities: the groups' shares that maximise the
    likelihood of the rows' classes under the weighted mean, plus a Dirichlet prior (MAP). Two
    groups (the ensemble's) get the exact maximum by bisection; more groups, EM.

    Args:
        probas: each member's OOF class probabilities on the same labelled rows (rows x classes).
        y: the rows' class indexes.
        groups: the group of each member (0, 1, ...; members of a group share its weight in the
            ratio of ``default``).
        default: the default member weights (sum 1, all above 0): the prior's centre.
        strength: the prior's weight in rows (0: the maximum-likelihood weights).
        iters: EM steps at most.
        tol: stop when no group's share moves more than this.

    Returns:
        Member weights (sum 1), in the order of ``probas``.
    """
    default = np.asarray(default, np.float64)
    default = default / default.sum()
    group_ids = np.asarray(groups)
    n_groups = int(group_ids.max()) + 1
    prior = np.array([default[group_ids == g].sum() for g in range(n_groups)])
    within = default / prior[group_ids]  # each member's share of its group
    # Likelihood of each row's true class under each group's (fixed-ratio) mean.
    like_m = np.stack([np.asarray(p, np.float64)[np.arange(len(y)), y] for p in probas])
    like = np.stack(
        [(within[group_ids == g, None] * like_m[group_ids == g]).sum(0) for g in range(n_groups)]
    )
    like = np.maximum(like, 1e-12)  # a member sure of the wrong class must not zero a row
    if n_groups == 2:
        share = _two_shares(like, prior, strength)
        return share[group_ids] * within
    share = prior.copy()
    for _ in range(iters):
        resp = share[:, None] * like
        resp /= resp.sum(0, keepdims=True)
        new = (resp.sum(1) + strength * prior) / (len(y) + strength)
        done = np.abs(new - share).max() < tol
        share = new
        if done:
            break
    return share[group_ids] * within


def _two_shares(like: np.ndarray, prior: np.ndarray, strength: float) -> np.ndarray:
    """The exact MAP shares of two groups: the objective is concave in the second group's share
    ``s``, so its slope falls from ``s`` = 0 to 1 and the maximum is where it crosses 0 (SciPy's
    Brent root finder), or the end it never crosses: without a prior the maximum can be a share
    of 0 or 1, which EM only approaches, ever more slowly."""
    from scipy.optimize import brentq

    a, b = like[1], like[0]

    def slope(s: float) -> float:
        prior_term = strength * (prior[1] / s - prior[0] / (1 - s)) if strength > 0 else 0.0
        return float(((a - b) / (s * a + (1 - s) * b)).sum()) + prior_term

    # With a prior its slope is infinite at both ends, so the root lies strictly inside.
    lo, hi = (0.0, 1.0) if strength == 0 else (1e-15, 1 - 1e-15)
    if slope(hi) >= 0:
        return np.array([1 - hi, hi])
    if slope(lo) <= 0:
        return np.array([1 - lo, lo])
    s = brentq(slope, lo, hi, xtol=1e-15)
    return np.array([1 - s, s])


def groups(names: list[str]) -> list[int]:
    """The weight groups of the ensemble's members: the TF-IDF members (0), the NB member(s) (1).

    One free share, not one per member: on validation splits of MDSD training data, seven free
    weights did no better (docs/models.md, "Ensemble weights").
    """
    return [1 if m.startswith("nb/") else 0 for m in names]


def choose_weights(
    oofs: list[np.ndarray | None],
    y: np.ndarray,
    names: list[str],
    default: np.ndarray,
    transfer: TransferConfig,
) -> tuple[np.ndarray, str]:
    """The member weights of an adapted ensemble, and where they came from.

    ``transfer.ensemble_weights``: ``out-of-fold`` chooses the NB member's share from the members'
    out-of-fold probabilities (:func:`group_weights`, a prior worth
    ``transfer.weights_prior_rows`` rows centred on ``default``); ``fixed`` keeps ``default``, as
    does a run without out-of-fold probabilities (too few labels to fold).

    Args:
        oofs: each member's out-of-fold probabilities on the target rows (or ``None``).
        y: the target rows' classes.
        names: the members' names.
        default: the default weights.
        transfer: the transfer settings.
    """
    if transfer.ensemble_weights == "fixed" or len(set(groups(names))) < 2:
        return np.asarray(default, np.float64), "fixed"
    if any(o is None for o in oofs):
        return np.asarray(default, np.float64), "default: too few target labels to fold"
    weights = group_weights(
        [np.asarray(o) for o in oofs],
        y,
        groups(names),
        default,
        strength=transfer.weights_prior_rows,
    )
    return weights, FROM_OOF


def honest_oof(
    oofs: list[np.ndarray | None],
    y: np.ndarray,
    masks: list[np.ndarray] | None,
    names: list[str],
    default: np.ndarray,
    transfer: TransferConfig,
) -> np.ndarray | None:
    """The ensemble's out-of-fold probabilities, each fold's rows blended with weights chosen
    without them (weights chosen on every row would flatter the evidence they were chosen on).

    Returns:
        (rows x classes) float32, or ``None`` without folds or members' out-of-fold probabilities.
    """
    if masks is None or any(o is None for o in oofs):
        return None
    stacked = np.stack([np.asarray(o, np.float64) for o in oofs])  # (members, rows, classes)
    out = np.zeros(stacked.shape[1:])
    for mask in masks:
        rest = [o[~mask] for o in stacked]
        weights, _ = choose_weights(rest, y[~mask], names, default, transfer)
        out[mask] = np.einsum("mrc,m->rc", stacked[:, mask], weights)
    return out.astype(np.float32)
