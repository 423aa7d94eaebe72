"""The pipeline's stages as plain functions: read references, compute, write artefacts, return
references. Prefect tasks wrap these one-to-one; they can equally be called from a notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferflow.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef, write_artifact
from transferflow.config import (
    BaselineConfig,
    DatasetConfig,
    EmbeddingConfig,
    ModelConfig,
    TransferConfig,
)
from transferflow.data import LABEL, TEXT, label_kind, load_domain
from transferflow.files import local_copy, sha256_file, write_json_atomic, write_text_atomic
from transferflow.models import EpochCallback

CANDIDATE_ORDER = ["transfer", "target_only", "source_only", "tfidf_lr"]


def read_frame(ref) -> pd.DataFrame:
    """Read a verified Parquet artefact."""
    return pd.read_parquet(ref.verified_path())


def _write_frame(frame: pd.DataFrame, path: Path):
    return write_artifact(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _label_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(frame[LABEL].value_counts(dropna=True).items())}


def _dataset_ref(name: str, frames: dict[str, pd.DataFrame], role: str, out_dir: Path,
                 suffix: str = "", **fields: Any) -> DatasetRef:
    parts = {
        part: _write_frame(frame, out_dir / f"{role}_{part}{suffix}.parquet")
        for part, frame in frames.items()
    }
    return DatasetRef(
        name=name,
        parts=parts,
        counts={part: len(frame) for part, frame in frames.items()},
        labels=sorted(_label_counts(frames["train"])),
        label_counts={part: _label_counts(frame) for part, frame in frames.items()},
        **fields,
    )


def prepare_dataset(
    cfg: DatasetConfig,
    *,
    role: str,
    test_size: float,
    seed: int,
    train_size: int | None,
    out_dir: Path,
    val_size: float | None = None,
) -> DatasetRef:
    """Read one domain's files, split and cap them, and store the parts as Parquet.

    Args:
        cfg: the domain's files and columns.
        role: ``source`` or ``target`` (names the files).
        test_size: test share when there is no test file.
        seed: random seed.
        train_size: optional balanced cap on labelled training rows.
        out_dir: folder for the artefacts.
        val_size: optional share of the labelled rows held out as validation split.

    Returns:
        A reference to the prepared data with its label summary and input hashes.
    """
    domain = load_domain(
        cfg, test_size=test_size, seed=seed, train_size=train_size, val_size=val_size
    )
    frames = {"pool": domain.pool, "train": domain.train, "test": domain.test}
    if domain.val is not None:
        frames["val"] = domain.val
    return _dataset_ref(
        cfg.name,
        frames,
        role,
        out_dir,
        test_from_split=domain.test_from_split,
        label_kind=label_kind(domain.pool[LABEL]),
        input_sha256={str(p): sha256_file(local_copy(p)) for p in [*cfg.paths, *cfg.test_paths]},
    )


def drop_blank_texts(data: DatasetRef, *, role: str, out_dir: Path) -> DatasetRef:
    """Remove rows whose text is missing or blank (after the gate has checked their share).

    Args:
        data: validated domain data.
        role: ``source`` or ``target`` (names the files).
        out_dir: folder for the cleaned artefacts.

    Returns:
        ``data`` itself when nothing is dropped, else a reference to cleaned copies with updated
        counts and ``dropped_blank_text`` set.
    """
    frames = {part: pd.read_parquet(ref.verified_path()) for part, ref in data.parts.items()}
    dropped = {}
    for part, frame in frames.items():
        keep = frame[TEXT].notna() & frame[TEXT].astype(str).str.strip().ne("")
        dropped[part] = int((~keep).sum())
        frames[part] = frame[keep].reset_index(drop=True)
    if not any(dropped.values()):
        return data
    return _dataset_ref(
        data.name,
        frames,
        role,
        out_dir,
        suffix="_valid",
        test_from_split=data.test_from_split,
        label_kind=data.label_kind,
        input_sha256=data.input_sha256,
        dropped_blank_text=dropped,
    )


def drop_test_texts_from_training(
    data: DatasetRef, test: pd.DataFrame, *, role: str, out_dir: Path
) -> DatasetRef:
    """Remove training rows whose text (normalised) is also a test text.

    Called after the leakage gate accepted a small overlap: the test set stays as published and the
    duplicates leave the training side, so nothing is both trained and tested on.

    Args:
        data: prepared domain data (its ``test`` part is never changed).
        test: the target test rows.
        role: ``source`` or ``target`` (names the files).
        out_dir: folder for the cleaned artefacts.

    Returns:
        ``data`` itself when nothing overlaps, else a reference to cleaned copies, with the removed
        rows counted in ``dropped_test_overlap``.
    """
    from transferflow.data import normalise_text

    seen = set(test[TEXT].map(normalise_text)) - {""}
    frames = {part: pd.read_parquet(ref.verified_path()) for part, ref in data.parts.items()}
    dropped = {}
    for part, frame in frames.items():
        if part == "test" and role == "target":
            continue
        leaked = frame[TEXT].map(normalise_text).isin(seen)
        dropped[part] = int(leaked.sum())
        frames[part] = frame[~leaked].reset_index(drop=True)
    if not any(dropped.values()):
        return data
    return _dataset_ref(
        data.name, frames, role, out_dir, suffix="_noleak", test_from_split=data.test_from_split,
        label_kind=data.label_kind, input_sha256=data.input_sha256,
        dropped_blank_text=data.dropped_blank_text, dropped_test_overlap=dropped,
    )


def make_embeddings(
    source: DatasetRef,
    target: DatasetRef,
    cfg: EmbeddingConfig,
    *,
    seed: int,
    out_dir: Path,
    store=None,
) -> EmbeddingsRef:
    """Build word vectors from all source and target *training* texts (never test texts).

    The target's whole training pool is used, also rows beyond ``target_train_size``: their texts
    (not their labels) are the unlabeled in-domain data a few-label user has anyway.

    Args:
        source: prepared source data.
        target: prepared target data.
        cfg: embedding settings.
        seed: random seed.
        out_dir: folder for the vectors file.
        store: optional :class:`~transferflow.store.ArtifactStore`: a pretrained vectors file is
            then parsed once and kept in native form, keyed by its content hash.

    Returns:
        A reference to the restricted vectors.
    """
    from transferflow.embeddings import build_embeddings, save_vectors

    texts = [*read_frame(source.pool)[TEXT].dropna(), *read_frame(target.pool)[TEXT].dropna()]
    pretrained = None
    if cfg.pretrained_path is not None and store is not None:
        pretrained = converted_vectors(cfg.pretrained_path, cfg.pretrained_format, store)
    kv, stats = build_embeddings(texts, cfg, seed, kv=pretrained)
    ref = write_artifact(out_dir / "vectors.kv", lambda tmp: save_vectors(kv, tmp))
    return EmbeddingsRef(
        vectors=ref,
        vector_size=stats.vector_size,
        vocab_size=stats.vocab_size,
        token_coverage=stats.token_coverage,
        origin=stats.origin,
    )


def converted_vectors(path: Path | str, fmt: str, store):  # -> KeyedVectors
    """Pretrained vectors, parsed from text once and then read from the store's native copy.

    Parsing a 400k-word text file takes ~18 s; the cached copy (a ``.npy`` matrix, memory-mapped,
    and a JSON token list) loads in well under a second. The key is the file's content hash, so an
    edited file is parsed again and a renamed one is not.

    Args:
        path: the vectors file (local path or fsspec URL).
        fmt: its format (see :func:`transferflow.embeddings.load_pretrained`).
        store: the artefact store.

    Returns:
        gensim ``KeyedVectors``.
    """
    import tempfile

    from gensim.models import KeyedVectors

    from transferflow.embeddings import load_pretrained
    from transferflow.errors import VectorsError
    from transferflow.store import cache_key

    try:
        local = local_copy(path)  # a remote (fsspec URL) file is read from a local copy
    except FileNotFoundError as exc:
        raise VectorsError(str(exc)) from None
    if not local.is_file():
        raise VectorsError(f"{path}: vectors file not found.")
    key = cache_key("convert_vectors", {"sha256": sha256_file(local), "format": fmt})
    with store.lock(key):
        hit = store.lookup(key)
        if hit is None:
            kv = load_pretrained(local, fmt)
            with tempfile.TemporaryDirectory(dir=store.root) as tmp:
                matrix, tokens = Path(tmp) / "v.npy", Path(tmp) / "t.json"
                np.save(matrix, np.asarray(kv.vectors, dtype=np.float32))
                tokens.write_text(json.dumps(list(kv.index_to_key)), encoding="utf-8")
                hit = {"vectors": store.put(matrix), "tokens": store.put(tokens)}
            store.record(key, "convert_vectors", hit)
            return kv
    vectors = np.load(hit["vectors"]["path"], mmap_mode="r")
    tokens = json.loads(Path(hit["tokens"]["path"]).read_text(encoding="utf-8"))
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(tokens, vectors)
    return kv


def _xy(data: pd.DataFrame, labels: list[str], vocab, max_len: int):
    x = vocab.encode(data[TEXT].tolist(), max_len)
    y = np.array([labels.index(v) for v in data[LABEL]], dtype=np.int32)
    return x, y


def _validation(target: DatasetRef, vocab, max_len: int):
    """(x, y) of the target validation split, or None when the target has none."""
    if target.val is None:
        return None
    return _xy(read_frame(target.val), target.labels, vocab, max_len)


def _load_vectors(emb: EmbeddingsRef):
    from transferflow.embeddings import load_vectors

    return load_vectors(emb.vectors.verified_path())


def source_inputs(source: DatasetRef, emb: EmbeddingsRef):
    """The source model's vocabulary and embedding matrix: source training tokens only.

    The source model never sees target tokens, so it (and its cache key) does not depend on the
    target data when the vectors do not (pretrained vectors).

    Returns:
        (tokens, matrix).
    """
    from transferflow.embeddings import embedding_matrix
    from transferflow.text import count_tokens

    kv = _load_vectors(emb)
    seen = count_tokens(read_frame(source.train)[TEXT].dropna())
    # Ordered by source frequency (then alphabetically), not by the shared vocabulary's order,
    # which also counts target texts.
    ranked = sorted(seen.items(), key=lambda item: (-item[1], item[0]))
    tokens = [t for t, _ in ranked if t in kv.key_to_index]
    return tokens, embedding_matrix(kv, tokens)


def _vocabulary(ref: ModelRef):
    from transferflow.text import Vocabulary

    return Vocabulary(json.loads(ref.vocab.verified_path().read_text(encoding="utf-8")))


def _save_keras(
    model, history, *, role: str, labels: list[str], tokens: list[str], cfg: ModelConfig,
    out_dir: Path, **summary
) -> ModelRef:
    from transferflow.models import save_model

    ref = write_artifact(out_dir / f"{role}.keras", lambda tmp: save_model(model, tmp))
    vocab = write_artifact(
        out_dir / f"{role}.vocab.json", lambda tmp: tmp.write_text(json.dumps(tokens), encoding="utf-8")
    )
    return ModelRef(
        role=role,
        kind="keras",
        model=ref,
        vocab=vocab,
        labels=labels,
        architecture=cfg.architecture,
        history=history.to_dict(),
        summary=summary,
    )


def _best(history, key: str) -> float | None:
    values = [row[key] for rows in history.phases.values() for row in rows if key in row]
    return round(max(values), 4) if values else None


WIDE = "wide-linear"


def _wide_features(texts: list[str], emb: EmbeddingsRef):  # -> {view: WideFeatures}
    """The feature views (TF-IDF 1-2-grams with and without the mean word vector), fitted
    (vocabulary, IDF) on unlabeled ``texts``."""
    from transferflow.linear import feature_views

    kv = _load_vectors(emb)
    return feature_views(list(kv.index_to_key), np.asarray(kv.vectors), texts)


def _texts(*refs: ArtifactRef) -> list[str]:
    return [t for ref in refs for t in read_frame(ref)[TEXT].dropna().tolist()]


def _save_linear(model, role: str, labels: list[str], out_dir: Path, **summary: Any) -> ModelRef:
    import joblib

    ref = write_artifact(out_dir / f"{role}.joblib", lambda tmp: joblib.dump(model, tmp))
    return ModelRef(
        role=role, kind="sklearn", model=ref, labels=labels, architecture=WIDE,
        summary={"C": {name: m.C for name, m in model.members.items()},
                 "features": {name: m.features.n_features for name, m in model.members.items()},
                 **summary},
    )


def _load_linear(ref: ModelRef):  # -> EnsembleTextModel
    import joblib

    # joblib unpickles: only files this program wrote, after their hash was verified.
    return joblib.load(ref.model.verified_path())


def train_source(
    source: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    on_epoch: EpochCallback | None = None,
    target: DatasetRef | None = None,
) -> ModelRef:
    """Train the source model on all source training data.

    Args:
        source: prepared source data.
        emb: word vectors.
        cfg: model settings.
        seed: random seed.
        out_dir: folder for ``source.keras`` (``source.joblib`` for ``wide-linear``).
        on_epoch: optional progress callback.
        target: prepared target data; ``wide-linear`` fits its n-gram vocabulary on the source and
            target training texts (no labels), so that the target model can share its features.

    Returns:
        A reference to the trained model, with its best validation accuracy in ``summary``.
    """
    if cfg.architecture == WIDE:
        from transferflow.linear import train_views

        if target is None:
            raise ValueError("wide-linear needs the target data to fit its features")
        views = _wide_features(_texts(source.pool, target.pool), emb)
        train = read_frame(source.train)
        model = train_views(views, train[TEXT].tolist(), train[LABEL].tolist(), source.labels, seed)
        return _save_linear(model, "source", source.labels, out_dir)
    from transferflow.models import train_classifier
    from transferflow.text import Vocabulary

    tokens, matrix = source_inputs(source, emb)
    x, y = _xy(read_frame(source.train), source.labels, Vocabulary(tokens), cfg.max_len)
    model, history = train_classifier(
        cfg.architecture, matrix, x, y, len(source.labels), cfg, seed, "source", on_epoch
    )
    return _save_keras(
        model,
        history,
        role="source",
        labels=source.labels,
        tokens=tokens,
        cfg=cfg,
        out_dir=out_dir,
        best_val_accuracy=_best(history, "val_accuracy"),
    )


def fine_tune(
    source_model: ModelRef,
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    model_cfg: ModelConfig,
    cfg: TransferConfig,
    *,
    seed: int,
    out_dir: Path,
    on_epoch: EpochCallback | None = None,
) -> ModelRef:
    """Adapt the source model to the target training data with the configured strategy.

    Args:
        source_model: the trained source model.
        source: prepared source data (used by the ``joint`` strategy).
        target: prepared target data.
        emb: word vectors.
        model_cfg: model settings.
        cfg: transfer settings.
        seed: random seed.
        out_dir: folder for ``transfer.keras``.
        on_epoch: optional progress callback.

    Returns:
        A reference to the adapted model.
    """
    if model_cfg.architecture == WIDE:
        from transferflow.linear import adapt_views, train_views

        base = _load_linear(source_model)
        same = source.labels == target.labels
        train = read_frame(target.train)
        if same:
            # Per view: prior-centred refit, pooled and feature-augmented fits; all averaged.
            src = read_frame(source.train)
            model = adapt_views(base, src[TEXT].tolist(), src[LABEL].tolist(),
                                train[TEXT].tolist(), train[LABEL].tolist(), seed)
        else:  # other labels: nothing of the source classifier carries over, only its features
            views = {name: m.features for name, m in base.members.items()}
            model = train_views(views, train[TEXT].tolist(), train[LABEL].tolist(),
                                target.labels, seed)
        return _save_linear(model, "transfer", target.labels, out_dir, strategy=cfg.strategy,
                            new_head=not same)
    from transferflow.embeddings import embedding_matrix
    from transferflow.models import adapt, load_model, with_vocabulary
    from transferflow.text import Vocabulary

    kv = _load_vectors(emb)
    tokens = list(kv.index_to_key)
    vocab = Vocabulary(tokens)
    widened = with_vocabulary(
        load_model(source_model.model.verified_path()),
        _vocabulary(source_model).tokens,
        tokens,
        embedding_matrix(kv, tokens),
        model_cfg,
        seed,
    )
    x_t, y_t = _xy(read_frame(target.train), target.labels, vocab, model_cfg.max_len)
    validation = _validation(target, vocab, model_cfg.max_len)
    same = source.labels == target.labels
    x_s = y_s = None
    if cfg.strategy == "joint" and same:
        x_s, y_s = _xy(read_frame(source.train), source.labels, vocab, model_cfg.max_len)
    model, history = adapt(
        widened,
        cfg.strategy,
        x_t,
        y_t,
        len(target.labels),
        same,
        model_cfg,
        cfg,
        seed,
        x_source=x_s,
        y_source=y_s,
        on_epoch=on_epoch,
        validation=validation,
    )
    return _save_keras(
        model,
        history,
        role="transfer",
        labels=target.labels,
        tokens=tokens,
        cfg=model_cfg,
        out_dir=out_dir,
        strategy=cfg.strategy,
        new_head=not same,
    )


def train_target_only(
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    on_epoch: EpochCallback | None = None,
) -> ModelRef:
    """Baseline: the same architecture trained from scratch on the target training data only."""
    if cfg.architecture == WIDE:
        from transferflow.linear import train_views

        # Features from target texts only: this baseline uses nothing of the source but the
        # word vectors, as the Keras target-only model does.
        views = _wide_features(_texts(target.pool), emb)
        train = read_frame(target.train)
        model = train_views(views, train[TEXT].tolist(), train[LABEL].tolist(), target.labels, seed)
        return _save_linear(model, "target_only", target.labels, out_dir)
    from transferflow.embeddings import embedding_matrix
    from transferflow.models import train_classifier
    from transferflow.text import Vocabulary

    kv = _load_vectors(emb)
    tokens = list(kv.index_to_key)
    vocab, matrix = Vocabulary(tokens), embedding_matrix(kv, tokens)
    x, y = _xy(read_frame(target.train), target.labels, vocab, cfg.max_len)
    model, history = train_classifier(
        cfg.architecture, matrix, x, y, len(target.labels), cfg, seed, "target_only", on_epoch,
        validation=_validation(target, vocab, cfg.max_len),
    )
    return _save_keras(
        model, history, role="target_only", labels=target.labels, tokens=tokens, cfg=cfg,
        out_dir=out_dir,
    )


def train_tfidf(target: DatasetRef, *, seed: int, out_dir: Path) -> ModelRef:
    """Baseline: TF-IDF + logistic regression on the target training data only."""
    import joblib

    from transferflow.baselines import train_tfidf_lr

    train = read_frame(target.train)
    pipe = train_tfidf_lr(train[TEXT].tolist(), train[LABEL].tolist(), seed)
    ref = write_artifact(out_dir / "tfidf_lr.joblib", lambda tmp: joblib.dump(pipe, tmp))
    best_c = getattr(pipe[-1], "C_", None)
    return ModelRef(
        role="tfidf_lr",
        kind="sklearn",
        model=ref,
        labels=target.labels,
        architecture="tfidf-1-2gram+logreg",
        summary={"C": float(np.ravel(best_c)[0]) if best_c is not None else 10.0},
    )


def label_budget_curve(
    source_model: ModelRef,
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    model_cfg: ModelConfig,
    transfer_cfg: TransferConfig,
    sizes: list[int],
    *,
    seed: int,
    out_dir: Path,
    full: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Target test accuracy of transfer and target_only against the number of target labels.

    Each budget below the available training labels gets a balanced subset of them (the same rows
    for both candidates; smaller subsets are not nested) and both models are retrained on it with
    the run's settings; the validation split and test set stay those of the run.

    Args:
        source_model: the run's source model.
        source: prepared source data.
        target: prepared target data.
        emb: word vectors.
        model_cfg: model settings.
        transfer_cfg: transfer settings.
        sizes: label budgets to try.
        seed: random seed.
        out_dir: folder for the subsets and models.
        full: the run's own test accuracies (``transfer``, ``target_only``), added as the last
            point at the full label count.

    Returns:
        ``{"sizes": [...], "transfer": [...], "target_only": [...]}`` (accuracies in [0, 1]).
    """
    from transferflow.data import balanced_sample
    from transferflow.evaluate import classification_metrics

    train, test = read_frame(target.train), read_frame(target.test)
    texts, truth = test[TEXT].tolist(), test[LABEL].tolist()
    curve: dict[str, list] = {"sizes": [], "transfer": [], "target_only": []}
    for n in [n for n in sizes if n < len(train)]:
        sub = balanced_sample(train, n, seed)
        if sub[LABEL].nunique() < train[LABEL].nunique():
            continue  # too few rows to show every class: not comparable with the full run
        folder = out_dir / f"labels_{n}"
        folder.mkdir(parents=True, exist_ok=True)
        frames = {"pool": read_frame(target.pool), "train": sub, "test": test}
        if target.val is not None:
            frames["val"] = read_frame(target.val)
        subset = _dataset_ref(target.name, frames, "target", folder, label_kind=target.label_kind,
                              input_sha256=target.input_sha256,
                              test_from_split=target.test_from_split)
        models = {
            "transfer": fine_tune(source_model, source, subset, emb, model_cfg, transfer_cfg,
                                  seed=seed, out_dir=folder),
            "target_only": train_target_only(subset, emb, model_cfg, seed=seed, out_dir=folder),
        }
        curve["sizes"].append(n)
        for name, ref in models.items():
            proba = candidate_proba(ref, texts, model_cfg)
            curve[name].append(classification_metrics(truth, proba, ref.labels)["accuracy"])
    if full is not None:
        curve["sizes"].append(len(train))
        for name in ("transfer", "target_only"):
            curve[name].append(full.get(name))
    return curve


