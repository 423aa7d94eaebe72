import numpy as np
import pytest

from transferflow.config.settings import EmbeddingConfig
from transferflow.errors import VectorsError
from transferflow.text.embeddings import (
    auto_epochs,
    build_embeddings,
    detect_format,
    embedding_matrix,
    load_pretrained,
    load_vectors,
    save_vectors,
    vocabulary_of,
)

TEXTS = ["the food was great", "the service was bad", "great food great service"] * 5


def _write_vectors(path, header=True, lines=None):
    lines = lines or ["the 0.1 0.2 0.3", "food 0.4 0.5 0.6", "great 0.7 0.8 0.9", "zzz 1 1 1"]
    text = (f"{len(lines)} 3\n" if header else "") + "\n".join(lines) + "\n"
    path.write_text(text)
    return path


def test_word2vec_is_trained_on_texts_and_reproducible():
    cfg = EmbeddingConfig(vector_size=8, min_count=1, epochs=3)
    kv1, stats = build_embeddings(TEXTS, cfg, seed=1)
    kv2, _ = build_embeddings(TEXTS, cfg, seed=1)
    assert stats.vector_size == 8 and stats.token_coverage == 1.0
    assert kv1.index_to_key[0] in {"great", "the"}  # most frequent first
    np.testing.assert_array_equal(kv1.vectors, kv2.vectors)


def test_pretrained_formats_are_detected_and_restricted(tmp_path):
    w2v = _write_vectors(tmp_path / "v.vec")
    glove = _write_vectors(tmp_path / "glove.txt", header=False)
    assert detect_format(w2v) == "word2vec" and detect_format(glove) == "glove"
    for path in (w2v, glove):
        kv, stats = build_embeddings(TEXTS, EmbeddingConfig(pretrained_path=path), seed=0)
        assert set(kv.index_to_key) == {"the", "food", "great"}  # 'zzz' is not in the texts
        assert stats.vector_size == 3
        assert 0 < stats.token_coverage < 1


def test_binary_word2vec(tmp_path):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vector_size=3)
    kv.add_vectors(["the", "food"], np.ones((2, 3), dtype=np.float32))
    kv.save_word2vec_format(str(tmp_path / "v.bin"), binary=True)
    assert len(load_pretrained(tmp_path / "v.bin")) == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["the 0.1 0.2 0.3", "food 0.4 0.5"], "line 3 has 2 values, expected 3"),
        (["the 0.1 0.2 0.3", "food 0.4 abc 0.6"], "line 3 has a non-numeric value 'abc'"),
    ],
)
def test_malformed_vectors_name_the_line(tmp_path, lines, message):
    path = _write_vectors(tmp_path / "bad.vec", lines=lines)
    with pytest.raises(VectorsError, match=message):
        load_pretrained(path)


def test_a_table_given_as_vectors_is_named_for_what_it_is(tmp_path):
    """A CSV passed as vectors (a wrong flag value): its header line is said to have no numbers."""
    path = tmp_path / "reviews.csv"
    path.write_text("title,text,label\nGreat,works well,1\nBad,broke at once,0\n")
    with pytest.raises(VectorsError, match="line 1 has no numbers after its token 'title,text"):
        load_pretrained(path)


def test_vector_size_must_match_config(tmp_path):
    path = _write_vectors(tmp_path / "v.vec")
    with pytest.raises(VectorsError, match="3 dimensions.*vector_size = 50"):
        build_embeddings(TEXTS, EmbeddingConfig(pretrained_path=path, vector_size=50), seed=0)


def test_missing_vectors_file(tmp_path):
    with pytest.raises(VectorsError, match="not found"):
        load_pretrained(tmp_path / "nope.vec")


def test_save_load_and_matrix(tmp_path):
    kv, _ = build_embeddings(TEXTS, EmbeddingConfig(vector_size=4, min_count=1, epochs=2), seed=0)
    save_vectors(kv, tmp_path / "v.npz")
    back = load_vectors(tmp_path / "v.npz")
    assert back.index_to_key == kv.index_to_key
    matrix = embedding_matrix(back)
    assert matrix.shape == (len(kv) + 2, 4)
    assert not matrix[:2].any()  # padding and unknown rows are zero
    np.testing.assert_allclose(matrix[2:].mean(axis=0), 0, atol=1e-5)  # standardised
    assert vocabulary_of(back).ids(kv.index_to_key[0]) == [2]


def test_auto_epochs_bounds():
    assert auto_epochs(10) == 50 and auto_epochs(10**9) == 5 and auto_epochs(500_000) == 10


def test_no_tokens_cannot_train():
    with pytest.raises(VectorsError, match="No tokens"):
        build_embeddings(["...", "!!"][:0] + ["..."], EmbeddingConfig(), seed=0)
