"""Which unlabelled target texts to label next (active learning, one batch).

Given the current transfer model's class probabilities on the unlabelled texts, pick ``n`` texts
to label. Strategies (compared in ``benchmarks/suggest.py``; see docs/benchmarks.md: on MDSD,
12 pairs x 3 seeds, ``margin`` beat a random sample at both starting budgets, so it is the
default):

* ``random``: uniform sample (the baseline every other strategy must beat);
* ``margin``: smallest gap between the two most probable classes (least confident);
* ``balanced-margin``: the smallest-margin texts, taken in turn from each predicted class, so the
  batch is not lopsided: plain ``margin`` picks were up to two-thirds one class on MDSD, where
  the model leans one way near its boundary (class-balanced uncertainty sampling, e.g. Ertekin et
  al. 2007, "Learning on the border"; Aggarwal et al. 2020);
* ``softrank-margin``: a sample in which the text of margin rank ``r`` is drawn with probability
  proportional to ``1 / r`` (without replacement; Gumbel top-k): the least sure texts are almost
  always picked, the rest of the batch spreads over the pool instead of piling up at the
  boundary. Stochastic batch acquisition (Kirsch et al. 2023, "Stochastic batch acquisition: a
  simple baseline for deep active learning") found it matches or beats the top-n pick;
* ``margin-cluster``: the ``POOL_FACTOR * n`` smallest-margin texts, clustered into ``n`` groups
  by k-means on the model's features; the smallest-margin text of each group (Zhdanov 2019,
  "Diverse mini-batch active learning"), so a batch does not spend labels on near-duplicates;
* ``badge``: k-means++ seeding on gradient embeddings (Ash et al. 2020), where a text's
  embedding is ``(p - onehot(argmax p)) ⊗ x``: long vectors for uncertain texts, spread out by
  the seeding;
* ``committee``: query by committee (Seung et al. 1992; McCallum & Nigam 1998 for text): the
  texts the ensemble's members disagree on most, disagreement being the weighted mean KL
  divergence of each member's probabilities from the ensemble's (ties by margin). The members
  adapt to the target in different ways (fine-tuned from the source, pooled, shared-private, NB
  on pooled labels), so they disagree where the domains differ;
* ``typical-cluster``: no uncertainty at all: the texts are clustered into ``n`` groups by k-means
  on the model's features and the most typical text of each group (densest: smallest mean
  distance to its nearest neighbours) is picked, after TypiClust (Hacohen et al. 2022, "Active
  learning on a budget"), which found representative picks beat uncertain ones when labels are
  few.

Reading an unlabelled file and writing the suggestions is :mod:`transferflow.serving.unlabeled`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from transferflow.config.serving import SUGGEST_STRATEGIES as STRATEGIES

# Chosen by benchmarks/suggest.py (docs/benchmarks.md): on 12 MDSD pairs x seeds 0-2, 100 margin
# picks beat 100 random labels from 50 starting labels (+0.56 points, 24 of 36 pair-seeds won) and
# from 100 (+0.20, 21 of 36); committee and balanced-margin did no better.
DEFAULT_STRATEGY = "margin"
POOL_FACTOR = 10


@dataclass(frozen=True)
class Suggestion:
    """The chosen rows (indices into the candidates, in the order picked) and why each one."""

    rows: np.ndarray
    margin: np.ndarray  # top-1 minus top-2 probability of each chosen row
    reason: list[str]


def margins(proba: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 class probability per row (0: the model cannot tell; 1: certain)."""
    if proba.shape[1] < 2:
        return np.ones(len(proba))
    top = np.sort(proba, axis=1)
    return top[:, -1] - top[:, -2]


def suggest(
    proba: np.ndarray,
    features,
    n: int,
    strategy: str = DEFAULT_STRATEGY,
    seed: int = 0,
    members: tuple[np.ndarray, np.ndarray] | None = None,
) -> Suggestion:
    """Pick ``n`` rows to label next.

    Args:
        proba: class probabilities of the candidate texts, (rows, classes).
        features: the model's view of each row, (rows, d), dense or SciPy sparse, rows of unit
            length (``margin-cluster`` and ``badge`` use it; the others ignore it).
        n: how many rows (fewer when there are fewer candidates).
        strategy: one of :data:`STRATEGIES`.
        seed: random seed (``random``, k-means and k-means++ are seeded: same inputs, same pick).
        members: for ``committee``: each member's probabilities (rows, members, classes) and
            the members' weights in the mean (``TextModel.member_proba``).

    Returns:
        The rows and a reason for each.

    Raises:
        ValueError: unknown strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    total = len(proba)
    n = min(int(n), total)
    m = margins(proba)
    rng = np.random.default_rng(seed)
    if n <= 0:
        return Suggestion(np.zeros(0, np.int64), np.zeros(0), [])
    if strategy == "random":
        rows = np.sort(rng.choice(total, size=n, replace=False))
        return Suggestion(rows, m[rows], ["random sample"] * n)
    order = np.argsort(m, kind="stable")
    rank = np.empty(total, np.int64)
    rank[order] = np.arange(1, total + 1)
    if strategy == "margin":
        rows = order[:n]
        return Suggestion(
            rows, m[rows], [f"margin {m[r]:.3f} (rank {rank[r]} of {total})" for r in rows]
        )
    if strategy == "balanced-margin":
        return _balanced_margin(proba, m, order, rank, n)
    if strategy == "softrank-margin":
        # Gumbel top-k: the n largest log(1/rank) + Gumbel noise are a sample without
        # replacement with probabilities proportional to 1/rank.
        keys = -np.log(rank) + rng.gumbel(size=total)
        rows = np.argsort(-keys, kind="stable")[:n]
        return Suggestion(
            rows,
            m[rows],
            [
                f"margin {m[r]:.3f} (rank {rank[r]} of {total}; drawn with weight 1/rank)"
                for r in rows
            ],
        )
    if strategy == "margin-cluster":
        return _margin_cluster(m, rank, features, n, seed)
    if strategy == "typical-cluster":
        return _typical_cluster(m, features, n, seed)
    if strategy == "committee":
        return _committee(m, members, n)
    return _badge(proba, m, rank, features, n, rng)


def _balanced_margin(proba, m, order, rank, n) -> Suggestion:
    # Each predicted class's texts in margin order; the k-th of every class comes before the
    # (k+1)-th of any, so a class that runs out leaves its share to the others.
    pred = proba.argmax(axis=1)[order]
    turn = np.empty(len(order), np.int64)
    for c in np.unique(pred):
        at = pred == c
        turn[at] = np.arange(int(at.sum()))
    rows = order[np.argsort(turn, kind="stable")[:n]]
    total = len(m)
    return Suggestion(
        rows,
        m[rows],
        [
            f"margin {m[r]:.3f} (rank {rank[r]} of {total}; least sure of its predicted class, "
            "classes in turn)"
            for r in rows
        ],
    )


def disagreement(member_proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean KL divergence of each member's class probabilities from the weighted
    mean's, per row (0: the members agree)."""
    w = np.asarray(weights, np.float64) / np.sum(weights)
    p = np.clip(np.asarray(member_proba, np.float64), 1e-12, 1.0)
    mean = np.einsum("rmc,m->rc", p, w)
    kl = np.sum(p * (np.log(p) - np.log(mean)[:, None, :]), axis=2)
    return np.maximum(kl @ w, 0.0)


def _committee(m, members, n) -> Suggestion:
    if members is None:
        raise ValueError("the committee strategy needs the members' probabilities")
    d = disagreement(*members)
    # Most disagreement first, then the smallest margin; rounded so that rounding noise in an
    # agreeing committee does not outrank the margin.
    order = np.lexsort((m, -np.round(d, 9)))
    total = len(m)
    rows = order[:n]
    return Suggestion(
        rows,
        m[rows],
        [
            f"members disagree {d[r]:.3f} (rank {i} of {total}); margin {m[r]:.3f}"
            for i, r in enumerate(rows, 1)
        ],
    )


def _kmeans(x, n: int, seed: int):
    """k-means with ``n`` clusters (seeded); repeated texts may leave fewer distinct clusters,
    which the callers handle, so scikit-learn's warning about it is not shown."""
    import warnings

    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return KMeans(n_clusters=n, n_init=1, random_state=seed).fit(x)


def _margin_cluster(m, rank, features, n, seed) -> Suggestion:
    total = len(m)
    pool = np.argsort(m, kind="stable")[: min(total, POOL_FACTOR * n)]
    if len(pool) <= n:
        rows = pool
        labels = np.arange(len(pool))
    else:
        km = _kmeans(features[pool], n, seed)
        labels = km.labels_
        # In each cluster, its smallest-margin member (pool is sorted by margin, so the first).
        _, first = np.unique(labels, return_index=True)
        rows = pool[np.sort(first)]
        labels = labels[np.sort(first)]
    return Suggestion(
        rows,
        m[rows],
        [
            f"margin {m[r]:.3f} (rank {rank[r]} of {total}); least sure of its group "
            f"{int(c) + 1} of {n} similar uncertain texts"
            for r, c in zip(rows, labels, strict=True)
        ],
    )


