import numpy as np
import pytest

from transferflow.evaluation.metrics import classification_metrics
from transferflow.models.baselines import tfidf_proba, train_tfidf_lr


def test_metrics_binary():
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    m = classification_metrics(["neg", "pos", "pos", "pos"], proba, ["neg", "pos"])
    assert m["accuracy"] == 0.75
    assert m["per_class"]["pos"]["recall"] == round(2 / 3, 4)
    assert m["confusion_matrix"]["matrix"] == [[1, 0], [1, 2]]
    assert m["roc_auc"] == 1.0


def test_metrics_multiclass_has_no_auc_and_shows_unseen_labels():
    proba = np.eye(3)
    m = classification_metrics(["a", "b", "z"], proba, ["a", "b", "c"])
    assert "roc_auc" not in m
    assert m["confusion_matrix"]["labels"] == ["a", "b", "c", "z"]
    assert m["per_class"]["z"]["support"] == 1


def test_metrics_shape_mismatch():
    with pytest.raises(ValueError, match="expected"):
        classification_metrics(["a"], np.ones((2, 2)), ["a", "b"])


def test_tfidf_lr_learns_and_orders_columns():
    texts = ["great phone", "love it", "awful", "broke fast", "great value", "terrible"] * 4
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"] * 4
    pipe = train_tfidf_lr(texts, labels, seed=0)
    proba = tfidf_proba(pipe, ["great", "terrible"], ["pos", "neg", "other"])
    assert proba[0, 0] > proba[0, 1] and proba[1, 1] > proba[1, 0]
    assert not proba[:, 2].any()


def test_tfidf_lr_with_one_row_per_class_uses_fixed_c():
    pipe = train_tfidf_lr(["good", "bad"], ["p", "n"], seed=0)
    assert pipe[-1].C == 10.0


def test_nb_lr_learns_the_log_count_ratio_direction():
    from transferflow.models.baselines import nb_lr_proba, train_nb_lr

    texts = ["great phone", "love it", "awful", "broke fast", "great value", "terrible"] * 4
    labels = ["pos", "pos", "neg", "neg", "pos", "neg"] * 4
    model = train_nb_lr(texts, labels)
    proba = nb_lr_proba(model, ["great", "terrible"], ["pos", "neg"])
    assert proba[0, 0] > 0.5 and proba[1, 1] > 0.5
    with pytest.raises(ValueError, match="two classes"):
        train_nb_lr(["a", "b", "c"], ["x", "y", "z"])
