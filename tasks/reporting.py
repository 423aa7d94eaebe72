"""The Prefect tasks that judge and show a run: score the candidates, the label-budget curve, the
report with its figures and artifacts, and the report of a run a gate stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from transferflow.config.settings import CacheConfig, ModelConfig, TransferConfig
from transferflow.errors import GateFailedError
from transferflow.evaluation import metrics as evaluate
from transferflow.evaluation import promotion
from transferflow.reporting import report
from transferflow.storage.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef
from transferflow.storage.files import atomic_path, write_text_atomic
from transferflow.tasks.caching import Reads, cached, in_store, stage_result

DOCS = "data_docs"  # GX Data Docs folder inside a run folder


@task(name="score_candidates", cache_policy=NO_CACHE, task_run_name="score_candidates")
def score_candidates(
    target: Annotated[DatasetRef, Reads("test", "labels")], models: dict[str, ModelRef]
) -> dict[str, Any]:
    """Every candidate's predictions and scores on the target test set (cached on the models'
    and the test set's content: an identical rerun loads no model)."""
    return evaluate.score_candidates(target, models)


@task(name="evaluate_models", cache_policy=NO_CACHE, task_run_name="evaluate_models")
def evaluate_models(
    target: DatasetRef,
    models: dict[str, ModelRef],
    out_dir: Path,
    extra: dict[str, Any],
    cache: CacheConfig | None = None,
) -> dict[str, Any]:
    """Score every candidate on the target test set and write metrics.json (the scores are
    cached on the models' and the test set's content: an identical rerun loads no model)."""
    scores = cached(score_candidates, cache)(target, models)
    metrics = evaluate.write_metrics(scores, out_dir=out_dir, extra=extra)
    logger = get_run_logger()
    for name, m in metrics["candidates"].items():
        logger.info("%-12s accuracy=%.4f macro_f1=%.4f", name, m["accuracy"], m["macro_f1"])
    if not metrics["candidates"]:
        logger.info("no target test set: the candidates are not scored (%s)", report.NO_TEST_SET)
    return metrics


@task(name="learning_curve", cache_policy=NO_CACHE, task_run_name="learning_curve")
def learning_curve(
    metrics: dict[str, Any],
    source_model: ModelRef,
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    model_cfg: ModelConfig,
    transfer_cfg: TransferConfig,
    sizes: list[int],
    seed: int,
    out_dir: Path,
) -> dict[str, Any]:
    """Transfer vs target-only test accuracy at smaller target-label budgets."""
    full = {
        n: metrics["candidates"][n]["accuracy"]
        for n in ("transfer", "target_only")
        if n in metrics["candidates"]
    }
    curve = evaluate.label_budget_curve(
        source_model,
        source,
        target,
        emb,
        model_cfg,
        transfer_cfg,
        sizes,
        seed=seed,
        out_dir=out_dir,
        full=full,
    )
    logger = get_run_logger()
    for n, t, o in zip(curve["sizes"], curve["transfer"], curve["target_only"], strict=True):
        logger.info("%5d target labels: transfer=%s target_only=%s", n, t, o)
    return {**metrics, "learning_curve": curve}


