"""Transfer benchmark on the Multi-Domain Sentiment Dataset: does transfer beat what a user would do
instead, at each target-label budget?

For every ordered domain pair, label budget n (balanced target training labels) and seed, trains

* ``transfer``      transferflow's default configuration (``RunConfig()`` defaults): source model,
                    then adapted to the n target labels;
* ``target_only``   the same architecture on the n target labels only;
* ``source_only``   the source model as is;
* ``tfidf_target``  TF-IDF (1-2-grams) + logistic regression on the n target labels;
* ``tfidf_pooled``  TF-IDF + logistic regression on all source labels + the n target labels;

(regularisation of the logistic regressions chosen by cross-validation on their training labels)
and reports accuracy on the target domain's ``test.csv``. Every candidate gets all n labels: the
benchmark calls transferflow's stage functions directly, without the flow's validation hold-out
(which only serves the promotion decision).

    python benchmarks/transfer.py [--mdsd ../shared/data/mdsd] [--pairs books:kitchen,...]
        [--sizes 50,100,200,400,1600] [--seeds 0,1,2] [--jobs 2]

Prints mean ± sd tables and paired win counts; writes benchmarks/results/transfer.csv (one row per
pair, n, seed and candidate; rows already there are reused, so an interrupted run resumes),
transfer_summary.json and transfer_curve.png.
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
CANDIDATES = ("transfer", "target_only", "source_only", "tfidf_target", "tfidf_pooled")


def _limit_threads() -> None:
    # One process per core: BLAS/XLA pools inside each would oversubscribe the machine.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def run_pair(mdsd: str, source: str, target: str, sizes: list[int], seed: int) -> list[dict]:
    """All label budgets of one (pair, seed): shared vectors and source model, then each n."""
    _limit_threads()
    import numpy as np
    import pandas as pd

    from transferflow.baselines import tfidf_proba, train_tfidf_lr
    from transferflow.config import DatasetConfig, RunConfig
    from transferflow.data import LABEL, TEXT
    from transferflow.pipeline import (
        candidate_proba,
        drop_blank_texts,
        fine_tune,
        make_embeddings,
        prepare_dataset,
        read_frame,
        train_source,
        train_target_only,
    )

    root = Path(mdsd)
    defaults = RunConfig(data={"source": {"name": source, "paths": [root / source / "train.csv"]},
                               "target": {"name": target, "paths": [root / target / "train.csv"]}})
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        work = Path(tmp)

        def dataset(domain: str, role: str, n: int | None):
            cfg = DatasetConfig(name=domain, paths=[root / domain / "train.csv"],
                                test_paths=[root / domain / "test.csv"])
            out = work / f"{role}-{n}"
            out.mkdir(exist_ok=True)
            ref = prepare_dataset(cfg, role=role, test_size=0.2, seed=seed, train_size=n,
                                  out_dir=out)
            # as the flow does after its raw-input gate (MDSD has a few empty reviews)
            return drop_blank_texts(ref, role=role, out_dir=out)

        start = time.perf_counter()
        src = dataset(source, "source", None)
        tgt_all = dataset(target, "target", None)
        emb = make_embeddings(src, tgt_all, defaults.embeddings, seed=seed, out_dir=work)
        source_model = train_source(src, emb, defaults.model, seed=seed, out_dir=work, target=tgt_all)
        shared_seconds = time.perf_counter() - start
        src_train = read_frame(src.train)
        test = read_frame(tgt_all.test)
        texts, truth = test[TEXT].tolist(), np.asarray(test[LABEL].tolist(), dtype=object)

        def accuracy(proba, labels) -> float:
            return float((np.asarray(labels, dtype=object)[proba.argmax(axis=1)] == truth).mean())

        for n in sizes:
            tgt = dataset(target, "target", n)
            train = read_frame(tgt.train)
            out = work / f"models-{n}"
            out.mkdir()
            t0 = time.perf_counter()
            models = {
                "transfer": fine_tune(source_model, src, tgt, emb, defaults.model, defaults.transfer,
                                      seed=seed, out_dir=out),
                "target_only": train_target_only(tgt, emb, defaults.model, seed=seed, out_dir=out),
                "source_only": source_model,
            }
            scores = {name: accuracy(candidate_proba(ref, texts, defaults.model), ref.labels)
                      for name, ref in models.items()}
            seconds = {"transfer": time.perf_counter() - t0}
            for name, frame in (("tfidf_target", train),
                                ("tfidf_pooled", pd.concat([src_train, train], ignore_index=True))):
                t1 = time.perf_counter()
                pipe = train_tfidf_lr(frame[TEXT].tolist(), frame[LABEL].tolist(), seed)
                scores[name] = accuracy(tfidf_proba(pipe, texts, tgt.labels), tgt.labels)
                seconds[name] = time.perf_counter() - t1
            for name in CANDIDATES:
                rows.append({"source": source, "target": target, "n": int(len(train)), "n_requested": n,
                             "seed": seed, "candidate": name, "accuracy": round(scores[name], 4),
                             "seconds": round(seconds.get(name, 0.0), 2),
                             "shared_seconds": round(shared_seconds, 2)})
    return rows


def summarise(frame):  # -> dict
    """Mean ± sd per candidate and n, and paired wins of transfer against each other candidate."""
    import pandas as pd

    per_pair = frame.groupby(["candidate", "n_requested", "source", "target"])["accuracy"].mean()
    table = per_pair.groupby(["candidate", "n_requested"]).agg(["mean", "std", "count"]).reset_index()
    wide = frame.pivot_table(index=["source", "target", "n_requested", "seed"], columns="candidate",
                             values="accuracy")
    wins = []
    for other in [c for c in CANDIDATES if c != "transfer" and c in wide]:
        for n, part in wide.groupby(level="n_requested"):
            diff = part["transfer"] - part[other]
            wins.append({"vs": other, "n": int(n), "wins": int((diff > 0).sum()),
                         "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum()),
                         "mean_gain_points": round(100 * float(diff.mean()), 2)})
    pair_gap = (per_pair.loc["transfer"] - per_pair.loc["target_only"]).reset_index()
    worst = pair_gap.sort_values("accuracy").head(5)
    return {"table": table, "wins": pd.DataFrame(wins), "worst_vs_target_only": worst}


def plot(table, path: Path) -> None:
    """Learning curves: mean accuracy (over pairs) against target labels, one line per candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for name, part in table.groupby("candidate"):
        part = part.sort_values("n_requested")
        ax.errorbar(part["n_requested"], 100 * part["mean"], yerr=100 * part["std"].fillna(0),
                    label=name, marker="o", capsize=3, linewidth=2 if name == "transfer" else 1)
    ax.set_xscale("log")
    sizes = sorted(table["n_requested"].unique())
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("target training labels")
    ax.set_ylabel("target test accuracy (%), mean over pairs")
    ax.set_title("MDSD: transfer vs baselines")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--pairs", default="all", help="'all' or comma-separated source:target")
    parser.add_argument("--sizes", default="50,100,200,400,1600")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    if not all((args.mdsd / d / "train.csv").is_file() for d in DOMAINS):
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2
    pairs = (list(permutations(DOMAINS, 2)) if args.pairs == "all"
             else [tuple(p.split(":")) for p in args.pairs.split(",")])
    bad = [p for p in pairs if len(p) != 2 or not set(p) <= set(DOMAINS) or p[0] == p[1]]
    if bad:
        print(f"--pairs: {bad} are not source:target pairs of {DOMAINS}", file=sys.stderr)
        return 2
    sizes = [int(x) for x in args.sizes.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]

    import pandas as pd

    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "transfer.csv"
    done = pd.read_csv(csv) if csv.is_file() else pd.DataFrame()
    have = set() if done.empty else set(zip(done.source, done.target, done.seed, done.n_requested))
    todo = [(s, t, seed, [n for n in sizes if (s, t, seed, n) not in have])
            for s, t in pairs for seed in seeds]
    todo = [job for job in todo if job[3]]
    print(f"{len(todo)} (pair, seed) jobs to run on {args.jobs} process(es); "
          f"{len(have)} (pair, seed, n) results reused from {csv}")
    start = time.perf_counter()
    frames = [done] if not done.empty else []
    if todo:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_pair, str(args.mdsd), s, t, ns, seed): (s, t, seed)
                       for s, t, seed, ns in todo}
            for i, fut in enumerate(as_completed(futures), 1):
                rows = pd.DataFrame(fut.result())
                frames.append(rows)
                tmp = csv.with_suffix(".tmp")
                pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)
                tmp.replace(csv)  # after every job, so an interrupted run resumes
                s, t, seed = futures[fut]
                print(f"[{i}/{len(todo)}] {s}->{t} seed {seed} done "
                      f"({time.perf_counter() - start:.0f} s elapsed)", flush=True)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame.apply(lambda r: (r.source, r.target) in pairs and r.seed in seeds
                              and r.n_requested in sizes, axis=1)]
    result = summarise(frame)
    table = result["table"]
    pd.set_option("display.width", 160)
    means = table.pivot(index="candidate", columns="n_requested", values="mean").loc[list(CANDIDATES)]
    sds = table.pivot(index="candidate", columns="n_requested", values="std").loc[list(CANDIDATES)]
    pretty = means.copy().astype(object)
    for c in pretty.index:
        for n in pretty.columns:
            pretty.loc[c, n] = f"{100 * means.loc[c, n]:.1f} ± {100 * (sds.fillna(0)).loc[c, n]:.1f}"
    print(f"\nMean target test accuracy (%) over {frame.groupby(['source', 'target']).ngroups} pairs "
          f"(± sd over pairs; each pair averaged over seeds {seeds}):")
    print(pretty.to_string())
    print("\nPaired wins of transfer (per pair, n, seed):")
    print(result["wins"].to_string(index=False))
    print("\nPairs where transfer trails its own target_only most (points):")
    worst = result["worst_vs_target_only"].assign(points=lambda d: (100 * d.accuracy).round(2))
    print(worst.drop(columns="accuracy").to_string(index=False))
    wall = time.perf_counter() - start
    print(f"\nwall time this invocation: {wall:.0f} s")
    plot(table, args.out / "transfer_curve.png")
    summary = {"pairs": [list(p) for p in pairs], "sizes": sizes, "seeds": seeds,
               "mean_accuracy": {c: {int(k): round(float(v), 4) for k, v in means.loc[c].items()}
                                 for c in means.index},
               "wins": result["wins"].to_dict(orient="records"), "wall_seconds": round(wall, 1)}
    (args.out / "transfer_summary.json").write_text(json.dumps(summary, indent=2))
    print(f"written {csv}, {args.out / 'transfer_summary.json'}, {args.out / 'transfer_curve.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
