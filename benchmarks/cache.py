"""Cache benchmark: cold run, identical warm run, and a run where only the target data changed.

Runs the transfer-learning flow in-process against one temporary Prefect server (started before
timing, so server start-up is not counted) on an MDSD pair, with a fresh artefact store.

    python benchmarks/cache.py [--mdsd ../shared/data/mdsd] [--source books] [--target kitchen]

Prints a table and writes benchmarks/results/cache.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--source", default="books")
    parser.add_argument("--target", default="kitchen")
    parser.add_argument("--target-train-size", type=int, default=200)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "cache.json")
    args = parser.parse_args()
    if not (args.mdsd / args.source / "train.csv").is_file():
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.testing.utilities import prefect_test_harness

    from flows.transfer import transfer_learning
    from transferflow.config import build_config

    work = Path(tempfile.mkdtemp(prefix="tf-cache-bench-"))
    target_train = work / "target_train.csv"
    shutil.copy(args.mdsd / args.target / "train.csv", target_train)

    def raw(name: str) -> dict:
        return {
            "data": {
                "source": {"name": args.source, "paths": [str(args.mdsd / args.source / "train.csv")]},
                "target": {"name": args.target, "paths": [str(target_train)],
                           "test_paths": [str(args.mdsd / args.target / "test.csv")]},
                "target_train_size": args.target_train_size,
            },
            "cache": {"dir": str(work / "store")},
            "output_dir": str(work / "runs"),
            "run_name": name,
        }

    def run(name: str) -> dict:
        start = time.perf_counter()
        state = transfer_learning(build_config(raw(name)), return_state=True)
        wall = time.perf_counter() - start
        metrics = state.result()["metrics"]
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        cached = sorted(r.name.rsplit("-", 1)[0] for r in runs if r.state and r.state.name == "Cached")
        durations = {r.name: round(r.total_run_time.total_seconds(), 2) for r in runs}
        return {"run": name, "wall_s": round(wall, 2), "cached_tasks": cached,
                "task_seconds": durations,
                "transfer_accuracy": metrics["candidates"]["transfer"]["accuracy"]}

    with prefect_test_harness(server_startup_timeout=120):
        rows = [run("cold"), run("warm")]
        frame = pd.read_csv(target_train)
        frame.iloc[: len(frame) - 100].to_csv(target_train, index=False)  # the target data changed
        rows.append(run("target-changed"))
    cold = rows[0]["wall_s"]
    for row in rows:
        row["ratio_to_cold"] = round(row["wall_s"] / cold, 3)
    print(f"\n{'run':<16}{'wall s':>8}{'/cold':>8}  cached tasks")
    for row in rows:
        print(f"{row['run']:<16}{row['wall_s']:>8.2f}{row['ratio_to_cold']:>8.3f}  {', '.join(row['cached_tasks'])}")
    print("\nslowest tasks of the warm run:", sorted(rows[1]["task_seconds"].items(), key=lambda kv: -kv[1])[:8])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"pair": f"{args.source}->{args.target}", "rows": rows}, indent=2))
    print(f"\nwritten {args.out}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
