from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.config.settings import DatasetConfig
from transferflow.data.labels import label_kind
from transferflow.data.splits import balanced_sample, stratified_split
from transferflow.data.tables import load_domain, read_table, table_format, to_text_label
from transferflow.errors import DataError


def _cfg(path: Path, **kw) -> DatasetConfig:
    return DatasetConfig(name="d", paths=[path], **kw)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "tsv"),
        ("a.parquet", "parquet"),
        ("a.jsonl", "jsonl"),
        ("a.csv.gz", "csv"),
    ],
)
def test_table_format_from_extension(name, kind):
    assert table_format(Path(name)) == kind


def test_unknown_extension_lists_supported_ones():
    with pytest.raises(DataError, match=r"extension '\.xlsx'.*\.csv"):
        table_format(Path("reviews.xlsx"))


def test_read_all_formats_gives_same_rows(tmp_path):
    frame = pd.DataFrame({"text": ["good", "bad"], "label": [1, 0]})
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    frame.to_parquet(tmp_path / "a.parquet")
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    for name in ("a.csv", "a.tsv", "a.parquet", "a.jsonl"):
        out = to_text_label(read_table(tmp_path / name), _cfg(tmp_path / name), tmp_path / name)
        assert out["text"].tolist() == ["good", "bad"], name
        assert out["label"].tolist() == ["1", "0"], name  # labels are strings everywhere


def test_csv_with_embedded_newlines_and_quotes_is_parsed(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"line one\nline two, with ""quotes""",pos\nplain,neg\n')
    out = to_text_label(read_table(path), _cfg(path), path)
    assert out["text"][0] == 'line one\nline two, with "quotes"'
    assert out["label"].tolist() == ["pos", "neg"]
    assert out["row"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"text,label\n", "no data rows"),
        (b"text,label\nok,1\n\xff\xfebad,0\n", "UTF-8 at byte offset 16 \\(line 3\\)"),
    ],
)
def test_unreadable_files_get_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_table(path)


def test_missing_file():
    with pytest.raises(DataError, match="file not found"):
        read_table(Path("/nonexistent/x.csv"))


def test_missing_columns_lists_present_ones(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("review,stars\nnice,5\n")
    with pytest.raises(DataError, match=r"missing column\(s\) 'text', 'label'.*'review', 'stars'"):
        to_text_label(read_table(path), _cfg(path), path)


@pytest.mark.parametrize("sep", [";", "|", "\t"])
def test_a_file_separated_otherwise_is_named_so(tmp_path, sep):
    """A '.csv' with another separator: whether pandas reads it as one column (the columns are
    then missing) or fails on a comma inside a text, the error says what the separator is."""
    plain, comma = tmp_path / "plain.csv", tmp_path / "comma.csv"
    plain.write_text(f"text{sep}label\nnice{sep}1\n")
    comma.write_text(f"text{sep}label\nnice{sep}1\nnice, really{sep}1\n")
    with pytest.raises(DataError, match="The header looks separated by"):
        to_text_label(read_table(plain), _cfg(plain), plain)
    with pytest.raises(DataError, match="The header looks separated by"):
        to_text_label(read_table(comma), _cfg(comma), comma)


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(
    sep=st.sampled_from([";", "|", "\t"]),
    # at least one row: a header alone is reported as such first
    texts=st.lists(
        st.text(st.sampled_from(list("ab ,;|\"'\t")), max_size=12), min_size=1, max_size=6
    ),
)
def test_any_file_separated_otherwise_names_the_separator(sep, texts):
    """Whatever the texts hold (commas, quotes, the separator itself), a '.csv' written with
    another separator fails with the separator named (as missing columns or a parse error)."""
    import tempfile

    frame = pd.DataFrame({"text": texts, "label": [1] * len(texts)})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        frame.to_csv(path, index=False, sep=sep)
        with pytest.raises(DataError, match="The header looks separated by"):
            to_text_label(read_table(path), _cfg(path), path)


def test_text_columns_are_joined_and_blank_rows_become_missing(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("title,body,label\nGreat,works well,1\n,,0\nOnly title,,1\n")
    out = to_text_label(read_table(path), _cfg(path, text_columns=["title", "body"]), path)
    assert out["text"].tolist() == ["Great works well", None, "Only title"]


def test_stratified_split_keeps_class_shares_and_is_seeded():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": ["a"] * 80 + ["b"] * 20})
    train, test = stratified_split(frame, 0.25, seed=1)
    assert len(test) == 25 and test["label"].value_counts().to_dict() == {"a": 20, "b": 5}
    assert set(train["text"]).isdisjoint(test["text"])
    again, _ = stratified_split(frame, 0.25, seed=1)
    assert again.equals(train)


def test_split_of_too_little_data_fails():
    with pytest.raises(DataError, match="too few"):
        stratified_split(pd.DataFrame({"text": ["x"], "label": ["a"]}), 0.2, seed=0)


def test_balanced_sample_spreads_over_classes_and_fills_shortfall():
    frame = pd.DataFrame(
        {"text": [f"t{i}" for i in range(60)], "label": ["a"] * 50 + ["b"] * 5 + ["c"] * 5}
    )
    out = balanced_sample(frame, 30, seed=0)
    assert len(out) == 30
    assert out["label"].value_counts().to_dict() == {"a": 20, "b": 5, "c": 5}
    assert len(balanced_sample(frame, 1000, seed=0)) == 60  # never more than there is


def test_load_domain_caps_train_but_not_test(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {"text": [f"text {i}" for i in range(200)], "label": [i % 2 for i in range(200)]}
    ).to_csv(path, index=False)
    data = load_domain(_cfg(path), test_size=0.2, seed=3, train_size=20)
    assert len(data.train) == 20 and data.train["label"].value_counts().to_dict() == {
        "0": 10,
        "1": 10,
    }
    assert len(data.test) == 40 and data.test_from_split


def test_label_kind():
    assert label_kind(pd.Series(["1", "0"])) == "numeric"
    assert label_kind(pd.Series(["positive", "0"])) == "text"


def test_malformed_jsonl_is_reported_by_line_number(tmp_path):
    import gzip

    from transferflow.data.tables import read_table
    from transferflow.errors import DataError

    body = '{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n{"text": "x" "label": 1}\n'
    (tmp_path / "a.jsonl").write_text(body)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(body.encode()))
    for name in ("a.jsonl", "b.jsonl.gz"):
        with pytest.raises(DataError, match=r"line 3 is not valid JSON"):
            read_table(tmp_path / name)


def test_exact_repeats_leave_training_but_not_the_test_set(tmp_path):
    """Real data repeats reviews (posted for several products): exact (text, label) repeats are
    dropped from the training parts after the gate, one kept, and counted; test rows stay."""
    from transferflow.data.datasets import drop_after_gate, prepare_dataset

    rows = [(f"review number {i}", str(i % 2)) for i in range(40)]
    rows += [("same review twice", "1")] * 3 + [("same text, other label", "0")]
    rows += [("same text, other label", "1")]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "train.csv", index=False)
    test = [("a test text", "1"), ("a test text", "1"), ("another", "0")]
    pd.DataFrame(test, columns=["text", "label"]).to_csv(tmp_path / "test.csv", index=False)
    cfg = DatasetConfig(
        name="d", paths=[tmp_path / "train.csv"], test_paths=[tmp_path / "test.csv"]
    )
    ref = prepare_dataset(
        cfg, role="target", test_size=0.2, seed=0, train_size=None, out_dir=tmp_path
    )
    cleaned = drop_after_gate(ref, role="target", out_dir=tmp_path)
    assert cleaned.dropped_repeats == {
        "pool": 2,
        "train": 2,
        "test": 0,
    } or cleaned.dropped_repeats == {
        "pool": 2,
        "train": 2,
    }
    assert cleaned.counts == {"pool": 43, "train": 43, "test": 3}  # conflicting labels both kept
    assert drop_after_gate(ref, role="target", out_dir=tmp_path, drop_repeats=False) is ref


