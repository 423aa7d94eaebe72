import pytest

from transferflow.text.tokens import (
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


def test_tokenize_many_equals_the_token_regex_on_random_strings():
    """The fast tokeniser (byte table, apostrophe rule, str.split) against the regex it replaces,
    on strings made of the characters where they could disagree."""
    import random

    alphabet = list("ab Z_9'''!?.,-\t\n\x1c\x85\u00a0\u2019\u2014é\u0301ßİ٣²ⅷ中\U0001f600\x00")
    rng = random.Random(0)
    for _ in range(3000):
        texts = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
            for _ in range(rng.randint(1, 5))
        ]
        assert tokenize_many(texts).lists() == [tokenize(t) for t in texts], texts


def test_tokenize_many_equals_the_token_regex_on_every_code_point():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    texts = [
        "".join(f"a{c}b '{c}' {c}x{c}" for c in chars[i : i + 2000])
        for i in range(0, len(chars), 2000)
    ]
    assert tokenize_many(texts).lists() == [tokenize(t) for t in texts]
    # Few distinct characters take the str.replace path, many the translate path: both above.
    assert tokenize_many(["a\u2014b"]).lists() == [["a", "b"]]
