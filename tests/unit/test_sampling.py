"""The bounded source sample (data.source_max_rows): files read in chunks, a seeded uniform
bottom-k sample that does not depend on row order or chunk size, row numbers that count from the
file's first data row in every chunk."""

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transferflow.config.settings import DatasetConfig, RunConfig
from transferflow.data.sampling import sample_domain_files
from transferflow.data.tables import iter_table, load_domain, read_table
from transferflow.errors import DataError


def _cfg(*paths: Path) -> DatasetConfig:
    return DatasetConfig(name="d", paths=list(paths))


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    return path


def test_the_default_is_a_bounded_sample():
    # The default configuration bounds what a run learns from; users opt out explicitly.
    assert RunConfig.model_fields["data"].annotation.model_fields["source_max_rows"].default > 0


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_chunked_reading_gives_the_whole_files_rows(tmp_path, ext):
    frame = pd.DataFrame(
        {"text": [f"text {i}" for i in range(23)], "label": ["a", "b"] * 11 + ["a"]}
    )
    path = _write(frame, tmp_path / f"d.{ext}")
    chunks = list(iter_table(path, 5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    joined = pd.concat(chunks, ignore_index=True)
    assert joined["text"].tolist() == read_table(path)["text"].tolist()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.text(min_size=1, max_size=12).filter(str.strip), min_size=1, max_size=60),
    max_rows=st.integers(1, 70),
    chunk=st.integers(1, 25),
    seed=st.integers(0, 2**40),
)
def test_the_sample_is_uniform_bottom_k_whatever_the_order_and_chunks(
    tmp_path_factory, texts, max_rows, chunk, seed
):
    folder = tmp_path_factory.mktemp("s")
    frame = pd.DataFrame({"text": texts, "label": ["x"] * len(texts)})
    one = _write(frame, folder / "a.parquet")
    kept, read = sample_domain_files([one], _cfg(one), max_rows, seed, chunk_rows=chunk)
    assert read == len(texts)
    assert len(kept) == min(max_rows, len(texts))
    # Each kept row is the file's row it names, and rows stay in file order.
    assert kept["row"].is_monotonic_increasing
    for text, row in zip(kept["text"], kept["row"], strict=True):
        assert text == texts[row - 1].strip()
    # The same rows in reverse order, read in other chunks, give the same texts (a multiset).
    back = _write(frame.iloc[::-1], folder / "b.parquet")
    again, _ = sample_domain_files([back], _cfg(back), max_rows, seed, chunk_rows=chunk + 3)
    if len(set(texts)) == len(texts):  # ties between equal texts are broken by place
        assert sorted(again["text"]) == sorted(kept["text"])
    if max_rows >= len(texts):
        assert kept["text"].tolist() == [t.strip() for t in texts]


def test_the_sample_depends_on_the_seed_and_spreads_over_the_file(tmp_path):
    frame = pd.DataFrame({"text": [f"review {i}" for i in range(2000)], "label": ["a", "b"] * 1000})
    path = _write(frame, tmp_path / "d.csv")
    a, _ = sample_domain_files([path], _cfg(path), 200, 0, chunk_rows=300)
    b, _ = sample_domain_files([path], _cfg(path), 200, 1, chunk_rows=300)
    assert set(a["text"]) != set(b["text"])
    # Uniform: both halves of the file and both labels are represented about evenly.
    assert 70 < (a["row"] <= 1000).sum() < 130
    assert 70 < (a["label"] == "a").sum() < 130


def test_several_files_are_one_population(tmp_path):
    first = _write(
        pd.DataFrame({"text": [f"a{i}" for i in range(50)], "label": "x"}), tmp_path / "a.csv"
    )
    second = _write(
        pd.DataFrame({"text": [f"b{i}" for i in range(50)], "label": "y"}), tmp_path / "b.csv"
    )
    kept, read = sample_domain_files([first, second], _cfg(first, second), 40, 3, chunk_rows=7)
    assert read == 100 and len(kept) == 40
    assert kept["file"].tolist() == sorted(kept["file"].tolist())  # file order kept
    assert {"a.csv", "b.csv"} == set(kept["file"])


