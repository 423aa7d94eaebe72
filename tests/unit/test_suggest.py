"""Label suggestions: each strategy picks what it says, reproducibly, and never a labelled text."""

import numpy as np
import pandas as pd
import pytest

from transferflow.config import SuggestConfig
from transferflow.errors import DataError
from transferflow.suggest import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    margins,
    read_unlabeled,
    suggest,
)


def _pool(seed=0):
    """60 rows: 20 identical very uncertain rows (a near-duplicate cluster), 40 spread out."""
    rng = np.random.default_rng(seed)
    p = np.concatenate([np.full(20, 0.50), rng.uniform(0.52, 0.99, 40)])
    proba = np.stack([p, 1 - p], axis=1)
    spread = rng.normal(size=(40, 8))
    features = np.concatenate([np.tile(np.eye(8)[0], (20, 1)), spread])
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return proba, features


def test_default_strategy_is_the_configured_one():
    assert SuggestConfig().strategy == DEFAULT_STRATEGY


def test_margins():
    assert margins(np.array([[0.5, 0.5], [0.9, 0.1]])).round(6).tolist() == [0.0, 0.8]
    assert margins(np.array([[0.2, 0.3, 0.5]])).round(6).tolist() == [0.2]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_picks_n_distinct_rows_reproducibly(strategy):
    proba, features = _pool()
    a = suggest(proba, features, 10, strategy, seed=3)
    b = suggest(proba, features, 10, strategy, seed=3)
    assert len(a.rows) == 10 and len(set(a.rows.tolist())) == 10
    assert a.rows.tolist() == b.rows.tolist() and len(a.reason) == 10
    assert suggest(proba, features, 500, strategy).rows.size == len(proba)  # capped at the pool


def test_margin_takes_the_least_sure_rows():
    proba, features = _pool()
    picked = suggest(proba, features, 10, "margin")
    assert set(picked.rows.tolist()) <= set(range(20))  # all from the uncertain duplicates


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
    texts, ids, counts = read_unlabeled(path, ["text"], "id", {"in the test set"})
    assert texts == ["Great phone", "Broke in a day"] and ids == ["a", "d"]
    assert counts == {"rows": 5, "blank": 1, "labelled_or_test": 1, "repeated": 1}
    texts, ids, _ = read_unlabeled(path, ["text"], "row_id", set())
    assert ids == ["1", "4", "5"]  # data row numbers without an id column


def test_read_unlabeled_names_a_missing_text_column(tmp_path):
    path = tmp_path / "u.csv"
    pd.DataFrame({"review": ["x"]}).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"missing text column\(s\) \['text'\].*'review'"):
        read_unlabeled(path, ["text"], "id", set())