def candidate_proba(ref: ModelRef, texts: list[str], cfg: ModelConfig):
    """Predicted probabilities of one candidate, columns in ``ref.labels`` order."""
    if ref.kind == "sklearn":
        import joblib

        from transferflow.baselines import tfidf_proba

        # joblib unpickles: only files this run wrote, after their hash was verified.
        pipe = joblib.load(ref.model.verified_path())
        return tfidf_proba(pipe, texts, ref.labels)
    from transferflow.models import load_model, predict_proba

    model = load_model(ref.model.verified_path())
    return predict_proba(model, _vocabulary(ref).encode(texts, cfg.max_len))


def evaluate(
    target: DatasetRef,
    candidates: dict[str, ModelRef],
    cfg: ModelConfig,
    *,
    out_dir: Path,
    extra: dict[str, Any] | None = None,
    store=None,
) -> dict[str, Any]:
    """Score every candidate on the target test set (and validation split) and write
    ``metrics.json``.

    Args:
        target: prepared target data.
        candidates: role -> model reference (``source_only`` is the source model itself); each
            Keras model carries its own vocabulary.
        cfg: model settings (``max_len``).
        out_dir: run folder; ``metrics.json`` is written there atomically.
        extra: more top-level entries for ``metrics.json`` (run info, data summary).
        store: optional artefact store to reuse the scores of identical candidates and data.

    Returns:
        The metrics dict, as written: ``candidates`` holds the test-set metrics, ``validation``
        the accuracy and macro-F1 on the target validation split (used for model selection).
    """
    from transferflow.evaluate import classification_metrics

    order = sorted(candidates, key=lambda n: CANDIDATE_ORDER.index(n))
    splits = {"test": target.test}
    if target.val is not None:
        splits["validation"] = target.val

    def score() -> dict[str, dict[str, Any]]:
        scored: dict[str, dict[str, Any]] = {}
        for part, ref in splits.items():
            frame = read_frame(ref)
            texts, y_true = frame[TEXT].tolist(), frame[LABEL].tolist()
            scored[part] = {}
            for name in order:
                proba = candidate_proba(candidates[name], texts, cfg)
                scored[part][name] = classification_metrics(y_true, proba, candidates[name].labels)
        return scored

    if store is None:
        scored = score()
    else:  # scoring is deterministic in the models and data: reuse it on identical reruns
        from transferflow.store import cache_key

        key = cache_key("evaluate_models", {
            "splits": {part: ref.sha256 for part, ref in splits.items()},
            "candidates": {n: [candidates[n].model.sha256,
                               candidates[n].vocab.sha256 if candidates[n].vocab else None,
                               candidates[n].labels] for n in order},
            "max_len": cfg.max_len,
        })
        with store.lock(key):
            if (scored := store.lookup(key)) is None:
                scored = score()
                store.record(key, "evaluate_models", scored)
    results = scored["test"]
    metrics: dict[str, Any] = {**(extra or {}), "candidates": results}
    if "validation" in scored:
        metrics["validation"] = {
            name: {k: m[k] for k in ("n", "accuracy", "macro_f1")}
            for name, m in scored["validation"].items()
        }
    if "transfer" in results and "target_only" in results:
        gain = results["transfer"]["accuracy"] - results["target_only"]["accuracy"]
        metrics["transfer_gain"] = {"accuracy_vs_target_only": round(gain, 4)}
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def select_model(validation: dict[str, dict[str, Any]], margin: float) -> dict[str, Any]:
    """Choose the model to promote from validation-split accuracies (never test accuracies).

    Transfer is chosen when it beats ``target_only`` by at least ``margin`` and no baseline does
    better; otherwise it is negative transfer and the best baseline is chosen.

    Args:
        validation: candidate -> ``{"accuracy": ..., ...}`` on the target validation split.
        margin: accuracy by which transfer must beat target_only.

    Returns:
        ``{"chosen", "transfer_beats_target_only", "gain_vs_target_only", "margin"}``.

    Raises:
        ValueError: when there is no transfer candidate to judge.
    """
    if "transfer" not in validation:
        raise ValueError("no 'transfer' candidate in the validation metrics")
    acc = {name: m["accuracy"] for name, m in validation.items()}
    baseline = acc.get("target_only")
    gain = None if baseline is None else round(acc["transfer"] - baseline, 4)
    beats = gain is None or gain >= margin
    eligible = acc if beats else {k: v for k, v in acc.items() if k != "transfer"}
    # Ties go to the candidate listed first in CANDIDATE_ORDER (transfer, then target_only...).
    chosen = max(eligible, key=lambda n: (eligible[n], -CANDIDATE_ORDER.index(n)))
    return {
        "chosen": chosen,
        "transfer_beats_target_only": beats,
        "gain_vs_target_only": gain,
        "margin": margin,
    }


