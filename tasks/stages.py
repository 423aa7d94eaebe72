"""One Prefect task per pipeline stage: each calls a domain function, returns a small reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel

from tasks.caching import cached, cached_json, value_of
from transferflow import candidates, datasets, evaluate, promotion, report
from transferflow.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef
from transferflow.config import (
    CacheConfig,
    DatasetConfig,
    EmbeddingConfig,
    ModelConfig,
    SuggestConfig,
    TransferConfig,
)
from transferflow.errors import GateFailedError
from transferflow.files import atomic_path, sha256_file, write_text_atomic


class _Progress:
    """One Prefect progress artifact per model, titled with the model's role; it moves as the
    network's members are fitted (and says so in the log)."""

    def __init__(self, role: str) -> None:
        from prefect.artifacts import create_progress_artifact

        self.role = role
        self.artifact_id = create_progress_artifact(
            progress=0.0, description=f"Training progress: {role} model (members fitted)"
        )

    def __call__(self, share: float) -> None:
        from prefect.artifacts import update_progress_artifact

        if share == getattr(self, "last", None):
            return
        self.last = share
        update_progress_artifact(self.artifact_id, progress=round(100.0 * share, 1))
        get_run_logger().info("%s model: %.0f%% of its members fitted", self.role, 100 * share)


def _trained(role: str, train: Any) -> Any:
    progress = _Progress(role)
    result = train(progress)
    progress(1.0)
    get_run_logger().info(
        "%s model: %s",
        role,
        {k: v for k, v in result.summary.items() if k in ("C", "members", "strategy")},
    )
    return result


DOCS = "data_docs"  # GX Data Docs folder inside a run folder


@task(name="load_dataset", cache_policy=NO_CACHE, task_run_name="load_dataset[{role}]")
def load_dataset(
    cfg: DatasetConfig,
    role: str,
    test_size: float,
    seed: int,
    train_size: int | None,
    out_dir: Path,
) -> DatasetRef:
    """Read, split and store one domain's data."""
    ref = datasets.prepare_dataset(
        cfg,
        role=role,
        test_size=test_size,
        seed=seed,
        train_size=train_size,
        out_dir=out_dir,
    )
    get_run_logger().info(
        "%s '%s': rows %s, training labels %s",
        role,
        ref.name,
        ref.counts,
        ref.label_counts["train"],
    )
    return ref


def _vectors_file_hash(cfg: EmbeddingConfig) -> str | None:
    if cfg.pretrained_path is None:
        return None
    return sha256_file(datasets.vectors_file(cfg.pretrained_path))


@task(name="build_embeddings", cache_policy=NO_CACHE, task_run_name="build_embeddings")
def build_embeddings(
    source: DatasetRef, target: DatasetRef, cfg: EmbeddingConfig, seed: int, cache: CacheConfig
) -> EmbeddingsRef:
    """Load or train word vectors on the training texts (cached on content)."""
    inputs = {
        "source_pool": source.pool.sha256,
        "target_pool": target.pool.sha256,
        "settings": cfg.model_dump(mode="json", exclude={"pretrained_path"}),
        "pretrained_sha256": _vectors_file_hash(cfg),
        "seed": seed,
    }

    parsed = None
    if cfg.pretrained_path is not None:  # parsed once per file content, reused by every run
        parsed = value_of(
            cached(
                "convert_vectors",
                {"sha256": inputs["pretrained_sha256"], "format": cfg.pretrained_format},
                cache,
                datasets.ParsedVectors,
                lambda out: datasets.parse_vectors(cfg.pretrained_path, cfg.pretrained_format, out),
            )
        )

    def compute(out: Path) -> EmbeddingsRef:
        ref = datasets.make_embeddings(source, target, cfg, seed=seed, out_dir=out, parsed=parsed)
        get_run_logger().info(
            "vectors: %s, %d tokens x %d dims, %.1f%% of training tokens covered",
            ref.origin,
            ref.vocab_size,
            ref.vector_size,
            100 * ref.token_coverage,
        )
        return ref

    return cached("build_embeddings", inputs, cache, EmbeddingsRef, compute)


