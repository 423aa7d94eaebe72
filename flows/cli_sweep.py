"""``transferflow sweep``: many runs of the flow in parallel (registered by
:mod:`transferflow.flows.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.flows import local_server


def sweep(
    grid: Annotated[
        Path,
        typer.Option(
            "--grid",
            help="Sweep grid YAML file (its format: docs/operations.md, section Sweeps).",
        ),
    ],
    task_runner: Annotated[
        str, typer.Option("--task-runner", help="local (default) | dask", show_default=False)
    ] = "local",
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Parallel workers (Dask: LocalCluster processes; default one per core).",
            show_default=False,
        ),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address",
            help="Use a running Dask scheduler, e.g. tcp://10.0.0.5:8786.",
            show_default=False,
        ),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Parent of sweep folders.", show_default=False),
    ] = None,
) -> None:
    """Run many transfer runs (pairs x budgets x architectures/strategies x seeds) in parallel."""
    from transferflow.experiments.grid import load_grid

    parsed = load_grid(grid)
    if output_dir is not None:
        parsed = parsed.model_copy(update={"output_dir": output_dir})
    from transferflow.flows.sweep import run_sweep

    # run_sweep builds the task runner (and raises on bad options) before the flow starts.
    with local_server.for_this_call():
        result = run_sweep(parsed, task_runner, workers, dask_address)
    typer.echo("")
    typer.echo((Path(result["dir"]) / "summary.md").read_text(encoding="utf-8"))
    typer.echo(f"Results: {result['dir']} (results.csv, summary.md, curves.png)")
