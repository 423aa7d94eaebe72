"""The ``wide-deep`` Keras network: a linear *wide* part over TF-IDF n-grams beside a *deep* part
over the gensim word vectors, several weight sets ("members") averaged in one model.

::

    ngram_ids, ngram_values ─► NgramBag (n-grams x members*classes, + bias) ──────┐
                                                                                 + ─► logits
    token_ids ─► MeanEmbedding (frozen vectors, padding left out) ─► unit length ─► Dense ─┘
    logits (members x classes) ─► softmax per member ─► weighted mean ─► probabilities

With one member this is softmax regression over [TF-IDF n-grams, mean word vector]; a member
whose deep weights are zero reads the n-grams alone. The last members may read binarised n-grams
instead (NB-weighted logistic regression, Wang & Manning 2012: presence times a per-n-gram
log-count ratio, folded into the kernel). Members are fitted one by one (see
:mod:`transferflow.models.solver`) and stacked; averaging their probabilities is the ensemble, as
one
Keras model with one save format (``.keras``, loaded with ``safe_mode=True``) and one scoring path.
The custom layers are registered, so loading needs no code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from transferflow.models.keras_backend import keras
from transferflow.models.member import Member

k: Any = keras()  # a module; typed Any (Keras ships no type information)
ops = k.ops

WIDE = "wide"
DEEP = "deep"
VECTORS = "word_vectors"
DEEP_FEATURES = "unit_mean_vector"


@k.saving.register_keras_serializable(package="transferflow")
class NgramBag(k.layers.Layer):
    """Weighted bag of n-grams: ``sum_j values[:, j] * kernel[ids[:, j]] + bias``.

    Equal to a sparse (texts x n-grams) matrix times ``kernel``, with fixed-shape inputs. Row 0
    of ``kernel`` belongs to padding (its value is always 0). The last ``binary_units`` columns
    read whether an n-gram is present instead of its TF-IDF value (binarised features: the
    NB-weighted member, whose per-n-gram scale is folded into its kernel).

    Args:
        n_features: number of n-grams.
        units: output width (members x classes).
        binary_units: trailing output columns over binarised n-grams (0: none).
    """

    def __init__(self, n_features: int, units: int, binary_units: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.n_features = int(n_features)
        self.units = int(units)
        self.binary_units = int(binary_units)

    def build(self, ids_shape, values_shape=None) -> None:
        self.kernel = self.add_weight(
            shape=(self.n_features + 1, self.units), initializer="zeros", name="kernel"
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, ids, values):
        # One n-gram position at a time, accumulated in a (batch, units) sum: gathering all
        # positions at once materialised a (batch, L, units) tensor that XLA does not fuse into
        # the sum, and on CPU its fresh pages cost more than the arithmetic.
        binary = ops.arange(self.units) >= self.units - self.binary_units  # (units,)
        ids = ops.cast(ids, "int32")

        def step(j, acc):
            at = ops.take(ids, j, axis=1)  # (batch,)
            value = ops.take(values, j, axis=1)[:, None]
            present = ops.cast(ops.greater(at, 0), values.dtype)[:, None]  # id 0 is padding
            weight = ops.where(binary, present, value)  # (batch, units)
            return acc + weight * ops.take(self.kernel, at, axis=0)

        zero = ops.zeros((ops.shape(ids)[0], self.units), self.kernel.dtype)
        return ops.fori_loop(0, ops.shape(ids)[1], step, zero) + self.bias

    def compute_output_shape(self, ids_shape, values_shape=None):
        return (ids_shape[0], self.units)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "n_features": self.n_features,
            "units": self.units,
            "binary_units": self.binary_units,
        }


@k.saving.register_keras_serializable(package="transferflow")
class MeanEmbedding(k.layers.Embedding):
    """Mean of the embedding rows of a text's token ids, padding (id 0) left out:
    ``(batch, T) -> (batch, output_dim)``, as ``Embedding(mask_zero=True)`` then a masked
    ``GlobalAveragePooling1D``, without the (batch, T, dim) tensor between them (the sum runs one
    position at a time; see :meth:`NgramBag.call`). A row of padding only gives zeros.
    """

    def call(self, inputs):
        ids = ops.cast(inputs, "int32")

        def step(t, acc):
            at = ops.take(ids, t, axis=1)
            keep = ops.cast(ops.not_equal(at, 0), acc.dtype)[:, None]
            return acc + keep * ops.take(self.embeddings, at, axis=0)

        zero = ops.zeros((ops.shape(ids)[0], self.output_dim), self.embeddings.dtype)
        total = ops.fori_loop(0, ops.shape(ids)[1], step, zero)
        count = ops.sum(ops.cast(ops.not_equal(ids, 0), total.dtype), axis=1, keepdims=True)
        return total / ops.maximum(count, 1.0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)


@k.saving.register_keras_serializable(package="transferflow")
class WeightedMean(k.layers.Layer):
    """Weighted mean over members: ``(batch, members, classes) -> (batch, classes)``.

    Args:
        weights: one fixed weight per member (normalised to sum 1; stored in the config).
    """

    def __init__(self, weights: list[float], **kwargs) -> None:
        super().__init__(**kwargs)
        total = float(sum(weights))
        self.member_weights = [float(w) / total for w in weights]

    def call(self, x):
        w = ops.convert_to_tensor(self.member_weights, dtype=x.dtype)
        return ops.einsum("bmc,m->bc", x, w)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self) -> dict:
        return {**super().get_config(), "weights": self.member_weights}


def _inputs():
    return {
        "ngram_ids": k.Input(shape=(None,), dtype="int32", name="ngram_ids"),
        "ngram_values": k.Input(shape=(None,), dtype="float32", name="ngram_values"),
        "token_ids": k.Input(shape=(None,), dtype="int32", name="token_ids"),
    }


def _deep_features(token_ids, matrix_shape: tuple[int, int]):
    emb = MeanEmbedding(matrix_shape[0], matrix_shape[1], trainable=False, name=VECTORS)
    return emb, k.layers.UnitNormalization(name=DEEP_FEATURES)(emb(token_ids))


def build_network(
    n_features: int,
    matrix: np.ndarray,
    n_classes: int,
    n_members: int = 1,
    name: str = "wide_deep",
    n_binary: int = 0,
    member_weights: list[float] | None = None,
):  # -> keras.Model
    """The full network: texts' inputs -> averaged class probabilities.

    Args:
        n_features: n-grams of the wide part.
        matrix: word-vector matrix (rows 0 and 1: padding and unknown, zeros).
        n_classes: classes (2 or more).
        n_members: weight sets averaged.
        n_binary: how many of them (the last) read binarised n-grams (NB-weighted members).
        member_weights: weight of each member in the mean (default: equal).
        name: model name.

    Returns:
        An uncompiled ``keras.Model`` with zero weights apart from the word vectors.
    """
    inputs = _inputs()
    emb, deep = _deep_features(inputs["token_ids"], matrix.shape)
    units = n_members * n_classes
    logits = k.layers.Add(name="logits")(
        [
            NgramBag(n_features, units, n_binary * n_classes, name=WIDE)(
                inputs["ngram_ids"], inputs["ngram_values"]
            ),
            k.layers.Dense(units, use_bias=False, kernel_initializer="zeros", name=DEEP)(deep),
        ]
    )
    x = k.layers.Reshape((n_members, n_classes), name="members")(logits)
    x = k.layers.Softmax(axis=-1, name="member_probabilities")(x)
    if member_weights is None or len(set(member_weights)) == 1:
        outputs = k.layers.GlobalAveragePooling1D(name="average")(x)
    else:
        outputs = WeightedMean(list(member_weights), name="average")(x)
    model = k.Model(inputs, outputs, name=name)
    # Set after building: as an initializer the matrix would be copied into the JSON config.
    emb.embeddings.assign(matrix)
    return model


def deep_features(network, encoder, texts: list[str]) -> np.ndarray:
    """The network's frozen part on ``texts``: unit-length mean word vectors, (texts, size).

    Computed once before fitting: the fitted layers (``wide``, ``deep``) never change it.
    """
    body = k.Model(network.get_layer(VECTORS).input, network.get_layer(DEEP_FEATURES).output)
    out = np.zeros((len(texts), network.get_layer(DEEP).kernel.shape[0]), np.float32)
    for b in encoder.encode(texts, batch_size=1024):
        out[b.rows] = np.asarray(body.predict(b.token_ids, batch_size=1024, verbose=0))[
            : len(b.rows)
        ]
    return out


def stack_members(network, members: list[Member]) -> None:
    """Copy fitted members' weights into ``network``'s slices (members in order).

    A member with a ``scale`` (per n-gram, binarised members) has it folded into its kernel: the
    solver fitted weights ``w`` on features ``present * scale``, the layer reads ``present``.
    """
    wide, deep = network.get_layer(WIDE), network.get_layer(DEEP)
    # The solver's n-gram j is the layer's row j + 1 (row 0 belongs to padding).
    kernel = np.concatenate(
        [
            m.wide_kernel
            if m.scale is None
            else m.wide_kernel * np.asarray(m.scale, np.float32)[:, None]
            for m in members
        ],
        axis=1,
    )
    kernel = np.concatenate([np.zeros((1, kernel.shape[1]), np.float32), kernel])
    bias = np.concatenate([m.wide_bias for m in members])
    n_classes = members[0].wide_bias.shape[0]
    dim = deep.kernel.shape[0]
    deep_kernel = np.concatenate(
        [
            m.deep_kernel if m.deep_kernel is not None else np.zeros((dim, n_classes), np.float32)
            for m in members
        ],
        axis=1,
    )
    wide.kernel.assign(kernel)
    wide.bias.assign(bias)
    deep.kernel.assign(deep_kernel)


def member_slices(network, n_classes: int) -> list[Member]:
    """The members' weights of a fitted network (inverse of :func:`stack_members`; a binarised
    member's kernel comes back with its scale folded in)."""
    wide, deep = network.get_layer(WIDE), network.get_layer(DEEP)
    kernel, bias, deep_k = (np.asarray(v) for v in (wide.kernel, wide.bias, deep.kernel))
    return [
        Member(
            wide_kernel=kernel[1:, i : i + n_classes],
            wide_bias=bias[i : i + n_classes],
            deep_kernel=deep_k[:, i : i + n_classes],
        )
        for i in range(0, kernel.shape[1], n_classes)
    ]