def domain_shift_figures(
    source: DatasetRef, target: DatasetRef, seed: int, store=None
) -> dict[str, float]:
    """Vocabulary overlap, label distance and proxy A-distance between the training pools.

    Args:
        source: prepared source data.
        target: prepared target data.
        seed: seed for the domain classifier's sample and folds.
        store: optional artefact store: the figures (a cross-validated classifier: the costly part
            of the data gates) are then computed once per pair of data contents.

    Returns:
        ``{"vocab_overlap", "label_distance", "proxy_a_distance"}``.
    """
    from transferflow.shift import label_distance, proxy_a_distance, vocab_overlap

    if store is not None:
        from transferflow.store import cache_key

        key = cache_key("domain_shift", {
            "source": [source.pool.sha256, source.train.sha256],
            "target": [target.pool.sha256, target.train.sha256], "seed": seed,
        })
        with store.lock(key):
            if (hit := store.lookup(key)) is None:
                hit = domain_shift_figures(source, target, seed)
                store.record(key, "domain_shift", hit)
            return hit

    src = read_frame(source.pool)[TEXT].dropna().tolist()
    tgt = read_frame(target.pool)[TEXT].dropna().tolist()
    return {
        "vocab_overlap": vocab_overlap(src, tgt),
        "label_distance": label_distance(
            source.label_counts["train"], target.label_counts["train"]
        ),
        "proxy_a_distance": proxy_a_distance(src, tgt, seed),
    }


