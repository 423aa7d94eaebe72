"""How different are the source and target domains? Three figures, all from training data only."""

from __future__ import annotations

import numpy as np

from transferflow.text.tokens import count_tokens, tokenize

# What each figure of :func:`transferflow.data.datasets.domain_shift_figures` is called in words.
NAMES = {
    "vocab_overlap": "vocabulary overlap",
    "label_distance": "label distance",
    "proxy_a_distance": "proxy A-distance",
}


def vocab_overlap(source_texts: list[str], target_texts: list[str]) -> float:
    """Share of target token occurrences whose token also occurs in the source texts.

    Args:
        source_texts: source training texts.
        target_texts: target training texts.

    Returns:
        A share in [0, 1] (0 when the target has no tokens).
    """
    source_vocab = set(count_tokens(source_texts))
    target = count_tokens(target_texts)
    total = sum(target.values())
    return (
        round(sum(n for t, n in target.items() if t in source_vocab) / total, 4) if total else 0.0
    )


def label_distance(source_counts: dict[str, int], target_counts: dict[str, int]) -> float:
    """Total-variation distance between two label distributions (over the union of labels).

    Args:
        source_counts: label -> rows in the source.
        target_counts: label -> rows in the target.

    Returns:
        0 for identical shares, 1 for disjoint label sets.

    Raises:
        ValueError: when a side has no rows.
    """
    ns, nt = sum(source_counts.values()), sum(target_counts.values())
    if ns == 0 or nt == 0:
        raise ValueError("label_distance needs rows on both sides")
    labels = set(source_counts) | set(target_counts)
    return round(
        0.5 * sum(abs(source_counts.get(k, 0) / ns - target_counts.get(k, 0) / nt) for k in labels),
        4,
    )


def proxy_a_distance(
    source_texts: list[str], target_texts: list[str], seed: int, max_per_domain: int = 1000
) -> float:
    """Proxy A-distance (Ben-David et al. 2007): 2·(1 − 2·err) of a classifier telling the domains
    apart, with err its 5-fold cross-validated error on a balanced sample.

    Args:
        source_texts: source training texts.
        target_texts: target training texts.
        seed: seed for the sample and the folds.
        max_per_domain: texts sampled per domain (bounds the cost on big data).

    Returns:
        A value in [0, 2]: near 0 when the domains look alike, 2 when fully separable.

    Raises:
        ValueError: when a domain has fewer than 5 texts.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    n = min(len(source_texts), len(target_texts), max_per_domain)
    if n < 5:
        raise ValueError(f"proxy_a_distance needs at least 5 texts per domain, got {n}")
    rng = np.random.default_rng(seed)
    src = [source_texts[i] for i in rng.choice(len(source_texts), n, replace=False)]
    tgt = [target_texts[i] for i in rng.choice(len(target_texts), n, replace=False)]
    texts, y = src + tgt, np.array([0] * n + [1] * n)
    clf = make_pipeline(
        TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None, min_df=1),
        LogisticRegression(C=1.0, max_iter=1000),
    )
    acc = cross_val_score(clf, texts, y, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    err = 1.0 - float(np.mean(acc))
    return round(float(np.clip(2.0 * (1.0 - 2.0 * err), 0.0, 2.0)), 4)