def _dense(features, seed: int, dims: int = 64) -> np.ndarray:
    """Rows of ``features`` in a few dense dimensions (truncated SVD if sparse), unit length."""
    import scipy.sparse as sp

    if sp.issparse(features):
        from sklearn.decomposition import TruncatedSVD

        k = max(1, min(dims, features.shape[1] - 1, features.shape[0] - 1))
        x = TruncatedSVD(k, random_state=seed).fit_transform(features)
    else:
        x = np.asarray(features, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _typical_cluster(m, features, n, seed, neighbours: int = 20) -> Suggestion:
    x = _dense(features, seed)
    labels = _kmeans(x, n, seed).labels_
    rows, sizes = [], []
    for c in range(n):
        members = np.flatnonzero(labels == c)
        if len(members) == 0:
            continue
        d = np.sqrt(np.maximum(2.0 - 2.0 * x[members] @ x[members].T, 0.0))
        k = min(neighbours, len(members) - 1)
        if k == 0:
            typicality = np.ones(1)
        else:
            nearest = np.sort(d, axis=1)[:, 1 : k + 1]  # column 0 is the text itself
            typicality = 1.0 / (nearest.mean(axis=1) + 1e-9)
        rows.append(int(members[np.argmax(typicality)]))
        sizes.append(len(members))
    order = np.argsort(-np.asarray(sizes), kind="stable")  # largest groups first
    out = np.asarray(rows, np.int64)[order]
    group_sizes = np.asarray(sizes)[order]
    reasons = [
        f"most typical of a group of {size} similar texts (group {i + 1} of {len(out)} by "
        f"size); margin {m[r]:.3f}"
        for i, (r, size) in enumerate(zip(out, group_sizes, strict=True))
    ]
    if len(out) < n:  # k-means found fewer distinct groups (repeated texts)
        rest = np.setdiff1d(np.arange(len(m)), out)
        fill = np.random.default_rng(seed).choice(rest, size=n - len(out), replace=False)
        out = np.concatenate([out, fill])
        reasons += ["random fill (fewer distinct groups than texts asked for)"] * len(fill)
    return Suggestion(out, m[out], reasons)


def _badge(proba, m, rank, features, n, rng) -> Suggestion:
    import scipy.sparse as sp

    total = len(m)
    # g_i = (p_i - e_i) ⊗ x_i; <g_i, g_j> = <p_i - e_i, p_j - e_j> * <x_i, x_j>.
    resid = proba.copy()
    resid[np.arange(total), proba.argmax(axis=1)] -= 1.0
    x: Any = sp.csr_matrix(features) if sp.issparse(features) else np.asarray(features)
    x_sq = np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else (x * x).sum(1)
    g_sq = (resid * resid).sum(axis=1) * x_sq

    def sq_dist_to(c: int) -> np.ndarray:
        xc = x[c]
        dots = np.asarray((x @ xc.T).todense()).ravel() if sp.issparse(x) else x @ xc
        return np.maximum(g_sq + g_sq[c] - 2.0 * (resid @ resid[c]) * dots, 0.0)

    first = int(np.argmax(g_sq))  # the largest gradient, as BADGE starts
    rows = [first]
    dist = sq_dist_to(first)
    reasons = [f"largest expected update (margin {m[first]:.3f}, rank {rank[first]} of {total})"]
    while len(rows) < n:
        dist[rows] = 0.0
        if dist.sum() <= 0:  # every remaining text duplicates a chosen one
            rest = np.setdiff1d(np.arange(total), rows)
            rows.extend(rng.choice(rest, size=n - len(rows), replace=False).tolist())
            reasons.extend(["random fill (no distinct texts left)"] * (n - len(reasons)))
            break
        nxt = int(rng.choice(total, p=dist / dist.sum()))
        rows.append(nxt)
        reasons.append(
            f"margin {m[nxt]:.3f} (rank {rank[nxt]} of {total}); far from those already chosen"
        )
        dist = np.minimum(dist, sq_dist_to(nxt))
    out = np.asarray(rows, np.int64)
    return Suggestion(out, m[out], reasons)


__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Suggestion",
    "disagreement",
    "margins",
    "suggest",
]