def member_proba(network, batches, n_rows: int, batch_size: int = 1024) -> np.ndarray:
    """Each member's class probabilities before the mean, (n_rows, members, classes).

    Args:
        network: a :func:`build_network` model.
        batches: fixed-shape groups from ``FeatureEncoder.encode``.
        n_rows: number of texts encoded.
        batch_size: rows per predict step.
    """
    body = k.Model(network.input, network.get_layer("member_probabilities").output)
    return _predict_rows(body, batches, n_rows, batch_size)


def mean_weights(network) -> np.ndarray:
    """The weight of each member in the network's mean (they sum to 1)."""
    n_members = int(network.get_layer("member_probabilities").output.shape[1])
    average = network.get_layer("average")
    if isinstance(average, WeightedMean):
        return np.asarray(average.member_weights, np.float64)
    return np.full(n_members, 1.0 / n_members)


def predict_proba(network, batches, n_rows: int, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for the rows covered by ``batches`` (from ``FeatureEncoder.encode``).

    Args:
        network: a :func:`build_network` model.
        batches: fixed-shape groups; their padded rows are predicted and dropped.
        n_rows: number of texts encoded.
        batch_size: rows per predict step.

    Returns:
        Array (n_rows, n_classes).
    """
    return _predict_rows(network, batches, n_rows, batch_size)


def _predict_rows(model, batches, n_rows: int, batch_size: int) -> np.ndarray:
    """``model``'s output for each encoded text, in text order (padded rows dropped)."""
    out = np.zeros((n_rows, *(int(d) for d in model.output.shape[1:])), dtype=np.float32)
    for b in batches:
        pred = np.asarray(model.predict(b.inputs(), batch_size=batch_size, verbose=0))
        out[b.rows] = pred[: len(b.rows)]
    return out


def save_network(network, path: Path) -> None:
    """Save as a ``.keras`` file whose bytes depend only on the network.

    Keras stamps the save time into ``metadata.json`` and the zip entries; both are set to a fixed
    value here, so the same weights give the same file and its hash (cache keys of later stages
    depend on it).
    """
    import json
    import tempfile
    import zipfile

    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "raw.keras"
        network.save(str(raw))
        with zipfile.ZipFile(raw) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == "metadata.json":
                    meta = json.loads(data)
                    meta["date_saved"] = "1980-01-01@00:00:00"
                    data = json.dumps(meta).encode("utf-8")
                elif info.filename == "config.json":
                    data = _stable_config(data.decode("utf-8")).encode("utf-8")
                fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
                fixed.compress_type = info.compress_type
                fixed.external_attr = 0o644 << 16
                dst.writestr(fixed, data)


def _stable_config(text: str) -> str:
    """Keras' config with process-dependent parts made stable: ``shared_object_id`` (an object's
    memory address) becomes its order of appearance, and the mask op that ``mask_zero`` adds
    (auto-named ``not_equal_<n>`` by a per-process counter) is named ``not_equal``."""
    import re

    ids: dict[str, str] = {}

    def number(match: re.Match) -> str:
        return f'"shared_object_id": {ids.setdefault(match.group(1), str(len(ids) + 1))}'

    text = re.sub(r'"shared_object_id": (\d+)', number, text)
    return re.sub(r'"not_equal(_\d+)?"', '"not_equal"', text)


def load_network(path: Path):  # -> keras.Model
    """Load a ``.keras`` file with ``safe_mode`` on: no code from the file is run."""
    return k.models.load_model(str(path), safe_mode=True, compile=False)
