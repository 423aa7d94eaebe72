"""Sweeps: many transfer runs over domain pairs x label budgets x architectures/strategies x seeds.

A sweep *point* is one (source, target, architecture, strategy, seed). At each label budget the
``sweep`` flow runs the ``transfer-learning`` flow itself (gates, report and all; the registry off),
so a sweep measures what a user's run does; the runs of one point share their word vectors and
source model through the artefact store's cache. This module holds each budget's run
configuration (:func:`budget_config`), the rows made from a run's metrics (:func:`run_rows`) and
the scikit-learn references (:func:`reference_rows`); the grid is in
:mod:`transferflow.experiments.grid`, the summary in :mod:`transferflow.experiments.summary`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from transferflow.config.settings import DatasetConfig, RunConfig
from transferflow.experiments.summary import STOPPED


def budget_config(config: RunConfig, n: int, runs_dir: Path) -> RunConfig:
    """The run configuration of one sweep point at label budget ``n``: the point's settings with
    ``data.target_train_size = n``, its run folder under ``runs_dir`` and the registry off (a
    sweep compares settings; it promotes no model)."""
    d = config.data
    name = (
        f"{d.source.name}-to-{d.target.name}-n{n}-{config.model.architecture}-"
        f"{config.transfer.strategy}-seed{config.seed}"
    )
    return config.model_copy(
        update={
            "data": d.model_copy(update={"target_train_size": n}),
            "registry": config.registry.model_copy(update={"enabled": False}),
            "output_dir": runs_dir,
            "run_name": name,
        }
    )


def _row(config: RunConfig, n: int, n_used: int, candidate: str, **figures: Any) -> dict:
    return {
        "source": config.data.source.name,
        "target": config.data.target.name,
        "architecture": config.model.architecture,
        "strategy": config.transfer.strategy,
        "seed": config.seed,
        "n_requested": n,
        "n": n_used,
        "candidate": candidate,
        **figures,
    }


def run_rows(config: RunConfig, n: int, metrics: dict[str, Any], seconds: float) -> list[dict]:
    """One row per candidate of a completed ``transfer-learning`` run at budget ``n`` (its
    ``metrics.json``); ``seconds`` is the run's wall time, gates and report included."""
    n_used = int(metrics["data"]["target"]["counts"]["train"])
    return [
        _row(
            config,
            n,
            n_used,
            name,
            accuracy=round(float(m["accuracy"]), 4),
            macro_f1=round(float(m["macro_f1"]), 4),
            seconds=round(seconds, 2),
            stopped_at="",
            run=str(metrics["run"]["name"]),
        )  # fmt: skip
        for name, m in metrics["candidates"].items()
    ]


def stopped_row(config: RunConfig, n: int, gate: str, seconds: float) -> dict:
    """The row of a run at budget ``n`` that a gate stopped (no accuracy: nothing was trained
    past the gate, as in a user's run)."""
    return _row(
        config, n, 0, STOPPED, accuracy=float("nan"), macro_f1=float("nan"),
        seconds=round(seconds, 2), stopped_at=gate, run="",
    )  # fmt: skip


def reference_rows(config: RunConfig, budgets: list[int]) -> list[dict[str, Any]]:
    """The scikit-learn reference baselines of one sweep point at each budget (TF-IDF + LR on the
    target labels and on pooled labels; NB-LR on pooled labels, two classes only), on the same
    splits and drops as the point's runs."""
    import pandas as pd

    from transferflow.data.datasets import drop_after_gate, prepare_dataset, read_frame
    from transferflow.data.tables import LABEL, TEXT
    from transferflow.evaluation.metrics import classification_metrics
    from transferflow.models import baselines

    d, seed = config.data, config.seed
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tf-sweep-") as tmp:
        work = Path(tmp)

        def dataset(cfg: DatasetConfig, role: str, n: int | None):
            out = work / f"{role}-{n}"
            out.mkdir(exist_ok=True)
            ref = prepare_dataset(
                cfg, role=role, test_size=d.test_size, seed=seed, train_size=n, out_dir=out
            )
            return drop_after_gate(ref, role=role, out_dir=out)  # as the flow does

        src = dataset(d.source, "source", None)
        src_train = read_frame(src.train)
        for n in budgets:
            tgt = dataset(d.target, "target", n)
            train, test = read_frame(tgt.train), read_frame(tgt.test)
            texts, truth = test[TEXT].tolist(), test[LABEL].tolist()

            def score(proba: np.ndarray, labels: list[str]) -> dict[str, float]:
                m = classification_metrics(truth, proba, labels)  # noqa: B023
                return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}

            pooled = pd.concat([src_train, train], ignore_index=True)
            fits = {"tfidf_target": train, "tfidf_pooled": pooled}
            if train.empty:  # zero labels: nothing to fit on the target alone
                fits.pop("tfidf_target")
            labels = tgt.labels or src.labels
            for name, frame in fits.items():
                t0 = time.perf_counter()
                pipe = baselines.train_tfidf_lr(frame[TEXT].tolist(), frame[LABEL].tolist(), seed)
                figures = score(baselines.tfidf_proba(pipe, texts, labels), labels)
                rows.append(
                    _row(config, n, len(train), name, **figures,
                         seconds=round(time.perf_counter() - t0, 2), stopped_at="", run="")
                )  # fmt: skip
            if src.labels == labels and len(labels) == 2:
                t0 = time.perf_counter()
                nb = baselines.train_nb_lr(pooled[TEXT].tolist(), pooled[LABEL].tolist())
                figures = score(baselines.nb_lr_proba(nb, texts, labels), labels)
                rows.append(
                    _row(config, n, len(train), "nblr_pooled", **figures,
                         seconds=round(time.perf_counter() - t0, 2), stopped_at="", run="")
                )  # fmt: skip
    return rows


def finish_point(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stamp the process's peak memory on a point's rows and give back JAX's compiled programs
    (a Dask worker runs many points in one process)."""
    peak = _peak_rss_mb()
    for row in rows:
        row["peak_rss_mb"] = peak
    _release_compiled()
    return rows


def _release_compiled() -> None:
    """Drop JAX's in-memory compiled programs after a point.

    Each compiled program keeps ~15 memory mappings that live as long as the process. One process
    that trained eight MDSD pairs in a row reached the kernel's limit (65,530 mappings) and died
    in LLVM ("Cannot allocate memory"); a Dask worker runs many points in one process.
    ``jax.clear_caches()`` gives the mappings back (measured: 3,527 -> 510 after 200 compiles).
    The on-disk XLA cache still makes the next point's compiles cheap.
    """
    import jax

    jax.clear_caches()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB); documents memory per sweep worker."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux
