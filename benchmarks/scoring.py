"""Batch-scoring throughput: 100k rows of MDSD review text scored with a registered mean-mlp model.

Trains one small model on an MDSD pair (through the real flow, cache on), then scores a file of
100,000 rows built from MDSD texts (repeated), timing `score_file` end to end (read in chunks,
tokenise, predict, write CSV).

    python benchmarks/scoring.py [--mdsd ../shared/data/mdsd] [--rows 100000]

Prints a table and writes benchmarks/results/scoring.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scoring.json")
    args = parser.parse_args()
    if not (args.mdsd / "books" / "train.csv").is_file():
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2

    from prefect.testing.utilities import prefect_test_harness

    from flows.transfer import transfer_learning
    from transferflow.config import build_config
    from transferflow.registry import Registry
    from transferflow.scoring import score_file

    work = Path(tempfile.mkdtemp(prefix="tf-score-bench-"))
    raw = {
        "data": {
            "source": {"name": "books", "paths": [str(args.mdsd / "books" / "train.csv")]},
            "target": {"name": "kitchen", "paths": [str(args.mdsd / "kitchen" / "train.csv")],
                       "test_paths": [str(args.mdsd / "kitchen" / "test.csv")]},
            "target_train_size": 200,
        },
        "baselines": {"target_only": False, "source_only": False, "tfidf_lr": False},
        "registry": {"dir": str(work / "registry")},
        "output_dir": str(work / "runs"),
    }
    with prefect_test_harness(server_startup_timeout=120):
        transfer_learning(build_config(raw))
    registry = Registry(work / "registry")
    texts = pd.concat(pd.read_csv(args.mdsd / d / "train.csv") for d in ("books", "dvd", "electronics", "kitchen"))
    texts = texts["text"].dropna()
    frame = pd.DataFrame({"id": range(args.rows), "text": [texts.iloc[i % len(texts)] for i in range(args.rows)]})
    source = work / "score_input.csv"
    frame.to_csv(source, index=False)
    rows = []
    for i in range(args.repeats):
        stats = score_file(source, work / "pred.csv", registry)
        rows.append({"repeat": i + 1, "rows": stats.rows, "seconds": round(stats.seconds, 2),
                     "rows_per_second": round(stats.rows_per_second)})
    mean_chars = int(frame["text"].str.len().mean())
    print(f"\nmodel v{stats.version} ({registry.show(stats.version)['architecture']}), "
          f"{args.rows} rows, mean {mean_chars} characters per text")
    print(f"{'repeat':>6} {'seconds':>8} {'rows/s':>9}")
    for r in rows:
        print(f"{r['repeat']:>6} {r['seconds']:>8.2f} {r['rows_per_second']:>9}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": args.rows, "mean_chars": mean_chars, "runs": rows}, indent=2))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
