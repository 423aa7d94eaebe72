"""Sweep wall time with 1 and 2 Dask workers on the same grid (MDSD pairs x budgets x seeds).

    python benchmarks/sweep.py [--mdsd ../shared/data/mdsd] [--pairs books:kitchen,dvd:electronics]
        [--sizes 100,400] [--seeds 0,1] [--workers 1,2]

Runs the ``sweep`` flow on a Dask LocalCluster with each worker count (one thread per worker),
checks that every run gives the same metrics, prints a table and writes
benchmarks/results/sweep.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--pairs", default="books:kitchen,dvd:electronics")
    parser.add_argument("--sizes", default="100,400")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "sweep.json")
    args = parser.parse_args()
    import tempfile

    import pandas as pd
    from prefect.testing.utilities import prefect_test_harness

    from benchmarks._mdsd import mdsd_grid
    from transferflow.flows.sweep import run_sweep

    grid = mdsd_grid(
        args.mdsd,
        args.pairs,
        args.sizes,
        args.seeds,
        "sweep-bench",
        Path(tempfile.mkdtemp(prefix="tf-sweep-bench-")),
    )
    pairs = grid.resolved_pairs()
    n_points = len(pairs) * len(grid.seeds)
    runs, frames = [], []
    with prefect_test_harness(server_startup_timeout=120):
        for workers in [int(x) for x in args.workers.split(",")]:
            start = time.perf_counter()
            result = run_sweep(grid, "dask", workers)
            wall = time.perf_counter() - start
            frame = pd.DataFrame(result["rows"])
            frames.append(frame)
            runs.append(
                {
                    "workers": workers,
                    "points": n_points,
                    "wall_seconds": round(wall, 1),
                    "peak_rss_mb_per_worker": float(frame["peak_rss_mb"].max()),
                }
            )
    keys = ["source", "target", "seed", "n_requested", "candidate"]
    first = frames[0].sort_values(keys)[[*keys, "accuracy"]].reset_index(drop=True)
    same = all(
        first.equals(f.sort_values(keys)[[*keys, "accuracy"]].reset_index(drop=True))
        for f in frames[1:]
    )
    base = runs[0]["wall_seconds"]
    print(
        f"\ngrid: {len(pairs)} pairs x {len(grid.seeds)} seeds = {n_points} points, "
        f"budgets {grid.label_budgets}; identical metrics across worker counts: {same}"
    )
    print(f"{'workers':>7} {'wall s':>8} {'speed-up':>9} {'peak MiB/worker':>16}")
    for r in runs:
        r["speedup"] = round(base / r["wall_seconds"], 2)
        print(
            f"{r['workers']:>7} {r['wall_seconds']:>8.1f} {r['speedup']:>9.2f} "
            f"{r['peak_rss_mb_per_worker']:>16.0f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"runs": runs, "identical_metrics": same, "grid": grid.model_dump(mode="json")},
            indent=2,
        )
    )
    print(f"written {args.out}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
