"""The ``validate-data`` flow: only the data gates (raw input, leakage, domain shift), no training.

Meant for checking data in CI before a retraining run.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow

from data_checks.runner import build_docs
from flows import _logging
from tasks.gates import check_domain_shift, check_split_integrity, validate_dataset
from tasks.stages import load_dataset
from transferflow.config import RunConfig

_logging.install()


@flow(name="validate-data", on_failure=[_logging.log_failure], description="Run the data-quality gates only (no training).")
def validate_data(config: RunConfig, docs_dir: Path | None = None) -> dict[str, Any]:
    """Run the data gates on the configured source and target; returns each gate's summary."""
    d, g, seed = config.data, config.gates, config.seed
    work = Path(tempfile.mkdtemp(prefix="transferflow-validate-"))
    gates: dict[str, Any] = {}
    try:
        source = load_dataset(d.source, "source", d.test_size, seed, None, work)
        target = load_dataset(
            d.target, "target", d.test_size, seed, d.target_train_size, work,
            d.target_validation_size,
        )
        source, gates["raw_input[source]"] = validate_dataset(
            source, "source", g.raw_input, work, docs_dir
        )
        target, gates["raw_input[target]"] = validate_dataset(
            target, "target", g.raw_input, work, docs_dir, reference=source
        )
        word2vec = config.embeddings.pretrained_path is None
        source, target, gates["leakage"] = check_split_integrity(
            source, target, word2vec, g.leakage, work, docs_dir
        )
        gates["domain_shift"] = check_domain_shift(
            source, target, g.domain_shift, seed, docs_dir, config.cache
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        build_docs(docs_dir)
    return gates
