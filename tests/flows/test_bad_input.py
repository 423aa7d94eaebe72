"""The bad-input catalogue: each case ends with a clear message, a non-zero exit, no traceback, no
half-written run folder, and untouched inputs (or, for valid-but-awkward CSV, a correct parse)."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from transferflow.flows.cli import app
from transferflow.storage.files import sha256_file

runner = CliRunner()
TINY = [
    "--set",
    "embeddings.vector_size=16",
    "--set",
    "embeddings.epochs=3",
]


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _case(name: str, tmp: Path, target: pd.DataFrame) -> tuple[list[str], str]:
    """Build the input files of one case; return (extra CLI args, expected message)."""
    t = tmp / "target.csv"
    if name == "missing_file":
        return ["--target", str(tmp / "absent.csv")], "file not found"
    if name == "empty_file":
        t.write_bytes(b"")
        return ["--target", str(t)], "the file is empty"
    if name == "header_only":
        t.write_text("text,label\n")
        return ["--target", str(t)], "has a header but no data rows"
    if name == "missing_columns":
        _write(target.rename(columns={"text": "review"}), t)
        return ["--target", str(t)], "missing column(s) 'text'. Columns present: 'review', 'label'"
    if name == "semicolon_separated":  # a spreadsheet's export with ';'
        target.to_csv(t, index=False, sep=";")
        return ["--target", str(t)], "The header looks separated by ';'"
    if name == "not_utf8":
        t.write_bytes(b"text,label\ngood phone,1\n" + "caf\xe9 phone".encode("latin-1") + b",0\n")
        return ["--target", str(t)], "not valid UTF-8 at byte offset 27 (line 3)"
    if name == "blank_texts":
        bad = target.copy()
        bad.loc[bad.index[:30], "text"] = None
        _write(bad, t)
        return ["--target", str(t)], "expect_column_values_to_not_be_null on column 'text'"
    if name == "single_class":
        _write(target.assign(label=1), t)
        return ["--target", str(t)], "expect_column_unique_value_count_to_be_between"
    if name == "unseen_test_labels":
        test = target.iloc[:50].assign(label=lambda f: f.label.map({0: 0, 1: 7}))
        _write(target.iloc[50:], t)
        return [
            "--target",
            str(t),
            "--target-test",
            str(_write(test, tmp / "test.csv")),
        ], "expect_column_values_to_be_in_set on column 'label'"
    if name == "label_types":
        _write(target.assign(label=target.label.map({0: "negative", 1: "positive"})), t)
        return ["--target", str(t)], "domain target labels negative, positive: 'text'"
    if name == "duplicated_rows":
        _write(pd.concat([target, target.head(60)]), t)
        return ["--target", str(t)], "expect_compound_columns_to_be_unique"
    if name == "train_test_overlap":
        test = target.iloc[:60]
        _write(pd.concat([target.iloc[60:], test.iloc[:20]]), t)
        return [
            "--target",
            str(t),
            "--target-test",
            str(_write(test, tmp / "test.csv")),
        ], "Gate 'leakage' failed"
    if name == "malformed_vectors":
        _write(target, t)
        v = tmp / "v.vec"
        v.write_text("2 3\ngood 0.1 0.2 0.3\nphone 0.1 zero 0.3\n")
        return ["--target", str(t), "--vectors", str(v)], "line 3 has a non-numeric value 'zero'"
    if name == "vectors_wrong_length_line":
        _write(target, t)
        v = tmp / "glove.txt"
        v.write_text("good 0.1 0.2 0.3\nphone 0.1 0.3\n")
        return ["--target", str(t), "--vectors", str(v)], "line 2 has 2 values, expected 3"
    if name == "vectors_size_mismatch":
        _write(target, t)
        v = tmp / "v.vec"
        v.write_text("2 3\ngood 0.1 0.2 0.3\nphone 0.1 0.2 0.3\n")
        return [
            "--target",
            str(t),
            "--vectors",
            str(v),
            "--vector-size",
            "50",
        ], "vectors have 3 dimensions but the configuration says embeddings.vector_size = 16"
    if name == "huge_line":
        big = target.copy()
        big.loc[big.index[3], "text"] = "word " * 2_000_000  # one 10 MB line
        _write(big, t)
        return ["--target", str(t)], "expect_column_value_lengths_to_be_between on column 'text'"
    if name == "list_texts_parquet":
        p = tmp / "target.parquet"
        target.assign(text=target.text.str.split()).to_parquet(p)
        return ["--target", str(p)], "column 'text' holds lists or records, not text"
    if name == "mixed_label_kinds":
        mixed = target.astype({"label": object})
        mixed.loc[mixed.index[:40], "label"] = mixed.label[:40].map({0: "negative", 1: "positive"})
        _write(mixed, t)
        return ["--target", str(t)], "mixes number labels"
    if name == "nan_labels":
        bad = target.astype({"label": object})
        bad.loc[bad.index[:20], "label"] = "NaN"
        _write(bad, t)
        return ["--target", str(t)], "expect_column_values_to_not_be_null on column 'label'"
    if name == "duplicate_header":
        t.write_text(
            "text,label,text\n"
            + "\n".join(
                f"{x},{y},z"
                for x, y in zip(target.text.str.replace(",", " "), target.label, strict=True)
            )
            + "\n"
        )
        return ["--target", str(t)], "names column 'text' twice (columns 1 and 3)"
    if name == "same_as_source":
        return ["--target", "SOURCE"], "is both a source and a target file"
    if name == "few_unlabelled_texts_alone":  # a cold start from three texts
        u = tmp / "texts.csv"
        u.write_text("text\nGreat phone works well.\nTerrible battery.\nOkay I guess.\n")
        return ["--target-unlabeled", str(u)], "too few rows"
    if name == "source_as_unlabelled_target_texts":  # a cold start from the source's own texts
        return ["--target-unlabeled", "SOURCE"], "is both a source and a target file"
    if name == "truncated_gz":
        import gzip

        g = tmp / "target.csv.gz"
        g.write_bytes(gzip.compress(target.to_csv(index=False).encode())[:-200])
        return ["--target", str(g)], "truncated"
    if name == "output_dir_is_file":
        _write(target, t)
        (tmp / "runs-file").write_text("not a folder")
        return ["--target", str(t), "--output-dir", str(tmp / "runs-file")], "is a file"
    raise AssertionError(name)


CASES = [
    "missing_file",
    "empty_file",
    "header_only",
    "missing_columns",
    "semicolon_separated",
    "not_utf8",
    "blank_texts",
    "single_class",
    "unseen_test_labels",
    "label_types",
    "duplicated_rows",
    "train_test_overlap",
    "malformed_vectors",
    "vectors_wrong_length_line",
    "vectors_size_mismatch",
    "huge_line",
    "list_texts_parquet",
    "mixed_label_kinds",
    "nan_labels",
    "duplicate_header",
    "same_as_source",
    "source_as_unlabelled_target_texts",
    "few_unlabelled_texts_alone",
    "truncated_gz",
    "output_dir_is_file",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input(name, small_domains, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    args, message = _case(name, inputs, pd.read_csv(small_domains["target"]))
    args = [str(small_domains["source"]) if a == "SOURCE" else a for a in args]
    before = {p.name: sha256_file(p) for p in inputs.iterdir()}
    out = tmp_path / "runs"
    result = runner.invoke(
        app,
        ["run", "--source", str(small_domains["source"]), "--output-dir", str(out), *args, *TINY],
    )
    assert result.exit_code in (2, 3), result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert {p.name: sha256_file(p) for p in inputs.iterdir()} == before  # inputs untouched
    leftovers = [p.name for p in out.iterdir()] if out.is_dir() else []
    assert all(n.endswith(".failed") for n in leftovers), leftovers  # never a half-written run


def test_csv_with_embedded_newlines_and_quotes_passes_the_gates(small_domains, tmp_path):
    from transferflow.data.tables import read_table

    target = pd.read_csv(small_domains["target"])
    target.loc[0, "text"] = 'Two lines,\nand "quoted" words, all in "one" field'
    target.loc[1, "text"] = '""Double"" quotes, commas, and a\r\nCRLF'
    path = _write(target, tmp_path / "awkward.csv")
    read = read_table(path)
    assert len(read) == len(target)
    assert read.loc[0, "text"] == 'Two lines,\nand "quoted" words, all in "one" field'
    result = runner.invoke(
        app, ["validate", "--source", str(small_domains["source"]), "--target", str(path)]
    )
    assert result.exit_code == 0, result.output


def test_cache_clear_refuses_a_folder_it_did_not_make(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not a cache")
    result = runner.invoke(app, ["cache", "clear", "--cache-dir", str(folder)])
    assert result.exit_code == 2, result.output
    assert "not a transferflow store" in result.output and "nothing was deleted" in result.output
    assert (folder / "holiday.jpg").read_bytes() == b"not a cache"
    result = runner.invoke(
        app, ["cache", "prune", "--older-than", "1d", "--cache-dir", str(folder)]
    )
    assert result.exit_code == 2 and (folder / "holiday.jpg").is_file()


def test_score_never_overwrites_its_input(tmp_path):
    data = tmp_path / "a.csv"
    data.write_text("id,text\n1,great phone\n")
    before = sha256_file(data)
    result = runner.invoke(
        app,
        ["score", "--input", str(data), "--output", str(data), "--registry", str(tmp_path / "reg")],
    )
    assert result.exit_code == 2, result.output
    assert "is an input file" in result.output and "inputs are never overwritten" in result.output
    assert "Traceback" not in result.output and sha256_file(data) == before


def test_a_dead_prefect_server_is_named_before_any_work(small_domains, tmp_path):
    result = runner.invoke(
        app,
        [
            "run",
            "--source",
            str(small_domains["source"]),
            "--target",
            str(small_domains["target"]),
            "--output-dir",
            str(tmp_path / "runs"),
        ],
        env={"PREFECT_API_URL": "http://127.0.0.1:9/api"},
    )
    assert result.exit_code == 2, result.output
    assert "PREFECT_API_URL=http://127.0.0.1:9/api does not answer" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()
