"""Scoring on Dask workers: the calling process reads the file in chunks and writes the output in
input order; the workers featurise and predict (the costly part), so the work spreads over as many
processes or machines as the cluster has.

A worker never reads the registry: the model's plain files travel to it once per call (a few MB,
broadcast), each checked against the SHA-256 the registry recorded, and the network is loaded with
Keras' ``safe_mode`` as everywhere else. Nothing is pickled to or from disk; Dask pickles the chunk
of texts and the probabilities it sends between processes of the user's own cluster.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

LOCAL = "local"  # --dask local: a LocalCluster of this machine, started and ended by the call
_LOADED: dict[str, Any] = {}  # on a worker: the model files' joint digest -> loaded TextModel


def model_bundle(files: dict[str, Path], hashes: dict[str, str]) -> tuple[dict[str, bytes], str]:
    """The bytes of a model version's files and one digest naming them all.

    Args:
        files: name -> verified local file (``Registry.verified_files``).
        hashes: name -> recorded SHA-256.
    """
    bundle = {name: Path(path).read_bytes() for name, path in files.items()}
    digest = hashlib.sha256(
        "".join(f"{name}:{hashes[name]};" for name in sorted(bundle)).encode()
    ).hexdigest()
    return bundle, digest


def _model_on_worker(bundle: dict[str, bytes], hashes: dict[str, str], digest: str):
    """The model, loaded once per worker process (files written to a private folder after their
    hashes match the registry's record)."""
    model = _LOADED.get(digest)
    if model is not None:
        return model
    from transferflow.models.text_model import TextModel

    # TextModel.read loads every file into memory, so the private copy is gone once it returns.
    with tempfile.TemporaryDirectory(prefix="transferflow-model-") as tmp:
        folder = Path(tmp)
        for name, data in bundle.items():
            if hashlib.sha256(data).hexdigest() != hashes[name]:
                raise ValueError(f"model file {name} arrived damaged (its SHA-256 differs)")
            (folder / name).write_bytes(data)
        model = TextModel.read({name: folder / name for name in TextModel.FILES})
    _LOADED[digest] = model
    return model


def score_texts(
    bundle: dict[str, bytes], hashes: dict[str, str], digest: str, texts: list[str], batch: int
) -> np.ndarray:
    """On a worker: class probabilities for ``texts`` (featurised and predicted there)."""
    from transferflow.models.network import predict_proba

    model = _model_on_worker(bundle, hashes, digest)
    return predict_proba(model.network, model.encoder().encode(texts, batch), len(texts), batch)


@contextlib.contextmanager
def client_for(address: str, workers: int) -> Iterator[Any]:
    """A Dask client: of a LocalCluster of ``workers`` single-threaded processes started for the
    call and ended with it (``address`` = ``local``), or of the scheduler at ``address``.

    Raises:
        ConfigError: the scheduler cannot be reached.
    """
    from distributed import Client, LocalCluster

    from transferflow.errors import ConfigError

    if address == LOCAL:
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,  # logging.ERROR: the call's own log says what happens
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
        return
    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"--dask {address}: no Dask scheduler answers there ({exc}). Start one "
            "(dask scheduler; dask worker ADDRESS) or use --dask local."
        ) from None
    with client:
        yield client


def probabilities_in_order(
    client: Any,
    files: dict[str, Path],
    hashes: dict[str, str],
    chunks: Iterator[tuple[Any, list[str]]],
    batch: int,
) -> Iterator[tuple[Any, list[str], np.ndarray]]:
    """Send each chunk's texts to the cluster and yield ``(chunk, texts, probabilities)`` in input
    order, keeping a few chunks per worker in flight (memory stays bounded by them).

    Args:
        client: the Dask client.
        files: the model version's verified files.
        hashes: their recorded SHA-256.
        chunks: ``(chunk, texts)`` in input order.
        batch: rows per predict step.
    """
    bundle, digest = model_bundle(files, hashes)
    [shared] = client.scatter([bundle], broadcast=True)  # sent once to every worker
    in_flight = 2 * max(1, len(client.scheduler_info().get("workers", {})))

    def submit(item: tuple[Any, list[str]]) -> Any:
        return client.submit(score_texts, shared, hashes, digest, item[1], batch, pure=False)

    for (chunk, texts), proba in in_input_order(chunks, submit, in_flight):
        yield chunk, texts, proba


def in_input_order(items: Iterator[Any], submit: Any, window: int) -> Iterator[tuple[Any, Any]]:
    """``(item, result)`` for each item, in the items' order, while at most ``window`` submitted
    items wait ahead of the one yielded (memory stays bounded by them); what is still pending
    when the caller stops is cancelled.

    Args:
        items: the work, in order.
        submit: starts one item's work and returns a future (``concurrent.futures`` or Dask).
        window: how many futures may run ahead.
    """
    pending: deque = deque()
    try:
        for item in items:
            pending.append((item, submit(item)))
            if len(pending) > window:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        for _, future in pending:
            future.cancel()