def test_a_bad_row_in_a_later_chunk_is_named_by_its_row_in_the_file(tmp_path):
    labels = ["positive"] * 12 + ["1"]
    path = _write(
        pd.DataFrame({"text": [f"t{i}" for i in range(13)], "label": labels}), tmp_path / "d.csv"
    )
    with pytest.raises(DataError, match=r"number labels \(data rows 13"):
        sample_domain_files([path], _cfg(path), 5, 0, chunk_rows=4)


def test_load_domain_samples_only_when_asked_and_counts_the_rows_read(tmp_path):
    frame = pd.DataFrame({"text": [f"review {i}" for i in range(300)], "label": ["a", "b"] * 150})
    path = _write(frame, tmp_path / "d.csv")
    whole = load_domain(_cfg(path), 0.2, 0)
    sampled = load_domain(_cfg(path), 0.2, 0, max_rows=100)
    assert whole.rows_read == sampled.rows_read == 300
    assert len(whole.pool) + len(whole.test) == 300
    assert len(sampled.pool) + len(sampled.test) == 100


def test_a_source_within_the_cap_is_read_exactly_as_without_one(tmp_path):
    # Sources up to source_max_rows (every MDSD domain) give the same frames, so the same models.
    frame = pd.DataFrame(
        {
            "title": ["t"] * 60,
            "text": [f"review {i % 50}" for i in range(60)],
            "label": ["a", "b"] * 30,
        }
    )
    path = _write(frame, tmp_path / "d.csv")
    cfg = DatasetConfig(name="d", paths=[path], text_columns=["title", "text"])
    whole = load_domain(cfg, 0.2, 5, train_size=20)
    capped = load_domain(cfg, 0.2, 5, train_size=20, max_rows=60)
    for part in ("pool", "train", "test"):
        pd.testing.assert_frame_equal(getattr(whole, part), getattr(capped, part))


@pytest.mark.parametrize("ext", ["csv", "parquet", "jsonl"])
def test_a_header_only_source_is_one_clear_error_when_sampled(tmp_path, ext):
    path = _write(
        pd.DataFrame({"text": pd.Series([], dtype=str), "label": pd.Series([], dtype=str)}),
        tmp_path / f"d.{ext}",
    )
    if ext == "jsonl":
        path.write_text("")  # an empty JSON Lines file has no header to keep
    with pytest.raises(DataError, match="no data rows|empty"):
        sample_domain_files([path], _cfg(path), 10, 0, chunk_rows=4)


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=15)
_LABEL = st.one_of(st.none(), st.sampled_from(["1", "0", "2", "pos", "neg", " neg "]))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(_TEXT, _LABEL), max_size=30),
    ext=st.sampled_from(["csv", "parquet", "jsonl"]),
    chunk=st.integers(1, 12),
)
def test_a_chunked_read_gives_the_whole_reads_rows_or_its_error(tmp_path_factory, rows, ext, chunk):
    """The invariant behind the header-only and mixed-label cases: read in chunks (and sampled
    with room for every row), a file gives the rows a whole-file read gives, or a DataError
    where that one does; never another exception."""
    from transferflow.data.tables import read_domain_files

    frame = pd.DataFrame(
        {"text": [t for t, _ in rows], "label": [lab for _, lab in rows]}, dtype=object
    )
    path = _write(frame, tmp_path_factory.mktemp("c") / f"d.{ext}")
    try:
        whole: pd.DataFrame | DataError = read_domain_files([path], _cfg(path))
    except DataError as exc:
        whole = exc
    try:
        chunked: pd.DataFrame | DataError = sample_domain_files(
            [path], _cfg(path), 1000, 0, chunk_rows=chunk
        )[0]
    except DataError as exc:
        chunked = exc
    if isinstance(whole, DataError):
        assert isinstance(chunked, DataError), (whole, chunked)
    else:
        assert isinstance(chunked, pd.DataFrame), chunked
        pd.testing.assert_frame_equal(whole, chunked)
