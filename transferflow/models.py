"""Keras 3 text classifiers and the strategies that adapt a source model to a target domain.

Every model takes padded token ids and ends in a softmax layer named ``head``; everything before it is
the *body*. The word vectors sit inside the model (an ``Embedding`` layer), so a saved ``.keras`` file
plus the vocabulary is all that scoring needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from transferflow._keras import keras
from transferflow.config import ModelConfig, TransferConfig
from transferflow.errors import ConfigError

HEAD = "head"
BODY_OUTPUT = "features"
EMBEDDING = "embedding"

EpochCallback = Callable[[str, int, dict[str, float]], None]
"""Called after each epoch with (phase, epoch number from 1, metrics)."""


@dataclass
class TrainHistory:
    """Per-phase, per-epoch metrics of one model's training."""

    phases: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, phase: str, history: dict[str, list[float]]) -> None:
        """Append a Keras ``History.history`` dict as the rows of ``phase``."""
        n = len(next(iter(history.values()), []))
        self.phases[phase] = [
            {k: round(float(v[i]), 6) for k, v in history.items()} for i in range(n)
        ]

    def to_dict(self) -> dict[str, list[dict[str, float]]]:
        """Plain dict for JSON."""
        return dict(self.phases)


def build_model(
    architecture: str,
    n_classes: int,
    matrix: np.ndarray,
    cfg: ModelConfig,
    seed: int,
):  # -> keras.Model
    """Build an uncompiled classifier.

    Args:
        architecture: ``mean-mlp`` or ``cnn``.
        n_classes: number of output classes (2 or more).
        matrix: embedding matrix (rows 0 and 1 are padding and unknown).
        cfg: model settings.
        seed: seed for the weight initialisers.

    Returns:
        A ``keras.Model`` whose last layer is named ``head``.
    """
    k = keras()
    layers = k.layers
    if n_classes < 2:
        raise ConfigError(f"A classifier needs at least 2 classes, got {n_classes}.")
    k.utils.set_random_seed(seed)
    # Variable length: batches of short texts are predicted without computing over padding.
    inputs = k.Input(shape=(None,), dtype="int32", name="token_ids")
    trainable_emb = cfg.train_embeddings and architecture != "mean-mlp"
    # mask_zero lets the average ignore padding; Conv1D does not take masks, so 'cnn' sees padding
    # as zero vectors, which max pooling over ReLU outputs tolerates.
    embedding = layers.Embedding(
        input_dim=matrix.shape[0],
        output_dim=matrix.shape[1],
        mask_zero=architecture == "mean-mlp",
        trainable=trainable_emb,
        name=EMBEDDING,
    )
    x = embedding(inputs)
    if architecture == "mean-mlp":
        x = layers.GlobalAveragePooling1D(name="mean")(x)
        units = cfg.hidden_units
    elif architecture == "cnn":
        x = layers.Conv1D(
            cfg.cnn_filters, cfg.cnn_kernel_size, activation="relu", padding="same", name="conv"
        )(x)
        x = layers.GlobalMaxPooling1D(name="max_pool")(x)
        units = cfg.hidden_units[:1]
    else:
        raise ConfigError(f"Unknown architecture '{architecture}'; expected 'mean-mlp' or 'cnn'.")
    for i, n in enumerate(units):
        x = layers.Dense(n, activation="relu", name=f"dense_{i}")(x)
    x = layers.Dropout(cfg.dropout, seed=seed, name=BODY_OUTPUT)(x)
    outputs = layers.Dense(n_classes, activation="softmax", name=HEAD)(x)
    model = k.Model(inputs, outputs, name=architecture.replace("-", "_"))
    # Set the vectors after building: passing them as a Constant initializer would copy the whole
    # matrix into the model's JSON config.
    embedding.embeddings.assign(matrix)
    return model