def source_holdout(
    source_model: ModelRef, source: DatasetRef, cfg: ModelConfig
) -> tuple[float, float, int]:
    """Accuracy of the source model on the source test rows (never trained on).

    Returns:
        (accuracy, share of the majority class, number of rows).
    """
    test = read_frame(source.test)
    proba = candidate_proba(source_model, test[TEXT].tolist(), cfg)
    predicted = [source_model.labels[i] for i in proba.argmax(axis=1)]
    truth = test[LABEL].tolist()
    accuracy = float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)]))
    majority = float(test[LABEL].value_counts(normalize=True).max())
    return round(accuracy, 4), round(majority, 4), len(test)


def baseline_roles(cfg: BaselineConfig, same_labels: bool) -> list[str]:
    """Which baselines a run trains, given the settings and whether the label sets match."""
    roles = []
    if cfg.target_only:
        roles.append("target_only")
    if cfg.source_only and same_labels:
        roles.append("source_only")
    if cfg.tfidf_lr:
        roles.append("tfidf_lr")
    return roles


def finalise_metrics(
    metrics: dict[str, Any], gates: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Add the gates' outcomes and the model selection to ``metrics.json`` (rewritten atomically).

    Args:
        metrics: as written by :func:`evaluate`.
        gates: gate name -> summary (the ``promotion`` summary's figures hold the selection).
        out_dir: run folder.

    Returns:
        The completed metrics.
    """
    metrics = {**metrics, "gates": gates}
    if "promotion" in gates:
        selection = dict(gates["promotion"]["figures"])
        selection["negative_transfer"] = not selection["transfer_beats_target_only"]
        selection["split"] = "target validation"
        metrics["selection"] = selection
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


_STATUS = {"passed": "✅ passed", "warned": "⚠️ warned", "failed": "❌ failed"}


def _gate_table(gates: dict[str, Any]) -> list[str]:
    lines = ["| gate | status | mode | checks | details |", "|---|---|---|---:|---|"]
    for name, g in gates.items():
        details = "; ".join(g["failed"]) if g["failed"] else ""
        figures = {k: v for k, v in g.get("figures", {}).items() if not isinstance(v, dict)}
        if not details and figures:
            details = ", ".join(f"{k}={v}" for k, v in figures.items())
        details = details.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {name} | {_STATUS.get(g['status'], g['status'])} | {g['mode']} | "
                     f"{g['checks']} | {details} |")
    return lines


def render_report(metrics: dict[str, Any], title: str) -> str:
    """Markdown report: verdict, candidates side by side, gates, domain shift, per-class figures.

    Args:
        metrics: the dict written to ``metrics.json``.
        title: report heading.

    Returns:
        Markdown text.
    """
    cands = metrics["candidates"]
    lines = [f"# {title}", ""]
    data = metrics.get("data", {})
    if data:
        src, tgt = data["source"], data["target"]
        lines += [
            f"Source **{src['name']}**: {src['counts']['train']} labelled training rows. "
            f"Target **{tgt['name']}**: {tgt['counts']['train']} training + "
            f"{tgt['counts'].get('val', 0)} validation labels, {tgt['counts']['test']} test rows. "
            f"Labels: {', '.join(tgt['labels'])}.",
            "",
        ]
    selection = metrics.get("selection")
    if selection:
        if selection["negative_transfer"]:
            lines += [
                f"**Negative transfer**: on the target validation split, transfer does not beat "
                f"target_only by the margin {selection['margin']} (gain "
                f"{selection['gain_vs_target_only']:+.4f}). Chosen model: "
                f"**{selection['chosen']}**.",
                "",
            ]
        else:
            lines += [f"Chosen model (target validation split): **{selection['chosen']}**.", ""]
    val = metrics.get("validation", {})
    lines += [
        "## Candidates on the target test set",
        "",
        "| candidate | accuracy | macro-F1 | ROC AUC | validation accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, m in cands.items():
        auc = f"{m['roc_auc']:.4f}" if "roc_auc" in m else "–"
        mark = " **(chosen)**" if selection and name == selection["chosen"] else ""
        v = f"{val[name]['accuracy']:.4f}" if name in val else "–"
        lines.append(f"| {name}{mark} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {auc} | {v} |")
    gain = metrics.get("transfer_gain", {}).get("accuracy_vs_target_only")
    if gain is not None:
        verdict = "helped" if gain > 0 else ("did not help" if gain == 0 else "hurt (negative transfer)")
        lines += ["", f"On the test set, transfer {verdict}: {gain:+.4f} accuracy versus target-only."]
    if metrics.get("gates"):
        lines += ["", "## Data-quality gates", "", *_gate_table(metrics["gates"])]
    shift = metrics.get("domain_shift")
    if shift:
        lines += [
            "",
            "## Domain shift",
            "",
            f"- vocabulary overlap (target token occurrences seen in the source): "
            f"{shift['vocab_overlap']:.3f}",
            f"- label-distribution distance (total variation): {shift['label_distance']:.3f}",
            f"- proxy A-distance (0 = alike, 2 = separable): {shift['proxy_a_distance']:.3f}",
        ]
    curve = metrics.get("learning_curve")
    if curve and curve["sizes"]:
        lines += ["", "## How many target labels? (test accuracy)", "",
                  "| target labels | transfer | target_only | gain |", "|---:|---:|---:|---:|"]
        for n, t, o in zip(curve["sizes"], curve["transfer"], curve["target_only"], strict=True):
            gain = f"{t - o:+.4f}" if t is not None and o is not None else "–"
            fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
            lines.append(f"| {n} | {fmt(t)} | {fmt(o)} | {gain} |")
    lines += ["", "## Per-class results (test set)", ""]
    for name, m in cands.items():
        lines += [f"### {name}", "", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for cls, pc in m["per_class"].items():
            lines.append(
                f"| {cls} | {pc['precision']:.4f} | {pc['recall']:.4f} | {pc['f1']:.4f} | "
                f"{pc['support']} |"
            )
        labels = m["confusion_matrix"]["labels"]
        lines += ["", "Confusion matrix (rows: true, columns: predicted):", ""]
        lines += ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for lab, row in zip(labels, m["confusion_matrix"]["matrix"], strict=True):
            lines.append(f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def render_gate_failure(exc, gates: dict[str, Any], title: str) -> str:
    """Markdown for a run stopped by a gate: the failed checks, then the gates that ran before.

    Args:
        exc: the :class:`~transferflow.errors.GateFailedError`.
        gates: summaries of the gates that completed before it.
        title: run name.

    Returns:
        Markdown text.
    """
    lines = [
        f"# {title}: stopped by gate `{exc.gate}`",
        "",
        f"The `{exc.gate}` gate failed{' for ' + exc.subject if exc.subject else ''}; nothing after "
        "it ran and no model was chosen.",
        "",
        "| expectation | column | observed | expected |",
        "|---|---|---|---|",
    ]
    for f in exc.failures:
        row = [f.expectation, f.column or "", f.observed, f.expected]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    if gates:
        lines += ["", "Gates that passed before it:", "", *_gate_table(gates)]
    lines += ["", "Data Docs (HTML, all expectations and their results): `data_docs/index.html`."]
    return "\n".join(lines)


def write_report(markdown: str, out_dir: Path) -> Path:
    """Write ``report.md`` atomically into the run folder."""
    return write_text_atomic(out_dir / "report.md", markdown)


def link_artifacts(refs: dict[str, Any], folder: Path) -> Path:
    """Make a run's models and vectors visible in its folder and list them in ``artifacts.json``.

    The files live in the content-addressed store; the run folder gets hard links to them (copies
    when the store is on another file system), named by role.

    Args:
        refs: role -> :class:`~transferflow.artifacts.ArtifactRef`.
        folder: the run's ``artifacts`` folder.

    Returns:
        The path of ``artifacts.json``.
    """
    import os
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    listing = {}
    for role, ref in refs.items():
        src = Path(ref.path)
        dst = folder / f"{role}{''.join(src.suffixes[-1:])}"
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        listing[role] = {"path": str(dst), "store_path": ref.path, "sha256": ref.sha256}
    return write_json_atomic(folder.parent / "artifacts.json", listing)


def write_config(config_json: str, out_dir: Path) -> Path:
    """Record the run's full configuration next to its results."""
    return write_json_atomic(out_dir / "config.json", json.loads(config_json))


def register_chosen(
    metrics: dict[str, Any],
    candidates: dict[str, ModelRef],
    target: DatasetRef,
    source: DatasetRef,
    config: Any,
    run_dir: Path,
    registry,
) -> dict[str, Any]:
    """Register the run's chosen model as a new version and move the champion if it earned it.

    The champion moves only when the promotion gate passed (transfer beat target_only on the
    validation split; the chosen model is then the best candidate there, usually the transfer
    model) and the new version is at least as accurate as the current champion on this
    run's target test data (the champion is re-scored on it, so the comparison is like for like).

    Args:
        metrics: the run's final metrics (with ``selection`` and ``gates``).
        candidates: role -> model reference.
        target: prepared target data (its test split is the comparison set).
        source: prepared source data (its input hashes are recorded).
        config: the run's :class:`~transferflow.config.RunConfig`.
        run_dir: the run's final folder (recorded).
        registry: the :class:`~transferflow.registry.Registry`.

    Returns:
        ``{"version", "champion", "promoted", "reason"}``.
    """
    from transferflow.scoring import Scorer

    selection = metrics["selection"]
    chosen = selection["chosen"]
    ref = candidates[chosen]
    # verified_path() checks the hashes: a damaged artefact is never registered.
    model_name = "model.keras" if ref.kind == "keras" else "model.joblib"
    files = {model_name: ref.model.verified_path()}
    if ref.vocab is not None:
        files["vocab.json"] = ref.vocab.verified_path()
    test_metrics = metrics["candidates"][chosen]
    record = {
        "role": chosen,
        "kind": ref.kind,
        "architecture": ref.architecture,
        "labels": ref.labels,
        "max_len": config.model.max_len,
        "text_columns": config.data.target.text_columns,
        "source": source.name,
        "target": target.name,
        "data_sha256": {**source.input_sha256, **target.input_sha256},
        "target_test_sha256": target.test.sha256,
        "metrics": {"test": {k: test_metrics[k] for k in ("accuracy", "macro_f1")},
                    "validation": metrics.get("validation", {}).get(chosen)},
        "selection": selection,
        "config": json.loads(config.model_dump_json()),
        "run_dir": str(run_dir),
    }
    version = registry.register(files, record)
    champion = registry.champion()
    promoted, reason = False, ""
    if not config.registry.auto_promote:
        reason = "auto-promotion is off"
    elif not selection["transfer_beats_target_only"]:
        reason = "the promotion gate did not pass (negative transfer)"
    elif champion is None:
        promoted, reason = True, "first champion"
    else:
        test = read_frame(target.test)
        scorer = Scorer(registry, champion)
        if scorer.labels != ref.labels:
            promoted, reason = True, "the champion predicts other labels"
        else:
            proba = scorer.predict_proba(test[TEXT].tolist())
            predicted = [scorer.labels[i] for i in proba.argmax(axis=1)]
            # Rounded like the run's own metrics, so an equally good model counts as not worse.
            champ_acc = round(
                float(np.mean([p == t for p, t in zip(predicted, test[LABEL], strict=True)])), 4
            )
            promoted = test_metrics["accuracy"] >= champ_acc
            reason = (f"accuracy {test_metrics['accuracy']:.4f} vs champion v{champion} "
                      f"{champ_acc:.4f} on this run's target test data")
    if promoted:
        registry.promote(version)
    return {"version": version, "champion": registry.champion(), "promoted": promoted, "reason": reason}
