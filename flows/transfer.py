"""The ``transfer-learning`` flow: load → validate → embed → train on source → fine-tune on target →
evaluate → report.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run

from flows import _logging
from tasks.gates import validate_dataset
from tasks.stages import (
    build_embeddings,
    evaluate_models,
    fine_tune_target_model,
    load_dataset,
    publish_report,
    train_source_model,
    train_target_only_model,
    train_tfidf_baseline,
)
from transferflow.config import RunConfig
from transferflow.pipeline import baseline_roles, write_config

_logging.install()


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())
    return "-".join(p for p in keep.split("-") if p) or "data"


def run_folder_name(config: RunConfig) -> str:
    """The run folder's name: ``run_name`` or ``<source>-to-<target>-<UTC time>``."""
    if config.run_name:
        return config.run_name
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{_slug(config.data.source.name)}-to-{_slug(config.data.target.name)}-{stamp}"


def _flow_run_name() -> str:
    cfg = flow_run.parameters.get("config")
    try:
        cfg = cfg if isinstance(cfg, RunConfig) else RunConfig.model_validate(cfg)
    except Exception:  # noqa: BLE001 - a bad config fails validation later with a clear message
        return "transfer-learning"
    d = cfg.data
    return f"{d.source.name} → {d.target.name} ({cfg.transfer.strategy}, {cfg.model.architecture})"


@flow(
    name="transfer-learning",
    flow_run_name=_flow_run_name,
    description="Train on a source domain, adapt to a target domain, and measure whether it helped.",
)
def transfer_learning(config: RunConfig) -> dict[str, Any]:
    """Run the whole transfer-learning pipeline; returns the run folder and the metrics."""
    logger = get_run_logger()
    name = run_folder_name(config)
    final_dir = Path(config.output_dir) / name
    if final_dir.exists():
        from transferflow.errors import ConfigError

        raise ConfigError(f"Run folder {final_dir} already exists; choose another run_name.")
    # Work in a staging folder and rename it at the end, so a run folder is never half-written.
    parent = Path(config.output_dir)
    parent_existed = parent.exists()
    work = parent / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        metrics = _pipeline(config, work, title=name)
        work.rename(final_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if not parent_existed and not any(parent.iterdir()):
            parent.rmdir()
        raise
    logger.info("Results in %s", final_dir)
    return {"run_dir": str(final_dir), "metrics": metrics}


def _pipeline(config: RunConfig, work: Path, title: str) -> dict[str, Any]:
    d, seed = config.data, config.seed
    write_config(config.model_dump_json(), work)
    art = work / "artifacts"
    source = load_dataset(d.source, "source", d.test_size, seed, None, art)
    target = load_dataset(d.target, "target", d.test_size, seed, d.target_train_size, art)
    source = validate_dataset(source, "source", config.checks, art)
    target = validate_dataset(target, "target", config.checks, art)
    emb = build_embeddings(source, target, config.embeddings, seed, art)
    source_model = train_source_model(source, emb, config.model, seed, art)
    candidates = {
        "transfer": fine_tune_target_model(
            source_model, source, target, emb, config.model, config.transfer, seed, art
        )
    }
    for role in baseline_roles(config.baselines, same_labels=source.labels == target.labels):
        if role == "target_only":
            candidates[role] = train_target_only_model(target, emb, config.model, seed, art)
        elif role == "source_only":
            candidates[role] = source_model
        elif role == "tfidf_lr":
            candidates[role] = train_tfidf_baseline(target, seed, art)
    extra = {
        "run": {"name": title, "seed": seed, "strategy": config.transfer.strategy,
                "architecture": config.model.architecture},
        "data": {
            role: {"name": ref.name, "n_train": ref.n_train, "n_test": ref.n_test,
                   "labels": ref.labels, "train_label_counts": ref.train_label_counts,
                   "dropped_blank_text": ref.dropped_blank_text}
            for role, ref in (("source", source), ("target", target))
        },
        "embeddings": {"origin": emb.origin, "vocab_size": emb.vocab_size,
                       "vector_size": emb.vector_size, "token_coverage": emb.token_coverage},
        "source_model": {"best_val_accuracy": source_model.summary.get("best_val_accuracy")},
    }
    metrics = evaluate_models(target, candidates, emb, config.model, work, extra)
    publish_report(metrics, title, work)
    return metrics
