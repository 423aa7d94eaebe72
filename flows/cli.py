"""``transferflow`` command line: ad-hoc runs of the flows.

Every flag maps onto one field of :class:`transferflow.config.settings.RunConfig`; ``--config
FILE.yaml``
gives any of them in a file, ``--set section.field=value`` reaches the rest. Flags beat the file.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from transferflow.config.sources import assemble_config
from transferflow.errors import ConfigError
from transferflow.flows import local_server
from transferflow.flows.cli_common import TRAINING_MODULES, App, with_result_storage
from transferflow.flows.cli_manage import cache_app, models_app, server_app, where
from transferflow.flows.cli_options import (
    CacheDirOpt,
    ConfigOpt,
    LabelColumnOpt,
    SeedOpt,
    SetOpt,
    SourceMaxRowsOpt,
    SourceNameOpt,
    SourceOpt,
    SourceTestOpt,
    TargetNameOpt,
    TargetOpt,
    TargetTestOpt,
    TargetUnlabeledOpt,
    TestSizeOpt,
    TextColumnOpt,
    TrainSizeOpt,
    VectorsOpt,
    data_flags,
)
from transferflow.flows.cli_score import score
from transferflow.flows.cli_suggest import suggest
from transferflow.flows.cli_sweep import sweep

app = App(
    name="transferflow",
    help="Transfer learning for text classification, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(server_app, name="server")
app.add_typer(cache_app, name="cache")
app.add_typer(models_app, name="models")


@app.callback()
def _root() -> None:
    """Transfer learning for text classification, orchestrated by Prefect."""


def _int_list(text: str, flag: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(
            f"{flag}: expected comma-separated whole numbers such as 25,50,100; got '{text}'."
        ) from None


@app.command()
def run(
    config: ConfigOpt = None,
    source: SourceOpt = None,
    source_test: SourceTestOpt = None,
    source_name: SourceNameOpt = None,
    target: TargetOpt = None,
    target_test: TargetTestOpt = None,
    target_unlabeled: TargetUnlabeledOpt = None,
    target_name: TargetNameOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    target_train_size: TrainSizeOpt = None,
    source_max_rows: SourceMaxRowsOpt = None,
    test_size: TestSizeOpt = None,
    vectors: VectorsOpt = None,
    vectors_format: Annotated[
        str | None,
        typer.Option(
            "--vectors-format",
            help="auto | word2vec | word2vec-binary | glove | fasttext",
            show_default=False,
        ),
    ] = None,
    vector_size: Annotated[
        int | None, typer.Option("--vector-size", help="Vector dimension.", show_default=False)
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="ensemble (default) | finetune | joint | shared-private",
            show_default=False,
        ),
    ] = None,
    max_len: Annotated[
        int | None,
        typer.Option(
            "--max-len", help="Tokens per text the word-vector mean reads.", show_default=False
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option("--alpha", help="'joint'/'ensemble': source loss weight.", show_default=False),
    ] = None,
    beta: Annotated[
        float | None,
        typer.Option("--beta", help="'joint'/'ensemble': target loss weight.", show_default=False),
    ] = None,
    seed: SeedOpt = None,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", help="Parent of run folders.", show_default=False)
    ] = None,
    run_name: Annotated[
        str | None, typer.Option("--run-name", help="Run folder name.", show_default=False)
    ] = None,
    model_name: Annotated[
        str | None,
        typer.Option(
            "--model-name",
            help="Register the model under this name (default: the target's name); each name "
            "has its own versions and champion.",
            show_default=False,
        ),
    ] = None,
    refresh_cache: Annotated[
        bool, typer.Option("--refresh-cache", help="Recompute every cached stage.")
    ] = False,
    cache_dir: CacheDirOpt = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.")
    ] = False,
    data_docs: Annotated[
        bool,
        typer.Option(
            "--data-docs",
            help="Also write GX Data Docs (HTML) for a run that passes its gates (a run "
            "stopped by a gate always gets them); every check then runs again.",
        ),
    ] = False,
    learning_curve: Annotated[
        str | None,
        typer.Option(
            "--learning-curve",
            help="Also report accuracy at these target-label budgets, "
            "e.g. 25,50,100,200 (transfer vs target_only, table and plot).",
        ),
    ] = None,
    set_: SetOpt = None,
) -> None:
    """Run the transfer-learning flow. Without data flags: the built-in demo."""
    flags = data_flags(locals())
    flags.update(
        {
            "embeddings.pretrained_format": vectors_format,
            "embeddings.vector_size": vector_size,
            "transfer.strategy": strategy,
            "model.max_len": max_len,
            "transfer.alpha": alpha,
            "transfer.beta": beta,
            "output_dir": output_dir,
            "run_name": run_name,
            "registry.model_name": model_name,
            "cache.refresh": True if refresh_cache else None,
            "cache.enabled": False if no_cache else None,
            "gates.data_docs": True if data_docs else None,
            "learning_curve.enabled": True if learning_curve else None,
        }
    )
    if learning_curve:
        flags["learning_curve.sizes"] = _int_list(learning_curve, "--learning-curve")
    cfg = assemble_config(config, flags, set_ or [])
    from transferflow.data.preflight import check_inputs

    check_inputs(cfg)  # before Prefect and the ML libraries are even imported
    with local_server.for_this_call(warm=TRAINING_MODULES):
        from transferflow.flows.transfer import transfer_learning

        result = with_result_storage(transfer_learning, cfg)(cfg)
    _print_summary(result)


@app.command()
def validate(
    config: ConfigOpt = None,
    source: SourceOpt = None,
    source_test: SourceTestOpt = None,
    source_name: SourceNameOpt = None,
    target: TargetOpt = None,
    target_test: TargetTestOpt = None,
    target_unlabeled: TargetUnlabeledOpt = None,
    target_name: TargetNameOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    target_train_size: TrainSizeOpt = None,
    source_max_rows: SourceMaxRowsOpt = None,
    test_size: TestSizeOpt = None,
    vectors: VectorsOpt = None,
    seed: SeedOpt = None,
    docs_dir: Annotated[
        Path | None,
        typer.Option("--docs-dir", help="Write GX Data Docs (HTML) here.", show_default=False),
    ] = None,
    cache_dir: CacheDirOpt = None,
    set_: SetOpt = None,
) -> None:
    """Run only the data-quality gates (raw input, leakage, domain shift); no training.

    Exit code 0 when every gate passes (or only warns), 3 when one fails.
    """
    flags = data_flags(locals())
    cfg = assemble_config(config, flags, set_ or [])
    from transferflow.data.preflight import check_docs_dir, check_inputs

    check_inputs(cfg)
    check_docs_dir(docs_dir)
    with local_server.for_this_call(warm=("transferflow.flows.validate", "great_expectations")):
        from transferflow.flows.validate import validate_data

        gates = validate_data(cfg, docs_dir)
    typer.echo("")
    for name, g in gates.items():
        typer.echo(f"  {name:<18} {g['status']:<7} {g['checks']:>3} checks")
        for failure in g["failed"]:
            typer.echo(f"      - {failure}")
    if docs_dir is not None:
        typer.echo(f"  Data Docs: {Path(docs_dir) / 'index.html'}")


app.command()(suggest)
app.command()(score)
app.command()(sweep)
app.command()(where)


def _print_summary(result: dict[str, Any]) -> None:
    metrics = result["metrics"]
    typer.echo("")
    typer.secho(f"Results: {result['run_dir']}", bold=True)
    if metrics["candidates"]:
        typer.echo(f"  {'candidate':<12} {'accuracy':>9} {'macro-F1':>9}")
        for name, m in metrics["candidates"].items():
            typer.echo(f"  {name:<12} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f}")
    else:
        from transferflow.reporting.report import NO_TEST_SET

        typer.echo(f"  no target test set, nothing measured: {NO_TEST_SET}")
    gain = metrics.get("transfer_gain", {}).get("accuracy_vs_target_only")
    if gain is not None:
        typer.echo(f"  transfer vs target-only: {gain:+.4f} accuracy")
    gates = metrics.get("gates", {})
    for name, gate in gates.items():
        if gate.get("status") == "warned":  # in the logs too, but easy to miss among them
            for failure in gate.get("failed", []):
                typer.secho(f"  gate {name} warned: {failure.split(' [')[0]}", fg="yellow")
    typer.echo(f"  report: {Path(result['run_dir']) / 'report.md'}")
    reg = result.get("registry")
    if reg:
        champion = f"v{reg['champion']}" if reg["champion"] is not None else "none yet"
        typer.echo(
            f"  registered model '{reg['model_name']}' v{reg['version']}; champion: {champion} "
            f"({reg['reason']})"
        )


def main() -> None:
    """Console-script entry point."""
    # An offline machine logs a telemetry error at every temporary-server start; opt out unless the
    # user decided otherwise.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's 20 s default for the temporary server's start is too short on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
