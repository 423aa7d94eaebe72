"""The candidates of a run, all ``wide-deep`` Keras networks: the source model, the transfer model,
and the baselines ``target_only`` (same network, target labels only) and ``pooled_lr`` (NB-weighted
logistic regression on pooled source + target labels: the strongest classic baseline measured,
see docs/benchmarks.md). One family: one save format, one loader, one scoring path.

Every model is saved as ``model.keras`` plus plain data (``ngrams.json``, ``idf.npz``,
``vocab.json``, ``model.json``) and its out-of-fold probabilities on the target training rows
(``oof.npz``), which the promotion decision compares; each file is referenced by its SHA-256 and
verified before it is read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from transferflow.config.settings import ModelConfig, Strategy, TransferConfig
from transferflow.data.tables import LABEL, TEXT
from transferflow.storage.artifacts import (
    ArtifactRef,
    DatasetRef,
    EmbeddingsRef,
    ModelRef,
    write_artifact,
)
from transferflow.storage.files import npz_bytes

if TYPE_CHECKING:
    from transferflow.models.wide_deep import Inputs, Labelled

ARCHITECTURE = "wide-deep"
CANDIDATE_ORDER = ["transfer", "target_only", "source_only", "pooled_lr"]


def read_frame(ref: ArtifactRef) -> pd.DataFrame:
    """Read a verified Parquet artefact."""
    return pd.read_parquet(ref.verified_path())


def _texts(*refs: ArtifactRef) -> list[str]:
    return [t for ref in refs for t in read_frame(ref)[TEXT].dropna().tolist()]


def _vectors(emb: EmbeddingsRef) -> tuple[list[str], np.ndarray]:
    from transferflow.text.embeddings import embedding_matrix, load_vectors

    kv = load_vectors(emb.vectors.verified_path())
    tokens = list(kv.index_to_key)
    return tokens, embedding_matrix(kv, tokens)


def _featurizer(texts: list[str], cfg: ModelConfig):
    from transferflow.text.features import NgramFeaturizer

    return NgramFeaturizer.fit(texts, (1, cfg.ngram_max), cfg.min_df)


def save(
    model, role: str, out_dir: Path, oof: np.ndarray | None = None, **summary: Any
) -> ModelRef:
    """Write a model's files atomically and reference them by hash.

    Args:
        model: a :class:`~transferflow.models.text_model.TextModel`.
        role: candidate name (names the folder).
        out_dir: parent folder.
        oof: out-of-fold class probabilities on the target training rows (``None``: too few
            labels to cross-validate).
        **summary: small facts recorded in the reference.

    Returns:
        The reference (``model`` is ``model.keras``; ``files`` holds the rest).
    """
    folder = out_dir / role
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        written = model.write(Path(tmp))
        refs = {
            name: write_artifact(
                folder / name,
                lambda dst, src=path: dst.write_bytes(src.read_bytes()),  # type: ignore[misc]
            )
            for name, path in written.items()
        }
    if oof is not None:
        data = npz_bytes(proba=np.asarray(oof, np.float32))
        refs["oof.npz"] = write_artifact(folder / "oof.npz", lambda dst: dst.write_bytes(data))
    return ModelRef(
        role=role,
        kind="keras",
        model=refs.pop("model.keras"),
        files=refs,
        labels=model.labels,
        architecture=ARCHITECTURE,
        summary={"members": model.members, **model.info, **summary},
    )


def load(ref: ModelRef):  # -> TextModel
    """Load a referenced model after verifying every file's hash (``safe_mode`` Keras load).

    Raises:
        ArtifactError: a file is missing or changed.
    """
    from transferflow.models.text_model import TextModel

    files = {
        "model.keras": ref.model.verified_path(),
        **{name: r.verified_path() for name, r in ref.files.items() if name != "oof.npz"},
    }
    return TextModel.read(files)


def oof_proba(ref: ModelRef) -> np.ndarray | None:
    """The model's out-of-fold probabilities on the target training rows, if it has them."""
    if "oof.npz" not in ref.files:
        return None
    with np.load(ref.files["oof.npz"].verified_path(), allow_pickle=False) as npz:
        return npz["proba"]


