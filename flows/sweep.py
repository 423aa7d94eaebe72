"""The ``sweep`` flow: many transfer runs (pairs x label budgets x architectures/strategies x seeds)
as parallel tasks, on the local machine or a Dask cluster, collected into one table, plot and
report.

Each point is a task that runs the ``transfer-learning`` flow itself at each label budget (a
subflow of the task: gates, report and cache as in a user's run; the registry off), so a new stage
reaches sweeps and benchmarks without a second copy of the stage order. That task lives here, not
in ``tasks/``, because it runs a flow: ``tasks/`` never imports ``flows/`` (import-linter).
"""

from __future__ import annotations

import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.settings import CacheConfig, RunConfig
from transferflow.errors import GateFailedError
from transferflow.experiments.grid import SweepGrid, point_config, points
from transferflow.experiments.summary import STOPPED, mean_table, plot_curves, summarise
from transferflow.experiments.sweep import (
    budget_config,
    finish_point,
    reference_rows,
    run_rows,
    stopped_row,
)
from transferflow.flows import _logging
from transferflow.flows.transfer import transfer_learning
from transferflow.tasks.caching import prefect_result_storage
from transferflow.tasks.locks import released_when_done

_logging.install()

# One thread per worker process for BLAS and XLA: a sweep runs one task per core, and each
# library's own thread pool would otherwise oversubscribe the machine.
WORKER_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def task_runner(kind: str = "local", workers: int | None = None, address: str | None = None):
    """The Prefect task runner for a sweep.

    Args:
        kind: ``local`` (threads in this process; one at a time unless ``workers`` says more) or
            ``dask`` (prefect-dask's DaskTaskRunner).
        workers: local threads, or Dask LocalCluster worker processes (one thread each);
            default 1 locally, one per core on Dask.
        address: an existing Dask scheduler (``tcp://host:8786``) instead of a LocalCluster.

    Returns:
        A task runner instance.

    Raises:
        ConfigError: unknown kind, or Dask options without ``dask``.
    """
    import os

    from transferflow.errors import ConfigError

    if kind == "local":
        if address:
            raise ConfigError("--dask-address needs --task-runner dask.")
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers or 1)
    if kind != "dask":
        raise ConfigError(f"--task-runner: expected 'local' or 'dask', got '{kind}'.")
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    from prefect.settings import get_current_settings

    env = dict(WORKER_ENV)
    api_url = get_current_settings().api.url
    if api_url:  # workers report their task runs to this process's Prefect server
        env["PREFECT_API_URL"] = str(api_url)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers or os.cpu_count() or 1,
            "threads_per_worker": 1,
            "processes": True,
            "env": env,
            "dashboard_address": None,
            "silence_logs": logging.WARNING,  # the workers' INFO lines drown the run log
        }
    )


@task(name="run_sweep_point", cache_policy=NO_CACHE)
def run_sweep_point(
    config: RunConfig, budgets: list[int], references: bool, runs_dir: str
) -> list[dict[str, Any]]:
    """One sweep point: the ``transfer-learning`` flow at each label budget, then the scikit-learn
    references. A run that a gate stops is one row saying which gate (as a user's run would stop
    there); any other failure fails the point."""
    logger = get_run_logger()
    run_flow = transfer_learning.with_options(validate_parameters=False)
    rows: list[dict[str, Any]] = []
    for n in budgets:
        cfg = budget_config(config, n, Path(runs_dir))
        start = time.perf_counter()
        # The config is validated already; a Dask worker receives the flow pickled by value,
        # without the module globals Prefect would resolve its string annotations against.
        # Inside this task the run's cached stages would release their locks only when the
        # task ends (the next budget would wait on them forever): see released_when_done.
        with released_when_done():
            state = run_flow(cfg, return_state=True)
        seconds = time.perf_counter() - start
        if state.is_completed():
            result = state.result()
            rows += run_rows(cfg, n, result["metrics"], seconds)
            accuracy = result["metrics"]["candidates"]["transfer"]["accuracy"]
            logger.info("n=%d transfer accuracy %.4f (%.0f s)", n, accuracy, seconds)
            continue
        error = state.result(raise_on_failure=False)
        if not isinstance(error, GateFailedError):
            state.result()  # raises: a failure that is not a gate's fails the point
        assert isinstance(error, GateFailedError)
        logger.warning("n=%d: the run stopped at gate '%s'", n, error.gate)
        rows.append(stopped_row(cfg, n, error.gate, seconds))
    if references:
        rows += reference_rows(config, budgets)
    return finish_point(rows)


