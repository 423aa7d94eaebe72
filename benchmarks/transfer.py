"""Transfer benchmark on the Multi-Domain Sentiment Dataset, run through the ``sweep`` flow: does
transfer beat what a user would do instead, at each target-label budget?

For every ordered domain pair, label budget n (balanced target training labels) and seed, the sweep
trains and scores on the target domain's ``test.csv``:

* ``transfer``      transferflow's default configuration (``RunConfig()`` defaults): source model,
                    then adapted to the n target labels;
* ``target_only``   the same architecture on the n target labels only;
* ``source_only``   the source model as is;
* ``pooled_lr``     the run's own classic baseline: NB-weighted logistic regression on pooled
                    source + target labels, as a one-member network;
* ``tfidf_target``  TF-IDF (1-2-grams) + logistic regression on the n target labels;
* ``tfidf_pooled``  TF-IDF + logistic regression on all source labels + the n target labels;
* ``nblr_pooled``   scikit-learn NB-LR (Wang & Manning 2012: binarised 1-3-grams scaled by the
                    log-count ratio, C = 1) on the pooled labels, the issue's reference peer;

(regularisation of the TF-IDF logistic regressions chosen by cross-validation on their training
labels only). Every candidate gets all n labels, as in a run; sweeps only skip the out-of-fold
fits that serve the promotion decision alone (with ``transfer.ensemble_weights: out-of-fold``,
not the default, the ensemble's members still compute theirs: its weights are chosen from them).

The unlabelled axis (``--unlabeled with,without``): ``with`` is the default run, where the target's
training rows beyond the n labelled ones serve as unlabelled texts (labels dropped; the test set is
a file of its own, so none of them is a test text) for the word vectors, the n-grams and
self-training; ``without`` runs the same grid with ``data.unlabeled_beyond_cap: false``, as if the
target file held only the n labelled rows (n = 0 is skipped there: it is ``source_only``).

    python benchmarks/transfer.py [--mdsd ../shared/data/mdsd] [--pairs books:kitchen,...]
        [--sizes 50,100,200,400,1600] [--seeds 0,1,2] [--task-runner dask] [--workers 2]
        [--text-columns title,text] [--unlabeled with|with,without]
    python benchmarks/transfer.py --summarise benchmarks/results/transfer.csv   # tables only

Prints mean ± sd tables and paired win counts; writes benchmarks/results/transfer.csv (one row per
pair, n, seed, candidate and unlabelled variant), transfer_summary.json and transfer_curve.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def compare_unlabeled(frame) -> dict | None:
    """Transfer with against without unlabelled target texts: the 12-pair means per n, their
    difference, and whether transfer rises from each budget to the next on every pair."""
    import pandas as pd

    if "unlabeled" not in frame or frame["unlabeled"].nunique() < 2:
        return None
    t = frame[frame["candidate"] == "transfer"]
    per_pair = t.groupby(["unlabeled", "n_requested", "source", "target"])["accuracy"].mean()
    means = per_pair.groupby(["unlabeled", "n_requested"]).mean().unstack("unlabeled")
    means["gain_points"] = 100 * (means["with"] - means["without"])
    print("\nTransfer, mean over pairs, with vs without unlabelled target texts (%):")
    print((means * pd.Series({"with": 100, "without": 100, "gain_points": 1})).round(2).to_string())
    return {
        int(n): {k: None if pd.isna(v) else round(float(v), 4) for k, v in row.items()}
        for n, row in means.iterrows()
    }


def report(frame, out: Path, wall: float | None) -> None:
    """Print the tables and write the summary JSON and the learning-curve plot."""
    import pandas as pd

    comparison = compare_unlabeled(frame)
    if "unlabeled" in frame:
        # The tables are of the default (with); a grid of `--unlabeled without` alone has only that.
        variant = "with" if frame["unlabeled"].eq("with").any() else frame["unlabeled"].iloc[0]
        frame = frame[frame["unlabeled"] == variant]
        print(f"\nTables below: unlabelled target texts {variant}.")

    from transferflow.experiments.summary import mean_table, plot_curves, summarise

    result = summarise(frame)
    pd.set_option("display.width", 160)
    pairs = frame.groupby(["source", "target"]).ngroups
    seeds = sorted(frame["seed"].unique().tolist())
    print(
        f"\nMean target test accuracy (%) over {pairs} pairs (± sd over pairs; each pair averaged "
        f"over seeds {seeds}):"
    )
    print(mean_table(result["table"]).to_string())
    wins = result["wins"]
    print("\nPaired wins of transfer (per pair, n, seed):")
    print(wins.drop(columns=["architecture", "strategy"]).to_string(index=False))
    print("\nPair-budget means where transfer trails its own target_only most (points):")
    print(
        result["worst_vs_target_only"]
        .drop(columns=["architecture", "strategy"])
        .to_string(index=False)
    )
    if wall is not None:
        print(f"\nwall time: {wall:.0f} s")
    plot_curves(result["table"], out / "transfer_curve.png")
    table = result["table"]
    summary = {
        "pairs": pairs,
        "seeds": seeds,
        "wall_seconds": None if wall is None else round(wall, 1),
        "mean_accuracy": {
            c: {int(r.n_requested): round(float(r["mean"]), 4) for _, r in part.iterrows()}
            for c, part in table.groupby("candidate")
        },
        "wins": wins.to_dict(orient="records"),
        "peak_rss_mb_max": float(frame["peak_rss_mb"].max()) if "peak_rss_mb" in frame else None,
        "transfer_with_vs_without_unlabeled": comparison,
        "rises_50_to_200": _rises(frame, 50, 200),
    }
    tmp = out / ".transfer_summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "transfer_summary.json")
    print(f"written {out / 'transfer_summary.json'}, {out / 'transfer_curve.png'}")


def _rises(frame, low: int, high: int) -> dict | None:
    """Per pair, whether transfer's seed mean rises from ``low`` to ``high`` labels."""
    t = frame[frame["candidate"] == "transfer"]
    if not {low, high} <= set(t["n_requested"]):
        return None
    means = t.groupby(["source", "target", "n_requested"])["accuracy"].mean().unstack()
    up = means[high] > means[low]
    return {
        "pairs": int(len(up)),
        "rising": int(up.sum()),
        "falling": sorted(f"{s}->{t_}" for (s, t_), v in up.items() if not v),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--pairs", default="all", help="'all' or comma-separated source:target")
    parser.add_argument("--sizes", default="50,100,200,400,1600")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--task-runner", default="dask", choices=["local", "dask"])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--text-columns",
        default="title,text",
        help="columns joined into the review text (default: title,text)",
    )
    parser.add_argument(
        "--unlabeled",
        default="with",
        help="with (default: the rows beyond n serve as unlabelled texts) or with,without",
    )
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        help="a setting of every run (section.field=value, as the CLI's --set), e.g. to measure "
        "an alternative to a default",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--summarise", type=Path, help="only print the tables of this results CSV")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    import pandas as pd

    if args.summarise:
        report(pd.read_csv(args.summarise), args.out, None)
        return 0
    from prefect.testing.utilities import prefect_test_harness

    from benchmarks._mdsd import mdsd_grid
    from transferflow.flows.sweep import run_sweep

    grid = mdsd_grid(
        args.mdsd,
        args.pairs,
        args.sizes,
        args.seeds,
        "mdsd-transfer",
        args.out / "sweeps",
        args.text_columns,
    )
    variants = [v.strip() for v in args.unlabeled.split(",") if v.strip()]
    if not variants or set(variants) - {"with", "without"}:
        raise SystemExit("--unlabeled: 'with', 'without' or 'with,without'")
    from transferflow.config.settings import set_dotted
    from transferflow.config.sources import parse_sets

    settings: dict = {}
    for key, value in parse_sets(args.sets):
        set_dotted(settings, key, value)
    start = time.perf_counter()
    frames = []
    # A throwaway Prefect server and database: the benchmark leaves no runs behind.
    with prefect_test_harness(server_startup_timeout=120):
        for variant in variants:
            budgets = [n for n in grid.label_budgets if n > 0 or variant == "with"]
            if not budgets:
                continue
            part = grid.model_copy(
                update={
                    "name": f"{grid.name}-{variant}-unlabeled",
                    "label_budgets": budgets,
                    "base": {
                        **settings,
                        "data": {
                            **settings.get("data", {}),
                            "unlabeled_beyond_cap": variant == "with",
                        },
                    },
                }
            )
            result = run_sweep(part, args.task_runner, args.workers)
            frames.append(pd.DataFrame(result["rows"]).assign(unlabeled=variant))
            print(f"{len(frames[-1])} rows from {result['dir']}")
    wall = time.perf_counter() - start
    frame = pd.concat(frames, ignore_index=True)
    tmp = args.out / ".transfer.csv.tmp"
    frame.to_csv(tmp, index=False)
    tmp.replace(args.out / "transfer.csv")
    report(frame, args.out, wall)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
