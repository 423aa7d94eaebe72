"""Every MDSD domain pair through the CLI with default settings, gates included.

Each of the 12 (source, target) pairs of the Multi-Domain Sentiment Dataset is run as a user runs
it: ``transferflow run`` in a subprocess, title + text, ``--target-train-size`` labels (default
200), a fresh artefact store and registry for the sitting. The table says, per pair, the exit code
(0: ran; 3: stopped at a gate), the time, what was dropped before training, and each candidate's
test accuracy.

    python benchmarks/mdsd_pairs.py --mdsd ../shared/data/mdsd --work /tmp/pairs

Writes ``pairs.csv`` and ``pairs.json`` into ``--work`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from itertools import permutations
from pathlib import Path

DOMAINS = ("books", "dvd", "electronics", "kitchen")


def run_pair(mdsd: Path, source: str, target: str, labels: int, work: Path) -> dict:
    """One ``transferflow run`` of ``source -> target``; its outcome as a table row."""
    cli = Path(sys.executable).with_name("transferflow")
    name = f"{source}-to-{target}"
    cmd = [
        str(cli),
        "run",
        "--source", str(mdsd / source / "train.csv"),
        "--source-test", str(mdsd / source / "test.csv"),
        "--target", str(mdsd / target / "train.csv"),
        "--target-test", str(mdsd / target / "test.csv"),
        "--text-column", "title",
        "--text-column", "text",
        "--target-train-size", str(labels),
        "--output-dir", str(work / "runs"),
        "--run-name", name,
    ]  # fmt: skip
    env = {
        **os.environ,
        "TRANSFERFLOW_CACHE_DIR": str(work / "store"),
        "TRANSFERFLOW_REGISTRY_DIR": str(work / "registry" / name),
    }
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    row = {
        "source": source,
        "target": target,
        "exit": done.returncode,
        "seconds": round(time.perf_counter() - start, 1),
    }
    metrics_file = work / "runs" / name / "metrics.json"
    if done.returncode == 0 and metrics_file.is_file():
        metrics = json.loads(metrics_file.read_text())
        for cand, m in metrics["candidates"].items():
            row[cand] = m["accuracy"]
        data = metrics.get("data", {})
        for role in ("source", "target"):
            for key in ("dropped_repeats", "dropped_test_overlap"):
                counts = data.get(role, {}).get(key) or {}
                row[f"{role}_{key}"] = counts.get("pool", 0)
        row["chosen"] = metrics.get("selection", {}).get("chosen")
    else:
        row["error"] = (done.stderr.strip().splitlines() or ["?"])[-1][:300]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=Path("../shared/data/mdsd"))
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--labels", type=int, default=200)
    parser.add_argument("--pairs", default="all", help="all, or comma-separated source:target")
    args = parser.parse_args()
    pairs = (
        list(permutations(DOMAINS, 2))
        if args.pairs == "all"
        else [tuple(p.split(":")) for p in args.pairs.split(",")]
    )
    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for source, target in pairs:
        row = run_pair(args.mdsd, source, target, args.labels, args.work)
        rows.append(row)
        print(json.dumps(row), flush=True)
    columns = sorted({k for r in rows for k in r}, key=lambda k: (k not in rows[0], k))
    with open(args.work / "pairs.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (args.work / "pairs.json").write_text(json.dumps(rows, indent=2) + "\n")
    print()
    print(f"{'pair':<24} {'exit':>4} {'s':>6} {'transfer':>9} {'target_only':>11} {'pooled_lr':>9}")
    for r in rows:
        pair = f"{r['source']} -> {r['target']}"
        acc = [r.get(k) for k in ("transfer", "target_only", "pooled_lr")]
        shown = " ".join(f"{a:>9.4f}" if a is not None else f"{'-':>9}" for a in acc)
        print(f"{pair:<24} {r['exit']:>4} {r['seconds']:>6.0f} {shown}")
    ok = sum(r["exit"] == 0 for r in rows)
    print(f"{ok} of {len(rows)} pairs ran to the end")


if __name__ == "__main__":
    main()