@task(name="publish_report", cache_policy=NO_CACHE, task_run_name="publish_report")
def publish_report(
    metrics: dict[str, Any],
    gates: dict[str, Any],
    title: str,
    out_dir: Path,
    final_dir: Path,
    data_docs: bool = False,
    cache: CacheConfig | None = None,
) -> dict[str, Any]:
    """Add gate outcomes to metrics.json; write report.md, figures, report.html (and Data Docs
    when ``data_docs``); publish artifacts. The figures are drawn only when what they show
    changed (cached on content); the text parts are cheap and always written."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from transferflow.data_checks.runner import build_docs, forget_docs
    from transferflow.reporting.figures import write_html_report

    metrics = promotion.finalise_metrics(metrics, gates, out_dir)
    markdown = report.render_report(metrics, title)
    figures = _figures(metrics, out_dir, cache)
    report.write_report(report.with_figure_files(markdown, figures, out_dir), out_dir)
    write_html_report(markdown, figures, title, out_dir / "report.html")
    # Where the files are, as text: a file:// link opens nothing from the UI's browser, and the
    # files live on the machine that ran the flow.
    create_markdown_artifact(
        markdown=_where(
            final_dir / "report.html", "Standalone HTML report with the figures (opens offline)"
        ),
        key="html-report",
        description=f"Where report.html is: {title}",
    )
    create_markdown_artifact(
        markdown=report.with_figures(markdown, figures),
        key="transfer-report",
        description=f"transferflow report: {title}",
    )
    create_table_artifact(
        table=[
            {
                "candidate": name,
                "class": cls,
                **{k: pc[k] for k in ("precision", "recall", "f1", "support")},
            }
            for name, m in metrics["candidates"].items()
            for cls, pc in m["per_class"].items()
        ],
        key="per-class-metrics",
        description=f"Per-class test metrics of every candidate: {title}",
    )
    if not data_docs:
        forget_docs(out_dir / DOCS)  # Data Docs are rendered on request or when a gate fails
    elif build_docs(out_dir / DOCS) is not None:
        _link_data_docs(final_dir)
    return metrics


@stage_result
class Figures(BaseModel):
    """A run's pictures in the store."""

    files: dict[str, ArtifactRef]  # name -> PNG


@task(name="draw_figures", cache_policy=NO_CACHE, task_run_name="draw_figures")
def draw_figures(drawn_from: dict[str, Any], cache: CacheConfig) -> Figures:
    """Draw a run's pictures from :func:`~transferflow.reporting.figures.figure_inputs` of its
    metrics into the store (matplotlib is the slow part of a cached rerun's report)."""
    from transferflow.reporting.figures import write_figures

    return in_store(
        cache,
        Figures,
        lambda work: Figures(
            files={n: ArtifactRef.of(p) for n, p in write_figures(drawn_from, work).items()}
        ),
    )


def _figures(metrics: dict[str, Any], out_dir: Path, cache: CacheConfig | None) -> dict[str, Path]:
    """The run's pictures in ``out_dir/figures``, copied from the store (drawn again only when
    what they show changed)."""
    import shutil

    from transferflow.reporting.figures import figure_inputs, write_figures

    if cache is None or not cache.enabled:
        return write_figures(figure_inputs(metrics), out_dir)
    drawn = cached(draw_figures, cache)(figure_inputs(metrics), cache)
    out = {}
    for name, ref in drawn.files.items():
        out[name] = out_dir / "figures" / f"{name}.png"
        with atomic_path(out[name]) as tmp:
            shutil.copyfile(ref.verified_path(), tmp)  # a copy: the store may change later
    return out


def _where(path: Path, what: str) -> str:
    import socket

    return (
        f"**{what}**\n\n- machine: `{socket.gethostname()}`\n- path: `{path.resolve()}`\n\n"
        f"Open it there, or copy the run folder `{path.parent.resolve()}` to your machine."
    )


def _link_data_docs(run_dir: Path) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=_where(
            run_dir / DOCS / "index.html",
            "Great Expectations Data Docs of this "
            "run's gates (HTML; its CSS and scripts load from a CDN)",
        ),
        key="data-docs",
        description="Where the data-quality gate results of this run are",
    )


def record_gate_failure(exc: GateFailedError, gates: dict[str, Any], work: Path, title: str) -> str:
    """Write gates.md and the Data Docs of a run stopped by a gate into its (staging) folder."""
    from transferflow.data_checks.runner import build_docs

    markdown = report.render_gate_failure(exc, gates, title)
    write_text_atomic(work / "gates.md", markdown)
    build_docs(work / DOCS)
    return markdown


def publish_gate_failure(markdown: str, exc: GateFailedError, run_dir: Path, title: str) -> None:
    """Publish a gate failure's report as a markdown artifact, with a link to its Data Docs."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=markdown, key="gate-results", description=f"Gate '{exc.gate}' failed: {title}"
    )
    if (run_dir / DOCS / "index.html").is_file():
        _link_data_docs(run_dir)
