import numpy as np
import pytest
import scipy.sparse as sp

from transferflow.linear import (
    LinearWeights,
    WideFeatures,
    choose_c,
    fit_softmax,
    softmax_proba,
    train_linear,
)

POS = ["great phone", "love it", "works great", "really love this", "great battery", "love the screen"]
NEG = ["awful phone", "hate it", "broke fast", "really hate this", "awful battery", "hate the screen"]
TEXTS, LABELS = POS + NEG, ["pos"] * 6 + ["neg"] * 6


def test_fit_softmax_matches_scikit_learn_without_prior():
    """Same objective as LogisticRegression (multinomial, L2, intercept unpenalised)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 5))
    y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=90), [-0.5, 0.5])  # three classes
    ours = softmax_proba(X, fit_softmax(X, y, 3, C=0.7))
    ref = LogisticRegression(C=0.7, tol=1e-10, max_iter=5000).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_prior_pulls_weights_towards_it_and_data_pulls_away():
    X = sp.csr_matrix(np.eye(4))
    y = np.array([0, 1, 0, 1])
    prior = LinearWeights(np.tile([[2.0, -2.0]], (4, 1)), np.zeros(2))  # prior says: always class 0
    tight = fit_softmax(X, y, 2, C=1e-4, prior=prior)
    loose = fit_softmax(X, y, 2, C=100.0, prior=prior)
    np.testing.assert_allclose(tight.W, prior.W, atol=1e-2)
    assert (softmax_proba(X, loose).argmax(1) == y).all()
    assert not (softmax_proba(X, tight).argmax(1) == y).all()


def test_fit_softmax_rejects_bad_inputs():
    X = np.ones((3, 2))
    with pytest.raises(ValueError, match="rows"):
        fit_softmax(X, np.array([0, 1]), 2, 1.0)
    with pytest.raises(ValueError, match="labels must lie"):
        fit_softmax(X, np.array([0, 1, 2]), 2, 1.0)
    with pytest.raises(ValueError, match="positive"):
        fit_softmax(X, np.array([0, 1, 0]), 2, 0.0)
    with pytest.raises(ValueError, match="prior weights"):
        fit_softmax(X, np.array([0, 1, 0]), 2, 1.0, prior=LinearWeights(np.zeros((5, 2)), np.zeros(2)))


def test_choose_c_uses_folds_and_falls_back_without_them():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    best, losses = choose_c(X, y, 2, None, seed=0, grid=(0.01, 1.0, 100.0))
    assert set(losses) == {0.01, 1.0, 100.0} and best in losses
    assert losses[best] == min(losses.values())
    # one row in a class: nothing to cross-validate, the middle of the grid
    assert choose_c(X[:3], np.array([0, 0, 1]), 2, None, 0, grid=(1.0, 3.0, 10.0)) == (3.0, {})


def test_wide_features_blocks_are_unit_length():
    tokens = ["great", "awful", "love", "hate"]
    vectors = np.array([[1, 0], [-1, 0], [0.8, 0.2], [-0.8, -0.2]], dtype=np.float32)
    feats = WideFeatures(tokens, vectors).fit(TEXTS)
    X = feats.transform(["great phone", "zzz unknown"]).toarray()
    n_wide = feats.n_features - 2
    assert X.shape == (2, feats.n_features)
    np.testing.assert_allclose(np.linalg.norm(X[0, :n_wide]), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X[0, n_wide:]), 1.0, atol=1e-6)
    assert not X[1, n_wide:].any()  # no known word: zero vector part, not NaN


def test_train_linear_with_and_without_prior():
    feats = WideFeatures(None, None).fit(TEXTS)
    source = train_linear(feats, TEXTS, LABELS, ["neg", "pos"], seed=0, grid=(1.0, 10.0))
    proba = source.predict_proba(["love it", "hate it"])
    assert list(source.classes_[proba.argmax(1)]) == ["pos", "neg"]
    adapted = train_linear(feats, TEXTS[:4] + TEXTS[6:10], LABELS[:4] + LABELS[6:10], ["neg", "pos"],
                           seed=0, prior=source, grid=(1.0,))
    assert adapted.C == 1.0 and adapted.predict_proba(["great"]).shape == (1, 2)


def test_train_linear_rejects_unknown_labels_and_foreign_priors():
    feats = WideFeatures(None, None).fit(TEXTS)
    with pytest.raises(ValueError, match="not among the classes"):
        train_linear(feats, TEXTS, ["pos"] * 11 + ["meh"], ["neg", "pos"], seed=0)
    source = train_linear(feats, TEXTS, LABELS, ["neg", "pos"], seed=0, grid=(1.0,))
    other = WideFeatures(None, None).fit(TEXTS)
    with pytest.raises(ValueError, match="share"):
        train_linear(other, TEXTS, LABELS, ["neg", "pos"], seed=0, prior=source)


def test_adapt_linear_averages_three_adapted_models():
    from transferflow.linear import AugmentedTextModel, adapt_linear

    feats = WideFeatures(None, None).fit(TEXTS)
    source = train_linear(feats, TEXTS, LABELS, ["neg", "pos"], seed=0, grid=(1.0,))
    target_texts = ["love this kettle", "great kettle", "hate this kettle", "awful kettle"]
    target_labels = ["pos", "pos", "neg", "neg"]
    model = adapt_linear(source, TEXTS, LABELS, target_texts, target_labels, seed=0, grid=(1.0,))
    assert set(model.members) == {"prior", "pooled", "augmented"}
    assert isinstance(model.members["augmented"], AugmentedTextModel)
    texts = ["love the kettle", "awful kettle"]
    mean = np.mean([m.predict_proba(texts) for m in model.members.values()], axis=0)
    np.testing.assert_allclose(model.predict_proba(texts), mean, atol=1e-9)
    assert list(model.classes_[model.predict_proba(texts).argmax(1)]) == ["pos", "neg"]
    # augmented weights: shared + source-only + target-only copies
    assert model.members["augmented"].weights.W.shape[0] == 3 * feats.n_features
    with pytest.raises(ValueError, match="not among the source model's classes"):
        adapt_linear(source, TEXTS, LABELS, ["meh"], ["neutral"], seed=0)


def test_feature_views_share_the_ngram_vocabulary():
    from transferflow.linear import feature_views

    tokens = ["great", "awful", "love", "hate"]
    vectors = np.array([[1, 0], [-1, 0], [0.8, 0.2], [-0.8, -0.2]], dtype=np.float32)
    views = feature_views(tokens, vectors, TEXTS)
    assert set(views) == {"wide", "ngrams"}
    assert views["wide"].n_features == views["ngrams"].n_features + 2  # + the 2-d word vector
    wide = views["wide"].transform(["great phone"]).toarray()
    ngrams = views["ngrams"].transform(["great phone"]).toarray()
    np.testing.assert_allclose(wide[:, : ngrams.shape[1]], ngrams)


def test_train_and_adapt_views_average_every_member():
    from transferflow.linear import adapt_views, feature_views, train_views

    tokens = ["great", "awful", "love", "hate"]
    vectors = np.array([[1, 0], [-1, 0], [0.8, 0.2], [-0.8, -0.2]], dtype=np.float32)
    views = feature_views(tokens, vectors, TEXTS)
    source = train_views(views, TEXTS, LABELS, ["neg", "pos"], seed=0)
    assert set(source.members) == {"wide", "ngrams"}
    target_texts = ["love this kettle", "great kettle", "hate this kettle", "awful kettle"]
    target_labels = ["pos", "pos", "neg", "neg"]
    model = adapt_views(source, TEXTS, LABELS, target_texts, target_labels, seed=0)
    assert set(model.members) == {f"{v}/{m}" for v in ("wide", "ngrams")
                                  for m in ("prior", "pooled", "augmented")}
    texts = ["love the kettle", "awful kettle"]
    mean = np.mean([m.predict_proba(texts) for m in model.members.values()], axis=0)
    np.testing.assert_allclose(model.predict_proba(texts), mean, atol=1e-9)
    assert list(model.classes_[model.predict_proba(texts).argmax(1)]) == ["pos", "neg"]
    with pytest.raises(ValueError, match="not among the source model's classes"):
        adapt_views(source, TEXTS, LABELS, ["meh"], ["neutral"], seed=0)
    with pytest.raises(ValueError, match="not among the classes"):
        train_views(views, TEXTS, ["pos"] * 11 + ["meh"], ["neg", "pos"], seed=0)
