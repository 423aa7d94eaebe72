"""The pipeline's stages as plain functions: read references, compute, write artefacts, return
references. Prefect tasks wrap these one-to-one; they can equally be called from a notebook.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferflow.artifacts import DatasetRef, EmbeddingsRef, ModelRef, write_artifact
from transferflow.config import (
    BaselineConfig,
    DatasetConfig,
    EmbeddingConfig,
    ModelConfig,
    TransferConfig,
)
from transferflow.data import LABEL, TEXT, label_kind, load_domain
from transferflow.files import sha256_file, write_json_atomic, write_text_atomic
from transferflow.models import EpochCallback

CANDIDATE_ORDER = ["transfer", "target_only", "source_only", "tfidf_lr"]


def read_frame(ref) -> pd.DataFrame:
    """Read a verified Parquet artefact."""
    return pd.read_parquet(ref.verified_path())


def _write_frame(frame: pd.DataFrame, path: Path):
    return write_artifact(path, lambda tmp: frame.to_parquet(tmp, index=False))


def prepare_dataset(
    cfg: DatasetConfig,
    *,
    role: str,
    test_size: float,
    seed: int,
    train_size: int | None,
    out_dir: Path,
) -> DatasetRef:
    """Read one domain's files, split and cap them, and store the result as Parquet.

    Args:
        cfg: the domain's files and columns.
        role: ``source`` or ``target`` (names the files).
        test_size: test share when there is no test file.
        seed: random seed.
        train_size: optional balanced cap on training rows.
        out_dir: folder for the artefacts.

    Returns:
        A reference to the prepared data with its label summary and input hashes.
    """
    domain = load_domain(cfg, test_size=test_size, seed=seed, train_size=train_size)
    train_ref = _write_frame(domain.train, out_dir / f"{role}_train.parquet")
    test_ref = _write_frame(domain.test, out_dir / f"{role}_test.parquet")
    counts = domain.train[LABEL].value_counts(dropna=True)
    return DatasetRef(
        name=cfg.name,
        train=train_ref,
        test=test_ref,
        labels=sorted(str(x) for x in counts.index),
        train_label_counts={str(k): int(v) for k, v in sorted(counts.items())},
        test_label_counts={
            str(k): int(v) for k, v in sorted(domain.test[LABEL].value_counts().items())
        },
        n_train=len(domain.train),
        n_test=len(domain.test),
        test_from_split=domain.test_from_split,
        label_kind=label_kind(domain.train[LABEL]),
        input_sha256={str(p): sha256_file(p) for p in [*cfg.paths, *cfg.test_paths]},
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
    frames = {"train": read_frame(data.train), "test": read_frame(data.test)}
    dropped, refs = {}, {}
    for part, frame in frames.items():
        keep = frame[TEXT].notna() & frame[TEXT].astype(str).str.strip().ne("")
        dropped[part] = int((~keep).sum())
        frames[part] = frame[keep].reset_index(drop=True)
    if not any(dropped.values()):
        return data
    for part, frame in frames.items():
        refs[part] = _write_frame(frame, out_dir / f"{role}_{part}_valid.parquet")
    counts = frames["train"][LABEL].value_counts()
    return data.model_copy(
        update={
            "train": refs["train"],
            "test": refs["test"],
            "n_train": len(frames["train"]),
            "n_test": len(frames["test"]),
            "train_label_counts": {str(k): int(v) for k, v in sorted(counts.items())},
            "test_label_counts": {
                str(k): int(v) for k, v in sorted(frames["test"][LABEL].value_counts().items())
            },
            "dropped_blank_text": dropped,
        }
    )


def make_embeddings(
    source: DatasetRef, target: DatasetRef, cfg: EmbeddingConfig, *, seed: int, out_dir: Path
) -> EmbeddingsRef:
    """Build word vectors from the source and target *training* texts (never test texts).

    Args:
        source: prepared source data.
        target: prepared target data.
        cfg: embedding settings.
        seed: random seed.
        out_dir: folder for the vectors file.

    Returns:
        A reference to the restricted vectors.
    """
    from transferflow.embeddings import build_embeddings, save_vectors

    texts = [*read_frame(source.train)[TEXT].dropna(), *read_frame(target.train)[TEXT].dropna()]
    kv, stats = build_embeddings(texts, cfg, seed)
    ref = write_artifact(out_dir / "vectors.kv", lambda tmp: save_vectors(kv, tmp))
    return EmbeddingsRef(
        vectors=ref,
        vector_size=stats.vector_size,
        vocab_size=stats.vocab_size,
        token_coverage=stats.token_coverage,
        origin=stats.origin,
    )


def _xy(data: pd.DataFrame, labels: list[str], vocab, max_len: int):
    x = vocab.encode(data[TEXT].tolist(), max_len)
    y = np.array([labels.index(v) for v in data[LABEL]], dtype=np.int32)
    return x, y


def _load_vectors(emb: EmbeddingsRef):
    from transferflow.embeddings import embedding_matrix, load_vectors, vocabulary_of

    kv = load_vectors(emb.vectors.verified_path())
    return vocabulary_of(kv), embedding_matrix(kv)


def _save_keras(
    model, history, *, role: str, labels: list[str], cfg: ModelConfig, out_dir: Path, **summary
) -> ModelRef:
    from transferflow.models import save_model

    ref = write_artifact(out_dir / f"{role}.keras", lambda tmp: save_model(model, tmp))
    return ModelRef(
        role=role,
        kind="keras",
        model=ref,
        labels=labels,
        architecture=cfg.architecture,
        history=history.to_dict(),
        summary=summary,
    )


def _best(history, key: str) -> float | None:
    values = [row[key] for rows in history.phases.values() for row in rows if key in row]
    return round(max(values), 4) if values else None


def train_source(
    source: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    on_epoch: EpochCallback | None = None,
) -> ModelRef:
    """Train the source model on all source training data.

    Args:
        source: prepared source data.
        emb: word vectors.
        cfg: model settings.
        seed: random seed.
        out_dir: folder for ``source.keras``.
        on_epoch: optional progress callback.

    Returns:
        A reference to the trained model, with its best validation accuracy in ``summary``.
    """
    from transferflow.models import train_classifier

    vocab, matrix = _load_vectors(emb)
    x, y = _xy(read_frame(source.train), source.labels, vocab, cfg.max_len)
    model, history = train_classifier(
        cfg.architecture, matrix, x, y, len(source.labels), cfg, seed, "source", on_epoch
    )
    return _save_keras(
        model,
        history,
        role="source",
        labels=source.labels,
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
    from transferflow.models import adapt, load_model

    vocab, _ = _load_vectors(emb)
    x_t, y_t = _xy(read_frame(target.train), target.labels, vocab, model_cfg.max_len)
    same = source.labels == target.labels
    x_s = y_s = None
    if cfg.strategy == "joint" and same:
        x_s, y_s = _xy(read_frame(source.train), source.labels, vocab, model_cfg.max_len)
    model, history = adapt(
        load_model(source_model.model.verified_path()),
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
    )
    return _save_keras(
        model,
        history,
        role="transfer",
        labels=target.labels,
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
    from transferflow.models import train_classifier

    vocab, matrix = _load_vectors(emb)
    x, y = _xy(read_frame(target.train), target.labels, vocab, cfg.max_len)
    model, history = train_classifier(
        cfg.architecture, matrix, x, y, len(target.labels), cfg, seed, "target_only", on_epoch
    )
    return _save_keras(
        model, history, role="target_only", labels=target.labels, cfg=cfg, out_dir=out_dir
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


def candidate_proba(ref: ModelRef, texts: list[str], emb: EmbeddingsRef, cfg: ModelConfig):
    """Predicted probabilities of one candidate, columns in ``ref.labels`` order."""
    if ref.kind == "sklearn":
        import joblib

        from transferflow.baselines import tfidf_proba

        # joblib unpickles: only files this run wrote, after their hash was verified.
        pipe = joblib.load(ref.model.verified_path())
        return tfidf_proba(pipe, texts, ref.labels)
    from transferflow.models import load_model, predict_proba

    vocab, _ = _load_vectors(emb)
    model = load_model(ref.model.verified_path())
    return predict_proba(model, vocab.encode(texts, cfg.max_len))


def evaluate(
    target: DatasetRef,
    candidates: dict[str, ModelRef],
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    out_dir: Path,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every candidate on the target test set and write ``metrics.json``.

    Args:
        target: prepared target data.
        candidates: role -> model reference (``source_only`` is the source model itself).
        emb: word vectors.
        cfg: model settings (``max_len``).
        out_dir: run folder; ``metrics.json`` is written there atomically.
        extra: more top-level entries for ``metrics.json`` (run info, data summary).

    Returns:
        The metrics dict, as written.
    """
    from transferflow.evaluate import classification_metrics

    test = read_frame(target.test)
    texts, y_true = test[TEXT].tolist(), test[LABEL].tolist()
    results: dict[str, Any] = {}
    for name in sorted(candidates, key=lambda n: CANDIDATE_ORDER.index(n)):
        proba = candidate_proba(candidates[name], texts, emb, cfg)
        results[name] = classification_metrics(y_true, proba, candidates[name].labels)
    metrics: dict[str, Any] = {**(extra or {}), "candidates": results}
    if "transfer" in results and "target_only" in results:
        gain = results["transfer"]["accuracy"] - results["target_only"]["accuracy"]
        metrics["transfer_gain"] = {"accuracy_vs_target_only": round(gain, 4)}
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


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


