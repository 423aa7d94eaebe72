"""Batch scoring: predict labels and class probabilities for a (possibly larger than memory) file
with a registered model version."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from transferflow.config.serving import MonitoringConfig
from transferflow.data.labels import refuse_non_scalar
from transferflow.data.tables import iter_table
from transferflow.errors import DataError
from transferflow.storage import paths
from transferflow.storage.files import atomic_path, local_copy, recorded, write_json_atomic
from transferflow.storage.registry import Registry


@dataclass(frozen=True)
class ScoreStats:
    """What a scoring run did (``monitoring``: the batch's figures, when the version has a
    monitoring reference; :mod:`transferflow.serving.monitoring`)."""

    version: int
    rows: int
    seconds: float
    output: str
    monitoring: dict[str, Any] | None = None

    @property
    def rows_per_second(self) -> float:
        """Throughput."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Read a CSV/TSV/JSONL/Parquet file ``chunk_rows`` rows at a time (memory stays bounded):
    the training data's chunked reader, :func:`transferflow.data.tables.iter_table`.

    Raises:
        DataError: missing, empty or unreadable file.
    """
    return iter_table(path, chunk_rows)


def joined_text(
    chunk: pd.DataFrame, columns: list[str], path, hint: str = "", offset: int = 0
) -> pd.Series:
    """The text of each row of a chunk: ``columns`` joined with a space, stripped.

    Args:
        chunk: rows read from ``path``.
        columns: the text column(s).
        path: the file (named in the error).
        hint: a sentence appended to the missing-column error.

    Raises:
        DataError: a text column is missing.
    """
    missing = [c for c in columns if c not in chunk.columns]
    if missing:
        present = ", ".join(repr(str(c)) for c in chunk.columns)
        raise DataError(
            f"{path}: missing text column(s) {missing}; columns present: {present}.{hint}"
        )
    for c in columns:  # the same rule as training data: one string per row
        refuse_non_scalar(chunk[c], c, path, "text", offset)
    # Column-wise string kernels; a row-wise agg(" ".join) cost 1.5 s per 10,000 rows.
    parts = [chunk[c].astype("string").fillna("") for c in columns]
    return (parts[0].str.cat(parts[1:], sep=" ") if len(parts) > 1 else parts[0]).str.strip()


WORKERS = max(2, min(os.cpu_count() or 2, 8))  # featurising processes of score_file
POOL_MIN_BYTES = 2_000_000  # smaller files are featurised in-process (no process start-up)
DEFAULT_ID = "id"  # copied to the output when a batch has it and no id column is named
_ENCODER: Any = None  # in a featurising process: the model's FeatureEncoder (see _init_worker)


@contextlib.contextmanager
def _featurising_pool(files: dict[str, str]) -> Iterator:
    """Featurising processes for one scoring call: they load the model's plain-data files once
    and end with the call (an error included: queued work is dropped)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")  # never fork a process that runs XLA
    pool = ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_init_worker, initargs=(files,))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(files: dict[str, str]) -> None:
    """Featurising process: load the n-grams and vocabulary (plain data, hash-verified by the
    parent before it started the pool)."""
    import json

    from transferflow.text.features import FeatureEncoder, NgramFeaturizer
    from transferflow.text.tokens import Vocabulary

    global _ENCODER
    meta = json.loads(Path(files["model.json"]).read_text(encoding="utf-8"))
    tokens = json.loads(Path(files["vocab.json"]).read_text(encoding="utf-8"))
    _ENCODER = FeatureEncoder(
        NgramFeaturizer.from_files(Path(files["ngrams.json"]), Path(files["idf.npz"])),
        Vocabulary(tokens),
        int(meta["max_len"]),
    )


def _prepare(texts: list[str]):
    return len(texts), _ENCODER.encode(texts, Scorer.BATCH)