def _model_settings(cfg: ModelConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


@task(name="train_source_model", cache_policy=NO_CACHE, task_run_name="train_source_model")
def train_source_model(
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Train the network on the source labels (cached on content)."""
    inputs = {
        "source_train": source.train.sha256,
        # the n-grams are fitted on both domains' training texts (no labels)
        "text_pools": [source.pool.sha256, target.pool.sha256],
        "labels": source.labels,
        "vectors": emb.vectors.sha256,
        "settings": _model_settings(cfg),
        "seed": seed,
    }
    return cached(
        "train_source_model",
        inputs,
        cache,
        ModelRef,
        lambda out: _trained(
            "source",
            lambda report: candidates.train_source(
                source, target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )


@task(name="fine_tune_target_model", cache_policy=NO_CACHE, task_run_name="fine_tune_target_model")
def fine_tune_target_model(
    source_model: ModelRef,
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    model_cfg: ModelConfig,
    cfg: TransferConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Adapt the source model to the target labels (cached on content)."""
    inputs = {
        "source_model": source_model.model.sha256,
        "source_files": {n: r.sha256 for n, r in source_model.files.items()},
        "source_train": source.train.sha256,
        "target_train": target.train.sha256,
        "labels": [source.labels, target.labels],
        "vectors": emb.vectors.sha256,
        "settings": [_model_settings(model_cfg), cfg.model_dump(mode="json")],
        "seed": seed,
    }
    return cached(
        "fine_tune_target_model",
        inputs,
        cache,
        ModelRef,
        lambda out: _trained(
            "transfer",
            lambda report: candidates.fine_tune(
                source_model,
                source,
                target,
                emb,
                model_cfg,
                cfg,
                seed=seed,
                out_dir=out,
                progress=report,
            ),
        ),
    )


@task(
    name="train_target_only_model", cache_policy=NO_CACHE, task_run_name="train_target_only_model"
)
def train_target_only_model(
    target: DatasetRef, emb: EmbeddingsRef, cfg: ModelConfig, seed: int, cache: CacheConfig
) -> ModelRef:
    """Baseline: the same network trained on the target labels only (cached on content)."""
    inputs = {
        "target_train": target.train.sha256,
        "target_pool": target.pool.sha256,
        "labels": target.labels,
        "vectors": emb.vectors.sha256,
        "settings": _model_settings(cfg),
        "seed": seed,
    }
    return cached(
        "train_target_only_model",
        inputs,
        cache,
        ModelRef,
        lambda out: _trained(
            "target_only",
            lambda report: candidates.train_target_only(
                target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )


@task(name="train_pooled_baseline", cache_policy=NO_CACHE, task_run_name="train_pooled_baseline")
def train_pooled_baseline(
    source: DatasetRef,
    target: DatasetRef,
    emb: EmbeddingsRef,
    cfg: ModelConfig,
    seed: int,
    cache: CacheConfig,
) -> ModelRef:
    """Baseline: NB-weighted logistic regression on pooled source + target labels."""
    inputs = {
        "source_train": source.train.sha256,
        "target_train": target.train.sha256,
        "text_pools": [source.pool.sha256, target.pool.sha256],
        "labels": target.labels,
        "vectors": emb.vectors.sha256,
        "settings": _model_settings(cfg),
        "seed": seed,
    }
    return cached(
        "train_pooled_baseline",
        inputs,
        cache,
        ModelRef,
        lambda out: _trained(
            "pooled_lr",
            lambda report: candidates.train_pooled_lr(
                source, target, emb, cfg, seed=seed, out_dir=out, progress=report
            ),
        ),
    )


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
    inputs = {
        "test": target.test.sha256,
        "models": {
            n: [r.model.sha256, sorted((k, v.sha256) for k, v in r.files.items())]
            for n, r in models.items()
        },
    }
    scores = cached_json(
        "evaluate_models", inputs, cache, lambda: evaluate.score_candidates(target, models)
    )
    metrics = evaluate.write_metrics(scores, out_dir=out_dir, extra=extra)
    logger = get_run_logger()
    for name, m in metrics["candidates"].items():
        logger.info("%-12s accuracy=%.4f macro_f1=%.4f", name, m["accuracy"], m["macro_f1"])
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

    from data_checks.runner import build_docs, forget_docs
    from transferflow.figures import write_html_report

    metrics = promotion.finalise_metrics(metrics, gates, out_dir)
    markdown = report.render_report(metrics, title)
    report.write_report(markdown, out_dir)
    figures = _figures(metrics, out_dir, cache)
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
        markdown=markdown, key="transfer-report", description=f"transferflow report: {title}"
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


class _Figures(BaseModel):
    files: dict[str, ArtifactRef]  # name -> PNG


def _figures(metrics: dict[str, Any], out_dir: Path, cache: CacheConfig | None) -> dict[str, Path]:
    """The run's pictures in ``out_dir/figures``: copied from the store when the same figures
    were drawn before (matplotlib is the slow part of a cached rerun's report)."""
    import shutil

    from transferflow.figures import figure_inputs, write_figures

    def draw(work: Path) -> _Figures:
        return _Figures(
            files={name: ArtifactRef.of(p) for name, p in write_figures(metrics, work).items()}
        )

    if cache is None or not cache.enabled:
        return write_figures(metrics, out_dir)
    drawn = value_of(cached("figures", figure_inputs(metrics), cache, _Figures, draw))
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
    from data_checks.runner import build_docs

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


@task(name="register_model", cache_policy=NO_CACHE, task_run_name="register_model")
def register_model(
    metrics: dict[str, Any],
    models: dict[str, ModelRef],
    target: DatasetRef,
    source: DatasetRef,
    config: Any,
    run_dir: Path,
) -> dict[str, Any]:
    """Register the chosen model as a version; move the champion when it earned it."""
    from transferflow.registry import Registry

    outcome = promotion.register_chosen(
        metrics, models, target, source, config, run_dir, Registry(config.registry.dir)
    )
    get_run_logger().info(
        "registered model version %d (%s); champion: v%s (%s)",
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
    id_column: str | None = "id",
) -> dict[str, Any]:
    """Score a file with a registered model (default: the champion)."""
    from transferflow.registry import Registry
    from transferflow.scoring import score_file

    stats = score_file(
        input_path, output_path, Registry(registry_dir), version, text_columns, id_column
    )
    get_run_logger().info(
        "scored %d rows with model v%d in %.2f s (%.0f rows/s) -> %s",
        stats.rows,
        stats.version,
        stats.seconds,
        stats.rows_per_second,
        stats.output,
    )
    return {
        "version": stats.version,
        "rows": stats.rows,
        "seconds": round(stats.seconds, 3),
        "rows_per_second": round(stats.rows_per_second, 1),
        "output": stats.output,
    }


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

    from transferflow.data import TEXT, normalise_text
    from transferflow.suggest import suggest_file

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
    create_table_artifact(
        key="label-suggestions",
        # The text last and cut: the UI's table is only as wide as the page.
        table=[
            {**{k: v for k, v in r.items() if k != "text"}, "text": r["text"][:120]}
            for r in result.pop("table")
        ],
        description=f"**Texts to label next** ({result['strategy']}), most useful first; the "
        f"full list with every column: `{Path(result['output']).resolve()}` on machine "
        f"`{socket.gethostname()}`.",
    )
    return result
