"""Batch monitoring (transferflow.serving.monitoring) on real review texts: the reference a
version stores, the figures of a batch, chunking, and the history report."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.config.serving import MonitoringConfig
from transferflow.config.settings import DEMO_DIR
from transferflow.serving import monitoring


@pytest.fixture(scope="module")
def phones():
    frame = pd.read_csv(DEMO_DIR / "amazon.csv").sample(frac=1.0, random_state=0)
    return frame["text"].tolist(), frame["label"].astype(str).tolist()


def _proba(n: int, confidence: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = rng.integers(0, 2, n)
    p = np.full((n, 2), 1 - confidence)
    p[np.arange(n), top] = confidence
    return p


def _reference(texts, labels):
    """A reference whose out-of-fold predictions are overconfident: a prediction made with
    probability c was right with probability c - 0.1 (as uncalibrated networks are)."""
    n = len(texts)
    rng = np.random.default_rng(1)
    y = np.array([["0", "1"].index(v) for v in labels])
    confidence = rng.uniform(0.6, 1.0, n)
    right = rng.random(n) < confidence - 0.1
    predicted = np.where(right, y, 1 - y)
    proba = np.column_stack([1 - confidence, 1 - confidence])
    proba[np.arange(n), predicted] = confidence
    return monitoring.build_reference(texts, labels, ["0", "1"], proba, seed=0)


def test_the_reference_calibrates_confidence_on_out_of_fold_predictions(phones):
    texts, labels = phones[0][:700], phones[1][:700]
    ref = _reference(texts, labels)
    assert ref["oof_accuracy"] == pytest.approx(0.7, abs=0.04)
    # Confidence 0.9 was right about 80% of the time: that is what it now means.
    assert monitoring.calibrated(np.array([0.9]), ref["calibration"])[0] == pytest.approx(
        0.8, abs=0.08
    )
    assert len(ref["texts"]) == 700 and set(ref["label_shares"]) == {"0", "1"}
    uncalibrated = monitoring.build_reference(texts, labels, ["0", "1"], None, seed=0)
    assert uncalibrated["calibration"] is None
    assert monitoring.calibrated(np.array([0.7]), None)[0] == 0.7


def test_a_held_out_test_set_calibrates_the_final_models_own_confidence(phones):
    """Out-of-fold predictions come from less sure fold models (here all below 0.65, right 55 %
    of the time); the final model is surer (0.75-1.0) and right 80 % of the time on the test
    rows. Calibrated on the fold models, every confidence above their range would read as the
    top bin's accuracy; calibrated on the model's own test predictions, it reads as about 0.8."""
    texts, labels = phones[0][:200], phones[1][:200]
    rng = np.random.default_rng(3)
    y = np.array([["0", "1"].index(v) for v in labels])

    def predictions(low, high, accuracy, n, truth):
        confidence = rng.uniform(low, high, n)
        predicted = np.where(rng.random(n) < accuracy, truth, 1 - truth)
        proba = np.column_stack([1 - confidence, 1 - confidence])
        proba[np.arange(n), predicted] = confidence
        return proba

    oof = predictions(0.5, 0.65, 0.55, 200, y)
    test_y = rng.integers(0, 2, 300)
    test_proba = predictions(0.75, 1.0, 0.8, 300, test_y)
    test_labels = [str(v) for v in test_y]
    batch = predictions(0.75, 1.0, 0.8, 500, rng.integers(0, 2, 500)).max(axis=1)

    oof_only = monitoring.build_reference(texts, labels, ["0", "1"], oof, seed=0)
    assert "out-of-fold" in oof_only["calibrated_on"]
    held = monitoring.build_reference(
        texts, labels, ["0", "1"], oof, seed=0, held_out=(test_proba, test_labels)
    )
    assert "test rows" in held["calibrated_on"]
    assert held["oof_accuracy"] == oof_only["oof_accuracy"]  # the alert floor stays out-of-fold
    assert monitoring.calibrated(batch, held["calibration"]).mean() == pytest.approx(0.8, abs=0.06)
    # Too few held-out rows: out-of-fold it stays.
    few = monitoring.build_reference(
        texts, labels, ["0", "1"], oof, seed=0, held_out=(test_proba[:10], test_labels[:10])
    )
    assert few["calibration"] == oof_only["calibration"]


def test_an_other_domain_batch_drifts_and_an_own_domain_batch_does_not(phones):
    texts, labels = phones
    ref = _reference(texts[:300], labels[:300])
    limits = MonitoringConfig()
    own = monitoring.BatchMonitor(ref, ["0", "1"], lambda: {"phone", "great"})
    own.update(texts[300:], _proba(len(texts) - 300, 0.9))
    movies = pd.read_csv(DEMO_DIR / "imdb.csv")["text"].tolist()
    other = monitoring.BatchMonitor(ref, ["0", "1"], lambda: {"phone", "great"})
    other.update(movies, _proba(len(movies), 0.9))
    a = own.figures(limits.max_drift, limits.max_accuracy_drop)
    b = other.figures(limits.max_drift, limits.max_accuracy_drop)
    assert a["drift"]["score"] < limits.max_drift < b["drift"]["score"]
    assert not a["drift"]["exceeded"] and b["drift"]["exceeded"]
    assert monitoring.alerts(a) == [] and "drift" in monitoring.alerts(b)[0]
    assert a["vocab_overlap"] > b["vocab_overlap"]
    # Estimated accuracy: the calibrated confidence (0.9 means about 0.8 here), not the raw one.
    assert a["estimated_accuracy"] == pytest.approx(
        monitoring.calibrated(np.array([0.9]), ref["calibration"])[0], abs=1e-4
    )
    assert a["estimated_accuracy"] < 0.9
    assert a["accuracy"]["floor"] == pytest.approx(ref["oof_accuracy"] - limits.max_accuracy_drop)


def test_a_low_estimate_is_an_alert(phones):
    texts, labels = phones
    ref = _reference(texts[:300], labels[:300])
    m = monitoring.BatchMonitor(ref, ["0", "1"], set)
    m.update(texts[300:], _proba(len(texts) - 300, 0.55))  # unsure everywhere
    figures = m.figures(2.0, 0.05)
    assert figures["accuracy"]["below_floor"] and not figures["drift"]["exceeded"]
    assert "estimated accuracy" in monitoring.alerts(figures)[0]


def test_chunks_give_the_figures_of_the_whole_batch(phones):
    texts, labels = phones
    ref = _reference(texts[:300], labels[:300])
    proba = _proba(len(texts), 0.9, seed=3)
    whole = monitoring.BatchMonitor(ref, ["0", "1"], set)
    whole.update(texts, proba)
    chunked = monitoring.BatchMonitor(ref, ["0", "1"], set)
    for start in range(0, len(texts), 128):
        chunked.update(texts[start : start + 128], proba[start : start + 128])
    a, b = whole.figures(0.8, 0.05), chunked.figures(0.8, 0.05)
    assert a["rows"] == b["rows"] == len(texts)
    assert a["predicted_labels"] == b["predicted_labels"]
    assert a["estimated_accuracy"] == pytest.approx(b["estimated_accuracy"])
    assert a["sampled_texts"] == b["sampled_texts"] == min(monitoring.SAMPLE, len(texts))


def test_the_history_report_shows_the_trend(phones):
    texts, labels = phones
    ref = _reference(texts[:300], labels[:300])
    batches = []
    for confidence in (0.95, 0.8, 0.6):
        m = monitoring.BatchMonitor(ref, ["0", "1"], set)
        m.update(texts[300:], _proba(len(texts) - 300, confidence))
        batches.append({"version": 1, "input": "b.csv", **m.figures(0.8, 0.05)})
    text = monitoring.history_markdown("phones", batches)
    assert text.startswith("# Monitoring: model `phones`") and "**ALERT**" in text
    assert text.count("| v1 |") == 3
    assert monitoring.sparkline([0.5, 0.75, 1.0], 0.5, 1.0) == "▁▅█"


@pytest.mark.parametrize("oof", [None, np.empty((0, 2))])
def test_a_model_without_target_labels_is_watched_on_its_texts_without_label_shares(phones, oof):
    """A zero-label model's reference is the unlabelled texts it was adapted to: batches are
    compared with them for drift; there are no label shares or out-of-fold accuracy to use."""
    texts = phones[0]
    ref = monitoring.build_reference(texts[:300], [], ["0", "1"], oof, seed=0)
    assert ref["label_shares"] == {} and ref["calibration"] is None
    assert ref["oof_accuracy"] is None
    m = monitoring.BatchMonitor(ref, ["0", "1"], set)
    m.update(texts[300:], _proba(len(texts) - 300, 0.9))
    figures = m.figures(0.8, 0.05)
    assert figures["label_distance"] is None and figures["drift"]["score"] is not None
    assert not figures["accuracy"]["below_floor"] and monitoring.alerts(figures) == []


@settings(max_examples=60, deadline=None)
@given(
    n_labelled=st.integers(0, 40),
    with_oof=st.booleans(),
    n_batch=st.integers(0, 30),
    seed=st.integers(0, 2**16),
)
def test_any_reference_watches_any_batch(phones, n_labelled, with_oof, n_batch, seed):
    """Invariant: whatever a model was trained with (no target labels, a few, many; out-of-fold
    predictions or not), its reference is built and a batch of any size gets its figures; label
    shares are compared only when there were labels."""
    texts, labels = phones[0][:60], phones[1][:n_labelled]
    oof = _proba(n_labelled, 0.8, seed) if with_oof else None
    ref = monitoring.build_reference(texts, labels, ["0", "1"], oof, seed=seed)
    m = monitoring.BatchMonitor(ref, ["0", "1"], set)
    m.update(phones[0][100 : 100 + n_batch], _proba(n_batch, 0.7, seed))
    figures = m.figures(0.8, 0.05)
    assert figures["rows"] == n_batch
    assert (figures["label_distance"] is None) == (n_labelled == 0 or n_batch == 0)
    assert isinstance(monitoring.alerts(figures), list)
