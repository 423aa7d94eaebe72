"""The wide-deep network, its solver and its adaptation strategies on small real data (demo
reviews): each strategy must do what it names, and the Keras network must predict what was
fitted."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from transferflow.config.settings import DEMO_DIR, EmbeddingConfig, ModelConfig, TransferConfig
from transferflow.models import wide_deep as wd
from transferflow.models.nb import fit_nb
from transferflow.models.solver import SOURCE, TARGET, fit, fit_copies, log_proba
from transferflow.text.embeddings import build_embeddings, embedding_matrix
from transferflow.text.features import NgramFeaturizer

CLASSES = ["0", "1"]


@pytest.fixture(scope="module")
def data():
    """Yelp as source (300 rows), amazon as target (60 labelled rows, 200 test rows)."""
    yelp = pd.read_csv(DEMO_DIR / "yelp.csv").sample(300, random_state=0)
    amazon = pd.read_csv(DEMO_DIR / "amazon.csv").sample(260, random_state=0)
    src = wd.Labelled(yelp["text"].tolist(), yelp["label"].astype(str).tolist())
    tgt = wd.Labelled(amazon["text"][:60].tolist(), amazon["label"][:60].astype(str).tolist())
    test = (amazon["text"][60:].tolist(), amazon["label"][60:].astype(str).tolist())
    kv, _ = build_embeddings(
        [*src.texts, *tgt.texts], EmbeddingConfig(vector_size=16, min_count=1, epochs=3), 0
    )
    tokens = list(kv.index_to_key)
    featurizer = NgramFeaturizer.fit([*src.texts, *tgt.texts])
    return {
        "src": src,
        "tgt": tgt,
        "test": test,
        "tokens": tokens,
        "matrix": embedding_matrix(kv, tokens),
        "featurizer": featurizer,
    }


@pytest.fixture(scope="module")
def source_model(data):
    model, _ = wd.train_from_scratch(
        _inputs(data), data["src"], CLASSES, cfg=ModelConfig(), seed=0, role="source"
    )
    return model


def _inputs(data) -> wd.Inputs:
    return wd.Inputs(data["featurizer"], data["tokens"], data["matrix"], max_len=64)


def _accuracy(model, texts, labels) -> float:
    proba = model.predict_proba(texts)
    return float(np.mean(np.asarray(model.labels)[proba.argmax(1)] == np.asarray(labels)))


def test_source_model_learns_and_has_one_member_per_view(data, source_model):
    assert source_model.members == ["wide/source", "ngrams/source"]
    assert _accuracy(source_model, *data["src"]) > 0.9  # training rows
    assert _accuracy(source_model, *data["test"]) > 0.6  # other domain, never seen
    assert set(source_model.info["C"]) == {"wide", "ngrams"}


def test_keras_network_predicts_what_the_solver_fitted(data, source_model):
    """The solver's equations and the saved Keras network are the same model."""
    texts = data["test"][0][:50]
    member = source_model.member_weights()[0]  # the 'wide' view: n-grams + vectors
    design = wd._design(source_model, texts, np.zeros(len(texts), int), np.zeros(len(texts), int))
    solver_proba = np.exp(
        log_proba([member.wide_kernel, member.wide_bias, member.deep_kernel], design)
    )
    ngrams = source_model.member_weights()[1]
    solver_proba2 = np.exp(
        log_proba([ngrams.wide_kernel, ngrams.wide_bias], design.without_vectors())
    )
    keras_proba = source_model.predict_proba(texts)
    np.testing.assert_allclose(keras_proba, (solver_proba + solver_proba2) / 2, atol=1e-5)


def _members(model):
    return model.member_weights()


def test_finetune_with_infinite_penalty_is_the_source_model(data, source_model):
    model, _ = wd.adapt(
        source_model,
        data["matrix"],
        data["src"],
        data["tgt"],
        transfer=TransferConfig(strategy="finetune"),
        seed=0,
        cfg=_cfg(c_grid=[1e-9]),
    )
    for got, src in zip(_members(model), _members(source_model), strict=True):
        np.testing.assert_allclose(got.wide_kernel, src.wide_kernel, atol=1e-5)


def test_finetune_moves_towards_the_target_with_a_weak_penalty(data, source_model):
    model, oof = wd.adapt(
        source_model,
        data["matrix"],
        data["src"],
        data["tgt"],
        transfer=TransferConfig(strategy="finetune"),
        cfg=ModelConfig(),
        seed=0,
    )
    moved = np.abs(_members(model)[0].wide_kernel - _members(source_model)[0].wide_kernel).max()
    assert moved > 1e-2
    assert oof is not None and oof.shape == (60, 2)


