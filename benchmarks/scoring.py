"""Batch-scoring throughput as users get it: ``transferflow score`` (the CLI, start-up included)
with
the default model on 100,000 MDSD rows (title + text), beside a bare scikit-learn TF-IDF(1-2) +
logistic regression read -> predict -> write loop on the same rows, both measured in this run.

The first timed call starts the local Prefect server (``prefect server start --background``), as a
user's first call does; later calls reuse it. Every call scores in its own process: Python, Prefect,
Keras and the model load inside the timed span.

Setup (not timed): a default ``transferflow run`` on books -> kitchen (200 labels, title + text)
registers the champion; the sklearn model is fitted on the same target labels. The input file
repeats MDSD reviews (all four domains' train.csv) to ``--rows`` rows with ``id,title,text``.

    python benchmarks/scoring.py [--mdsd ../shared/data/mdsd] [--rows 100000] [--repeats 3]

Prints a table and writes benchmarks/results/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sklearn_loop(train: pd.DataFrame, source: Path, out: Path) -> float:
    """The bare loop a practitioner would write: fit (untimed), then read -> predict -> write."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(C=10, max_iter=2000),
    )
    pipe.fit((train["title"].fillna("") + " " + train["text"].fillna("")).tolist(), train["label"])
    start = time.perf_counter()
    frame = pd.read_csv(source)
    texts = (frame["title"].fillna("") + " " + frame["text"].fillna("")).tolist()
    proba = pipe.predict_proba(texts)
    result = pd.DataFrame(proba, columns=[f"proba_{c}" for c in pipe.classes_])
    result.insert(0, "predicted_label", pipe.classes_[proba.argmax(axis=1)])
    result.insert(0, "id", frame["id"])
    result.to_csv(out, index=False, float_format="%.6f")
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--work",
        type=Path,
        help="working folder to keep (default: a new temporary one); when it already holds a "
        "registered champion and the input file, the training run is skipped; --repeats 0 "
        "only prepares it",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results" / "scoring.json"
    )
    args = parser.parse_args()
    if not (args.mdsd / "books" / "train.csv").is_file():
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2

    work = args.work or Path(tempfile.mkdtemp(prefix="tf-score-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    prepared = (work / "registry").is_dir() and (work / "score_input.csv").is_file()
    env = {
        **os.environ,
        "TRANSFERFLOW_REGISTRY_DIR": str(work / "registry"),
        "TRANSFERFLOW_CACHE_DIR": str(work / "cache"),
        "PREFECT_HOME": str(work / "prefect-home"),  # a fresh local background server
    }
    env.pop("PREFECT_API_URL", None)
    cli = [sys.executable, "-m", "transferflow.flows.cli"]
    m = args.mdsd
    kitchen = pd.read_csv(m / "kitchen" / "train.csv").groupby("label").head(100)
    source = work / "score_input.csv"
    if not prepared:
        prepare(cli, m, work, env, args.rows)
    if args.repeats == 0:
        print(f"prepared {work}")
        return 0
    frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    rows_n = len(frame)
    mean_chars = int((frame["title"] + " " + frame["text"]).str.len().mean())
    # The first timed call starts the local background server, as a user's first call would;
    # later calls reuse it (flows/local_server.py).
    subprocess.run([*cli, "server", "stop"], env=env, check=True, cwd=REPO)
    rows = []
    for i in range(args.repeats):
        start = time.perf_counter()
        subprocess.run(
            [*cli, "score", "--input", str(source), "--output", str(work / "pred.csv")],
            env=env,
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        cli_s = time.perf_counter() - start
        sk_s = sklearn_loop(kitchen, source, work / "sk.csv")
        rows.append(
            {
                "repeat": i + 1,
                "server": "started" if i == 0 else "reused",
                "transferflow_score_s": round(cli_s, 2),
                "transferflow_rows_per_s": round(rows_n / cli_s),
                "sklearn_loop_s": round(sk_s, 2),
                "sklearn_rows_per_s": round(rows_n / sk_s),
                "ratio": round(sk_s / cli_s, 2),
            }
        )
    print(
        f"\n{rows_n} rows (title + text, mean {mean_chars} characters); transferflow score = "
        "CLI subprocess with start-up; sklearn = in-process read -> predict -> write"
    )
    print(
        f"{'repeat':>6} {'server':>8} {'tf score s':>11} {'tf rows/s':>10} {'sklearn s':>10} "
        f"{'sk rows/s':>10} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['repeat']:>6} {r['server']:>8} {r['transferflow_score_s']:>11.2f} "
            f"{r['transferflow_rows_per_s']:>10} "
            f"{r['sklearn_loop_s']:>10.2f} {r['sklearn_rows_per_s']:>10} {r['ratio']:>6.2f}"
        )
    subprocess.run([*cli, "server", "stop"], env=env, check=True, cwd=REPO)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"rows": rows_n, "mean_chars": mean_chars, "runs": rows}, indent=2)
    )
    print(f"written {args.out}")
    return 0


def prepare(cli: list[str], m: Path, work: Path, env: dict, n_rows: int) -> None:
    """Register the default champion (books -> kitchen, 200 labels) and write the input file."""
    subprocess.run(
        [
            *cli,
            "run",
            "--source",
            str(m / "books" / "train.csv"),
            "--target",
            str(m / "kitchen" / "train.csv"),
            "--target-test",
            str(m / "kitchen" / "test.csv"),
            "--text-column",
            "title",
            "--text-column",
            "text",
            "--target-train-size",
            "200",
            "--output-dir",
            str(work / "runs"),
        ],
        env=env,
        check=True,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
    )
    reviews = pd.concat(
        pd.read_csv(m / d / "train.csv") for d in ("books", "dvd", "electronics", "kitchen")
    )
    reviews = reviews[["title", "text"]].reset_index(drop=True)
    frame = reviews.iloc[[i % len(reviews) for i in range(n_rows)]].reset_index(drop=True)
    frame.insert(0, "id", range(n_rows))
    frame.to_csv(work / "score_input.csv", index=False)


if __name__ == "__main__":
    raise SystemExit(main())
