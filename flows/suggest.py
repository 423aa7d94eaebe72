"""The ``suggest-labels`` flow: which unlabelled target texts to label next.

load → validate → embed → train on source → fine-tune on target (the same cached stages as
``transfer-learning``: after a run on the same data they are cache hits) → rank the unlabelled
texts → write the list.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow

from transferflow.config.settings import RunConfig
from transferflow.flows import _logging
from transferflow.flows.transfer import train_transfer
from transferflow.flows.validate import run_config, run_data_gates
from transferflow.tasks.serving import suggest_labels

_logging.install()


def _run_name() -> str:
    cfg = run_config()
    if cfg is None:
        return "suggest-labels"
    return f"suggest {cfg.suggest.n} {cfg.data.target.name} texts to label"


@flow(
    name="suggest-labels",
    on_failure=[_logging.log_failure],
    flow_run_name=_run_name,
    description="Choose unlabelled target texts to label next (config.suggest.strategy).",
)
def suggest(config: RunConfig, unlabeled: Path, output: Path) -> dict[str, Any]:
    """Train (or reuse from the cache) the transfer model on the labels there are, then write the
    ``config.suggest.n`` unlabelled texts to label next to ``output`` (CSV)."""
    work = Path(tempfile.mkdtemp(prefix="transferflow-suggest-"))
    gates: dict[str, Any] = {}
    try:
        source, target = run_data_gates(
            config, work, None, gates, config.gates.verdicts(config.cache)
        )
        _, _, transfer, _ = train_transfer(config, source, target, gates, None)
        return suggest_labels(
            transfer,
            target,
            Path(unlabeled),
            Path(output),
            config.data.target.text_columns,
            config.suggest,
            config.seed,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