def test_joint_with_alpha_zero_is_target_only(data, source_model):
    """alpha = 0: the source rows weigh nothing, so the fit equals one on the target rows alone."""
    model = wd._new(_inputs(data), CLASSES, ["x"])
    y_s, y_t = wd._index(data["src"][1], CLASSES), wd._index(data["tgt"][1], CLASSES)
    both = wd._design(
        model,
        [*data["src"][0], *data["tgt"][0]],
        np.concatenate([y_s, y_t]),
        np.r_[np.full(len(y_s), SOURCE), np.full(len(y_t), TARGET)],
    )
    tgt = wd._design(model, data["tgt"][0], y_t, np.full(len(y_t), TARGET))
    w_joint = fit(both, 2, 3.0, row_weight=np.r_[np.zeros(len(y_s)), np.ones(len(y_t))])
    w_tgt = fit(tgt, 2, 3.0)
    for a, b in zip(w_joint, w_tgt, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-3)
    w_pooled = fit(both, 2, 3.0)
    assert np.abs(w_pooled[0] - w_tgt[0]).max() > 1e-2  # alpha = 1 uses the source rows


def test_shared_private_uses_domain_specific_weights(data):
    model = wd._new(_inputs(data), CLASSES, ["x"])
    y_s, y_t = wd._index(data["src"][1], CLASSES), wd._index(data["tgt"][1], CLASSES)
    both = wd._design(
        model,
        [*data["src"][0], *data["tgt"][0]],
        np.concatenate([y_s, y_t]),
        np.r_[np.full(len(y_s), SOURCE), np.full(len(y_t), TARGET)],
    )
    mix = ((1.0, 1.0, 0.0), (1.0, 0.0, 1.0))
    w, copies = fit_copies(both, 2, 3.0, copies=3, mix=mix)
    shared, source_only, target_only = copies[0][0], copies[0][1], copies[0][2]
    assert np.abs(target_only).max() > 1e-3 and np.abs(source_only).max() > 1e-3
    np.testing.assert_allclose(w[0], shared + target_only, atol=1e-6)  # target = shared + private
    assert np.abs(w[0] - fit(both, 2, 3.0)[0]).max() > 1e-3  # not the pooled fit


@pytest.fixture(scope="module")
def ensemble(data, source_model):
    return wd.adapt(
        source_model,
        data["matrix"],
        data["src"],
        data["tgt"],
        transfer=TransferConfig(),
        cfg=ModelConfig(),
        seed=0,
    )


def test_ensemble_averages_three_strategies_per_view_and_a_pooled_nb_member(data, ensemble):
    model, oof = ensemble
    assert model.members == [
        f"{v}/{s}" for v in ("wide", "ngrams") for s in ("finetune", "joint", "shared-private")
    ] + [wd.NB]
    assert model.network.get_layer("wide").binary_units == 2  # the NB member's two classes
    assert _accuracy(model, *data["test"]) > 0.6
    assert oof.shape == (60, 2) and np.allclose(oof.sum(axis=1), 1, atol=1e-4)


def _nb_fit(data, C=None):
    texts = [*data["src"][0], *data["tgt"][0]]
    y = np.array([CLASSES.index(v) for v in [*data["src"][1], *data["tgt"][1]]])
    dom = np.r_[np.full(len(data["src"][0]), SOURCE), np.full(len(data["tgt"][0]), TARGET)]
    if C is None:
        return fit_nb(data["featurizer"], texts, y, dom, 2, seed=0), texts, y
    from transferflow.models.nb import binarised, log_count_ratio
    from transferflow.models.solver import make_design

    csr = data["featurizer"].transform(texts)
    scale = log_count_ratio(csr, y, 2)
    return fit(make_design(binarised(csr, scale), None, y, dom), 2, C), csr, scale, y


