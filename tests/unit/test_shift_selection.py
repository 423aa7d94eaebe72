import pytest

from transferflow.pipeline import select_model
from transferflow.shift import label_distance, proxy_a_distance, vocab_overlap


def test_vocab_overlap():
    assert vocab_overlap(["a b c"], ["a a d"]) == round(2 / 3, 4)
    assert vocab_overlap(["a"], []) == 0.0


def test_label_distance():
    assert label_distance({"0": 5, "1": 5}, {"0": 10, "1": 10}) == 0.0
    assert label_distance({"0": 10}, {"pos": 3}) == 1.0
    with pytest.raises(ValueError):
        label_distance({}, {"0": 1})


def test_proxy_a_distance_separates_distinct_domains_more_than_similar_ones():
    books = [f"this novel has a great plot and author chapter {i}" for i in range(60)]
    kitchen = [f"this blender has a great motor and blade speed {i}" for i in range(60)]
    far = proxy_a_distance(books, kitchen, seed=0)
    near = proxy_a_distance(books[:30], books[30:], seed=0)  # one domain split in two
    assert far > 1.5 and near < 0.5


def test_proxy_a_distance_needs_data():
    with pytest.raises(ValueError, match="at least 5"):
        proxy_a_distance(["a"], ["b"], seed=0)


def test_select_model_promotes_transfer_only_when_it_beats_target_only():
    val = {"transfer": {"accuracy": 0.80}, "target_only": {"accuracy": 0.75}, "tfidf_lr": {"accuracy": 0.78}}
    assert select_model(val, margin=0.02)["chosen"] == "transfer"
    out = select_model(val, margin=0.1)
    assert out["chosen"] == "tfidf_lr" and not out["transfer_beats_target_only"]
    assert out["gain_vs_target_only"] == 0.05
    with pytest.raises(ValueError):
        select_model({"target_only": {"accuracy": 1.0}}, 0.0)
