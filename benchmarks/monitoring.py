"""Batch monitoring as users get it: estimated accuracy and drift on own- and other-domain batches.

For each MDSD pair (default: all 12), a default ``transferflow run`` through the CLI trains the
champion of model ``<source>-to-<target>`` (200 target labels, title + text, a seeded half of
the target's own test file as its test set); then ``transferflow score`` scores with it the other
half (the own-domain batch: the run calibrates its confidence on its test set, so those rows
would be in-sample) and the test files of the three other domains. Each batch's monitoring figures
(``<output>.monitoring.json``) are compared with the true accuracy from the test labels.

Prints a table and writes ``monitoring.csv`` and ``monitoring.json`` into ``--out``:

    python benchmarks/monitoring.py --mdsd ../shared/data/mdsd --out /tmp/monitoring
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import permutations
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DOMAINS = ("books", "dvd", "electronics", "kitchen")


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("transferflow")), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"transferflow {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--pairs", default="all", help="'all' or source:target,...")
    parser.add_argument("--target-train-size", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("monitoring-results"))
    args = parser.parse_args()
    pairs = (
        list(permutations(DOMAINS, 2))
        if args.pairs == "all"
        else [tuple(p.split(":")) for p in args.pairs.split(",")]
    )
    if not (args.mdsd / "books" / "test.csv").is_file():
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="tf-monitoring-"))
    env = {**os.environ, "TRANSFERFLOW_HOME": str(work / "home")}
    rows = []
    start = time.perf_counter()
    try:
        for source, target in pairs:
            name = f"{source}-to-{target}"
            t0 = time.perf_counter()
            # The run's test set is one half of the target's test file and its own-domain batch
            # the other: the monitoring calibration is fitted on the run's test set, so scoring
            # those rows again would measure it on the rows it was fitted on.
            test = pd.read_csv(args.mdsd / target / "test.csv")
            half = test.sample(frac=0.5, random_state=0)
            half.to_csv(work / f"{name}-run-test.csv", index=False)
            test.drop(half.index).to_csv(work / f"{name}-own-batch.csv", index=False)
            _cli(
                env,
                "run",
                "--source", str(args.mdsd / source / "train.csv"),
                "--target", str(args.mdsd / target / "train.csv"),
                "--target-test", str(work / f"{name}-run-test.csv"),
                "--target-train-size", str(args.target_train_size),
                "--text-column", "title", "--text-column", "text",
                "--model-name", name,
            )  # fmt: skip
            trained = time.perf_counter() - t0
            for domain in DOMAINS:
                batch = args.mdsd / domain / "test.csv"
                if domain == target:
                    batch = work / f"{name}-own-batch.csv"
                out = work / f"{name}--{domain}.csv"
                _cli(env, "score", "--input", str(batch), "--output", str(out),
                     "--model-name", name)  # fmt: skip
                figures = json.loads(out.with_name(f"{out.stem}.monitoring.json").read_text())
                truth = pd.read_csv(batch)["label"].astype(str)
                predicted = pd.read_csv(out)["predicted_label"].astype(str)
                true_acc = float((truth.to_numpy() == predicted.to_numpy()).mean())
                rows.append(
                    {
                        "model": name,
                        "batch": domain,
                        "own_domain": domain == target,
                        "true_accuracy": round(true_acc, 4),
                        "estimated_accuracy": figures["estimated_accuracy"],
                        "abs_error_points": round(
                            100 * abs(figures["estimated_accuracy"] - true_acc), 2
                        ),
                        "oof_accuracy": figures["accuracy"]["expected"],
                        "drift": figures["drift"]["score"],
                        "drift_alert": figures["drift"]["exceeded"],
                        "accuracy_alert": figures["accuracy"]["below_floor"],
                        "vocab_overlap": figures["vocab_overlap"],
                        "oov_rate": figures["oov_rate"],
                        "train_seconds": round(trained, 1),
                    }
                )
                print(
                    f"{name:<22} {domain:<12} true {true_acc:.4f}  est "
                    f"{figures['estimated_accuracy']:.4f}  drift {figures['drift']['score']}",
                    flush=True,
                )
    finally:
        _cli(env, "server", "stop")
    frame = pd.DataFrame(rows)
    own, other = frame[frame.own_domain], frame[~frame.own_domain]
    wins, comparisons = 0, 0
    for _, group in frame.groupby("model"):
        own_drift = float(group[group.own_domain]["drift"].iloc[0])
        for d in group[~group.own_domain]["drift"]:
            comparisons += 1
            wins += int(d > own_drift)
    summary = {
        "batches": len(frame),
        "mae_points_own_domain": round(float(own.abs_error_points.mean()), 2),
        "mae_points_other_domains": round(float(other.abs_error_points.mean()), 2),
        "drift_higher_on_other_domain": f"{wins} of {comparisons}",
        "drift_own_domain": {
            "mean": round(float(own.drift.mean()), 3),
            "max": round(float(own.drift.max()), 3),
        },
        "drift_other_domains": {
            "mean": round(float(other.drift.mean()), 3),
            "min": round(float(other.drift.min()), 3),
        },
        "drift_alerts": {
            "own_domain": int(own.drift_alert.sum()),
            "other_domains": int(other.drift_alert.sum()),
        },
        "accuracy_alerts": {
            "own_domain": int(own.accuracy_alert.sum()),
            "other_domains": int(other.accuracy_alert.sum()),
        },
        "true_minus_oof_points_other": round(
            float(100 * (other.true_accuracy - other.oof_accuracy).mean()), 2
        ),
        "wall_s": round(time.perf_counter() - start, 1),
    }
    print()
    print(frame.to_string(index=False))
    print()
    print(json.dumps(summary, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / "monitoring.csv", index=False)
    (args.out / "monitoring.json").write_text(
        json.dumps({"summary": summary, "rows": rows}, indent=2), encoding="utf-8"
    )
    print(f"written {args.out}/monitoring.csv and monitoring.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
