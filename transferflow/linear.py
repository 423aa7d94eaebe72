"""Wide linear text classifiers and prior-regularised adaptation (Chelba & Acero, 2006).

The ``wide-linear`` architecture: one linear layer (softmax regression) over two feature blocks,

* TF-IDF of word 1-2-grams (the "wide" part: sparse, exact phrases such as "not good"), and
* the mean of the text's word vectors (the "deep" part: dense, shares strength between words that
  the few target labels never show),

each row of each block scaled to unit length. The source model is fitted on the source labels; the
target model is then fitted on the target labels with an L2 penalty that pulls the weights towards
the source model's weights instead of towards zero (Chelba & Acero 2006, "Adaptation of maximum
entropy capitalizer"; L2-SP for networks). With few target labels it stays near the source model;
with many it moves towards what the target data says. How far it may move (``C``) is chosen by
cross-validation on the target training labels only.

Objective, with ``W0`` the prior weights (zero when training from scratch)::

    C * sum_i cross_entropy(softmax(x_i W + b), y_i) + 1/2 * ||W - W0||^2

This is scikit-learn's multinomial ``LogisticRegression`` objective when ``W0 = 0`` (with two
classes, its binary model with ``2 C``, as two weight vectors share the penalty); it is solved with
SciPy's L-BFGS because scikit-learn has no prior mean. Deterministic for fixed inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from transferflow.text import tokenize

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


@dataclass
class LinearWeights:
    """Weights of a softmax regression: ``W`` (features x classes) and ``b`` (classes)."""

    W: np.ndarray
    b: np.ndarray


def fit_softmax(X, y: np.ndarray, n_classes: int, C: float, prior: LinearWeights | None = None,
                max_iter: int = 500) -> LinearWeights:
    """Fit softmax regression with an L2 penalty towards ``prior`` (towards zero without one).

    Args:
        X: feature matrix (SciPy sparse or NumPy), rows are examples.
        y: class indices in ``[0, n_classes)``.
        n_classes: number of classes.
        C: inverse penalty strength (larger follows the data more).
        prior: weights to regularise towards; also the starting point.
        max_iter: L-BFGS iterations.

    Returns:
        The fitted weights.

    Raises:
        ValueError: shapes or labels that do not fit.
    """
    from scipy.optimize import minimize
    from scipy.special import log_softmax

    y = np.asarray(y)
    n, d = X.shape
    if len(y) != n or n == 0:
        raise ValueError(f"X has {n} rows but y has {len(y)} labels")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    W0 = np.zeros((d, n_classes)) if prior is None else np.asarray(prior.W, dtype=np.float64)
    b0 = np.zeros(n_classes) if prior is None else np.asarray(prior.b, dtype=np.float64)
    if W0.shape != (d, n_classes):
        raise ValueError(f"prior weights have shape {W0.shape}, expected {(d, n_classes)}")
    onehot = np.eye(n_classes)[y]

    def objective(theta: np.ndarray):
        W = theta[: d * n_classes].reshape(d, n_classes)
        b = theta[d * n_classes:]
        logp = log_softmax(X @ W + b, axis=1)
        diff = W - W0
        loss = -C * float((onehot * logp).sum()) + 0.5 * float((diff * diff).sum())
        resid = C * (np.exp(logp) - onehot)
        grad_w = np.asarray(X.T @ resid) + diff
        return loss, np.concatenate([grad_w.ravel(), resid.sum(axis=0)])

    result = minimize(objective, np.concatenate([W0.ravel(), b0]), jac=True, method="L-BFGS-B",
                      options={"maxiter": max_iter})
    theta = result.x
    return LinearWeights(theta[: d * n_classes].reshape(d, n_classes), theta[d * n_classes:])


def softmax_proba(X, weights: LinearWeights) -> np.ndarray:
    """Class probabilities of a fitted softmax regression."""
    from scipy.special import softmax

    return softmax(np.asarray(X @ weights.W) + weights.b, axis=1)


def choose_c(X, y: np.ndarray, n_classes: int, prior: LinearWeights | None, seed: int,
             grid: tuple[float, ...] = C_GRID) -> tuple[float, dict[float, float]]:
    """Pick ``C`` by stratified k-fold cross-validation (log-loss) on the training rows only.

    Uses up to 5 folds (fewer when a class has fewer rows); with fewer than 2 rows in some class
    there is nothing to cross-validate and the middle of the grid is returned.

    Returns:
        (best C, mean held-out log-loss per C).
    """
    from sklearn.model_selection import StratifiedKFold

    _, counts = np.unique(y, return_counts=True)
    folds = int(min(5, counts.min()))
    if folds < 2 or len(counts) < 2:
        return grid[len(grid) // 2], {}
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    scores: dict[float, float] = {}
    for c in grid:
        losses = []
        for tr, te in splits:
            w = fit_softmax(X[tr], y[tr], n_classes, c, prior)
            p = softmax_proba(X[te], w)
            losses.append(-np.log(np.clip(p[np.arange(len(te)), y[te]], 1e-12, None)).mean())
        scores[c] = float(np.mean(losses))
    best = min(scores, key=lambda c: (scores[c], c))
    return best, scores


class WideFeatures:
    """TF-IDF word 1-2-grams beside mean word vectors, each block's rows scaled to unit length.

    Fitted (IDF and vocabulary) on unlabeled texts: the source and target training texts.
    """

    def __init__(self, tokens: list[str] | None, vectors: np.ndarray | None, min_df: int = 2) -> None:
        self.tokens = list(tokens) if tokens is not None else None
        self.vectors = None if vectors is None else np.asarray(vectors, dtype=np.float32)
        self.min_df = min_df
        self.tfidf = None

    def fit(self, texts: list[str]) -> WideFeatures:
        """Learn the n-gram vocabulary and IDF weights from ``texts``."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.tfidf = TfidfVectorizer(tokenizer=tokenize, lowercase=False, token_pattern=None,
                                     ngram_range=(1, 2), sublinear_tf=True,
                                     min_df=self.min_df if len(texts) >= 50 else 1,
                                     dtype=np.float32)
        self.tfidf.fit(texts)
        return self

    def _token_index(self) -> dict[str, int]:
        # Built once per object, not on every transform (scoring transforms chunk after chunk).
        if getattr(self, "_index", None) is None:
            self._index = {t: i for i, t in enumerate(self.tokens)}
        return self._index

    @property
    def n_features(self) -> int:
        """Width of the feature matrix."""
        dense = 0 if self.vectors is None else self.vectors.shape[1]
        return len(self.tfidf.vocabulary_) + dense

    def transform(self, texts: list[str]):
        """Sparse feature matrix (CSR) for ``texts``."""
        import scipy.sparse as sp

        wide = self.tfidf.transform(texts)
        if self.vectors is None:
            return wide.tocsr()
        index = self._token_index()
        dense = np.zeros((len(texts), self.vectors.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = [index[t] for t in tokenize(text) if t in index]
            if ids:
                dense[row] = self.vectors[ids].mean(axis=0)
        norms = np.linalg.norm(dense, axis=1, keepdims=True)
        dense /= np.where(norms > 0, norms, 1.0)
        return sp.hstack([wide, sp.csr_matrix(dense)], format="csr")


class LinearTextModel:
    """Features + softmax weights: ``predict_proba(texts)`` and ``classes_`` like scikit-learn."""

    def __init__(self, features: WideFeatures, weights: LinearWeights, classes: list[str],
                 C: float, cv_loss: dict[float, float] | None = None) -> None:
        self.features = features
        self.weights = weights
        self.classes_ = np.asarray(classes, dtype=object)
        self.C = C
        self.cv_loss = cv_loss or {}

    def design(self, X):
        """The matrix this model's weights apply to, from ``features.transform`` output."""
        return X

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order."""
        return softmax_proba(self.design(self.features.transform(list(texts))), self.weights)


def train_linear(features: WideFeatures, texts: list[str], labels: list[str], classes: list[str],
                 seed: int, prior: LinearTextModel | None = None,
                 grid: tuple[float, ...] = C_GRID) -> LinearTextModel:
    """Fit a wide-linear model, ``C`` chosen by cross-validation on these rows.

    Args:
        features: fitted feature extractor (shared with ``prior``).
        texts: training texts.
        labels: their labels (each in ``classes``).
        classes: the class order.
        seed: seed of the cross-validation folds.
        prior: a model whose weights this one is regularised towards (same features and classes).
        grid: candidate values of ``C``.

    Returns:
        The fitted model.

    Raises:
        ValueError: a label not in ``classes``, or a prior with other features or classes.
    """
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    if prior is not None and (prior.features is not features or list(prior.classes_) != list(classes)):
        raise ValueError("the prior model must share this model's features and classes")
    X = features.transform(texts)
    y = np.array([classes.index(v) for v in labels])
    prior_w = prior.weights if prior is not None else None
    c, losses = choose_c(X, y, len(classes), prior_w, seed, grid)
    return LinearTextModel(features, fit_softmax(X, y, len(classes), c, prior_w), classes, c, losses)


class EnsembleTextModel:
    """Average of several linear models' probabilities (same classes); scikit-learn-like."""

    def __init__(self, members: dict[str, LinearTextModel]) -> None:
        if not members:
            raise ValueError("an ensemble needs at least one member")
        classes = [list(m.classes_) for m in members.values()]
        if any(c != classes[0] for c in classes):
            raise ValueError("ensemble members must share their classes")
        self.members = members
        self.classes_ = np.asarray(classes[0], dtype=object)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Mean class probabilities of the members, columns in ``classes_`` order."""
        texts = list(texts)
        # Members that share one feature extractor transform the texts once.
        cache: dict[int, object] = {}
        total = None
        for m in self.members.values():
            key = id(m.features)
            if key not in cache:
                cache[key] = m.features.transform(texts)
            p = softmax_proba(m.design(cache[key]), m.weights)
            total = p if total is None else total + p
        return total / len(self.members)


class AugmentedTextModel(LinearTextModel):
    """Feature augmentation (Daumé 2007): weights over [shared, source-only, target-only] copies
    of the features; a target text uses the shared and target-only copies."""

    def design(self, X):
        """[X, 0, X]: the shared and target-only copies of target-domain rows."""
        return _augmented(X, source=False)


def _augmented(X, source: bool):
    """Feature augmentation of rows from one domain: [X, X, 0] (source) or [X, 0, X] (target)."""
    import scipy.sparse as sp

    zeros = sp.csr_matrix(X.shape, dtype=X.dtype)
    return sp.hstack([X, X, zeros] if source else [X, zeros, X], format="csr")


def adapt_linear(source_model: LinearTextModel, source_texts: list[str], source_labels: list[str],
                 texts: list[str], labels: list[str], seed: int,
                 grid: tuple[float, ...] = C_GRID) -> EnsembleTextModel:
    """Adapt a source model to target labels with three classic methods, averaged.

    * ``prior``: refit on the target labels with the L2 penalty centred on the source weights
      (Chelba & Acero 2006), ``C`` by cross-validation on the target labels;
    * ``pooled``: fit on source + target labels together;
    * ``augmented``: feature augmentation (Daumé 2007): shared, source-only and target-only copies
      of every feature, fitted on source + target labels.

    The last two reuse the source model's ``C`` (chosen by cross-validation on the source labels).
    Averaging them was chosen on validation splits of MDSD *training* data (4 pairs, 50-1000
    labels): each method wins somewhere, the average was best or within 0.1 point of the best
    at every budget; see docs/benchmarks.md.

    Args:
        source_model: the fitted source model (its features are shared).
        source_texts: the source training texts.
        source_labels: their labels.
        texts: target training texts.
        labels: their labels.
        seed: seed of the cross-validation folds.
        grid: candidate values of ``C`` for the prior model.

    Returns:
        The ensemble; its members are kept in ``members``.

    Raises:
        ValueError: a label outside the source model's classes.
    """
    import scipy.sparse as sp

    classes = list(source_model.classes_)
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the source model's classes {classes}")
    feats = source_model.features
    prior = train_linear(feats, texts, labels, classes, seed, prior=source_model, grid=grid)
    Xs, Xt = feats.transform(list(source_texts)), feats.transform(list(texts))
    y = np.array([classes.index(v) for v in [*source_labels, *labels]])
    c = source_model.C
    pooled = LinearTextModel(feats, fit_softmax(sp.vstack([Xs, Xt], format="csr"), y, len(classes), c),
                             classes, c)
    Xa = sp.vstack([_augmented(Xs, source=True), _augmented(Xt, source=False)], format="csr")
    augmented = AugmentedTextModel(feats, fit_softmax(Xa, y, len(classes), c), classes, c)
    return EnsembleTextModel({"prior": prior, "pooled": pooled, "augmented": augmented})


def feature_views(tokens: list[str], vectors: np.ndarray, texts: list[str]) -> dict[str, WideFeatures]:
    """The two feature views, fitted (vocabulary, IDF) on unlabeled ``texts``.

    ``wide`` is TF-IDF 1-2-grams beside the mean word vector; ``ngrams`` is the same TF-IDF block
    alone (it shares the fitted vectorizer). On validation splits of MDSD training data the word
    vectors helped most with few labels and cost accuracy with many; averaging models over both
    views was best or near best at every budget (docs/benchmarks.md).

    Args:
        tokens: the word vectors' vocabulary.
        vectors: their matrix (one row per token).
        texts: unlabeled texts to fit the n-gram vocabulary and IDF on.

    Returns:
        ``{"wide": ..., "ngrams": ...}``.
    """
    wide = WideFeatures(tokens, vectors).fit(texts)
    ngrams = WideFeatures(None, None)
    ngrams.tfidf = wide.tfidf  # the same fitted vocabulary and IDF
    return {"wide": wide, "ngrams": ngrams}


def train_views(views: dict[str, WideFeatures], texts: list[str], labels: list[str],
                classes: list[str], seed: int) -> EnsembleTextModel:
    """One wide-linear model per feature view (``C`` by cross-validation each), averaged.

    Args:
        views: fitted feature views (see :func:`feature_views`).
        texts: training texts.
        labels: their labels.
        classes: the class order.
        seed: seed of the cross-validation folds.

    Returns:
        An ensemble whose members are named after the views.
    """
    return EnsembleTextModel({name: train_linear(f, texts, labels, classes, seed)
                              for name, f in views.items()})


def adapt_views(source_model: EnsembleTextModel, source_texts: list[str], source_labels: list[str],
                texts: list[str], labels: list[str], seed: int) -> EnsembleTextModel:
    """:func:`adapt_linear` on each view's source model; all members (3 per view) averaged.

    Args:
        source_model: the source ensemble from :func:`train_views`.
        source_texts: the source training texts.
        source_labels: their labels.
        texts: target training texts.
        labels: their labels.
        seed: seed of the cross-validation folds.

    Returns:
        An ensemble with members ``<view>/<method>``.
    """
    members: dict[str, LinearTextModel] = {}
    for view, model in source_model.members.items():
        adapted = adapt_linear(model, source_texts, source_labels, texts, labels, seed)
        members.update({f"{view}/{name}": m for name, m in adapted.members.items()})
    return EnsembleTextModel(members)