def candidate_proba(ref: ModelRef, texts: list[str]) -> np.ndarray:
    """Predicted probabilities of one candidate, columns in ``ref.labels`` order."""
    return load(ref).predict_proba(list(texts))


def _labelled(ref: ArtifactRef) -> Labelled:
    from transferflow.models.wide_deep import Labelled

    frame = read_frame(ref)
    return Labelled(frame[TEXT].tolist(), frame[LABEL].tolist())


def _inputs(featurizer, emb: EmbeddingsRef, cfg: ModelConfig) -> Inputs:
    from transferflow.models.wide_deep import Inputs

    tokens, matrix = _vectors(emb)
    return Inputs(featurizer, tokens, matrix, cfg.max_len)


def _from_scratch(
    inputs: Inputs, data: DatasetRef, role: str, cfg: ModelConfig, seed: int, progress
):  # -> (TextModel, out-of-fold probabilities)
    """One member per view on ``data``'s training labels (see ``wide_deep.train_from_scratch``)."""
    from transferflow.models.wide_deep import train_from_scratch

    return train_from_scratch(
        inputs,
        _labelled(data.train),
        data.labels,
        cfg=cfg,
        seed=seed,
        role=role,
        progress=progress,
    )


def train_source(
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    progress=None,
) -> ModelRef:
    """Train the source model on all source training labels.

    Its n-grams are fitted on both domains' training texts (no labels), so the target model can
    keep its features; ``C`` is chosen by cross-validation on the source labels.

    Args:
        source: prepared source data.
        target: prepared target data (its texts only).
        emb: word vectors.
        cfg: model settings.
        seed: random seed.
        out_dir: folder for the model files.

    Returns:
        A reference to the model.
    """
    inputs = _inputs(_featurizer(_texts(source.pool, *target.text_parts), cfg), emb, cfg)
    model, _ = _from_scratch(inputs, source, "source", cfg, seed, progress)
    return save(model, "source", out_dir)


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
    oof: bool = True,
    pooled: ModelRef | None = None,
    progress=None,
) -> ModelRef:
    """Adapt the source model to the target labels (``cfg.strategy``); with other labels than
    the source's, only the source model's features carry over (a new model on the target).
    ``oof=False`` (sweeps) skips the out-of-fold predictions that only model selection uses.
    ``pooled``: the run's :func:`train_pooled_lr` model, which is the ``ensemble``'s NB member
    fitted on the same rows, n-grams and seed: the first adaptation takes it instead of fitting
    it again (the same weights, ``C`` and out-of-fold probabilities).

    With unlabelled target texts and ``cfg.self_training`` above 0, the adapted model (the source
    model itself with no target labels) then labels the share ``cfg.self_training`` of them it is
    surest of (:mod:`transferflow.models.self_training`) and is adapted again on the target
    labels plus these. The out-of-fold probabilities stay those of the first adaptation: the
    pseudo-labels were made by a model that saw every target label, so folds over them would
    flatter the model.

    Returns:
        A reference to the transfer model, with its out-of-fold target probabilities.
    """
    from transferflow.models.ensemble_weights import FROM_OOF
    from transferflow.models.wide_deep import Inputs, Labelled, adapt

    base = load(source_model)
    _, matrix = _vectors(emb)
    if source.labels != target.labels:
        inputs = Inputs(base.featurizer, base.tokens, matrix, model_cfg.max_len)
        model, first_oof = _from_scratch(inputs, target, "transfer", model_cfg, seed, progress)
        return save(model, "transfer", out_dir, first_oof, new_head=True)
    src, tgt = _labelled(source.train), _labelled(target.train)
    unlabeled = _texts(target.unlabeled) if target.unlabeled is not None else []
    rounds = 2 if unlabeled and cfg.self_training > 0 else 1
    nb = None
    if pooled is not None and cfg.strategy is Strategy.ENSEMBLE:
        from transferflow.models.wide_deep import pooled_nb

        nb = pooled_nb(load(pooled), oof_proba(pooled))

    def fitted(
        rows: Labelled,
        step: int,
        weights: list[float] | None = None,
        cs: dict[str, float] | None = None,
    ):
        share = None if progress is None else (lambda s: progress((step + s) / rounds))
        # Only the first fit's out-of-fold probabilities and ensemble weights are kept: the
        # second fit's labels include pseudo-labels the first fit made, which folds would flatter.
        transfer = (
            cfg if step == 0 or weights else cfg.model_copy(update={"ensemble_weights": "fixed"})
        )
        return adapt(
            base, matrix, src, rows, transfer=transfer, cfg=model_cfg, seed=seed,
            oof=oof and step == 0, weights=weights, cs=cs, nb=nb if step == 0 else None,
            progress=share,
        )  # fmt: skip

    model, first_oof = fitted(tgt, 0) if tgt.texts else (base, None)
    summary: dict[str, Any] = {"new_head": False}
    if rounds == 2:
        from transferflow.models.self_training import class_shares, pseudo_labels

        shares = class_shares(target.label_counts.get("train", {}), target.labels)
        if shares is None:  # too few target labels to estimate the classes' shares
            shares = class_shares(source.label_counts["train"], source.labels)
        if shares is None:
            shares = np.full(len(target.labels), 1.0 / len(target.labels))
        rows, labels = pseudo_labels(
            model.predict_proba(unlabeled), target.labels, cfg.self_training, shares
        )
        chosen = [unlabeled[i] for i in rows]
        if chosen:
            # Weights chosen from the first fit's evidence are kept; otherwise the default.
            first = model.info if tgt.texts else {}
            chosen_before = first.get("weights_from") == FROM_OOF
            weights = list(first["member_weights"].values()) if chosen_before else None
            # C chosen on the target labels is kept likewise (transfer.self_training_c).
            keep_c = cfg.self_training_c == "first-fit" and first.get("C_cross_validated")
            cs = first["C"] if keep_c else None
            model, _ = fitted(
                Labelled([*tgt.texts, *chosen], [*tgt.labels, *labels]), 1, weights, cs
            )
        summary["self_training"] = {
            "unlabeled_texts": len(unlabeled),
            "pseudo_labelled": {c: labels.count(c) for c in target.labels},
            # the members whose C the second fit kept from the first (transfer.self_training_c)
            "C_kept": list(model.info.get("C_given", [])),
        }
    return save(model, "transfer", out_dir, first_oof, **summary)