class Scorer:
    """A loaded model version, ready to score texts.

    Raises:
        RegistryError: the version's files fail their hashes, or it was saved in a format that
            is no longer loaded (the pickled ``model.joblib`` of transferflow before 0.2).
    """

    BATCH = 4096  # rows per predict step: large batches amortise Keras' per-step overhead

    def __init__(self, registry: Registry, version: int | None = None) -> None:
        from transferflow.models.text_model import TextModel
        from transferflow.storage.registry import RegistryError

        self.version = registry.resolve(version)
        self.record = registry.show(self.version)
        labels = self.record.get("labels")
        if not isinstance(labels, list) or len(labels) < 2:
            raise RegistryError(
                f"Model version {self.version}: version.json lists no labels; it was edited or "
                "damaged. Register a new version with 'transferflow run'."
            )
        self.labels: list[str] = [str(label) for label in labels]
        files = self.record.get("files", {})
        if "model.joblib" in files or self.record.get("architecture") != "wide-deep":
            raise RegistryError(
                f"Model version {self.version} ({self.record.get('architecture')}, "
                f"{', '.join(sorted(files))}) was saved in an old format that stored a pickle; "
                "transferflow no longer loads pickles, because loading one can run any code. "
                "Train a new version with 'transferflow run' (and promote it if needed)."
            )
        verified = registry.verified_files(self.version)
        self.verified = verified
        missing = [name for name in TextModel.FILES if name not in verified]
        if missing:
            raise RegistryError(
                f"Model version {self.version} lacks {', '.join(missing)}; it cannot be scored. "
                "Register a new version with 'transferflow run'."
            )
        files = {name: verified[name] for name in TextModel.FILES}
        # Absolute paths, and the verified hashes in the key of loaded models: a process that
        # scores for several registries (or working folders) never reuses another's model.
        self.encoder_files = {name: str(path.resolve()) for name, path in files.items()}
        self._model: Any = None

    @property
    def model(self):  # -> TextModel
        """The model, loaded on first use (featurising processes can start before Keras loads).

        Raises:
            RegistryError: the files do not load in Keras' safe mode.
        """
        if self._model is None:
            from transferflow.errors import UnreadableModelError
            from transferflow.models.text_model import TextModel
            from transferflow.storage.registry import RegistryError

            try:
                self._model = TextModel.read({k: Path(v) for k, v in self.encoder_files.items()})
            except UnreadableModelError as exc:
                raise RegistryError(
                    f"Model version {self.version} cannot be loaded safely ({exc}); nothing "
                    "was scored and nothing from its files ran. Its files were replaced "
                    "after registration, or were never a transferflow model: train a new "
                    "version with 'transferflow run', or roll back with 'transferflow "
                    "models rollback'."
                ) from None
        return self._model

    def prepare(self, texts: list[str]):
        """Fixed-shape model inputs for ``texts`` (featurising holds the GIL; predicting not)."""
        return len(texts), self.model.encoder().encode(texts, self.BATCH)

    def predict_prepared(self, prepared) -> np.ndarray:
        """Class probabilities for :meth:`prepare`'s output, columns in ``self.labels`` order."""
        from transferflow.models.network import predict_proba

        n, batches = prepared
        return predict_proba(self.model.network, batches, n, self.BATCH)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """Class probabilities, columns in ``self.labels`` order."""
        return self.predict_prepared(self.prepare(list(texts)))

    def monitor(self):  # -> BatchMonitor | None
        """A :class:`~transferflow.serving.monitoring.BatchMonitor` against this version's
        monitoring reference (None for a version registered before references existed)."""
        from transferflow.serving import monitoring

        if monitoring.FILE not in self.verified:
            return None
        return monitoring.BatchMonitor(
            monitoring.read_reference(self.verified[monitoring.FILE]),
            self.labels,
            lambda: set(self.model.tokens),
        )