def render_report(metrics: dict[str, Any], title: str) -> str:
    """Markdown report: the candidates side by side, then per-class figures.

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
        src, tgt = data.get("source", {}), data.get("target", {})
        lines += [
            f"Source **{src.get('name')}**: {src.get('n_train')} training rows. "
            f"Target **{tgt.get('name')}**: {tgt.get('n_train')} training rows, "
            f"{tgt.get('n_test')} test rows. Labels: {', '.join(tgt.get('labels', []))}.",
            "",
        ]
    lines += [
        "| candidate | accuracy | macro-F1 | ROC AUC |",
        "|---|---:|---:|---:|",
    ]
    best = max(cands, key=lambda n: (cands[n]["accuracy"], cands[n]["macro_f1"]))
    for name, m in cands.items():
        auc = f"{m['roc_auc']:.4f}" if "roc_auc" in m else "–"
        mark = " **(best)**" if name == best else ""
        lines.append(f"| {name}{mark} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {auc} |")
    gain = metrics.get("transfer_gain", {}).get("accuracy_vs_target_only")
    if gain is not None:
        verdict = "helped" if gain > 0 else ("did not help" if gain == 0 else "hurt (negative transfer)")
        lines += ["", f"**Transfer {verdict}**: {gain:+.4f} accuracy versus target-only."]
    lines += ["", "## Per-class results", ""]
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


def write_report(markdown: str, out_dir: Path) -> Path:
    """Write ``report.md`` atomically into the run folder."""
    return write_text_atomic(out_dir / "report.md", markdown)


def write_config(config_json: str, out_dir: Path) -> Path:
    """Record the run's full configuration next to its results."""
    return write_json_atomic(out_dir / "config.json", json.loads(config_json))