def _split_validation(
    y: np.ndarray, share: float, seed: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Stratified index split for early stopping; ``None`` when there is too little data."""
    n_val = int(round(len(y) * share))
    classes, counts = np.unique(y, return_counts=True)
    if n_val < len(classes) or counts.min() < 2:
        return None
    rng = np.random.default_rng(seed)
    val: list[int] = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        take = min(len(idx) - 1, max(1, int(round(len(idx) * share))))
        val.extend(rng.choice(idx, size=take, replace=False).tolist())
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


class _EpochReporter:
    """Keras callback that forwards each epoch's metrics to a plain function."""

    def __new__(cls, phase: str, fn: EpochCallback | None):
        k = keras()

        class _Reporter(k.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if fn is not None:
                    fn(phase, epoch + 1, {k_: float(v) for k_, v in (logs or {}).items()})

        return _Reporter()


def fit(
    model,
    x: np.ndarray,
    y: np.ndarray,
    *,
    learning_rate: float,
    epochs: int,
    cfg: ModelConfig,
    seed: int,
    phase: str,
    history: TrainHistory,
    on_epoch: EpochCallback | None = None,
    sample_weight: np.ndarray | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Compile and train with early stopping on a validation part of the training data.

    Args:
        model: the Keras model; its ``trainable`` flags must already be set (compiling here, after
            any change of ``trainable``, is what makes such a change take effect).
        x: token ids.
        y: class indices.
        learning_rate: Adam learning rate.
        epochs: maximum epochs.
        cfg: batch size, patience and validation share.
        seed: seed for the validation split and shuffling.
        phase: name of this training phase, for the history and progress reports.
        history: collects per-epoch metrics.
        on_epoch: optional progress callback.
        sample_weight: optional per-row loss weights.
        validation: explicit (x_val, y_val); default is a stratified share of (x, y).
    """
    k = keras()
    k.utils.set_random_seed(seed)
    model.compile(
        optimizer=k.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit_kwargs: dict[str, Any] = {}
    if validation is None:
        split = _split_validation(y, cfg.validation_split, seed)
        if split is not None:
            tr, va = split
            validation = (x[va], y[va])
            x, y = x[tr], y[tr]
            if sample_weight is not None:
                sample_weight = sample_weight[tr]
    callbacks = [_EpochReporter(phase, on_epoch)]
    if validation is not None:
        fit_kwargs["validation_data"] = validation
        callbacks.append(
            k.callbacks.EarlyStopping(
                monitor="val_loss", patience=cfg.patience, restore_best_weights=True
            )
        )
    result = model.fit(
        x,
        y,
        sample_weight=sample_weight,
        epochs=epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        verbose=0,  # progress goes through on_epoch, not per-step bars
        callbacks=callbacks,
        **fit_kwargs,
    )
    history.add(phase, result.history)


def train_classifier(
    architecture: str,
    matrix: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    cfg: ModelConfig,
    seed: int,
    phase: str,
    on_epoch: EpochCallback | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
):  # -> (keras.Model, TrainHistory)
    """Build and train a classifier from scratch (the source model, or the target-only baseline).

    Args:
        architecture: ``mean-mlp`` or ``cnn``.
        matrix: embedding matrix.
        x: token ids.
        y: class indices.
        n_classes: number of classes.
        cfg: model settings.
        seed: random seed.
        phase: name for the history (e.g. ``source``).
        on_epoch: optional progress callback.
        validation: explicit early-stopping data; default is a stratified share of (x, y).

    Returns:
        (trained model, its history).
    """
    model = build_model(architecture, n_classes, matrix, cfg, seed)
    history = TrainHistory()
    fit(
        model,
        x,
        y,
        learning_rate=cfg.learning_rate,
        epochs=cfg.epochs,
        cfg=cfg,
        seed=seed,
        phase=phase,
        history=history,
        on_epoch=on_epoch,
        validation=validation,
    )
    return model, history


def _with_new_head(model, n_classes: int, seed: int):
    k = keras()
    k.utils.set_random_seed(seed)
    features = model.get_layer(BODY_OUTPUT).output
    outputs = k.layers.Dense(n_classes, activation="softmax", name=HEAD)(features)
    return k.Model(model.inputs, outputs, name=model.name)


def _copy(model):
    k = keras()
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def _set_body_trainable(model, trainable: bool, cfg: ModelConfig) -> None:
    for layer in model.layers:
        if layer.name == HEAD:
            layer.trainable = True
        elif layer.name == EMBEDDING:
            # The vectors stay fixed unless asked for; with few target labels, updating them
            # mostly overfits.
            layer.trainable = trainable and cfg.train_embeddings and model.name != "mean_mlp"
        else:
            layer.trainable = trainable


def adapt(
    source_model,
    strategy: str,
    x_target: np.ndarray,
    y_target: np.ndarray,
    n_target_classes: int,
    same_labels: bool,
    model_cfg: ModelConfig,
    cfg: TransferConfig,
    seed: int,
    x_source: np.ndarray | None = None,
    y_source: np.ndarray | None = None,
    on_epoch: EpochCallback | None = None,
    validation: tuple[np.ndarray, np.ndarray] | None = None,
):  # -> (keras.Model, TrainHistory)
    """Adapt a trained source model to the target data.

    Strategies:
        * ``finetune``: (new head if the label sets differ) train the head with the body frozen,
          then unfreeze the body and train everything at ``cfg.finetune_learning_rate``.
        * ``feature-extract``: only the first phase; the body never changes.
        * ``joint``: keep training on batches mixing both domains with loss weights ``alpha``
          (source) and ``beta`` (target): the update θ ← θ − α∇L_source − β∇L_target. Needs the
          same label set in both domains.

    Args:
        source_model: the trained source classifier (left unchanged).
        strategy: ``finetune``, ``feature-extract`` or ``joint``.
        x_target: target token ids.
        y_target: target class indices (in the target's label order).
        n_target_classes: number of target classes.
        same_labels: whether the target's label list equals the source's.
        model_cfg: model settings (batch size, patience, validation share, learning rate).
        cfg: transfer settings.
        seed: random seed.
        x_source: source token ids (``joint`` only).
        y_source: source class indices (``joint`` only).
        on_epoch: optional progress callback.
        validation: target (x, y) for early stopping; default is a stratified share of the
            target training data.

    Returns:
        (adapted model, its history).

    Raises:
        ConfigError: ``joint`` with different label sets or without source data.
    """
    history = TrainHistory()
    model = _copy(source_model)
    if validation is None:
        # Hold out target rows only: early stopping must watch the domain we care about.
        split = _split_validation(y_target, model_cfg.validation_split, seed)
        if split is not None:
            tr, va = split
            validation = (x_target[va], y_target[va])
            x_target, y_target = x_target[tr], y_target[tr]
    common = dict(
        cfg=model_cfg, seed=seed, history=history, on_epoch=on_epoch, validation=validation
    )
    if strategy == "joint":
        if not same_labels:
            raise ConfigError(
                "transfer.strategy 'joint' trains one head on both domains, so source and target "
                "must have the same labels. Use 'finetune' for different label sets."
            )
        if x_source is None or y_source is None:
            raise ConfigError("transfer.strategy 'joint' needs the source training data.")
        n_s, n_t = len(y_source), len(y_target)
        n = n_s + n_t
        # Weights make each domain's mean loss count alpha resp. beta, whatever their sizes.
        weights = np.concatenate(
            [np.full(n_s, cfg.alpha * n / (2 * n_s)), np.full(n_t, cfg.beta * n / (2 * n_t))]
        ).astype(np.float32)
        _set_body_trainable(model, True, model_cfg)
        fit(
            model,
            np.concatenate([x_source, x_target]),
            np.concatenate([y_source, y_target]),
            learning_rate=cfg.finetune_learning_rate,
            epochs=cfg.head_epochs + cfg.finetune_epochs,
            phase="joint",
            sample_weight=weights,
            **common,
        )
        return model, history
    if strategy not in ("finetune", "feature-extract"):
        raise ConfigError(
            f"Unknown transfer.strategy '{strategy}'; expected finetune, feature-extract or joint."
        )
    if not same_labels:
        model = _with_new_head(model, n_target_classes, seed)
    _set_body_trainable(model, False, model_cfg)
    fit(
        model,
        x_target,
        y_target,
        learning_rate=model_cfg.learning_rate,
        epochs=cfg.head_epochs,
        phase="head",
        **common,
    )
    if strategy == "finetune" and cfg.finetune_epochs > 0:
        _set_body_trainable(model, True, model_cfg)
        fit(
            model,
            x_target,
            y_target,
            learning_rate=cfg.finetune_learning_rate,
            epochs=cfg.finetune_epochs,
            phase="finetune",
            **common,
        )
    return model, history


def with_vocabulary(model, old_tokens: list[str], new_tokens: list[str], matrix: np.ndarray, cfg: ModelConfig, seed: int):
    """The same network over another vocabulary: a copy of ``model`` whose embedding covers
    ``new_tokens`` (rows from ``matrix``), with every other layer's weights copied.

    The source model only knows source tokens; before adapting it to the target its embedding is
    widened to the source + target vocabulary. Tokens it knew keep their (possibly trained) rows.

    Args:
        model: trained model over ``old_tokens``.
        old_tokens: its vocabulary (token id = position + 2).
        new_tokens: the wider vocabulary.
        matrix: embedding matrix for ``new_tokens`` (see ``embedding_matrix``).
        cfg: model settings (architecture hyperparameters must match ``model``'s).
        seed: seed for building the new network.

    Returns:
        The new model.
    """
    architecture = model.name.replace("_", "-")
    n_classes = model.get_layer(HEAD).units
    new_matrix = matrix.copy()
    old_rows = np.asarray(model.get_layer(EMBEDDING).get_weights()[0])
    position = {tok: i for i, tok in enumerate(old_tokens)}
    for j, tok in enumerate(new_tokens):
        if (i := position.get(tok)) is not None:
            new_matrix[j + 2] = old_rows[i + 2]
    new_model = build_model(architecture, n_classes, new_matrix, cfg, seed)
    for layer in model.layers:
        if layer.name != EMBEDDING and layer.weights:
            new_model.get_layer(layer.name).set_weights(layer.get_weights())
    return new_model


def predict_proba(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities, shape (n, n_classes).

    Rows are grouped by length (rounded up to a power of two, at least 16 tokens) and each group is
    predicted on its trimmed width: review texts average a fraction of ``max_len`` tokens, so this
    skips most of the padding (measured: scoring MDSD reviews went from ~15k to over 20k rows/s).
    Padding is at the end and masked or max-pooled away, so results do not change.

    Each group's row count is padded with empty rows to whole batches plus a power-of-two remainder,
    so the few array shapes repeat from call to call and XLA compiles each once (a new shape costs a
    compilation, ~0.1 s, which on chunked scoring was a third of the prediction time).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of token ids (texts x positions), got shape {x.shape}")
    if len(x) == 0:
        return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    if x.shape[1] <= 16:
        groups = [(np.arange(len(x)), x.shape[1])]
    else:
        lengths = np.maximum((x != 0).sum(axis=1), 1)
        widths = np.minimum(2 ** np.ceil(np.log2(np.maximum(lengths, 16))).astype(int), x.shape[1])
        groups = [(np.flatnonzero(widths == w), int(w)) for w in np.unique(widths)]
    out = None
    for rows, width in groups:
        block = x[rows, :width]
        padded = _padded_rows(len(rows), batch_size)
        if padded > len(rows):
            block = np.concatenate([block, np.zeros((padded - len(rows), width), dtype=block.dtype)])
        proba = np.asarray(model.predict(block, batch_size=batch_size, verbose=0))[: len(rows)]
        if out is None:
            out = np.zeros((len(x), proba.shape[1]), dtype=proba.dtype)
        out[rows] = proba
    return out


def _padded_rows(n: int, batch_size: int) -> int:
    """``n`` rounded up to whole batches plus a power-of-two remainder (at least 32 rows)."""
    full, rest = divmod(n, batch_size)
    if rest == 0:
        return n
    return full * batch_size + min(batch_size, max(32, 1 << (rest - 1).bit_length()))


def save_model(model, path: Path) -> None:
    """Save a model as a ``.keras`` file."""
    model.save(str(path))


def load_model(path: Path):  # -> keras.Model
    """Load a ``.keras`` file with ``safe_mode`` on (no arbitrary code from the file)."""
    return keras().models.load_model(str(path), safe_mode=True, compile=False)