def score_file(
    input_path: Path,
    output_path: Path,
    registry: Registry,
    version: int | None = None,
    text_columns: list[str] | None = None,
    id_column: str | None = None,
    chunk_rows: int = 10_000,
    limits: MonitoringConfig | None = None,
    dask: str | None = None,
    dask_workers: int = 2,
) -> ScoreStats:
    """Score every row of ``input_path`` and write ``output_path`` (CSV) atomically.

    Output columns: the id column when the input has it, ``predicted_label``, then
    ``proba_<label>`` for each class.

    Args:
        input_path: CSV/TSV/JSONL/Parquet file with the text column(s).
        output_path: CSV file to write (replaced only once complete).
        registry: the model registry.
        version: model version; default the champion.
        text_columns: text column(s), joined with a space; default the model's training setting.
        id_column: column copied to the output (first); a file without it is refused. ``None``:
            the ``id`` column when the file has one (a batch's ids are optional).
        chunk_rows: rows per chunk.
        limits: the monitoring limits (default settings when None).
        dask: score on Dask workers: ``local`` (a LocalCluster of ``dask_workers`` processes,
            ended with the call) or a scheduler's address (``tcp://host:8786``); ``None``: in
            this process and its featurising processes.
        dask_workers: workers of the local cluster.

    Returns:
        What was scored, how fast, and the batch's monitoring figures.

    Raises:
        DataError: unreadable input, missing text or id columns, rows without text.
    """
    start = time.perf_counter()
    copied = id_column or DEFAULT_ID
    # The path policy: the output is a regular file (or '-': standard output) and no input;
    # so is the monitoring file beside it.
    target = paths.output_file(output_path, "--output")
    if target is not None:
        paths.refuse_inputs(target, [input_path], "--output")
        paths.output_file(monitoring_path(target), "--output's monitoring file")
        paths.refuse_inputs(monitoring_path(target), [input_path], "--output's monitoring file")
    try:
        input_path = local_copy(input_path)  # a URL is read from a local copy
    except FileNotFoundError as exc:
        raise DataError(str(exc)) from None
    scorer = Scorer(registry, version)
    columns = text_columns or scorer.record.get("text_columns") or ["text"]
    hint = (
        " Name this file's text column(s) (--text-column, repeatable): the model reads the "
        f"columns it was trained on, {columns}, by default."
        if not text_columns
        else ""
    )

    def texts_of(chunk: pd.DataFrame, offset: int) -> list[str]:
        if id_column is not None and id_column not in chunk.columns:
            # Named by the user: refused before any row is featurised, never silently left out.
            present = ", ".join(repr(str(c)) for c in chunk.columns)
            raise DataError(
                f"{input_path}: no id column {id_column!r}; columns present: {present}. "
                "Name one of them as the id column, or leave it unset (an 'id' column is "
                "then copied when the file has one)."
            )
        texts = joined_text(chunk, columns, input_path, hint, offset=offset)
        blank = texts.eq("")
        if blank.any():
            first = int(np.flatnonzero(blank.to_numpy())[0]) + offset + 1
            raise DataError(
                f"{input_path}: data row {first} has no text in {columns}. Every row needs "
                "text to be scored: fill it in or remove the row."
            )
        return texts.tolist()

    def with_texts(chunks: Iterator[pd.DataFrame]):
        offset = 0
        for chunk in chunks:
            yield chunk, texts_of(chunk, offset)
            offset += len(chunk)

    def prepared(chunks: Iterator[pd.DataFrame]):
        # Featurising holds the GIL and costs more than predicting: chunks are featurised in
        # WORKERS processes (each loads the plain-data vocabularies once) while this process
        # loads Keras and predicts. A file of one chunk is featurised here, with no process
        # start-up.
        if Path(input_path).stat().st_size < POOL_MIN_BYTES:
            for chunk, texts in with_texts(chunks):
                yield chunk, texts, scorer.prepare(texts)
            return
        from transferflow.serving.distributed import in_input_order

        with _featurising_pool(scorer.encoder_files) as pool:
            work = in_input_order(
                with_texts(chunks), lambda item: pool.submit(_prepare, item[1]), WORKERS
            )
            for (chunk, texts), inputs in work:
                yield chunk, texts, inputs

    def predicted(chunks: Iterator[pd.DataFrame]):
        if dask is None:
            for chunk, texts, inputs in prepared(chunks):
                yield chunk, texts, scorer.predict_prepared(inputs)
            return
        from transferflow.serving.distributed import client_for, probabilities_in_order

        with client_for(dask, dask_workers) as client:
            files = {name: Path(path) for name, path in scorer.encoder_files.items()}
            hashes = {name: scorer.record["files"][name] for name in files}
            yield from probabilities_in_order(
                client, files, hashes, with_texts(chunks), scorer.BATCH
            )

    monitor = scorer.monitor()
    rows = 0
    # closing(): an error mid-file ends the featurising processes (or Dask work) now.
    with (
        _output(target) as out,
        contextlib.closing(predicted(iter_chunks(input_path, chunk_rows))) as batches,
    ):
        header_written = False
        for chunk, texts, proba in batches:
            if monitor is not None:
                monitor.update(texts, proba)
            frame = pd.DataFrame(proba, columns=[f"proba_{lab}" for lab in scorer.labels])
            frame.insert(
                0, "predicted_label", np.asarray(scorer.labels, dtype=object)[proba.argmax(axis=1)]
            )
            if copied in chunk.columns:  # a named id column was checked in texts_of
                frame.insert(0, copied, chunk[copied].to_numpy())
            frame.to_csv(out, header=not header_written, index=False, float_format="%.6f")
            header_written = True
            rows += len(frame)
    figures = None
    if monitor is not None:
        limits = limits or MonitoringConfig()
        figures = {
            "model_name": registry.name,
            "version": scorer.version,
            "input": recorded(input_path),
            "scored_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **monitor.figures(limits.max_drift, limits.max_accuracy_drop),
        }
        if target is not None:
            write_json_atomic(monitoring_path(target), figures)
    return ScoreStats(
        scorer.version,
        rows,
        time.perf_counter() - start,
        str(target or "standard output"),
        figures,
    )


def monitoring_path(output: Path) -> Path:
    """Where a batch's monitoring figures go: beside the predictions,
    ``<output stem>.monitoring.json`` (``predictions.csv`` -> ``predictions.monitoring.json``)."""
    return output.with_name(f"{output.stem}.monitoring.json")


@contextlib.contextmanager
def _output(target: Path | None) -> Iterator:
    """The predictions' text stream: standard output (``None``), or a temporary file renamed onto
    ``target`` only once complete."""
    if target is None:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError as exc:
            # The reader went away (`| head`): point standard output at /dev/null so that
            # Python's own flush at exit does not fail again, and report it once.
            with contextlib.suppress(OSError, ValueError):  # a stream without a descriptor
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            raise BrokenPipeError(exc.errno, exc.strerror, "standard output") from None
        return
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="utf-8") as out:
        yield out
