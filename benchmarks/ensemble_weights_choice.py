"""How the transfer ensemble's weights should follow the evidence: the experiment behind
``transfer.ensemble_weights`` and ``transfer.weights_prior_rows`` (docs/models.md, "Ensemble
weights").

Not a benchmark of what users get: it calls the domain functions (``wide_deep.adapt_members``)
directly, without the CLI, gates, cache or self-training, on validation splits of MDSD *training*
files (never their test.csv). For each ordered pair and seed, the target's train.csv is split into
400 validation rows and a pool of 1,200; n balanced labels come from the pool (the source uses all
of its train.csv; Word2Vec and the n-grams read the source and the pool). The members are fitted
once with their out-of-fold probabilities; each weighting scheme is then applied to the members'
validation probabilities:

* ``half``: the NB member half, the six TF-IDF members the other half (the earlier default);
* ``nb_sS``: the NB member's share by MAP-EM on the out-of-fold probabilities, a prior worth
  ``S`` rows centred on one half (``S`` = 0: maximum likelihood);
* ``members_sS``: every member's weight so (seven free weights), same prior;
* ``grid_brier``, ``grid_acc``: the NB share on a grid of 0.05 by out-of-fold Brier score or
  accuracy.

    python benchmarks/ensemble_weights_choice.py PAIRS SIZES SEEDS OUT.jsonl
    python benchmarks/ensemble_weights_choice.py books:kitchen,dvd:books 50,200,1000 0 rows.jsonl
    python benchmarks/ensemble_weights_choice.py --summarise rows.jsonl

One JSON row per pair, seed and n: validation accuracy (and the NB share) of each scheme.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
MDSD = REPO.parent / "shared" / "data" / "mdsd"
STRENGTHS = (0, 5, 10, 25, 50, 100)


def load(domain: str) -> pd.DataFrame:
    f = pd.read_csv(MDSD / domain / "train.csv")
    text = (f.title.fillna("") + " " + f.text.fillna("")).str.strip()
    return pd.DataFrame({"text": text, "label": f.label.astype(str)})


def summarise(path: Path) -> None:
    """Print the mean validation accuracy (%) and NB share per scheme and label budget."""
    df = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    acc = [c for c in df.columns if c.startswith("acc_")]
    print(f"{df.groupby(['source', 'target', 'seed']).ngroups} pair-seeds; rows per n:",
          df.groupby("n").size().to_dict())  # fmt: skip
    print((df.groupby("n")[acc].mean() * 100).round(2).T.to_string())
    share = [c for c in df.columns if c.startswith("nb_share_")]
    print(df.groupby("n")[share].mean().round(3).T.to_string())
    base = df["acc_half"]
    wins = {c: f"{int(((df[c] - base) > 1e-9).sum())}/{int(((df[c] - base) < -1e-9).sum())}"
            for c in acc if c != "acc_half"}  # fmt: skip
    print("better/worse than half, rows:", wins)


def grid_schemes(oofs, y, group_ids, default) -> dict[str, np.ndarray]:
    """The NB share on a grid (0, 0.05, ..., 1) by out-of-fold Brier score and by accuracy
    (ties: the share nearest one half)."""
    g = np.asarray(group_ids)
    within = default / np.array([default[g == k].sum() for k in (0, 1)])[g]
    fam = [np.einsum("mrc,m->rc", np.stack(oofs)[g == k], within[g == k]) for k in (0, 1)]
    onehot = np.eye(fam[0].shape[1])[y]
    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    by_closeness = sorted(grid, key=lambda s: (abs(s - 0.5), s))
    brier = {s: float((((1 - s) * fam[0] + s * fam[1] - onehot) ** 2).sum(1).mean()) for s in grid}
    acc = {s: float((((1 - s) * fam[0] + s * fam[1]).argmax(1) == y).mean()) for s in grid}
    best_brier = min(by_closeness, key=lambda s: brier[s])
    best_acc = max(by_closeness, key=lambda s: acc[s])
    return {
        name: np.where(g == 1, s, 1 - s) * within
        for name, s in (("grid_brier", best_brier), ("grid_acc", best_acc))
    }


@dataclass
class Split:
    """One pair and seed on a validation split: the data, the inputs and the source model."""

    S: pd.DataFrame  # the source's train.csv
    V: pd.DataFrame  # 400 validation rows of the target's train.csv
    pool: pd.DataFrame  # the target's other 1,200 rows
    inputs: Any
    matrix: np.ndarray
    classes: list[str]
    src: Any  # the source rows as wide_deep.Labelled
    smodel: Any  # the source model
    y_val: np.ndarray


def validation_split(source: str, target: str, seed: int) -> Split:
    """The target's train.csv split into 400 validation rows and a pool; Word2Vec, the n-grams
    (source + pool) and the source model fitted with the default settings."""
    from transferflow.config.settings import EmbeddingConfig, ModelConfig
    from transferflow.models import wide_deep as wd
    from transferflow.text.embeddings import build_embeddings, embedding_matrix
    from transferflow.text.features import NgramFeaturizer

    S, T = load(source), load(target)
    rng = np.random.default_rng(seed)
    val_idx = rng.choice(len(T), 400, replace=False)
    V, pool = T.iloc[np.sort(val_idx)], T.drop(T.index[val_idx])
    mc = ModelConfig()
    kv, _ = build_embeddings([*S.text, *pool.text], EmbeddingConfig(), seed)
    tokens = list(kv.index_to_key)
    matrix = embedding_matrix(kv, tokens)
    feat = NgramFeaturizer.fit([*S.text, *pool.text], (1, mc.ngram_max), mc.min_df)
    inputs = wd.Inputs(feat, tokens, matrix, mc.max_len)
    classes = sorted(S.label.unique())
    src = wd.Labelled(S.text.tolist(), S.label.tolist())
    smodel, _ = wd.train_from_scratch(inputs, src, classes, cfg=mc, seed=seed, role="source")
    y_val = np.array([classes.index(v) for v in V.label])
    return Split(S, V, pool, inputs, matrix, classes, src, smodel, y_val)


def run(source: str, target: str, sizes: list[int], seed: int) -> list[dict]:
    from transferflow.config.settings import ModelConfig, TransferConfig
    from transferflow.data.splits import balanced_sample
    from transferflow.models import wide_deep as wd
    from transferflow.models.ensemble_weights import group_weights, groups

    sp = validation_split(source, target, seed)
    V, pool, matrix, src, smodel, y_val = sp.V, sp.pool, sp.matrix, sp.src, sp.smodel, sp.y_val
    mc, tc = ModelConfig(), TransferConfig()
    out = []
    for n in sizes:
        t0 = time.time()
        lab = balanced_sample(pool, n, seed)
        fitted = wd.adapt_members(
            smodel, matrix, src, wd.Labelled(lab.text.tolist(), lab.label.tolist()),
            transfer=tc, cfg=mc, seed=seed, oof=True,
        )  # fmt: skip
        names = fitted.model.members
        proba, _ = fitted.model.member_proba(V.text.tolist())  # (rows, members, classes)
        default = np.asarray(wd._member_weights(names))
        oofs = [np.asarray(o) for o in fitted.oofs]
        schemes = {"half": default}
        for s in STRENGTHS:
            schemes[f"nb_s{s}"] = group_weights(oofs, fitted.y, groups(names), default,
                                                strength=s)  # fmt: skip
            schemes[f"members_s{s}"] = group_weights(
                oofs, fitted.y, list(range(len(names))), default, strength=s
            )
        for name, w in grid_schemes(oofs, fitted.y, groups(names), default).items():
            schemes[name] = w
        row = {"source": source, "target": target, "n": n, "seed": seed}
        for name, w in schemes.items():
            blend = np.einsum("rmc,m->rc", proba, w)
            row[f"acc_{name}"] = float((blend.argmax(1) == y_val).mean())
            row[f"nb_share_{name}"] = round(float(w[-1]), 4)
        row["s"] = round(time.time() - t0, 1)
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def cli(argv: list[str], run, summarise) -> int:
    """``PAIRS SIZES SEEDS OUT.jsonl`` (rows appended per pair and seed, so that a stopped run
    keeps what it finished) or ``--summarise OUT.jsonl``; shared by the validation experiments."""
    if argv[0] == "--summarise":
        summarise(Path(argv[1]))
        return 0
    pairs = [p.split(":") for p in argv[0].split(",")]
    sizes = [int(x) for x in argv[1].split(",")]
    seeds = [int(x) for x in argv[2].split(",")]
    out = Path(argv[3])
    for source, target in pairs:
        for seed in seeds:
            rows = run(source, target, sizes, seed)
            with out.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:], run, summarise))