def train_target_only(
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    progress=None,
) -> ModelRef:
    """Baseline: the same network trained on the target labels only (n-grams fitted on the
    target's texts: nothing of the source but the word vectors)."""
    inputs = _inputs(_featurizer(_texts(*target.text_parts), cfg), emb, cfg)
    model, oof = _from_scratch(inputs, target, "target_only", cfg, seed, progress)
    return save(model, "target_only", out_dir, oof)


def train_pooled_lr(
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    *,
    seed: int,
    out_dir: Path,
    progress=None,
) -> ModelRef:
    """Baseline: NB-weighted logistic regression on pooled source + target labels (the
    network's n-gram part alone), ``C`` by cross-validation over the target rows."""
    from transferflow.models.wide_deep import train_pooled

    inputs = _inputs(_featurizer(_texts(source.pool, *target.text_parts), cfg), emb, cfg)
    model, oof = train_pooled(
        inputs,
        _labelled(source.train),
        _labelled(target.train),
        target.labels,
        cfg=cfg,
        seed=seed,
        progress=progress,
    )
    return save(model, "pooled_lr", out_dir, oof)


def source_only_oof(source_model: ModelRef, target: DatasetRef) -> np.ndarray:
    """The source model's probabilities on the target training rows (it never saw them)."""
    return candidate_proba(source_model, _labelled(target.train).texts)