def test_nb_member_in_the_network_predicts_what_the_solver_fitted(data, ensemble):
    """The NB member reads presence in Keras and presence x scale in the solver: same model."""
    model, _ = ensemble
    (member, c, _), _, _ = _nb_fit(data)
    np.testing.assert_allclose(  # what the ensemble stacked is this member, scale folded in
        model.member_weights()[-1].wide_kernel,
        member.wide_kernel * member.scale[:, None],
        rtol=1e-5,
        atol=1e-6,
    )
    texts = data["test"][0][:50]
    nb_only = wd._new(_inputs(data), CLASSES, [wd.NB])
    from transferflow.models.nb import binarised
    from transferflow.models.network import stack_members

    stack_members(nb_only.network, [member])
    design = wd._design(nb_only, texts, np.zeros(len(texts), int), np.zeros(len(texts), int))
    csr = data["featurizer"].transform(texts)
    from transferflow.models.solver import make_design

    nb_design = make_design(
        binarised(csr, member.scale), None, np.zeros(len(texts), int), np.zeros(len(texts), int)
    )
    solver = np.exp(log_proba([member.wide_kernel, member.wide_bias], nb_design))
    np.testing.assert_allclose(nb_only.predict_proba(texts), solver, atol=1e-5)
    # and it is not the TF-IDF model: reading the values instead of presence changes it
    tfidf = np.exp(log_proba([member.wide_kernel, member.wide_bias], design.without_vectors()))
    assert np.abs(tfidf - solver).max() > 1e-2


def test_nb_member_is_scikit_learns_nb_logistic_regression(data):
    """Same features as Wang & Manning's NB-LR (binarised n-grams x |log-count ratio|), same
    objective: scikit-learn's binary LogisticRegression with C' = 2C (two softmax columns share
    the penalty) predicts the same probabilities."""
    from sklearn.linear_model import LogisticRegression

    w, csr, scale, y = _nb_fit(data, C=1.0)
    p = np.asarray(csr.astype(bool).astype(np.float64)[y == 1].sum(0)).ravel() + 1
    q = np.asarray(csr.astype(bool).astype(np.float64)[y == 0].sum(0)).ravel() + 1
    r = np.log((p / p.sum()) / (q / q.sum()))
    np.testing.assert_allclose(scale, np.maximum(np.abs(r), 1e-3), rtol=1e-5)
    X = csr.copy()
    X.data = np.abs(r)[X.indices]
    ref = LogisticRegression(C=2.0, tol=1e-8, max_iter=5000).fit(X, y)
    from transferflow.models.nb import binarised
    from transferflow.models.solver import make_design

    texts = data["test"][0]
    test_csr = data["featurizer"].transform(texts)
    ours = np.exp(
        log_proba(
            w,
            make_design(
                binarised(test_csr, scale),
                None,
                np.zeros(len(texts), int),
                np.zeros(len(texts), int),
            ),
        )
    )
    Xt = test_csr.copy()
    Xt.data = np.abs(r)[Xt.indices]
    np.testing.assert_allclose(ours[:, 1], ref.predict_proba(Xt)[:, 1], atol=2e-3)


@pytest.mark.parametrize("target_weight", [1.0, 4.0])
def test_nb_target_rows_weigh_as_told(data, target_weight):
    """``target_weight`` is each target row's loss weight: at the C the member chose, scikit-learn's
    LogisticRegression with those sample weights predicts the same probabilities."""
    from sklearn.linear_model import LogisticRegression

    from transferflow.models.nb import binarised
    from transferflow.models.solver import make_design

    texts = [*data["src"][0], *data["tgt"][0]]
    y = np.array([CLASSES.index(v) for v in [*data["src"][1], *data["tgt"][1]]])
    dom = np.r_[np.full(len(data["src"][0]), SOURCE), np.full(len(data["tgt"][0]), TARGET)]
    member, c, _ = fit_nb(data["featurizer"], texts, y, dom, 2, seed=0, target_weight=target_weight)
    X = binarised(data["featurizer"].transform(texts), member.scale)
    ref = LogisticRegression(C=2.0 * c, tol=1e-8, max_iter=5000).fit(
        X, y, sample_weight=np.where(dom == TARGET, target_weight, 1.0)
    )
    test = data["featurizer"].transform(data["test"][0])
    zeros = np.zeros(test.shape[0], int)
    design = make_design(binarised(test, member.scale), None, zeros, zeros)
    ours = np.exp(log_proba([member.wide_kernel, member.wide_bias], design))
    np.testing.assert_allclose(ours[:, 1], ref.predict_proba(binarised(test, member.scale))[:, 1],
                               atol=2e-3)  # fmt: skip


def test_nb_folds_compute_their_scale_without_the_held_out_labels(data, monkeypatch):
    """The log-count ratio is fitted on labels: out-of-fold predictions must not see them."""
    from transferflow.models import nb

    seen = []
    real = nb.log_count_ratio
    monkeypatch.setattr(
        nb, "log_count_ratio", lambda csr, y, k: seen.append(len(y)) or real(csr, y, k)
    )
    _nb_fit(data)
    n = len(data["src"][0]) + len(data["tgt"][0])
    assert seen[0] == n  # the full fit
    assert sorted(seen[1:]) == sorted([n - 20] * 3)  # 60 target rows, 3 folds of 20 held out