@flow(
    name="sweep",
    on_failure=[_logging.log_failure],
    description="Many transfer runs in parallel; one results table, plot and report.",
)
def sweep(grid: SweepGrid) -> dict[str, Any]:
    """Run every point of the grid as a task; write results.csv, summary.md and curves.png."""
    import pandas as pd
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    logger = get_run_logger()
    todo = points(grid)
    logger.info(
        "sweep '%s': %d points x %d label budgets", grid.name, len(todo), len(grid.label_budgets)
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    final = grid.sweeps_parent() / f"{grid.name}-{stamp}"
    work = final.with_name(f".{final.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "runs").mkdir(parents=True)  # every point's run folders (reports), moved with it
    futures = [
        run_sweep_point.with_options(
            task_run_name=f"sweep[{p['source']}→{p['target']} {p['architecture']} {p['strategy']} "
            f"seed {p['seed']}]"
        ).submit(point_config(grid, p), grid.label_budgets, grid.references, str(work / "runs"))
        for p in todo
    ]
    rows = [row for future in futures for row in future.result()]
    frame = (
        pd.DataFrame(rows)
        .sort_values(
            ["source", "target", "architecture", "strategy", "seed", "n_requested", "candidate"]
        )
        .reset_index(drop=True)
    )
    summary = summarise(frame)
    markdown = _summary_markdown(grid, frame, summary)
    frame.to_csv(work / "results.csv", index=False)
    (work / "summary.md").write_text(markdown, encoding="utf-8")
    plot_curves(summary["table"], work / "curves.png")
    work.rename(final)  # the folder appears complete or not at all

    create_markdown_artifact(
        markdown=markdown, key="sweep-summary", description=f"Sweep {grid.name}"
    )
    create_table_artifact(
        table=frame.to_dict(orient="records"),
        key="sweep-results",
        description=f"Every run of sweep {grid.name}",
    )
    logger.info("sweep results in %s", final)
    return {"dir": str(final), "rows": rows}


def _summary_markdown(grid: SweepGrid, frame, summary: dict[str, Any]) -> str:
    pairs = frame.groupby(["source", "target"]).ngroups
    lines = [
        f"# Sweep {grid.name}",
        "",
        f"{pairs} pair(s), label budgets {grid.label_budgets}, seeds {grid.seeds}. Each budget "
        "is one `transfer-learning` run (gates included); its folder is under `runs/`.",
        "",
        *_stopped_lines(frame),
        "## Mean target test accuracy (%) over pairs (± sd over pairs)",
        "",
        _markdown(mean_table(summary["table"]).reset_index()),
        "",
        "## Paired wins of transfer",
        "",
        _markdown(summary["wins"]),
        "",
        "## Where transfer trails its own target_only most (points)",
        "",
        _markdown(summary["worst_vs_target_only"]),
        "",
    ]
    return "\n".join(lines)


def _stopped_lines(frame) -> list[str]:
    stopped = frame[frame["candidate"] == STOPPED]
    if stopped.empty:
        return []
    lines = ["## Runs stopped at a gate (left out of the tables)", ""]
    for r in stopped.itertuples(index=False):
        lines.append(
            f"- {r.source} → {r.target}, n = {r.n_requested}, seed {r.seed}: gate '{r.stopped_at}'"
        )
    return [*lines, ""]


def _markdown(frame) -> str:
    cols = [str(c) for c in frame.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(str(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(rows)


def run_sweep(
    grid: SweepGrid, kind: str = "local", workers: int | None = None, address: str | None = None
) -> dict[str, Any]:
    """Run the sweep flow with the chosen task runner."""
    # The Dask scheduler and nanny log every worker and connection at INFO in this process.
    for name in ("distributed", "prefect.task_runner.dask"):
        logging.getLogger(name).setLevel(logging.WARNING)
    options: dict[str, Any] = {"task_runner": task_runner(kind, workers, address)}
    cache = CacheConfig.model_validate(grid.base.get("cache", {}))
    if storage := prefect_result_storage(cache):
        options["result_storage"] = storage
    return sweep.with_options(**options)(grid)
