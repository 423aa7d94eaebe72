"""Leakage, embeddings, domain-shift, source-model and promotion suites: good passes, bad fails."""

import numpy as np
import pandas as pd
from gensim.models import KeyedVectors

from transferflow.config.settings import (
    DomainShiftGate,
    EmbeddingsGate,
    LeakageGate,
    PromotionGate,
    SourceModelGate,
)
from transferflow.data_checks.domain_shift import validate_domain_shift
from transferflow.data_checks.embeddings import validate_embeddings
from transferflow.data_checks.leakage import validate_leakage
from transferflow.data_checks.models import (
    source_threshold,
    validate_promotion,
    validate_source_model,
)


def _texts(prefix, n):
    return pd.DataFrame(
        {
            "text": [f"{prefix} text {i}" for i in range(n)],
            "label": "1",
            "file": f"{prefix}.csv",
            "row": range(1, n + 1),
        }
    )


def test_leakage_passes_on_disjoint_splits():
    report = validate_leakage(
        _texts("test", 20), _texts("train", 50), _texts("src", 50), LeakageGate()
    )
    assert report.status == "passed"
    assert report.figures == {"test_rows_in_target_train": 0, "test_rows_in_word2vec_corpus": 0}


def test_leakage_counts_copied_test_rows_after_normalising():
    test = _texts("test", 20)
    train = pd.concat(
        [_texts("train", 50), test.head(6).assign(text=lambda f: "  " + f.text.str.upper())]
    )
    report = validate_leakage(test, train, None, LeakageGate(max_overlap_share=0.0))
    assert report.status == "failed"
    (failure,) = report.failures
    assert failure.observed.startswith("6 bad row(s) (30.0%)")
    assert report.figures["test_rows_in_target_train"] == 6
    assert (
        validate_leakage(test, train, None, LeakageGate(max_overlap_share=0.3)).status == "passed"
    )


def test_leakage_into_the_word2vec_corpus():
    test = _texts("test", 10)
    report = validate_leakage(
        test, _texts("train", 10), test.head(2), LeakageGate(mode="warn", max_overlap_share=0.1)
    )
    assert report.status == "warned"
    assert report.figures["test_rows_in_word2vec_corpus"] == 2


def _kv(vectors, tokens):
    kv = KeyedVectors(vector_size=vectors.shape[1])
    kv.add_vectors(tokens, vectors)
    return kv


def test_embeddings_good():
    kv = _kv(np.ones((3, 4), dtype=np.float32), ["good", "phone", "bad"])
    report = validate_embeddings(kv, 4, ["good phone", "bad phone"], EmbeddingsGate())
    assert report.status == "passed" and report.figures["target_coverage"] == 1.0


def test_embeddings_nonfinite_wrong_size_and_low_coverage():
    vectors = np.ones((3, 4), dtype=np.float32)
    vectors[1, 2] = np.nan
    kv = _kv(vectors, ["good", "phone", "bad"])
    report = validate_embeddings(
        kv, 8, ["good phone", "terrible battery life"], EmbeddingsGate(min_target_coverage=0.6)
    )
    failed = {(f.column, f.expectation) for f in report.failures}
    assert ("finite", "expect_column_values_to_be_in_set") in failed
    assert ("vector_size", "expect_column_values_to_be_in_set") in failed
    assert ("target_coverage", "expect_column_values_to_be_between") in failed
    assert any("token phone" in f.observed for f in report.failures)
    assert report.figures["nonfinite_vectors"] == 1 and report.figures["target_coverage"] == 0.4


def test_domain_shift_thresholds_and_default_warn_mode():
    near = {"vocab_overlap": 0.8, "label_distance": 0.0, "proxy_a_distance": 0.5}
    far = {"vocab_overlap": 0.1, "label_distance": 0.7, "proxy_a_distance": 1.99}
    assert validate_domain_shift(near, DomainShiftGate()).status == "passed"
    report = validate_domain_shift(far, DomainShiftGate())
    assert report.status == "warned" and len(report.failures) == 3
    assert validate_domain_shift(far, DomainShiftGate(mode="fail")).status == "failed"


def test_source_model_gate():
    assert source_threshold(SourceModelGate(), 0.5) == 0.55
    assert source_threshold(SourceModelGate(min_accuracy=0.8), 0.5) == 0.8
    assert validate_source_model(0.75, 0.5, 100, SourceModelGate()).status == "passed"
    report = validate_source_model(0.52, 0.5, 100, SourceModelGate())
    assert report.status == "failed" and report.failures[0].observed == "0.52"


def test_promotion_gate():
    good = {"chosen": "transfer", "transfer_beats_target_only": True, "gain_vs_target_only": 0.04}
    bad = {"chosen": "pooled_lr", "transfer_beats_target_only": True, "gain_vs_target_only": 0.01}
    assert validate_promotion(good, PromotionGate()).status == "passed"
    assert validate_promotion(bad, PromotionGate()).status == "warned"
    assert validate_promotion(bad, PromotionGate(mode="fail")).status == "failed"
