"""How far linear bag-of-n-gram models get on the 12 MDSD pairs with every target label (n = 1600).

Issue #29 asks transfer for >= 86 % at n = 1600. This script asks what the strongest classic
models reach there, so the gap can be read against them: scikit-learn NB-weighted logistic
regression (Wang & Manning 2012) and TF-IDF logistic regression, on pooled source + target labels
or on the target alone, over word n-gram ranges, ``min_df`` and ``C``, and plain averages of two
or three of them; and, as another representation, TF-IDF character 2-5-grams alone and averaged
with the best word model. With 1,600 labels the budget is the whole training file, so there is
no seed.

Not what users get: scikit-learn models fitted directly on MDSD's files (title and text joined
with a space, as ``text_columns: [title, text]`` does), no gates, no CLI; a ceiling to compare
the product's figures with, not a product figure.

    python benchmarks/linear_ceiling.py --mdsd ../shared/data/mdsd
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

DOMAINS = ("books", "dvd", "electronics", "kitchen")


def _load(mdsd: Path, domain: str, part: str) -> tuple[list[str], np.ndarray]:
    frame = pd.read_csv(mdsd / domain / f"{part}.csv")
    texts = (frame["title"].fillna("") + " " + frame["text"].fillna("")).str.strip().tolist()
    return texts, (frame["label"] == "positive").to_numpy().astype(int)


def nb_lr(train, y, test, ngram_max=2, min_df=1, C=1.0) -> np.ndarray:
    """P(positive) of NB-weighted LR: binarised n-grams scaled by the log-count ratio."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from transferflow.text.tokens import tokenize

    vec = CountVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, binary=True,
        ngram_range=(1, ngram_max), min_df=min_df,
    )  # fmt: skip
    X = vec.fit_transform(train)
    p = np.asarray(X[y == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(X[y == 0].sum(axis=0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    clf = LogisticRegression(C=C, max_iter=3000).fit(X.multiply(r).tocsr(), y)
    return clf.predict_proba(vec.transform(test).multiply(r).tocsr())[:, 1]


def tfidf_lr(train, y, test, ngram_max=2, min_df=2, C=10.0) -> np.ndarray:
    """P(positive) of logistic regression on sublinear TF-IDF n-grams."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from transferflow.text.tokens import tokenize

    vec = TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, sublinear_tf=True,
        ngram_range=(1, ngram_max), min_df=min_df,
    )  # fmt: skip
    clf = LogisticRegression(C=C, max_iter=3000).fit(vec.fit_transform(train), y)
    return clf.predict_proba(vec.transform(test))[:, 1]


def char_tfidf_lr(train, y, test, C=10.0) -> np.ndarray:
    """P(positive) of logistic regression on sublinear TF-IDF character 2-5-grams (within words)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2)
    clf = LogisticRegression(C=C, max_iter=3000).fit(vec.fit_transform(train), y)
    return clf.predict_proba(vec.transform(test))[:, 1]


def variants(src, sy, tgt, ty, test) -> dict[str, np.ndarray]:
    """Every model of the table: name -> P(positive) on the test texts."""
    pooled, py = src + tgt, np.concatenate([sy, ty])
    out = {}
    for ngram_max in (2, 3):
        for min_df in (1, 2):
            for C in (0.3, 1.0, 3.0):
                out[f"NB-LR pooled, 1-{ngram_max}-grams, min_df {min_df}, C {C:g}"] = nb_lr(
                    pooled, py, test, ngram_max, min_df, C
                )
    out["NB-LR target only, 1-3-grams, min_df 1, C 1"] = nb_lr(tgt, ty, test, 3, 1, 1.0)
    out["TF-IDF LR pooled, 1-2-grams, min_df 2, C 10"] = tfidf_lr(pooled, py, test)
    out["TF-IDF LR target only, 1-2-grams, min_df 2, C 10"] = tfidf_lr(tgt, ty, test)
    nb13 = out["NB-LR pooled, 1-3-grams, min_df 1, C 1"]
    out["mean of NB-LR pooled 1-3 and NB-LR target 1-3"] = (
        nb13 + out["NB-LR target only, 1-3-grams, min_df 1, C 1"]
    ) / 2
    out["mean of NB-LR pooled 1-3, NB-LR target 1-3, TF-IDF LR target"] = (
        nb13
        + out["NB-LR target only, 1-3-grams, min_df 1, C 1"]
        + out["TF-IDF LR target only, 1-2-grams, min_df 2, C 10"]
    ) / 3
    # Another representation than word n-grams, the cheapest there is: character n-grams.
    out["TF-IDF LR pooled, character 2-5-grams, min_df 2, C 10"] = char_tfidf_lr(pooled, py, test)
    out["mean of NB-LR pooled 1-2 (min_df 1, C 1) and character TF-IDF LR pooled"] = (
        out["NB-LR pooled, 1-2-grams, min_df 1, C 1"]
        + out["TF-IDF LR pooled, character 2-5-grams, min_df 2, C 10"]
    ) / 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mdsd", type=Path, default=Path("../shared/data/mdsd"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/linear_ceiling.json"))
    args = parser.parse_args()
    if not all((args.mdsd / d / "train.csv").is_file() for d in DOMAINS):
        raise SystemExit(f"MDSD data not found under {args.mdsd}; pass --mdsd")
    t0 = time.perf_counter()
    data = {d: (_load(args.mdsd, d, "train"), _load(args.mdsd, d, "test")) for d in DOMAINS}
    accuracy: dict[str, dict[str, float]] = {}
    for source, target in permutations(DOMAINS, 2):
        (src, sy), _ = data[source]
        (tgt, ty), (test, test_y) = data[target]
        for name, proba in variants(src, sy, tgt, ty, test).items():
            accuracy.setdefault(name, {})[f"{source}->{target}"] = float(
                np.mean((proba > 0.5) == test_y) * 100
            )
        print(f"{source} -> {target} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    table = sorted(((np.mean(list(v.values())), k) for k, v in accuracy.items()), reverse=True)
    print(f"\n12-pair mean test accuracy at n = 1600 (%), {time.perf_counter() - t0:.0f} s")
    for mean, name in table:
        print(f"{mean:6.2f}  {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"mean": {k: round(m, 2) for m, k in table}, "per_pair": accuracy}, indent=1)
    )
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
