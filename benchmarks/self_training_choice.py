"""How much of the unlabelled target texts should self-training label? The experiment behind
``transfer.self_training`` (docs/models.md, "Unlabelled target texts and zero labels").

Not a benchmark of what users get: it calls the domain functions (``wide_deep.adapt``) directly,
without the CLI, gates or cache, to compare shares quickly on MDSD *training* files (the rows
beyond n are the unlabelled texts) and test files.

    python benchmarks/self_training_choice.py books:kitchen,electronics:dvd 0,50,200 0.3,0.7 out.csv

Arguments: pairs, label budgets, shares of the unlabelled texts to label, output CSV. Prints the
mean test accuracy per budget and variant (``plain``: no self-training).
"""

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from transferflow.config.settings import EmbeddingConfig, ModelConfig, TransferConfig
from transferflow.data.splits import balanced_sample
from transferflow.models import wide_deep as wd
from transferflow.text.embeddings import build_embeddings, embedding_matrix
from transferflow.text.features import NgramFeaturizer

M = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "mdsd")


def load(d, part):
    f = pd.read_csv(f"{M}/{d}/{part}.csv")
    return pd.DataFrame(
        {"text": (f.title.fillna("") + " " + f.text.fillna("")).str.strip(), "label": f.label}
    )


def run(src, tgt, ns, seeds, variants):
    S, T, Tt = load(src, "train"), load(tgt, "train"), load(tgt, "test")
    mc, tc = ModelConfig(), TransferConfig()
    out = []
    for seed in seeds:
        kv, _ = build_embeddings([*S.text, *T.text], EmbeddingConfig(), seed)
        toks = list(kv.index_to_key)
        mat = embedding_matrix(kv, toks)
        feat = NgramFeaturizer.fit([*S.text, *T.text], (1, mc.ngram_max), mc.min_df)
        inputs = wd.Inputs(feat, toks, mat, mc.max_len)
        classes = sorted(S.label.unique())
        smodel, _ = wd.train_from_scratch(
            inputs,
            wd.Labelled(S.text.tolist(), S.label.tolist()),
            classes,
            cfg=mc,
            seed=seed,
            role="source",
        )
        acc0 = (
            np.array(classes)[smodel.predict_proba(Tt.text.tolist()).argmax(1)] == Tt.label
        ).mean()
        out.append(dict(src=src, tgt=tgt, n=-1, seed=seed, variant="source_only", acc=acc0))
        for n in ns:
            lab = balanced_sample(T, n, seed) if n else T.iloc[:0]
            unl = T[~T.index.isin(lab.index)].text.tolist() if n else T.text.tolist()
            for v in variants:
                t0 = time.time()
                m = v(smodel, mat, S, lab, unl, tc, mc, seed, classes)
                acc = (
                    np.array(classes)[m.predict_proba(Tt.text.tolist()).argmax(1)] == Tt.label
                ).mean()
                out.append(
                    dict(
                        src=src,
                        tgt=tgt,
                        n=n,
                        seed=seed,
                        variant=v.__name__,
                        acc=acc,
                        s=time.time() - t0,
                    )
                )
                print(out[-1], flush=True)
    return out


def L(f):
    return wd.Labelled(f.text.tolist(), f.label.tolist())


def plain(smodel, mat, S, lab, unl, tc, mc, seed, classes):
    if len(lab) == 0:
        return smodel
    return wd.adapt(smodel, mat, L(S), L(lab), transfer=tc, cfg=mc, seed=seed, oof=False)[0]


def pick(model, unl, classes, share, prior):
    p = model.predict_proba(unl)
    pred = p.argmax(1)
    conf = p.max(1)
    keep = []
    for k in range(len(classes)):
        idx = np.flatnonzero(pred == k)
        q = int(round(share * len(unl) * prior[k]))
        keep.extend(idx[np.argsort(-conf[idx], kind="stable")[:q]].tolist())
    keep = np.array(sorted(keep))
    return [unl[i] for i in keep], [classes[pred[i]] for i in keep]


def make_st(share, rounds=1):
    def st(smodel, mat, S, lab, unl, tc, mc, seed, classes):
        m = plain(smodel, mat, S, lab, unl, tc, mc, seed, classes)
        prior = (
            lab.label.value_counts(normalize=True).reindex(classes).fillna(0).values
            if len(lab) >= 20
            else np.full(len(classes), 1 / len(classes))
        )
        for _ in range(rounds):
            tx, ty = pick(m, unl, classes, share, prior)
            tgt = wd.Labelled([*lab.text, *tx], [*lab.label, *ty])
            m = wd.adapt(smodel, mat, L(S), tgt, transfer=tc, cfg=mc, seed=seed, oof=False)[0]
        return m

    st.__name__ = f"st{share}x{rounds}"
    return st


if __name__ == "__main__":
    pairs = [p.split(":") for p in sys.argv[1].split(",")]
    ns = [int(x) for x in sys.argv[2].split(",")]
    variants = [plain] + [make_st(float(s)) for s in sys.argv[3].split(",")]
    rows = []
    for s, t in pairs:
        rows += run(s, t, ns, [0], variants)
    df = pd.DataFrame(rows)
    df.to_csv(sys.argv[4], index=False)
    print(df.pivot_table(index=["n"], columns="variant", values="acc", aggfunc="mean"))
