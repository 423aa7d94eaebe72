"""How much weight the NB-weighted member gets in the transfer ensemble, chosen on validation
splits of MDSD *training* files (never their test.csv).

For each ordered pair, the target's train.csv is split into 400 validation rows and a pool of
1,200; n balanced labels come from the pool (the source uses all of its train.csv). The
``wide-deep`` transfer model of the time (six TF-IDF members, before the NB member) and
scikit-learn NB-LR on the pooled labels (binarised 1-2- or 1-3-grams x log-count ratio, C = 0.1
or 1) are trained through the flow's own stage functions, and their probabilities averaged with
the NB model's weight w in {1/7, 1/4, 1/2}.

    python benchmarks/nb_member_dev.py PAIRS SIZES [SEED] [OUT.jsonl]
    python benchmarks/nb_member_dev.py books:kitchen,books:dvd 50,200,1000 0 rows.jsonl
    python benchmarks/nb_member_dev.py --summarise benchmarks/results/nb_member_dev.jsonl

One JSON row per pair and n: validation accuracy of each candidate and blend. Run a few pairs per
process: JAX keeps every compiled program mapped, and eight pairs in one process reached the
kernel's mapping limit here. (This script measured the ensemble *before* the NB member became
part of it; rerun on a later commit it would blend the NB model in twice.)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MDSD = REPO.parent / "shared" / "data" / "mdsd"


def summarise(path: Path) -> None:
    """Print mean validation accuracy (%) per candidate and label budget."""
    df = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    cols = [c for c in df.columns if c not in ("source", "target", "n", "seed")]
    print(
        f"{df.groupby(['source', 'target']).ngroups} pairs; rows per n:",
        df.groupby("n").size().to_dict(),
    )
    print((df.groupby("n")[cols].mean() * 100).round(2).T.to_string())


def nb_lr(pooled: pd.DataFrame, texts: list[str], labels: list[str], ngram_max: int, C: float):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from transferflow.data.tables import LABEL, TEXT
    from transferflow.text.tokens import tokenize

    cls = sorted(set(pooled[LABEL]))
    vec = CountVectorizer(
        tokenizer=tokenize,
        lowercase=False,
        token_pattern=None,
        ngram_range=(1, ngram_max),
        binary=True,
    )
    X = vec.fit_transform(pooled[TEXT].tolist())
    y = np.array([cls.index(v) for v in pooled[LABEL]])
    p = np.asarray(X[y == 1].sum(0)).ravel() + 1
    q = np.asarray(X[y == 0].sum(0)).ravel() + 1
    r = np.log((p / p.sum()) / (q / q.sum()))
    clf = LogisticRegression(C=C, max_iter=3000).fit(X.multiply(r).tocsr(), y)
    raw = clf.predict_proba(vec.transform(texts).multiply(r).tocsr())
    return raw[:, [cls.index(label) for label in labels]]


def main(argv: list[str]) -> int:
    if argv[0] == "--summarise":
        summarise(Path(argv[1]))
        return 0
    from transferflow.config.settings import build_config
    from transferflow.data.datasets import (
        drop_after_gate,
        prepare_dataset,
        read_frame,
    )
    from transferflow.data.tables import LABEL, TEXT
    from transferflow.data.vectors import make_embeddings
    from transferflow.models.candidates import (
        candidate_proba,
        fine_tune,
        train_pooled_lr,
        train_source,
    )

    pairs = [p.split(":") for p in argv[0].split(",")]
    sizes = [int(x) for x in argv[1].split(",")]
    seed = int(argv[2]) if len(argv) > 2 else 0
    out = Path(argv[3] if len(argv) > 3 else "nb_member_dev.jsonl")
    tmp = Path(tempfile.mkdtemp(prefix="nbdev-"))
    for s, t in pairs:
        tr = pd.read_csv(MDSD / t / "train.csv")
        idx = np.random.default_rng(1000 + seed).permutation(len(tr))
        d = tmp / f"{s}-{t}"
        d.mkdir()
        tr.iloc[idx[400:]].to_csv(d / "train.csv", index=False)  # pool
        tr.iloc[idx[:400]].to_csv(d / "test.csv", index=False)  # validation rows
        cols = ["title", "text"]
        cfg = build_config(
            {
                "seed": seed,
                "data": {
                    "source": {
                        "name": s,
                        "paths": [str(MDSD / s / "train.csv")],
                        "test_paths": [str(MDSD / s / "test.csv")],
                        "text_columns": cols,
                    },
                    "target": {
                        "name": t,
                        "paths": [str(d / "train.csv")],
                        "test_paths": [str(d / "test.csv")],
                        "text_columns": cols,
                    },
                },
            }
        )
        work = d / "w"
        work.mkdir()

        def dataset(c, role, n, work=work, cfg=cfg):
            o = work / f"{role}-{n}"
            o.mkdir(exist_ok=True)
            ref = prepare_dataset(
                c, role=role, test_size=cfg.data.test_size, seed=seed, train_size=n, out_dir=o
            )
            return drop_after_gate(ref, role=role, out_dir=o)

        t0 = time.time()
        src, tgt_all = (
            dataset(cfg.data.source, "source", None),
            dataset(cfg.data.target, "target", None),
        )
        emb = make_embeddings(src, tgt_all, cfg.embeddings, seed=seed, out_dir=work)
        sm = train_source(src, tgt_all, emb, cfg.model, seed=seed, out_dir=work)
        print(f"{s}->{t} shared {time.time() - t0:.0f}s", flush=True)
        test = read_frame(tgt_all.test)
        texts, truth = test[TEXT].tolist(), np.array(test[LABEL].tolist())
        src_train = read_frame(src.train)
        for n in sizes:
            tgt = dataset(cfg.data.target, "target", n)
            o = work / f"m-{n}"
            o.mkdir()
            labels = tgt.labels
            ref = fine_tune(
                sm, src, tgt, emb, cfg.model, cfg.transfer, seed=seed, out_dir=o, oof=False
            )
            P = {"transfer": candidate_proba(ref, texts)}
            pooled = pd.concat([src_train, read_frame(tgt.train)], ignore_index=True)
            for ng in (2, 3):
                for C in (0.1, 1.0):
                    P[f"nb{ng}_C{C}"] = nb_lr(pooled, texts, labels, ng, C)
            P["pooled_lr"] = candidate_proba(
                train_pooled_lr(src, tgt, emb, cfg.model, seed=seed, out_dir=o), texts
            )
            for w in (1 / 7, 1 / 4, 1 / 2):
                for ng in (3, 2):
                    P[f"T+nb{ng}C1_w{w:.2f}"] = (1 - w) * P["transfer"] + w * P[f"nb{ng}_C1.0"]
            row = {"source": s, "target": t, "n": n, "seed": seed}
            row.update(
                {k: float(np.mean(np.array(labels)[p.argmax(1)] == truth)) for k, p in P.items()}
            )
            print(json.dumps(row), flush=True)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    summarise(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
