"""Should the target rows weigh more in the ensemble's pooled NB member? The experiment behind
``fit_nb(target_weight=...)`` (issue #29: "more labels help"; docs/models.md, "Target-row weight
of the NB member").

The NB-weighted member is half of the ensemble and is fitted on pooled source + target labels, so
~1,600 source rows outweigh 50-200 target rows. This gives each target row the loss weight
``(n_source / n_target) ** g`` for ``g`` in GAMMAS (0: today's pooling; 1: both domains weigh
the same in total), and ``cv``: the ``g`` whose best ``C`` has the lowest cross-validated
log-loss on the target rows (the same folds that choose ``C``).

Not a benchmark of what users get: it calls the domain functions (``wide_deep.adapt_members``,
``nb.fit_nb``) directly, without the CLI, gates, cache or self-training, on validation splits
of MDSD *training* files (never their test.csv), as ``ensemble_weights_choice.py``: per ordered
pair and seed, the target's train.csv is split into 400 validation rows and a pool of 1,200; n
balanced labels come from the pool. The six TF-IDF members are fitted once per n; each NB
variant replaces the NB member in the default half-and-half mean.

    python benchmarks/nb_target_weight_choice.py PAIRS SIZES SEEDS OUT.jsonl
    python benchmarks/nb_target_weight_choice.py books:dvd,dvd:books 50,200,1000 0 rows.jsonl
    python benchmarks/nb_target_weight_choice.py --summarise rows.jsonl

One JSON row per pair, seed and n: validation accuracy of the ensemble and of the NB member
alone for each variant.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.ensemble_weights_choice import cli, validation_split  # noqa: E402

GAMMAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def summarise(path: Path) -> None:
    """Mean validation accuracy (%) per variant and n, paired changes against g = 0, and how
    often the ensemble falls from one n to the next (per pair-seed)."""
    df = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    print(f"{df.groupby(['source', 'target', 'seed']).ngroups} pair-seeds; rows per n:",
          df.groupby("n").size().to_dict())  # fmt: skip
    ens = [c for c in df.columns if c.startswith("ens_")]
    nb = [c for c in df.columns if c.startswith("nb_")]
    print("ensemble, validation accuracy (%):")
    print((df.groupby("n")[ens].mean() * 100).round(2).T.to_string())
    print("NB member alone (%):")
    print((df.groupby("n")[nb].mean() * 100).round(2).T.to_string())
    print("paired vs g0, points (mean ± sd):")
    for c in ens:
        d = (df[c] - df["ens_g0"]) * 100
        print(f"  {c}: " + ", ".join(
            f"n={n} {g.mean():+.2f} ± {g.std():.2f}" for n, g in d.groupby(df["n"])))  # fmt: skip
    print("chosen g (cv):", df.groupby("n")["cv_gamma"].mean().round(3).to_dict())
    sizes = sorted(df["n"].unique())
    wide = df.pivot_table(index=["source", "target", "seed"], columns="n", values=ens)
    for c in ens:
        falls = {f"{a}->{b}": int((wide[(c, b)] < wide[(c, a)]).sum())
                 for a, b in zip(sizes, sizes[1:], strict=False)}  # fmt: skip
        print(f"  falls {c}: {falls}")
    if not {50, 200} <= set(sizes):
        return
    pair_means = df.groupby(["source", "target", "n"])[ens].mean().unstack("n")
    for c in ens:
        print(f"  pairs whose seed mean falls 50->200, {c}:",
              int((pair_means[(c, 200)] < pair_means[(c, 50)]).sum()))  # fmt: skip


def run(source: str, target: str, sizes: list[int], seed: int) -> list[dict]:
    from transferflow.config.settings import ModelConfig, TransferConfig
    from transferflow.data.splits import balanced_sample
    from transferflow.models import wide_deep as wd
    from transferflow.models.nb import fit_nb
    from transferflow.models.network import stack_members
    from transferflow.models.solver import SOURCE, TARGET

    sp = validation_split(source, target, seed)
    S, V, pool, inputs, classes, y_val = sp.S, sp.V, sp.pool, sp.inputs, sp.classes, sp.y_val
    feat, mc, tc = inputs.featurizer, ModelConfig(), TransferConfig()
    out = []
    for n in sizes:
        t0 = time.time()
        lab = balanced_sample(pool, n, seed)
        fitted = wd.adapt_members(
            sp.smodel, sp.matrix, sp.src, wd.Labelled(lab.text.tolist(), lab.label.tolist()),
            transfer=tc, cfg=mc, seed=seed, oof=False,
        )  # fmt: skip
        proba, weights = fitted.model.member_proba(V.text.tolist())  # (rows, members, classes)
        y = np.array([classes.index(v) for v in [*S.label, *lab.label]])
        dom = np.r_[np.full(len(S), SOURCE), np.full(len(lab), TARGET)]
        row = {"source": source, "target": target, "n": n, "seed": seed}
        y_t = y[dom == TARGET]
        cv_loss = {}
        for g in GAMMAS:
            member, _, oof = fit_nb(
                feat, [*S.text, *lab.text], y, dom, len(classes), seed,
                grid=tuple(mc.c_grid), folds=mc.cv_folds,
                target_weight=(len(S) / len(lab)) ** g,
            )  # fmt: skip
            nb_model = wd._new(inputs, classes, [wd.NB])
            stack_members(nb_model.network, [member])
            nb_p = nb_model.member_proba(V.text.tolist())[0][:, 0, :]
            blend = np.einsum("rmc,m->rc", proba[:, :-1, :], weights[:-1]) + weights[-1] * nb_p
            key = f"g{g:g}".replace(".", "")
            row[f"ens_{key}"] = float((blend.argmax(1) == y_val).mean())
            row[f"nb_{key}"] = float((nb_p.argmax(1) == y_val).mean())
            # Held-out log-loss of the out-of-fold predictions at the chosen C: the evidence
            # a run has on its own labels.
            cv_loss[g] = float(-np.log(np.maximum(oof[np.arange(len(y_t)), y_t], 1e-12)).mean())
        best = min(GAMMAS, key=lambda g: (cv_loss[g], g))
        row["cv_gamma"] = best
        row["ens_cv"] = row[f"ens_g{best:g}".replace(".", "")]
        row["nb_cv"] = row[f"nb_g{best:g}".replace(".", "")]
        row["cv_loss"] = {f"{g:g}": round(v, 4) for g, v in cv_loss.items()}
        row["s"] = round(time.time() - t0, 1)
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


if __name__ == "__main__":
    raise SystemExit(cli(sys.argv[1:], run, summarise))
