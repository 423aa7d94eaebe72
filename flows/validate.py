"""The ``validate-data`` flow: only the data gates (raw input, leakage, domain shift), no training.

Meant for checking data in CI before a retraining run.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.runtime import flow_run

from transferflow.config.settings import CacheConfig, RunConfig
from transferflow.data_checks.runner import build_docs
from transferflow.flows import _logging
from transferflow.storage.artifacts import DatasetRef
from transferflow.tasks.gates import check_domain_shift, check_split_integrity, validate_dataset
from transferflow.tasks.stages import load_dataset

_logging.install()


def run_data_gates(
    config: RunConfig,
    work: Path,
    docs_dir: Path | None,
    gates: dict[str, Any],
    verdicts: CacheConfig | None,
) -> tuple[DatasetRef, DatasetRef]:
    """Load both domains and run the data gates on them (raw input, leakage, domain shift).

    Shared by the ``transfer-learning`` and ``validate-data`` flows. Each gate's summary is added
    to ``gates``; a gate in ``fail`` mode raises. ``verdicts``: where a verdict on the same data,
    settings and checks is reused from (``None``: check everything, e.g. for Data Docs).

    Returns:
        (source, target) as the later stages must use them (blank-text and leaked rows removed).
    """
    d, g, seed = config.data, config.gates, config.seed
    source = load_dataset(d.source, "source", d.test_size, seed, None, work, d.source_max_rows)
    target = load_dataset(
        d.target,
        "target",
        d.test_size,
        seed,
        d.target_train_size,
        work,
        beyond_cap=d.unlabeled_beyond_cap,
        unlabeled_max_rows=d.unlabeled_max_rows,
    )
    if target.n_train == 0:
        # Zero target labels: the classes are the source's (the target's test labels are checked
        # against them, and every model predicts them).
        target = target.model_copy(update={"labels": source.labels})
    # return_state + result(): a gate whose verdict was reused ends in a ``Cached`` state.
    source, gates["raw_input[source]"] = validate_dataset(
        source,
        "source",
        g.raw_input,
        work,
        docs_dir,
        verdicts=verdicts,
        drop_repeats=d.drop_repeats,
        return_state=True,
    ).result()
    target, gates["raw_input[target]"] = validate_dataset(
        target,
        "target",
        g.raw_input,
        work,
        docs_dir,
        reference=source,
        verdicts=verdicts,
        drop_repeats=d.drop_repeats,
        return_state=True,
    ).result()
    word2vec = config.embeddings.pretrained_path is None
    source, target, gates["leakage"] = check_split_integrity(
        source, target, word2vec, g.leakage, work, docs_dir, verdicts, return_state=True
    ).result()
    gates["domain_shift"] = check_domain_shift(
        source, target, g.domain_shift, seed, docs_dir, config.cache, verdicts, return_state=True
    ).result()
    return source, target


def run_config() -> RunConfig | None:
    """The running flow's ``config`` parameter (for run names), or None when it is not valid (the
    flow then fails with a clear message)."""
    cfg = flow_run.parameters.get("config")
    try:
        return cfg if isinstance(cfg, RunConfig) else RunConfig.model_validate(cfg)
    except Exception:  # noqa: BLE001 - a bad config fails validation later with a clear message
        return None


def _run_name() -> str:
    cfg = run_config()
    return f"validate {cfg.data.source.name} → {cfg.data.target.name}" if cfg else "validate-data"


@flow(
    name="validate-data",
    flow_run_name=_run_name,
    on_failure=[_logging.log_failure],
    description="Run the data-quality gates only (no training).",
)
def validate_data(config: RunConfig, docs_dir: Path | None = None) -> dict[str, Any]:
    """Run the data gates on the configured source and target; returns each gate's summary."""
    work = Path(tempfile.mkdtemp(prefix="transferflow-validate-"))
    gates: dict[str, Any] = {}
    try:
        # Data Docs asked for: every check runs, so the docs show them all.
        verdicts = None if docs_dir else config.gates.verdicts(config.cache)
        run_data_gates(config, work, docs_dir, gates, verdicts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        build_docs(docs_dir)
    return gates
