"""How the wide-linear adaptation was chosen: variants compared on *validation* splits of MDSD
training data (never on test.csv).

For 4 pairs (books->kitchen, dvd->electronics, electronics->books, kitchen->dvd), 400 rows of the
target's train.csv are held out as a dev set; n balanced labels are drawn from the rest. Word2Vec
is trained once on all four domains' train.csv texts + books/unlabeled.csv (no test text).
Variants: TF-IDF+LR pooled and target-only (scikit-learn, the baselines), the prior-centred refit
(Chelba & Acero), a pooled wide-linear fit, their average, feature augmentation (Daumé) and the
average of all three; each on two feature views (``wide``: TF-IDF beside the mean word vector;
``[tfidf]``: TF-IDF alone), then both views' six models averaged (the default) and the view with
the lower cross-validated log-loss.

    python benchmarks/adaptation_dev.py [--mdsd ../shared/data/mdsd] [--sizes 50,200,1000]
        [--text-columns title,text] [--min-df 2] [--no-vectors]

Prints dev accuracy per pair and the means; writes benchmarks/results/adaptation_dev.csv.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAIRS = [("books", "kitchen"), ("dvd", "electronics"), ("electronics", "books"), ("kitchen", "dvd")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mdsd", type=Path, default=REPO.parent / "shared" / "data" / "mdsd")
    parser.add_argument("--sizes", default="50,200,1000")
    parser.add_argument("--text-columns", default="text",
                        help="comma-separated columns joined into the text (e.g. title,text)")
    parser.add_argument("--min-df", type=int, default=2, help="n-gram min document frequency")
    parser.add_argument("--no-vectors", action="store_true", help="TF-IDF block only (no word vectors)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "adaptation_dev.csv")
    args = parser.parse_args()
    domains = ["books", "dvd", "electronics", "kitchen"]
    if not all((args.mdsd / d / "train.csv").is_file() for d in domains):
        print(f"MDSD data not found under {args.mdsd}; pass --mdsd", file=sys.stderr)
        return 2

    import numpy as np
    import pandas as pd
    import scipy.sparse as sp

    from transferflow.baselines import train_tfidf_lr
    from transferflow.config import EmbeddingConfig
    from transferflow.embeddings import standardisation, train_word2vec
    from transferflow.linear import WideFeatures, fit_softmax, softmax_proba, train_linear

    columns = args.text_columns.split(",")

    def read(path):
        frame = pd.read_csv(path)
        # Joined the way transferflow's loader joins data.text_columns.
        frame["text"] = frame[columns].astype("string").fillna("").agg(" ".join, axis=1)
        return frame.dropna(subset=[c for c in ("text", "label") if c in frame])

    train = {d: read(args.mdsd / d / "train.csv") for d in domains}
    corpus = [*itertools.chain(*(train[d].text for d in domains)),
              *read(args.mdsd / "books" / "unlabeled.csv").text]
    kv = train_word2vec(corpus, EmbeddingConfig(workers=1), seed=0)
    mean, sd = standardisation(kv)
    vectors = (kv.vectors - mean) / sd
    rows = []
    for source, target in PAIRS:
        shuffled = train[target].sample(frac=1, random_state=0).reset_index(drop=True)
        dev, pool = shuffled.iloc[:400], shuffled.iloc[400:]
        src = train[source]
        classes = sorted(src.label.unique())
        # Two feature views: TF-IDF beside mean word vectors ("wide", the default), TF-IDF only.
        views = {"wide": WideFeatures(kv.index_to_key, vectors, min_df=args.min_df),
                 "tfidf": WideFeatures(None, None, min_df=args.min_df)}
        if args.no_vectors:
            views = {"tfidf": views["tfidf"]}
        prepared = {}
        for view, feats in views.items():
            feats.fit([*src.text, *pool.text])
            src_model = train_linear(feats, src.text.tolist(), src.label.tolist(), classes, 0)
            prepared[view] = (feats, src_model, feats.transform(src.text.tolist()),
                              feats.transform(dev.text.tolist()))
        ys = np.array([classes.index(v) for v in src.label])
        yd = np.array([classes.index(v) for v in dev.label])
        for n in [int(x) for x in args.sizes.split(",")]:
            lab = pd.concat([pool[pool.label == c].sample(n // 2, random_state=1) for c in classes])
            both = pd.concat([src, lab])
            pipe = train_tfidf_lr(both.text.tolist(), both.label.tolist(), 0)
            acc = {"tfidf_pooled": float((pipe.predict(dev.text) == dev.label).mean())}
            own = train_tfidf_lr(lab.text.tolist(), lab.label.tolist(), 0)
            acc["tfidf_target"] = float((own.predict(dev.text) == dev.label).mean())
            yt = np.array([classes.index(v) for v in lab.label])
            y = np.concatenate([ys, yt])
            three, cv = {}, {}
            for view, (feats, src_model, Xs, Xd) in prepared.items():
                prior = train_linear(feats, lab.text.tolist(), lab.label.tolist(), classes, 0,
                                     prior=src_model)
                cv[view] = min(prior.cv_loss.values())
                p_prior = softmax_proba(Xd, prior.weights)
                Xt = feats.transform(lab.text.tolist())
                p_pool = softmax_proba(Xd, fit_softmax(sp.vstack([Xs, Xt]).tocsr(), y, 2, src_model.C))

                def zeros(X):
                    return sp.csr_matrix(X.shape)

                Xa = sp.vstack([sp.hstack([Xs, Xs, zeros(Xs)]), sp.hstack([Xt, zeros(Xt), Xt])]).tocsr()
                wa = fit_softmax(Xa, y, 2, src_model.C)
                p_aug = softmax_proba(sp.hstack([Xd, zeros(Xd), Xd]).tocsr(), wa)
                three[view] = p_prior + p_pool + p_aug
                tag = "" if view == "wide" else f"[{view}]"
                for name, p in (("prior", p_prior), ("pooled_wide", p_pool),
                                ("prior+pooled", p_prior + p_pool), ("augmented", p_aug),
                                ("prior+pooled+augmented", three[view])):
                    acc[name + tag] = float((p.argmax(1) == yd).mean())
            if len(three) == 2:
                acc["both views (6-member average)"] = float(
                    ((three["wide"] + three["tfidf"]).argmax(1) == yd).mean())
                # The view whose prior refit has the lower cross-validated log-loss on the n labels.
                pick = min(cv, key=cv.get)
                acc["view chosen by CV"] = float((three[pick].argmax(1) == yd).mean())
            for name, value in acc.items():
                rows.append({"source": source, "target": target, "n": n, "variant": name,
                             "dev_accuracy": round(value, 4)})
            print(source, target, n, {k: round(v, 4) for k, v in acc.items()}, flush=True)
    frame = pd.DataFrame(rows)
    print("\nMean dev accuracy (%) over the 4 pairs:")
    print((100 * frame.groupby(["variant", "n"]).dev_accuracy.mean().unstack()).round(2).to_string())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
