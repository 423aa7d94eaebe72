"""The ``score`` flow: batch predictions for a file with a registered model (default: champion)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from transferflow.config.serving import MonitoringConfig
from transferflow.flows import _logging
from transferflow.tasks.serving import score_batch

_logging.install()


def _score_run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    version = params.get("version")
    model = f"v{version}" if version is not None else "champion"
    if params.get("model_name"):
        model = f"{params['model_name']} {model}"
    return f"score {Path(str(params.get('input_path', '?'))).name} with {model}"


@flow(
    name="score",
    on_failure=[_logging.log_failure],
    flow_run_name=_score_run_name,
    description="Score a file with a registered model (default: the champion of the named model).",
)
def score(
    input_path: Path,
    output_path: Path,
    registry_dir: Path | None = None,
    version: int | None = None,
    text_columns: list[str] | None = None,
    id_column: str | None = None,
    model_name: str | None = None,
    monitoring: MonitoringConfig | None = None,
    dask: str | None = None,
    dask_workers: int = 2,
) -> dict[str, Any]:
    """Write predicted labels and class probabilities for every row of ``input_path``, with model
    ``model_name`` (needed when the registry holds several) at ``version`` (default: its
    champion); the batch is watched against ``monitoring``'s limits (drift, estimated accuracy):
    crossing one emits a ``transferflow.model.drift-detected`` event. ``dask``: the file's chunks
    are featurised and predicted on Dask workers (``local``: ``dask_workers`` processes of this
    machine; or a scheduler's address), the output written here in input order."""
    return score_batch(
        input_path,
        output_path,
        registry_dir,
        version,
        text_columns,
        id_column,
        model_name,
        monitoring,
        dask,
        dask_workers,
    )
