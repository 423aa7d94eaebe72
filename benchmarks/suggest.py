"""Label-suggestion benchmark on MDSD: do the texts ``transferflow suggest`` picks buy more accuracy
than the same number of random labels?

For each ordered domain pair and seed: the source model is trained once; the target's
``train.csv`` is the unlabelled pool (its labels are held back); a balanced random start of
``--starts`` labels trains the default transfer model; each strategy then picks ``--add`` more
texts from the pool, their held-back labels are revealed, the transfer model is retrained on
start + added labels and scored on the target's ``test.csv``. Every strategy starts from the same
labels and model. Measured in-process with the domain functions the ``suggest`` and
``transfer-learning`` flows call (no Prefect server, no gates, no caching), default settings.

    python benchmarks/suggest.py [--mdsd ../shared/data/mdsd] [--pairs all|books:kitchen,...]
        [--seeds 0,1,2] [--starts 50,100] [--add 100] [--workers 2]
    python benchmarks/suggest.py --summarise benchmarks/results/suggest.csv

Prints mean ± sd tables and paired wins against random; writes benchmarks/results/suggest.csv and
suggest_summary.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from itertools import permutations
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DOMAINS = ("books", "dvd", "electronics", "kitchen")


def run_pair(
    mdsd: str, source: str, target: str, seed: int, starts: list[int], add: int, strategies
):
    """All strategies at every start size for one pair and seed; one row per (start, strategy)."""
    import numpy as np
    import pandas as pd

    from transferflow.config.settings import RunConfig
    from transferflow.data.datasets import (
        drop_after_gate,
        prepare_dataset,
        read_frame,
        with_training_rows,
    )
    from transferflow.data.tables import LABEL, TEXT
    from transferflow.data.vectors import make_embeddings
    from transferflow.evaluation.metrics import classification_metrics
    from transferflow.experiments.sweep import _release_compiled
    from transferflow.models.candidates import candidate_proba, fine_tune, load, train_source
    from transferflow.serving.suggest import STRATEGIES, suggest
    from transferflow.serving.unlabeled import model_features

    def domain(name):
        return {
            "name": name,
            "paths": [f"{mdsd}/{name}/train.csv"],
            "test_paths": [f"{mdsd}/{name}/test.csv"],
            "text_columns": ["title", "text"],
        }

    cfg = RunConfig(data={"source": domain(source), "target": domain(target)}, seed=seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tf-suggest-bench-") as tmp:
        work = Path(tmp)

        def dataset(dcfg, role, n):
            out = work / f"{role}-{n}"
            out.mkdir(exist_ok=True)
            ref = prepare_dataset(
                dcfg, role=role, test_size=0.2, seed=seed, train_size=n, out_dir=out
            )
            return drop_after_gate(ref, role=role, out_dir=out)

        t0 = time.perf_counter()
        src = dataset(cfg.data.source, "source", None)
        tgt_all = dataset(cfg.data.target, "target", None)
        emb = make_embeddings(src, tgt_all, cfg.embeddings, seed=seed, out_dir=work)
        source_model = train_source(src, tgt_all, emb, cfg.model, seed=seed, out_dir=work)
        test = read_frame(tgt_all.test)
        pool_all = read_frame(tgt_all.pool)

        def fit_and_score(tgt, out):
            out.mkdir(parents=True, exist_ok=True)
            ref = fine_tune(
                source_model, src, tgt, emb, cfg.model, cfg.transfer, seed=seed, out_dir=out,
                oof=False,
            )  # fmt: skip
            proba = candidate_proba(ref, test[TEXT].tolist())
            return ref, classification_metrics(test[LABEL].tolist(), proba, ref.labels)["accuracy"]

        for start in starts:
            tgt = dataset(cfg.data.target, "target", start)
            train = read_frame(tgt.train)
            pool = pool_all[~pool_all[TEXT].isin(set(train[TEXT]))].reset_index(drop=True)
            ref0, acc0 = fit_and_score(tgt, work / f"start-{start}")
            model0 = load(ref0)
            texts = pool[TEXT].tolist()
            proba = model0.predict_proba(texts)
            features = model_features(model0, texts)
            members = model0.member_proba(texts)
            rows.append(
                {"source": source, "target": target, "seed": seed, "start": start,
                 "strategy": "start", "labels": len(train), "accuracy": acc0, "seconds": 0.0}
            )  # fmt: skip
            for strategy in strategies or STRATEGIES:
                t1 = time.perf_counter()
                picked = suggest(proba, features, add, strategy, seed=seed, members=members)
                chosen = pool.iloc[picked.rows]
                new = with_training_rows(
                    tgt,
                    pd.concat([train, chosen], ignore_index=True),
                    role="target",
                    out_dir=work,
                    suffix=f"_{start}_{strategy}",
                )
                select_s = time.perf_counter() - t1
                _, acc = fit_and_score(new, work / f"{start}-{strategy}")
                rows.append(
                    {
                        "source": source,
                        "target": target,
                        "seed": seed,
                        "start": start,
                        "strategy": strategy,
                        "labels": len(train) + len(chosen),
                        "accuracy": acc,
                        "seconds": round(select_s, 2),
                        "positive_share": float(
                            (chosen[LABEL].astype(str) == str(sorted(tgt.labels)[-1])).mean()
                        ),
                        "mean_margin": float(np.mean(picked.margin)),
                    }
                )
        for r in rows:
            r["pair_seconds"] = round(time.perf_counter() - t0, 1)
    # A worker process runs several pairs: without this, JAX's compiled programs used up the
    # kernel's memory mappings on the 12th pair ("LLVM compilation error: Cannot allocate memory").
    _release_compiled()
    return rows


def report(frame, out: Path) -> dict:
    """Print the tables; returns the summary."""
    import pandas as pd

    from transferflow.experiments.summary import paired_counts

    pd.set_option("display.width", 160)
    pair_means = frame.groupby(["source", "target", "start", "strategy"])["accuracy"].mean()
    table = (
        pair_means.groupby(["start", "strategy"])
        .agg(["mean", "std", "count"])
        .mul({"mean": 100, "std": 100, "count": 1})
        .round(2)
    )
    print("\nTarget test accuracy (%), mean ± sd over pairs (each pair averaged over seeds):")
    print(table.to_string())
    wins = []
    for (start, strategy), part in frame.groupby(["start", "strategy"]):
        if strategy in ("random", "start"):
            continue
        rnd = frame[(frame.start == start) & (frame.strategy == "random")]
        merged = part.merge(rnd, on=["source", "target", "seed", "start"], suffixes=("", "_r"))
        diff = merged["accuracy"] - merged["accuracy_r"]
        wins.append(
            {"start": int(start), "strategy": strategy, "pair_seeds": len(diff)}
            | paired_counts(diff)
        )
    wins_frame = pd.DataFrame(wins)
    print("\nPaired against adding the same number of random labels (per pair and seed):")
    print(wins_frame.to_string(index=False))
    summary = {
        "pairs": int(frame.groupby(["source", "target"]).ngroups),
        "seeds": sorted(int(s) for s in frame["seed"].unique()),
        "mean_accuracy": {f"{int(s)}:{k}": float(v["mean"]) for (s, k), v in table.iterrows()},
        "paired": wins,
    }
    (out / "suggest_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--pairs", default="all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--starts", default="50,100")
    parser.add_argument("--add", type=int, default=100)
    parser.add_argument("--strategies", default=None, help="comma-separated (default: all)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--summarise", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import pandas as pd

    if args.summarise:
        report(pd.read_csv(args.summarise), args.out)
        return 0
    pairs = (
        list(permutations(DOMAINS, 2))
        if args.pairs == "all"
        else [tuple(p.split(":")) for p in args.pairs.split(",")]
    )
    seeds = [int(s) for s in args.seeds.split(",")]
    starts = [int(s) for s in args.starts.split(",")]
    strategies = args.strategies.split(",") if args.strategies else None
    jobs = [
        (str(args.mdsd), s, t, seed, starts, args.add, strategies)
        for seed in seeds
        for s, t in pairs
    ]
    csv = args.out / "suggest.csv"
    done: list[dict] = []
    start = time.perf_counter()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_pair, *job): job for job in jobs}
        for future in as_completed(futures):
            done.extend(future.result())
            job = futures[future]
            print(f"done {job[1]}->{job[2]} seed {job[3]} ({time.perf_counter() - start:.0f} s)")
            pd.DataFrame(done).to_csv(csv, index=False)  # partial results survive a stop
    print(f"wall time: {time.perf_counter() - start:.0f} s; written {csv}")
    report(pd.DataFrame(done), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
