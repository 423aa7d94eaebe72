"""The Prefect tasks that put a run's model to use: register it, score a file with a registered
model, suggest which texts to label next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from transferflow.config.serving import MonitoringConfig, SuggestConfig
from transferflow.data import datasets
from transferflow.evaluation import promotion
from transferflow.models import candidates
from transferflow.storage.artifacts import DatasetRef, ModelRef


@task(name="register_model", cache_policy=NO_CACHE, task_run_name="register_model")
def register_model(
    metrics: dict[str, Any],
    models: dict[str, ModelRef],
    target: DatasetRef,
    source: DatasetRef,
    config: Any,
    run_dir: Path,
) -> dict[str, Any]:
    """Register the chosen model as a version of the run's model name; move that name's champion
    when it earned it."""
    from transferflow.storage.catalog import Catalog

    registry = Catalog(config.registry.dir).model(config.model_name())
    outcome = promotion.register_chosen(metrics, models, target, source, config, run_dir, registry)
    outcome = {"model_name": registry.name, **outcome}
    get_run_logger().info(
        "registered model '%s' version %d (%s); champion: v%s (%s)",
        registry.name,
        outcome["version"],
        metrics["selection"]["chosen"],
        outcome["champion"],
        outcome["reason"],
    )
    return outcome


@task(name="score_batch", cache_policy=NO_CACHE, task_run_name="score_batch")
def score_batch(
    input_path: Path,
    output_path: Path,
    registry_dir: Path | None,
    version: int | None = None,
    text_columns: list[str] | None = None,
    id_column: str | None = None,
    model_name: str | None = None,
    limits: MonitoringConfig | None = None,
    dask: str | None = None,
    dask_workers: int = 2,
) -> dict[str, Any]:
    """Score a file with a registered model (default: the champion of ``model_name``, or of the
    only model registered), and watch the batch: its monitoring figures go into the name's
    history, its monitoring artifact, and, when a limit is crossed, a Prefect event. ``dask``:
    featurise and predict on Dask workers (``local`` or a scheduler's address)."""
    from transferflow.serving.scoring import score_file
    from transferflow.storage.catalog import Catalog

    registry = Catalog(registry_dir).select(model_name)
    stats = score_file(
        input_path,
        output_path,
        registry,
        version,
        text_columns,
        id_column,
        limits=limits,
        dask=dask,
        dask_workers=dask_workers,
    )
    logger = get_run_logger()
    logger.info(
        "scored %d rows with model '%s' v%d in %.2f s (%.0f rows/s) -> %s",
        stats.rows,
        registry.name,
        stats.version,
        stats.seconds,
        stats.rows_per_second,
        stats.output,
    )
    if stats.monitoring is not None:
        _watch(registry, stats.monitoring, logger)
    return {
        "model_name": registry.name,
        "version": stats.version,
        "rows": stats.rows,
        "seconds": round(stats.seconds, 3),
        "rows_per_second": round(stats.rows_per_second, 1),
        "output": stats.output,
        "monitoring": stats.monitoring,
    }


DRIFT_EVENT = "transferflow.model.drift-detected"


def _watch(registry: Any, figures: dict[str, Any], logger: Any) -> None:
    """Record the batch, show the name's history as an artifact, raise the event on an alert."""
    import re

    from prefect.artifacts import create_markdown_artifact
    from prefect.events import emit_event

    from transferflow.serving.monitoring import alerts, history_markdown

    registry.record_batch(figures)
    name = registry.name
    create_markdown_artifact(
        markdown=history_markdown(name, registry.batches()),
        key="monitoring-" + re.sub(r"[^a-z0-9-]+", "-", name),
        description=f"Scored batches of model '{name}': drift and estimated accuracy",
    )
    logger.info(
        "batch monitoring: estimated accuracy %s (out-of-fold %s), drift %s (limit %s)",
        figures["accuracy"]["estimated"],
        figures["accuracy"]["expected"],
        figures["drift"]["score"],
        figures["drift"]["limit"],
    )
    crossed = alerts(figures)
    if not crossed:
        return
    logger.warning("model '%s' v%s: %s", name, figures["version"], "; ".join(crossed))
    emit_event(
        event=DRIFT_EVENT,
        resource={
            "prefect.resource.id": f"transferflow.model.{name}",
            "prefect.resource.name": name,
            "transferflow.model-name": name,
            "transferflow.version": str(figures["version"]),
        },
        payload={
            "model_name": name,
            "version": figures["version"],
            "input_path": figures["input"],
            "alerts": crossed,
            "estimated_accuracy": figures["accuracy"]["estimated"],
            "drift": figures["drift"],
            "accuracy": figures["accuracy"],
        },
    )


@task(name="suggest_labels", cache_policy=NO_CACHE, task_run_name="suggest_labels")
def suggest_labels(
    model: ModelRef,
    target: DatasetRef,
    unlabeled: Path,
    output: Path,
    text_columns: list[str],
    cfg: SuggestConfig,
    seed: int,
) -> dict[str, Any]:
    """Score the unlabelled texts with the transfer model and write the ones to label next; the
    list is also a table artifact (``label-suggestions``)."""
    import socket

    from prefect.artifacts import create_table_artifact

    from transferflow.data.tables import TEXT, normalise_text
    from transferflow.serving.unlabeled import suggest_file

    # The labels the model trained on and the test texts; pool rows left out by
    # data.target_train_size count as unlabelled (that is how the demo and the benchmark work).
    labelled = [datasets.read_frame(ref)[TEXT] for ref in (target.train, target.test)]
    exclude = {normalise_text(t) for frame in labelled for t in frame} - {""}
    result = suggest_file(
        candidates.load(model),
        unlabeled,
        output,
        text_columns=text_columns,
        id_column="id",
        exclude=exclude,
        n=cfg.n,
        strategy=cfg.strategy,
        seed=seed,
    )
    logger = get_run_logger()
    logger.info(
        "suggested %d of %d candidate texts (%s; %d rows read: %d blank, %d already labelled or "
        "in the test set, %d repeated) -> %s",
        result["suggested"],
        result["candidates"],
        result["strategy"],
        result["rows"],
        result["blank"],
        result["labelled_or_test"],
        result["repeated"],
        result["output"],
    )
    if result["suggested"] < cfg.n:
        logger.warning("only %d candidate texts; all of them are suggested", result["suggested"])
    shown = result.pop("text_columns")
    create_table_artifact(
        key="label-suggestions",
        # What a labeller reads first: the text (cut to fit the UI's table), then the rank and
        # the model's view, probabilities rounded.
        table=[
            {
                "text": " ".join(str(r[c]) for c in shown if isinstance(r[c], str))[:200],
                "rank": r["rank"],
                **{k: v for k, v in r.items() if k not in (*shown, "rank", "confidence", "margin")},
                "confidence": round(float(r["confidence"]), 2),
                "margin": round(float(r["margin"]), 2),
            }
            for r in result.pop("table")
        ],
        description=f"**Texts to label next** ({result['strategy']}), most useful first; the "
        f"full list with every column: `{Path(result['output']).resolve()}` on machine "
        f"`{socket.gethostname()}`.",
    )
    return result
