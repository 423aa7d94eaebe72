"""The ``transfer-learning`` flow: load → validate → embed → train on source → fine-tune on target →
evaluate → report.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from transferflow.config.settings import RunConfig
from transferflow.errors import ConfigError, GateFailedError
from transferflow.evaluation.promotion import baseline_roles
from transferflow.flows import _logging
from transferflow.flows.validate import run_config, run_data_gates
from transferflow.reporting.report import link_artifacts, write_config
from transferflow.storage import paths
from transferflow.storage.artifacts import DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks.caching import cached
from transferflow.tasks.model_gates import check_embeddings, check_promotion, check_source_model
from transferflow.tasks.reporting import (
    DOCS,
    evaluate_models,
    learning_curve,
    publish_gate_failure,
    publish_report,
    record_gate_failure,
)
from transferflow.tasks.serving import register_model
from transferflow.tasks.stages import (
    build_embeddings,
    convert_vectors,
    fine_tune_target_model,
    train_pooled_baseline,
    train_source_model,
    train_target_only_model,
)

_logging.install()


def _slug(text: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())
    return "-".join(p for p in keep.split("-") if p) or "data"


def run_folder_name(config: RunConfig, taken: int = 0) -> str:
    """The run folder's name: ``run_name``, or ``<source>-to-<target>-<UTC time>`` with ``-2``,
    ``-3``... added when runs started in the same second (their folders must not collide).

    Args:
        config: the run's settings.
        taken: how many default names were already found in use (0 on the first try).
    """
    if config.run_name:
        return config.run_name
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = f"{_slug(config.data.source.name)[:40]}-to-{_slug(config.data.target.name)[:40]}-{stamp}"
    return base if taken == 0 else f"{base}-{taken + 1}"


def _in_use(parent: Path, name: str) -> bool:
    return any(
        (parent / f).exists() or (parent / f).is_symlink()
        for f in (name, f"{name}.failed", f".{name}.partial")
    )


def _claim_run_folder(config: RunConfig, parent: Path) -> tuple[str, Path]:
    """Pick the run's name and create its staging folder (``mkdir`` is the atomic claim: of two
    runs started in the same second, one gets the next default name)."""
    taken = 0
    while True:
        name = run_folder_name(config, taken)
        paths.check_name(name, "run_name")
        work = paths.inside(parent, f".{name}.partial", "run_name")
        if config.run_name is None and _in_use(parent, name):
            taken += 1
            continue
        try:
            work.mkdir(parents=True)
        except FileExistsError:
            if config.run_name is None:
                taken += 1
                continue
            raise ConfigError(
                f"{work} exists: another run named '{name}' is in progress. Choose another "
                "run_name."
            ) from None
        paths.claim_scratch(work)
        return name, work


def _flow_run_name() -> str:
    cfg = run_config()
    if cfg is None:
        return "transfer-learning"
    d = cfg.data
    return f"{d.source.name} → {d.target.name} ({cfg.transfer.strategy}, {cfg.model.architecture})"


@flow(
    name="transfer-learning",
    on_failure=[_logging.log_failure],
    flow_run_name=_flow_run_name,
    description="Train on a source domain, adapt to a target domain, measure whether it helped.",
)
def transfer_learning(config: RunConfig) -> dict[str, Any]:
    """Run the whole transfer-learning pipeline; returns the run folder and the metrics."""
    logger = get_run_logger()
    parent = config.runs_parent()
    for folder, pid in paths.remove_abandoned(parent, ".*.partial"):
        logger.info("removed %s, left by a run that was killed (process %d)", folder, pid)
    if config.run_name is not None:
        # The path policy (transferflow.storage.paths): the run name is a plain name and every
        # folder of
        # the run stays under output_dir; a folder is only replaced when the product made it.
        _check_free(parent, config.run_name)
    parent_existed = parent.exists()
    # Work in a staging folder and rename it at the end, so a run folder is never half-written.
    name, work = _claim_run_folder(config, parent)
    final_dir = paths.child(parent, name, "run_name")
    failed_dir = paths.inside(parent, f"{name}.failed", "run_name")
    gates: dict[str, Any] = {}
    try:
        metrics, registry = _pipeline(config, work, name, gates, final_dir)
        (work / paths.OWNER).unlink(missing_ok=True)
        work.rename(final_dir)
    except GateFailedError as exc:
        # Keep what explains the failure (gate report, Data Docs), clearly marked as failed.
        _keep_only_failure_record(work)
        markdown = record_gate_failure(exc, gates, work, name)
        paths.mark_made(work, FAILED_RUN)
        if paths.made_by_product(failed_dir, FAILED_RUN):
            shutil.rmtree(failed_dir)  # the record of an earlier failure of the same run name
        work.rename(failed_dir)
        publish_gate_failure(markdown, exc, failed_dir, name)
        raise
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if not parent_existed and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
        raise
    logger.info("Results in %s", final_dir)
    return {"run_dir": str(final_dir), "metrics": metrics, "registry": registry}


def _check_free(parent: Path, name: str) -> None:
    """A named run may not replace a run folder, nor a ``.failed`` folder the product did not
    make."""
    final_dir = paths.child(parent, name, "run_name")
    failed_dir = paths.inside(parent, f"{name}.failed", "run_name")
    if final_dir.exists() or final_dir.is_symlink():
        raise ConfigError(f"Run folder {final_dir} already exists; choose another run_name.")
    if (failed_dir.exists() or failed_dir.is_symlink()) and not paths.made_by_product(
        failed_dir, FAILED_RUN
    ):
        raise ConfigError(
            f"{failed_dir} exists and was not made by transferflow; a run named '{name}' that "
            "stops at a gate would need that name. Choose another run_name."
        )


FAILED_RUN = "failed-run"  # the marker kind of a run folder kept after a gate stopped the run


def _keep_only_failure_record(work: Path) -> None:
    """Drop the partial artefacts of a failed run; keep its config and Data Docs."""
    for path in work.iterdir():
        if path.name not in (DOCS, "config.json"):
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _pipeline(
    config: RunConfig, work: Path, title: str, gates: dict[str, Any], final_dir: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The stages after the staging folder exists; returns the metrics and the registry outcome."""
    g, seed = config.gates, config.seed
    write_config(config.model_dump_json(), work)
    art, docs = work / "artifacts", work / DOCS
    verdicts = g.verdicts(config.cache)
    source, target = run_data_gates(config, art, docs, gates, verdicts)
    cache = config.cache
    roles = baseline_roles(config.baselines, same_labels=source.labels == target.labels)
    if target.n_train == 0:  # zero target labels: nothing to train target_only or pooled_lr on
        roles = [r for r in roles if r == "source_only"]
    emb, source_model, transfer, pooled = train_transfer(config, source, target, gates, docs, roles)
    models = {"transfer": transfer}
    for role in roles:
        if role == "target_only":
            models[role] = _value(
                cached(train_target_only_model, cache)(
                    target, emb, config.model, seed, cache, return_state=True
                )
            )
        elif role == "source_only":
            models[role] = source_model
        elif role == "pooled_lr":
            assert pooled is not None  # trained before the transfer model (train_transfer)
            models[role] = pooled
    extra = {
        "run": {
            "name": title,
            "seed": seed,
            "strategy": config.transfer.strategy,
            "architecture": config.model.architecture,
        },
        "data": {
            role: {
                "name": ref.name,
                "counts": ref.counts,
                "labels": ref.labels,
                "label_counts": ref.label_counts,
                "dropped_blank_text": ref.dropped_blank_text,
                "dropped_repeats": ref.dropped_repeats,
                "dropped_labelled": ref.dropped_labelled,
                "dropped_test_overlap": ref.dropped_test_overlap,
                "rows_in_files": ref.rows_in_files,
            }
            for role, ref in (("source", source), ("target", target))
        },
        "embeddings": {
            "origin": emb.origin,
            "vocab_size": emb.vocab_size,
            "vector_size": emb.vector_size,
            "token_coverage": emb.token_coverage,
        },
        "domain_shift": gates["domain_shift"]["figures"],
        "domain_shift_limits": {
            "vocab_overlap": ["min", g.domain_shift.min_vocab_overlap],
            "label_distance": ["max", g.domain_shift.max_label_distance],
            "proxy_a_distance": ["max", g.domain_shift.max_proxy_a_distance],
        },
        "source_model": gates["source_model"]["figures"],
        "self_training": transfer.summary.get("self_training"),
        "ensemble_weights": (
            {
                "members": transfer.summary["member_weights"],
                "from": transfer.summary.get("weights_from"),
            }
            if "member_weights" in transfer.summary
            else None
        ),
    }
    metrics = evaluate_models(target, models, work, extra, cache)
    if config.learning_curve.enabled and target.n_train > 0:
        metrics = learning_curve(
            metrics,
            source_model,
            source,
            target,
            emb,
            config.model,
            config.transfer,
            config.learning_curve.sizes,
            seed,
            art / "learning_curve",
        )
    gates["promotion"] = _value(
        check_promotion(models, target, g.promotion, docs, verdicts, return_state=True)
    )
    link_artifacts(
        {
            "vectors": emb.vectors,
            "source_model": source_model.model,
            **{name: ref.model for name, ref in models.items()},
        },
        work / "artifacts",
    )
    metrics = publish_report(metrics, gates, title, work, final_dir, g.data_docs, cache)
    # Registered while the staging folder (which the data references point into) still exists.
    registry = None
    if config.registry.enabled:
        registry = register_model(metrics, models, target, source, config, final_dir)
    return metrics, registry


