"""Seeded fuzzing of ``transferflow validate``: corrupted variants of a small CSV (byte flips,
truncation, shuffled or dropped columns, odd encodings), given as the labelled target or as the
target's unlabelled texts alone, must end with exit 0, 2 or 3 and a message, never a traceback,
and never change the input file."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from transferflow.flows.cli import app
from transferflow.storage.files import sha256_file

runner = CliRunner()


def _variant(rng: random.Random, clean: bytes, frame: pd.DataFrame) -> bytes:
    kind = rng.choice(["flip", "truncate", "shuffle", "drop", "encoding", "nul", "quotes"])
    if kind == "flip":
        data = bytearray(clean)
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == "truncate":
        return clean[: rng.randrange(0, len(clean))]
    if kind == "shuffle":
        cols = list(frame.columns)
        rng.shuffle(cols)
        return frame[cols].to_csv(index=False).encode()
    if kind == "drop":
        return frame.drop(columns=[rng.choice(list(frame.columns))]).to_csv(index=False).encode()
    if kind == "encoding":
        text = frame.to_csv(index=False) + "café, naïve, 日本語,1\n"
        return text.encode(
            rng.choice(["utf-16", "latin-1", "cp1252", "utf-8-sig"]), errors="replace"
        )
    if kind == "nul":
        pos = rng.randrange(len(clean))
        return clean[:pos] + b"\x00" * rng.randint(1, 50) + clean[pos:]
    pos = rng.randrange(len(clean))
    return clean[:pos] + b'"' + clean[pos:]


def _run(n: int, small_domains, tmp_path: Path, given_as: str = "--target") -> None:
    frame = pd.read_csv(small_domains["target"]).head(80)
    clean = frame.to_csv(index=False).encode()
    rng = random.Random(1234)
    for i in range(n):
        path = tmp_path / f"v{i}.csv"
        path.write_bytes(_variant(rng, clean, frame))
        before = sha256_file(path)
        result = runner.invoke(
            app, ["validate", "--source", str(small_domains["source"]), given_as, str(path)]
        )
        assert result.exit_code in (0, 2, 3), (i, result.output, result.exception)
        assert "Traceback" not in result.output, (i, result.output)
        if result.exit_code:
            assert "Error" in result.output or "failed" in result.output, (i, result.output)
        assert sha256_file(path) == before


# The file as the labelled target, or as the target's only texts (a cold start, no labels).
GIVEN_AS = ["--target", "--target-unlabeled"]


@pytest.mark.parametrize("given_as", GIVEN_AS)
def test_fuzzed_csv_never_gives_a_traceback_quick(small_domains, tmp_path, given_as):
    _run(6, small_domains, tmp_path, given_as)


@pytest.mark.slow
@pytest.mark.parametrize("given_as", GIVEN_AS)
def test_fuzzed_csv_never_gives_a_traceback(small_domains, tmp_path, given_as):
    _run(200, small_domains, tmp_path, given_as)
