"""Label suggestions: each strategy picks what it says, reproducibly, and never a labelled text."""

import numpy as np
import pandas as pd
import pytest

from transferflow.config.serving import SuggestConfig
from transferflow.errors import DataError
from transferflow.serving.suggest import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    disagreement,
    margins,
    suggest,
)
from transferflow.serving.unlabeled import read_unlabeled


def _pool(seed=0):
    """60 rows: 20 identical very uncertain rows (a near-duplicate cluster), 40 spread out."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([np.full(20, 0.50), rng.uniform(0.52, 0.99, 40)])
    proba = np.stack([p, 1 - p], axis=1)
    spread = rng.normal(size=(40, 8))
    features = np.concatenate([np.tile(np.eye(8)[0], (20, 1)), spread])
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return proba, features


def _committee(proba):
    """Three equally weighted members: they agree on every row but rows 40-49, where one says
    the opposite of the other two."""
    members = np.repeat(proba[:, None, :], 3, axis=1).copy()
    members[40:50, 2] = members[40:50, 2, ::-1]
    return members, np.full(3, 1 / 3)


def test_default_strategy_is_the_configured_one():
    assert SuggestConfig().strategy == DEFAULT_STRATEGY


def test_margins():
    assert margins(np.array([[0.5, 0.5], [0.9, 0.1]])).round(6).tolist() == [0.0, 0.8]
    assert margins(np.array([[0.2, 0.3, 0.5]])).round(6).tolist() == [0.2]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_picks_n_distinct_rows_reproducibly(strategy):
    proba, features = _pool()
    members = _committee(proba)
    a = suggest(proba, features, 10, strategy, seed=3, members=members)
    b = suggest(proba, features, 10, strategy, seed=3, members=members)
    assert len(a.rows) == 10 and len(set(a.rows.tolist())) == 10
    assert a.rows.tolist() == b.rows.tolist() and len(a.reason) == 10
    capped = suggest(proba, features, 500, strategy, members=members)
    assert capped.rows.size == len(proba)  # capped at the pool


def test_margin_takes_the_least_sure_rows():
    proba, features = _pool()
    picked = suggest(proba, features, 10, "margin")
    assert set(picked.rows.tolist()) <= set(range(20))  # all from the uncertain duplicates


def test_balanced_margin_takes_the_least_sure_of_each_predicted_class_in_turn():
    # 30 rows predicted class 0, 10 predicted class 1; class 0's rows are all less sure, so
    # plain margin would pick class 0 only.
    p0 = np.concatenate([np.linspace(0.51, 0.60, 30), np.linspace(0.30, 0.10, 10)])
    proba = np.stack([p0, 1 - p0], axis=1)
    plain = suggest(proba, None, 8, "margin")
    assert set(proba[plain.rows].argmax(axis=1).tolist()) == {0}
    picked = suggest(proba, None, 8, "balanced-margin")
    pred = proba[picked.rows].argmax(axis=1)
    assert np.bincount(pred).tolist() == [4, 4]
    m = margins(proba)
    for c in (0, 1):  # within a class, the least sure first
        rows = picked.rows[pred == c]
        least = np.sort(m[proba.argmax(axis=1) == c])[:4]
        assert np.allclose(np.sort(m[rows]), least)
    # a class that runs out leaves its share to the other: 10 of class 1 at most
    many = suggest(proba, None, 30, "balanced-margin")
    assert np.bincount(proba[many.rows].argmax(axis=1)).tolist() == [20, 10]


def test_softrank_margin_draws_the_least_sure_most_often_but_reaches_past_them():
    p0 = np.random.default_rng(12345).uniform(0.5, 1.0, 2000)  # not a seed the draws use
    proba = np.stack([p0, 1 - p0], axis=1)
    rank = np.empty(2000, np.int64)
    rank[np.argsort(margins(proba), kind="stable")] = np.arange(1, 2001)
    hits = np.zeros(2000)
    for seed in range(40):
        hits[suggest(proba, None, 100, "softrank-margin", seed=seed).rows] += 1
    top = suggest(proba, None, 100, "margin").rows
    # the 10 least sure texts are nearly always drawn; a draw is not the top-100 margin pick
    assert hits[rank <= 10].mean() > 0.9 * 40
    assert all(
        len(
            set(suggest(proba, None, 100, "softrank-margin", seed=s).rows.tolist())
            - set(top.tolist())
        )
        > 20
        for s in range(3)
    )
    # and draws are more likely the less sure a text is (1/rank)
    assert (
        hits[rank <= 100].sum() > hits[(rank > 100) & (rank <= 200)].sum() > hits[rank > 1900].sum()
    )


def test_disagreement_is_the_weighted_kl_from_the_mean():
    members = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.7, 0.3], [0.7, 0.3]]])
    w = np.array([0.25, 0.75])
    mean = np.array([0.6, 0.4])
    kl = [np.sum(p * np.log(p / mean)) for p in members[0]]
    assert disagreement(members, w).round(8).tolist() == [
        round(0.25 * kl[0] + 0.75 * kl[1], 8),
        0.0,  # the members agree
    ]


def test_committee_takes_the_rows_the_members_disagree_on_not_the_least_sure():
    proba, features = _pool()
    members = _committee(proba)
    picked = suggest(proba, features, 10, "committee", members=members)
    assert sorted(picked.rows.tolist()) == list(range(40, 50))
    assert all(r.startswith("members disagree") for r in picked.reason)
    # With no disagreement at all it falls back on the margin.
    agree = np.repeat(proba[:, None, :], 3, axis=1), np.full(3, 1 / 3)
    same = suggest(proba, features, 10, "committee", members=agree)
    assert same.rows.tolist() == suggest(proba, features, 10, "margin").rows.tolist()
    with pytest.raises(ValueError, match="members"):
        suggest(proba, features, 10, "committee")


@pytest.mark.parametrize("strategy", ["margin-cluster", "badge", "typical-cluster"])
def test_diverse_strategies_do_not_spend_labels_on_near_duplicates(strategy):
    proba, features = _pool()
    picked = suggest(proba, features, 10, strategy, seed=1)
    assert sum(r < 20 for r in picked.rows.tolist()) <= 1


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        suggest(*_pool(), 5, "entropy-magic")


def test_read_unlabeled_leaves_out_labelled_test_blank_and_repeated(tmp_path):
    path = tmp_path / "u.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "text": ["Great phone", "  great   PHONE ", "", "Broke in a day", "In the test set"],
            "label": ["1", "1", "0", "0", "1"],
        }
    ).to_csv(path, index=False)
    texts, ids, counts, columns = read_unlabeled(path, ["text"], "id", {"in the test set"})
    assert columns == {"text": ["Great phone", "Broke in a day"]}  # as the file has them
    assert texts == ["Great phone", "Broke in a day"] and ids == ["a", "d"]
    assert counts == {"rows": 5, "blank": 1, "labelled_or_test": 1, "repeated": 1}
    texts, ids, _, _ = read_unlabeled(path, ["text"], "row_id", set())
    assert ids == ["1", "4", "5"]  # data row numbers without an id column


def test_read_unlabeled_names_a_missing_text_column(tmp_path):
    path = tmp_path / "u.csv"
    pd.DataFrame({"review": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing text column\(s\) \['text'\].*'review'"):
        read_unlabeled(path, ["text"], "id", set())


def test_read_unlabeled_keeps_every_text_column_as_given(tmp_path):
    """The suggestions file shows the texts as the input has them (title and body apart), not
    the joined text the model reads."""
    path = tmp_path / "u.csv"
    pd.DataFrame(
        {"title": ["Great", "Awful", "Great"], "body": ["phone", "battery", "phone"]}
    ).to_csv(path, index=False)
    texts, ids, counts, columns = read_unlabeled(path, ["title", "body"], "id", set())
    assert texts == ["Great phone", "Awful battery"] and ids == ["1", "2"]
    assert columns == {"title": ["Great", "Awful"], "body": ["phone", "battery"]}
    assert counts["repeated"] == 1