def test_saved_model_loads_safely_and_is_byte_reproducible(data, source_model, tmp_path: Path):
    files = source_model.write(tmp_path / "a")
    again, _ = wd.train_from_scratch(
        _inputs(data), data["src"], CLASSES, cfg=ModelConfig(), seed=0, role="source"
    )
    files2 = again.write(tmp_path / "b")
    for name in wd.TextModel.FILES:
        assert (
            hashlib.sha256(files[name].read_bytes()).digest()
            == hashlib.sha256(files2[name].read_bytes()).digest()
        ), name
    loaded = wd.TextModel.read(files)
    texts = data["test"][0][:40]
    np.testing.assert_allclose(
        loaded.predict_proba(texts), source_model.predict_proba(texts), atol=1e-6
    )


def test_one_padded_group_predicts_what_width_groups_predict(data, source_model, monkeypatch):
    from transferflow.text import features

    test = data["test"][0]
    texts = [*test, *(" ".join(test[i : i + k]) for k in (5, 20) for i in range(0, 200, k))]
    one = source_model.predict_proba(texts)
    monkeypatch.setattr(features, "ONE_GROUP_ROWS", 0)  # the width groups of a large input
    assert len(source_model.encoder().encode(texts, 64)) > 1
    np.testing.assert_allclose(source_model.predict_proba(texts), one, atol=1e-6)


def _cfg(**kw):
    from transferflow.config.settings import ModelConfig

    return ModelConfig(**kw)


def _alone(data, model, texts):
    """Each member of ``model`` as a network of its own, on ``texts``."""
    from transferflow.models.network import stack_members

    alone = []
    for name, member in zip(model.members, model.member_weights(), strict=True):
        single = wd._new(_inputs(data), CLASSES, [name])
        stack_members(single.network, [member])  # an NB kernel comes back with its scale folded
        alone.append(single.predict_proba(texts))
    return alone


def test_ensemble_weighs_the_nb_member_as_much_as_the_others_together(data, ensemble, tmp_path):
    """By default the saved network's mean is weighted half NB, half the six TF-IDF members,
    survives a safe_mode round trip, and is what each member alone predicts, combined."""
    model, _ = ensemble
    assert model.info["weights_from"] == "fixed"
    texts = data["test"][0][:40]
    alone = _alone(data, model, texts)
    expected = 0.5 * np.mean(alone[:6], axis=0) + 0.5 * alone[6]
    np.testing.assert_allclose(model.predict_proba(texts), expected, atol=1e-5)
    assert np.abs(np.mean(alone, axis=0) - expected).max() > 1e-3  # equal weights would differ
    loaded = wd.TextModel.read(model.write(tmp_path / "ensemble"))
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-5)
    # What label suggestions' committee reads: each member's own probabilities and its weight.
    members, weights = loaded.member_proba(texts)
    np.testing.assert_allclose(members, np.stack(alone, axis=1), atol=1e-5)
    np.testing.assert_allclose(weights, [1 / 12] * 6 + [0.5])


def test_out_of_fold_ensemble_weights_are_what_the_evidence_chooses(data, source_model, tmp_path):
    """``ensemble_weights: out-of-fold``: the NB member's share is MAP-EM's on the members'
    out-of-fold predictions, the six TF-IDF members alike; the saved network's mean uses them."""
    from transferflow.models.ensemble_weights import group_weights, groups

    cfg = TransferConfig(ensemble_weights="out-of-fold")
    model, oof = wd.adapt(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=cfg, cfg=ModelConfig(), seed=0,
    )  # fmt: skip
    assert model.info["weights_from"] == "chosen from out-of-fold predictions"
    assert list(model.info["member_weights"]) == model.members
    weights = np.array(list(model.info["member_weights"].values()))
    np.testing.assert_allclose(weights[:6], [weights[0]] * 6, atol=1e-6)
    assert abs(weights[-1] - 0.5) > 1e-3  # the evidence moved the share
    fitted = wd.adapt_members(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=cfg, cfg=ModelConfig(), seed=0,
    )  # fmt: skip
    chosen = group_weights(
        fitted.oofs, fitted.y, groups(model.members), wd._default_weights(model.members),
        strength=cfg.weights_prior_rows,
    )  # fmt: skip
    np.testing.assert_allclose(weights, chosen, atol=1e-5)
    texts = data["test"][0][:40]
    expected = np.einsum("mrc,m->rc", np.stack(_alone(data, model, texts)), weights)
    loaded = wd.TextModel.read(model.write(tmp_path / "oof"))
    np.testing.assert_allclose(loaded.predict_proba(texts), expected, atol=1e-5)
    np.testing.assert_allclose(loaded.member_proba(texts)[1], weights, atol=1e-6)
    assert oof.shape == (60, 2) and np.allclose(oof.sum(axis=1), 1, atol=1e-4)


