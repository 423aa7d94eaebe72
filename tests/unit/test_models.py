import numpy as np
import pytest

from transferflow.config import ModelConfig, TransferConfig
from transferflow.errors import ConfigError
from transferflow.models import (
    HEAD,
    adapt,
    build_model,
    load_model,
    predict_proba,
    save_model,
    train_classifier,
)

CFG = ModelConfig(max_len=6, hidden_units=[8, 4], epochs=30, patience=30, batch_size=8)


def _toy(n=80, seed=0, flip=False):
    """Class 1 texts use token 2, class 0 texts token 3 (token 4 is noise)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = np.full((n, 6), 4, dtype=np.int32)
    x[:, 0] = np.where(y == 1, 2, 3) if not flip else np.where(y == 1, 3, 2)
    x[rng.random(n) < 0.5, 5] = 0
    return x, y.astype(np.int32)


MATRIX = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
MATRIX[0] = 0


@pytest.mark.parametrize("arch", ["mean-mlp", "cnn"])
def test_classifier_learns_a_separable_task(arch):
    x, y = _toy()
    model, history = train_classifier(arch, MATRIX, x, y, 2, CFG, seed=0, phase="source")
    assert (predict_proba(model, x).argmax(1) == y).mean() == 1.0
    assert len(history.phases["source"]) >= 1


def test_unknown_architecture_and_single_class():
    with pytest.raises(ConfigError, match="architecture"):
        build_model("rnn", 2, MATRIX, CFG, 0)
    with pytest.raises(ConfigError, match="at least 2 classes"):
        build_model("mean-mlp", 1, MATRIX, CFG, 0)


def test_finetune_with_new_head_and_frozen_body():
    x, y = _toy()
    source, _ = train_classifier("mean-mlp", MATRIX, x, y, 2, CFG, 0, "source")
    before = [w.copy() for w in source.get_weights()]
    x3 = np.concatenate([x, x[:20]])
    y3 = np.concatenate([y, np.full(20, 2, dtype=np.int32)])
    x3[-20:, 0] = 1
    tcfg = TransferConfig(strategy="feature-extract", head_epochs=40)
    model, history = adapt(source, "feature-extract", x3, y3, 3, False, CFG, tcfg, seed=0)
    assert model.get_layer(HEAD).units == 3
    assert list(history.phases) == ["head"]
    body_after = [w for layer in model.layers if layer.name != HEAD for w in layer.get_weights()]
    body_before = [w for layer in source.layers if layer.name != HEAD for w in layer.get_weights()]
    for a, b in zip(body_after, body_before, strict=True):
        np.testing.assert_array_equal(a, b)  # body frozen
    for a, b in zip(source.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)  # the source model itself is untouched


def test_finetune_runs_both_phases_and_adapts_to_flipped_labels():
    x, y = _toy()
    source, _ = train_classifier("mean-mlp", MATRIX, x, y, 2, CFG, 0, "source")
    xt, yt = _toy(seed=1, flip=True)
    tcfg = TransferConfig(head_epochs=30, finetune_epochs=30, finetune_learning_rate=1e-2)
    model, history = adapt(source, "finetune", xt, yt, 2, True, CFG, tcfg, seed=0)
    assert list(history.phases) == ["head", "finetune"]
    assert (predict_proba(model, xt).argmax(1) == yt).mean() > 0.9


def test_joint_needs_same_labels_and_source_data():
    x, y = _toy()
    source, _ = train_classifier("mean-mlp", MATRIX, x, y, 2, CFG, 0, "source")
    tcfg = TransferConfig(strategy="joint", head_epochs=2, finetune_epochs=2)
    with pytest.raises(ConfigError, match="same labels"):
        adapt(source, "joint", x, y, 2, False, CFG, tcfg, 0, x_source=x, y_source=y)
    with pytest.raises(ConfigError, match="source training data"):
        adapt(source, "joint", x, y, 2, True, CFG, tcfg, 0)
    model, history = adapt(source, "joint", x, y, 2, True, CFG, tcfg, 0, x_source=x, y_source=y)
    assert list(history.phases) == ["joint"]


def test_save_and_load_round_trip(tmp_path):
    x, y = _toy()
    model, _ = train_classifier("cnn", MATRIX, x, y, 2, CFG.model_copy(update={"epochs": 2}), 0, "s")
    save_model(model, tmp_path / "m.keras")
    back = load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(predict_proba(back, x), predict_proba(model, x), atol=1e-6)


def test_same_seed_same_weights():
    x, y = _toy()
    cfg = CFG.model_copy(update={"epochs": 3})
    a, _ = train_classifier("mean-mlp", MATRIX, x, y, 2, cfg, 7, "s")
    b, _ = train_classifier("mean-mlp", MATRIX, x, y, 2, cfg, 7, "s")
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_bucketed_padded_prediction_equals_plain_predict():
    """Length buckets and padded row counts must not change any probability."""
    from transferflow.models import _padded_rows

    cfg = ModelConfig(max_len=40, hidden_units=[8], epochs=1, patience=1, batch_size=8)
    rng = np.random.default_rng(3)
    x = np.zeros((77, 40), dtype=np.int32)
    for i, n in enumerate(rng.integers(1, 41, size=77)):
        x[i, :n] = rng.integers(1, 5, size=n)
    model, _ = train_classifier("mean-mlp", MATRIX, x, np.arange(77) % 2, 2, cfg, seed=0, phase="source")
    plain = np.asarray(model.predict(x, verbose=0))
    np.testing.assert_allclose(predict_proba(model, x, batch_size=16), plain, atol=1e-6)
    assert [_padded_rows(n, 64) for n in (1, 33, 64, 65, 200)] == [32, 64, 64, 96, 224]
    with pytest.raises(ValueError):
        predict_proba(model, np.zeros((3, 40, 2), dtype=np.int32))