def test_a_capped_label_budget_is_drawn_from_distinct_rows(tmp_path):
    from transferflow.data.tables import load_domain

    rows = [("the same", "1")] * 30 + [(f"t{i}", str(i % 2)) for i in range(30)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "d.csv", index=False)
    domain = load_domain(DatasetConfig(name="d", paths=[tmp_path / "d.csv"]), 0.2, 0, train_size=20)
    distinct = len(domain.pool.drop_duplicates(["text", "label"]))
    assert not domain.train.duplicated(["text", "label"]).any()
    assert len(domain.train) == min(20, distinct)


@given(
    st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=2, max_size=5, unique=True),
    st.data(),
)
def test_labels_that_differ_only_in_case_are_named(labels, data):
    from transferflow.data.labels import same_but_for_case

    assert same_but_for_case(labels, labels) == []
    upper = data.draw(st.lists(st.booleans(), min_size=len(labels), max_size=len(labels)))
    target = [t.upper() if u else t for t, u in zip(labels, upper, strict=True)]
    pairs = same_but_for_case(sorted(labels), sorted(target))
    assert pairs == sorted((s, s.upper()) for s, u in zip(labels, upper, strict=True) if u)
    # Another class, or one class fewer: not a spelling difference.
    assert same_but_for_case(labels, [*target, "zz"]) == []
    assert same_but_for_case(labels, target[1:]) == []


@pytest.mark.parametrize(
    ("missing", "role", "says"),
    [
        (["label"], "target", ["--label-column NAME", "--set data.target.label_column=NAME"]),
        (["body"], "source", ["--text-column NAME", "--set data.source.text_columns=[NAME, ...]"]),
        (["body", "label"], None, ["--text-column", "--label-column", "data.<source|target>."]),
    ],
)
def test_a_missing_column_error_names_the_setting_to_change(missing, role, says):
    from transferflow.data.schema import missing_columns

    message = str(missing_columns("f.csv", missing, ["review", "stars"], "label", role))
    assert "Columns present: 'review', 'stars'" in message
    assert all(s in message for s in says), message
    # only the settings of what is missing
    assert ("--label-column" in message) == ("label" in missing)
    assert ("--text-column" in message) == ("body" in missing)
