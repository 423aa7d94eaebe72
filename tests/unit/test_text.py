import pytest

from transferflow.text import (
    MAX_CHARS,
    OOV_ID,
    PAD_ID,
    Vocabulary,
    count_tokens,
    tokenize,
    tokenize_many,
)


def test_tokenize_lowercases_keeps_contractions_and_sentiment_punctuation():
    assert tokenize("Don't BUY it!! Worst_ever?") == [
        "don't",
        "buy",
        "it",
        "!",
        "!",
        "worst",
        "ever",
        "?",
    ]


def test_underscores_and_stray_apostrophes_split_words():
    expected = ["snake", "case", "x", "y", "rock'n'roll", "été", "ü"]
    assert tokenize("snake_case x'_y _rock'n'roll_ ÉTÉ_ü") == expected
    assert tokenize_many(["snake_case x'_y", "_rock'n'roll_ ÉTÉ_ü"]).lists() == [
        expected[:4],
        expected[4:],
    ]


def test_tokenize_non_text_and_huge_text():
    assert tokenize(None) == []  # type: ignore[arg-type]
    assert len(tokenize("a " * (MAX_CHARS * 2))) == MAX_CHARS // 2


def test_count_tokens():
    assert count_tokens(["a b", "b"]) == {"a": 1, "b": 2}


def test_vocabulary_encodes_with_padding_and_unknowns():
    vocab = Vocabulary(["good", "bad"])
    assert len(vocab) == 4
    ids = vocab.encode(["good movie", "...", "bad bad bad bad"], max_len=3)
    assert ids.tolist() == [[2, OOV_ID, PAD_ID], [OOV_ID, PAD_ID, PAD_ID], [3, 3, 3]]


def test_vocabulary_rejects_duplicates():
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["a", "a"])
