"""Featurising: the vectorised tokeniser and TF-IDF give exactly what the reference
implementations (one regex call per text; scikit-learn's TfidfVectorizer) give."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import TfidfVectorizer

from transferflow.config.settings import DEMO_DIR
from transferflow.text.features import FeatureEncoder, NgramFeaturizer, _Ngrams
from transferflow.text.tokens import OOV_ID, Vocabulary, tokenize, tokenize_many

EDGES = ["", None, 3.5, "a\x00b c", "Don't!! 'quoted' ??", "x" * 30_000, "ÉTÉ Straße İstanbul"]


@pytest.fixture(scope="module")
def texts() -> list:
    frame = pd.read_csv(DEMO_DIR / "amazon.csv")
    return [*frame["text"].tolist()[:400], *EDGES]


def test_tokenize_many_equals_tokenize(texts):
    tokens = tokenize_many(texts)
    assert tokens.lists() == [tokenize(t) for t in texts]
    assert tokens.n_rows == len(texts) and tokens.lengths.sum() == len(tokens.row)
    assert tokenize_many([]).n_rows == 0


@pytest.mark.parametrize("ngram_range", [(1, 2), (1, 3), (2, 3)])
def test_transform_equals_scikit_learn_tfidf(texts, ngram_range):
    featurizer = NgramFeaturizer.fit(texts[:300], ngram_range, min_df=2)
    reference = TfidfVectorizer(
        analyzer=_Ngrams(ngram_range),
        sublinear_tf=True,
        vocabulary={g: i for i, g in enumerate(featurizer.ngrams)},
        dtype=np.float32,
    )
    reference.fit([[]])
    reference.idf_ = featurizer.idf
    expected = reference.transform([tokenize(t) for t in texts])
    expected.sort_indices()
    got = featurizer.transform(texts)
    assert got.shape == expected.shape
    assert np.array_equal(got.indptr, expected.indptr)
    assert np.array_equal(got.indices, expected.indices)
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-6)


def test_encoder_token_ids_are_the_first_max_len_tokens(texts):
    featurizer = NgramFeaturizer.fit(texts[:300])
    vocab = Vocabulary(sorted({w for t in texts[:100] for w in tokenize(t)}))
    batches = FeatureEncoder(featurizer, vocab, max_len=16).encode(texts, batch_size=64)
    covered = np.sort(np.concatenate([b.rows for b in batches]))
    assert covered.tolist() == list(range(len(texts)))
    for b in batches:
        for i, row in enumerate(b.rows):
            expected = vocab.ids_of(tokenize(texts[row])[:16])  # [OOV_ID] for no tokens
            assert b.token_ids[i, : len(expected)].tolist() == expected
            assert not b.token_ids[i, len(expected) :].any()
        assert b.token_ids.shape[1] in (32,)  # max_len 16 fits the narrowest token width
        assert b.token_ids.shape[0] >= len(b.rows)
    assert OOV_ID in np.concatenate([b.token_ids[: len(b.rows), 0] for b in batches])


def test_a_small_input_is_one_group_with_every_row_as_in_groups(texts, monkeypatch):
    """Up to ONE_GROUP_ROWS texts are one padded group (one predict program per model); each row
    holds the same n-grams and tokens as in the width groups of a larger input."""
    from transferflow.text import features

    # Sentences joined into reviews of several lengths: several width groups.
    texts = [*texts, *(" ".join(texts[i : i + k]) for k in (5, 20, 60) for i in range(0, 240, k))]
    featurizer = NgramFeaturizer.fit(texts[:300])
    vocab = Vocabulary(sorted({w for t in texts[:100] for w in tokenize(t)}))
    encoder = FeatureEncoder(featurizer, vocab, max_len=256)
    [one] = encoder.encode(texts, batch_size=64)
    monkeypatch.setattr(features, "ONE_GROUP_ROWS", 0)
    grouped = encoder.encode(texts, batch_size=64)
    assert len(grouped) > 1 and sorted(one.rows.tolist()) == list(range(len(texts)))

    def row_content(batch, i):
        ids, vals = batch.ngram_ids[i], batch.ngram_values[i]
        return dict(zip(ids[ids > 0].tolist(), vals[ids > 0].tolist(), strict=True)), [
            t for t in batch.token_ids[i].tolist() if t
        ]

    at = {int(r): i for i, r in enumerate(one.rows)}
    for b in grouped:
        for i, row in enumerate(b.rows):
            assert row_content(b, i) == row_content(one, at[int(row)])


def test_one_very_long_text_does_not_pad_the_others(texts):
    """A long review among short ones keeps a group of its own: the short rows' group stays
    narrow, and no group holds more than ONE_GROUP_CELLS n-gram slots (padded rows aside)."""
    from transferflow.text import features

    short = [t for t in texts[:400] if isinstance(t, str)]
    long_text = " ".join(short * 3)  # thousands of distinct n-grams
    featurizer = NgramFeaturizer.fit([*short, long_text])
    encoder = FeatureEncoder(featurizer, Vocabulary(["good"]), max_len=64)
    rows = [*short, long_text] * 10
    batches = encoder.encode(rows, batch_size=64)
    widest = max(b.ngram_ids.shape[1] for b in batches)
    assert widest >= 4096  # the long text's own group
    for b in batches:
        assert len(b.rows) * b.ngram_ids.shape[1] <= features.ONE_GROUP_CELLS or len(b.rows) == 10
    bulk = max(batches, key=lambda b: len(b.rows))
    assert len(bulk.rows) == 10 * len(short) and bulk.ngram_ids.shape[1] < widest


@given(
    short=st.integers(0, 4000),
    short_width=st.sampled_from([64, 256, 1024]),
    wide=st.lists(st.sampled_from([64, 256, 1024, 4096, 16384, 65536]), min_size=1, max_size=96),
)
@example(short=4000, short_width=64, wide=[65536])  # one long text among thousands of short
@settings(max_examples=200, deadline=None)
def test_the_shared_group_is_the_widest_that_fits_its_slots(short, short_width, wide):
    """Invariant, on generated row widths: the shared group holds at most ONE_GROUP_CELLS n-gram
    slots, and no wider ladder width would also fit."""
    from transferflow.text.features import ONE_GROUP_CELLS, _one_group_width

    widths = np.asarray([short_width] * short + wide)
    limit = _one_group_width(widths)
    fits = [w for w in set(widths.tolist()) if (widths <= w).sum() * w <= ONE_GROUP_CELLS]
    if limit is None:
        assert not fits
    else:
        assert (widths <= limit).sum() * limit <= ONE_GROUP_CELLS and limit == max(fits)