def test_given_ensemble_weights_are_kept(data, source_model):
    """Given weights (self-training's second fit keeps the first fit's) are used as given."""
    given = [0.1] * 6 + [0.4]
    model, _ = wd.adapt(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=TransferConfig(ensemble_weights="out-of-fold"), cfg=ModelConfig(), seed=0,
        oof=False, weights=given,
    )  # fmt: skip
    assert model.info["weights_from"].endswith("before self-training")
    np.testing.assert_allclose(model.member_proba(data["test"][0][:5])[1], given, atol=1e-6)


def test_given_cs_fit_finetune_and_nb_members_once_with_them(data, source_model, ensemble):
    """Given C values (self-training's second fit keeps the first fit's) replace the search for
    the members that search (finetune, NB): each is the single fit at that C, the other members
    are fitted as without them."""
    first, _ = ensemble
    # Values the search did not choose, so a search that ran anyway would show.
    given = {m: (0.1 if first.info["C"][m] != 0.1 else 100.0) for m in first.members}
    fitted = wd.adapt_members(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=TransferConfig(), cfg=ModelConfig(), seed=0, oof=True, cs=given,
    )  # fmt: skip
    searched = ("wide/finetune", "ngrams/finetune", wd.NB)
    for name, oof in zip(fitted.model.members, fitted.oofs, strict=True):
        expected = given[name] if name in searched else first.info["C"][name]
        assert fitted.model.info["C"][name] == expected, name
        assert (oof is None) == (name in searched), name  # no folds for a given C
    y = np.array([CLASSES.index(v) for v in data["tgt"].labels])
    nb_alone, _, _ = fit_nb(
        data["featurizer"], [*data["src"].texts, *data["tgt"].texts],
        np.r_[np.array([CLASSES.index(v) for v in data["src"].labels]), y],
        np.r_[np.full(len(data["src"].texts), SOURCE), np.full(len(y), TARGET)],
        2, seed=0, grid=(given[wd.NB],), zero_width=data["matrix"].shape[1],
    )  # fmt: skip
    np.testing.assert_allclose(  # the network holds the kernel with the NB scale folded in
        fitted.model.member_weights()[-1].wide_kernel,
        nb_alone.wide_kernel * nb_alone.scale[:, None],
        rtol=1e-5,
        atol=1e-6,
    )


def test_the_pooled_baseline_is_the_ensembles_nb_member_and_is_taken_as_it(
    data, source_model, ensemble
):
    """``train_pooled`` fits what the ensemble's first fit fits as its NB member (same rows,
    n-grams, seed): given as ``nb``, the adapted model is the same model, and the given member
    is used as it is, not fitted again."""
    first, first_oof = ensemble
    pooled, pooled_oof = wd.train_pooled(
        _inputs(data), data["src"], data["tgt"], CLASSES, cfg=ModelConfig(), seed=0
    )
    nb = wd.pooled_nb(pooled, pooled_oof)
    assert nb[1] == first.info["C"][wd.NB]
    model, oof = wd.adapt(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=TransferConfig(), cfg=ModelConfig(), seed=0, nb=nb,
    )  # fmt: skip
    assert model.info == first.info
    for got, want in zip(model.network.get_weights(), first.network.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(oof, first_oof)
    # Another member given (the pooled model of other rows) is what the ensemble then holds.
    other, other_oof = wd.train_pooled(
        _inputs(data), data["src"], wd.Labelled(data["tgt"].texts[:30], data["tgt"].labels[:30]),
        CLASSES, cfg=ModelConfig(), seed=0,
    )  # fmt: skip
    member, c, _ = wd.pooled_nb(other, None)
    fitted = wd.adapt_members(
        source_model, data["matrix"], data["src"], data["tgt"],
        transfer=TransferConfig(), cfg=ModelConfig(), seed=0, nb=(member, c, None),
    )  # fmt: skip
    np.testing.assert_array_equal(fitted.model.member_weights()[-1].wide_kernel, member.wide_kernel)
    assert fitted.model.info["C"][wd.NB] == c
