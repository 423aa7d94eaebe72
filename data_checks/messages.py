"""Gate failures in plain words: what is wrong, the setting that sets the limit, what to do.

Keyed by (gate, GX expectation type, column); the GX expectation and its observed/expected values
follow each message for reference. A check without an entry here is reported by its GX name.
"""

from __future__ import annotations

_RAW = "gates.raw_input"
_ANY = "*"

# (gate, expectation, column) -> (what is wrong, setting, what to do)
MESSAGES: dict[tuple[str, str, str], tuple[str, str | None, str]] = {
    ("raw_input", "expect_column_to_exist", _ANY): (
        "a configured column is missing",
        None,
        "name the file's columns with --text-column / --label-column",
    ),
    ("raw_input", "expect_table_row_count_to_be_between", _ANY): (
        "too few rows",
        f"{_RAW}.min_rows",
        "add labelled rows, or lower the setting",
    ),
    ("raw_input", "expect_column_values_to_not_be_null", "text"): (
        "rows without text",
        f"{_RAW}.max_blank_text_share",
        "fill in or remove those rows, or raise the setting (blank rows are dropped)",
    ),
    ("raw_input", "expect_column_values_to_not_match_regex", "text"): (
        "rows whose text is blank",
        f"{_RAW}.max_blank_text_share",
        "fill in or remove those rows, or raise the setting (blank rows are dropped)",
    ),
    ("raw_input", "expect_column_values_to_not_be_null", "label"): (
        "rows without a label (empty, NaN, null and None count as missing)",
        None,
        "label those rows or remove them",
    ),
    ("raw_input", "expect_column_value_lengths_to_be_between", "text"): (
        "texts shorter or longer than allowed",
        f"{_RAW}.min_text_chars / {_RAW}.max_text_chars",
        "check those rows (a wrong delimiter or quoting can glue many rows into one), or change "
        "the limits",
    ),
    ("raw_input", "expect_compound_columns_to_be_unique", _ANY): (
        "so many rows repeat the same text with the same label that the data looks broken "
        "(a file joined to itself, an export that repeats rows)",
        f"{_RAW}.max_duplicate_share",
        "check how the file was made; below the limit repeats are dropped from training "
        "automatically (one kept), so raise the setting only if they are genuine",
    ),
    ("raw_input", "expect_column_unique_value_count_to_be_between", "label"): (
        "fewer than two classes among the training labels",
        None,
        "a classifier needs at least two labels; check the label column",
    ),
    ("raw_input", "expect_column_values_to_be_between", "count"): (
        "a class has too few training rows",
        f"{_RAW}.min_class_count",
        "add rows of that class (or a larger data.target_train_size), or lower the setting",
    ),
    ("raw_input", "expect_column_values_to_be_between", "share"): (
        "the classes are too unbalanced",
        f"{_RAW}.min_minority_share",
        "add rows of the small class, or lower the setting",
    ),
    ("raw_input", "expect_column_values_to_be_in_set", "label"): (
        "test rows carry labels the training rows do not have",
        None,
        "spell the labels the same way in the training and test files",
    ),
    ("raw_input", "expect_column_distinct_values_to_equal_set", "label"): (
        "the test labels are not the training labels",
        None,
        "spell the labels the same way in the training and test files",
    ),
    ("raw_input", "expect_column_values_to_be_in_set", "label_kind"): (
        "labels of different kinds (numbers in one domain or file, words in the other)",
        f"{_RAW}.allow_label_type_mismatch",
        "use the same label names in both domains, or set the setting to true if the label sets "
        "are meant to differ",
    ),
    ("leakage", "expect_column_values_to_be_in_set", _ANY): (
        "so many target test texts also appear in the training data that the split looks "
        "broken (a test file that copies training rows?)",
        "gates.leakage.max_overlap_share",
        "check how the test file was made; below the limit those texts are dropped from "
        "training automatically and the test set stays whole",
    ),
    ("embeddings", "expect_column_values_to_be_between", "target_coverage"): (
        "the word vectors know too few of the target's words",
        "gates.embeddings.min_target_coverage",
        "use vectors trained on similar text (or none: Word2Vec on your corpora), or lower the "
        "setting",
    ),
    ("embeddings", "expect_column_values_to_be_in_set", "vector_size"): (
        "the vectors' dimension is not the configured one",
        "embeddings.vector_size",
        "set embeddings.vector_size to the file's dimension, or leave it unset",
    ),
    ("embeddings", "expect_column_values_to_be_in_set", "finite"): (
        "the vectors file holds NaN or infinite values",
        None,
        "use another vectors file",
    ),
    ("domain_shift", "expect_column_values_to_be_between", "vocab_overlap"): (
        "source and target share few words",
        "gates.domain_shift.min_vocab_overlap",
        "check the domains are the ones you meant; transfer may help less (this run's "
        "transfer vs target-only figures say whether it did)",
    ),
    ("domain_shift", "expect_column_values_to_be_between", "label_distance"): (
        "source and target label shares differ a lot",
        "gates.domain_shift.max_label_distance",
        "check the label columns; transfer may help less (this run's transfer vs "
        "target-only figures say whether it did)",
    ),
    ("domain_shift", "expect_column_values_to_be_between", "proxy_a_distance"): (
        "a classifier tells source from target texts too easily",
        "gates.domain_shift.max_proxy_a_distance",
        "the domains are far apart, so transfer may help less (this run's transfer vs "
        "target-only figures say whether it did)",
    ),
    ("source_model", "expect_column_values_to_be_between", "source_holdout_accuracy"): (
        "the source model is barely better than guessing on held-out source data",
        "gates.source_model.min_accuracy",
        "check the source labels and texts (swapped columns?), or lower the setting",
    ),
    ("promotion", "expect_column_values_to_be_between", "transfer_chosen"): (
        "a baseline beat the transfer model",
        "gates.promotion.mode",
        "see the report's candidates table; the baseline was registered instead",
    ),
}


def plain(gate: str, expectation: str, column: str | None) -> str | None:
    """The plain-words message for a failed check, or None when there is none.

    Args:
        gate: the gate's name.
        expectation: GX expectation type.
        column: the checked column, if any.

    Returns:
        "what is wrong (limit: setting). What to do." or None.
    """
    entry = MESSAGES.get((gate, expectation, column or _ANY)) or MESSAGES.get(
        (gate, expectation, _ANY)
    )
    if entry is None:
        return None
    what, setting, todo = entry
    limit = f" (limit: {setting})" if setting else ""
    return f"{what}{limit}. To fix: {todo}."
