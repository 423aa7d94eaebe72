"""Texts to model inputs: tokeniser, vocabulary, n-grams and word vectors."""