def train_transfer(
    config: RunConfig,
    source: DatasetRef,
    target: DatasetRef,
    gates: dict[str, Any],
    docs: Path | None,
    baselines: Sequence[str] = (),
) -> tuple[EmbeddingsRef, ModelRef, ModelRef, ModelRef | None]:
    """Word vectors, the source model and the transfer model, each followed by its gate (shared
    by the ``transfer-learning`` and ``suggest-labels`` flows; every stage is cached).

    Args:
        baselines: the baselines the run trains. With ``pooled_lr`` among them it is trained
            here, before the transfer model: it is the ensemble's NB member (same rows, n-grams
            and seed), which fine-tuning then takes instead of fitting it a second time.

    Returns:
        (embeddings, source model, transfer model, ``pooled_lr`` model or None).
    """
    g, seed, cache = config.gates, config.seed, config.cache
    parsed = None
    if (vectors := config.embeddings.pretrained_path) is not None:  # parsed once per content
        parsed = _value(
            cached(convert_vectors, cache)(
                vectors, config.embeddings.pretrained_format, cache, return_state=True
            )
        )
    emb = _value(
        cached(build_embeddings, cache)(
            source, target, config.embeddings, seed, cache, parsed, return_state=True
        )
    )
    verdicts = g.verdicts(cache)
    gates["embeddings"] = _value(
        check_embeddings(
            emb,
            target,
            config.embeddings.vector_size,
            g.embeddings,
            docs,
            verdicts,
            return_state=True,
        )
    )
    source_model = _value(
        cached(train_source_model, cache)(
            source, target, emb, config.model, seed, cache, return_state=True
        )
    )
    gates["source_model"] = _value(
        check_source_model(source_model, source, g.source_model, docs, verdicts, return_state=True)
    )
    pooled = None
    if "pooled_lr" in baselines:
        pooled = _value(
            cached(train_pooled_baseline, cache)(
                source, target, emb, config.model, seed, cache, return_state=True
            )
        )
    transfer = _value(
        cached(fine_tune_target_model, cache)(
            source_model,
            source,
            target,
            emb,
            config.model,
            config.transfer,
            seed,
            cache,
            pooled,
            return_state=True,
        )
    )
    return emb, source_model, transfer, pooled


def _value(state):
    """A task's result from its final state (cached tasks end in a ``Cached`` state)."""
    return state.result()
