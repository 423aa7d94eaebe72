"""Classic scikit-learn baselines for benchmarks and sweeps: TF-IDF + logistic regression and
NB-weighted logistic regression (Wang & Manning 2012). They are fitted and scored in memory and
never saved: a run's own baselines are ``wide-deep`` networks (see
``transferflow.models.candidates``).
"""

from __future__ import annotations

import warnings

import numpy as np

from transferflow.text.tokens import tokenize


def train_tfidf_lr(texts: list[str], labels: list[str], seed: int):  # -> sklearn Pipeline
    """TF-IDF over word 1-2-grams + logistic regression, with C chosen by cross-validation.

    Regularisation is picked on the training labels only (stratified folds), never on test data.

    Args:
        texts: training texts.
        labels: their labels.
        seed: seed for the folds and the solver.

    Returns:
        A fitted scikit-learn pipeline with ``predict_proba`` and ``classes_``.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline

    vectorizer = TfidfVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, 2),
        sublinear_tf=True,
        min_df=1,
    )
    _, counts = np.unique(labels, return_counts=True)
    folds = int(min(5, counts.min()))
    if folds >= 2:
        clf = LogisticRegressionCV(
            Cs=[0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0],
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
            max_iter=2000,
            random_state=seed,
        )
    else:  # too few rows per class to cross-validate: a sensible fixed C
        clf = LogisticRegression(C=10.0, max_iter=2000, random_state=seed)
    pipe = make_pipeline(vectorizer, clf)
    with warnings.catch_warnings():
        # scikit-learn 1.8+ announces changes of LogisticRegressionCV defaults; the values used
        # here are explicit where they matter (Cs, folds), and the warnings only clutter run logs.
        warnings.simplefilter("ignore", FutureWarning)
        pipe.fit(texts, labels)
    return pipe


def tfidf_proba(pipe, texts: list[str], labels: list[str]) -> np.ndarray:
    """Probabilities in the column order of ``labels`` (0 for classes the model never saw)."""
    raw = pipe.predict_proba(texts)
    out = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for j, cls in enumerate(pipe.classes_):
        if cls in labels:
            out[:, labels.index(cls)] = raw[:, j]
    return out


def train_nb_lr(texts: list[str], labels: list[str], C: float = 1.0):  # -> (vectorizer, r, clf)
    """NB-weighted logistic regression (Wang & Manning 2012, "Baselines and bigrams"): binarised
    word 1-3-grams scaled by the class log-count ratio ``r``, then logistic regression (C = 1).

    Args:
        texts: training texts.
        labels: their labels (two classes).
        C: inverse L2 strength.

    Returns:
        ``(vectorizer, r, classifier)`` for :func:`nb_lr_proba`.

    Raises:
        ValueError: not exactly two classes.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    classes = sorted(set(labels))
    if len(classes) != 2:
        raise ValueError(f"NB-LR is defined for two classes, got {classes}")
    vec = CountVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 3), binary=True
    )
    X = vec.fit_transform(texts)
    y = np.array([classes.index(v) for v in labels])
    p = np.asarray(X[y == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(X[y == 0].sum(axis=0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    clf = LogisticRegression(C=C, max_iter=2000).fit(X.multiply(r).tocsr(), labels)
    return vec, r, clf


def nb_lr_proba(model, texts: list[str], labels: list[str]) -> np.ndarray:
    """Probabilities of :func:`train_nb_lr`'s model, in the column order of ``labels``."""
    vec, r, clf = model
    raw = clf.predict_proba(vec.transform(texts).multiply(r).tocsr())
    out = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for j, cls in enumerate(clf.classes_):
        if cls in labels:
            out[:, labels.index(cls)] = raw[:, j]
    return out
