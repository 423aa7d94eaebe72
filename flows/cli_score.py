"""``transferflow score``: batch predictions for a file, in the calling process (its featurising
processes end with it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.flows import local_server
from transferflow.flows.cli_common import ModelNameOpt, RegistryOpt
from transferflow.storage import paths
from transferflow.storage.paths import STDOUT


def score(
    input_path: Annotated[
        Path, typer.Option("--input", help="File to score (CSV/TSV/JSONL/Parquet).")
    ],
    output_path: Annotated[
        Path,
        typer.Option("--output", help="Predictions CSV to write; '-' writes to standard output."),
    ],
    model: Annotated[
        int | None,
        typer.Option("--model", help="Model version (default: the champion).", show_default=False),
    ] = None,
    model_name: ModelNameOpt = None,
    registry: RegistryOpt = None,
    text_column: Annotated[
        list[str] | None,
        typer.Option(
            "--text-column",
            metavar="<column>",
            help="Text column to score (repeat to join several, as in training); default: the "
            "columns the model was trained on.",
            show_default=False,
        ),
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option(
            "--id-column",
            help="Column copied to the output as its first column (an error when the file lacks "
            "it); default: an 'id' column, when the file has one.",
            show_default=False,
        ),
    ] = None,
    max_drift: Annotated[
        float | None,
        typer.Option(
            "--max-drift",
            help="Alert above this drift (proxy A-distance to the training target, 0-2; "
            "default 0.8).",
            show_default=False,
        ),
    ] = None,
    max_accuracy_drop: Annotated[
        float | None,
        typer.Option(
            "--max-accuracy-drop",
            help="Alert when the estimated accuracy falls this far below the out-of-fold one "
            "(default 0.05).",
            show_default=False,
        ),
    ] = None,
    dask: Annotated[
        str | None,
        typer.Option(
            "--dask",
            help="Featurise and predict on Dask workers: 'local' (a cluster of this machine, "
            "ended with the call) or a scheduler's address (tcp://host:8786). The output is one "
            "file in input order.",
            show_default=False,
        ),
    ] = None,
    dask_workers: Annotated[
        int,
        typer.Option(
            "--dask-workers", metavar="<n>", min=1, help="Worker processes of --dask local."
        ),
    ] = 2,
) -> None:
    """Score a file with a registered model: predicted label and class probabilities per row,
    and how well the batch still fits the model (drift, estimated accuracy; written beside the
    predictions as `<output stem>.monitoring.json`)."""
    from transferflow.config.serving import MonitoringConfig

    try:
        limits = MonitoringConfig.model_validate(
            {
                k: v
                for k, v in {
                    "max_drift": max_drift,
                    "max_accuracy_drop": max_accuracy_drop,
                }.items()
                if v is not None
            }
        )
    except ValueError as exc:
        from transferflow.errors import ConfigError

        raise ConfigError(f"--max-drift / --max-accuracy-drop: {exc}") from None
    _check_score_paths(input_path, output_path)
    from transferflow.storage.catalog import Catalog

    Catalog(registry).select(model_name)  # a missing or ambiguous name: said before any flow run
    to_stdout = str(output_path) == STDOUT
    with local_server.for_this_call():
        from transferflow.flows.score import score as score_flow

        out = score_flow(
            input_path,
            output_path,
            registry,
            model,
            text_column,
            id_column,
            model_name,
            limits,
            dask,
            dask_workers,
        )
    typer.echo(
        f"scored {out['rows']} rows with model '{out['model_name']}' v{out['version']} in "
        f"{out['seconds']:.2f} s "
        f"({out['rows_per_second']:.0f} rows/s): {out['output']}",
        err=to_stdout,  # standard output holds the predictions alone
    )
    _print_monitoring(out.get("monitoring"), output_path, to_stdout)


def _print_monitoring(figures: dict | None, output_path: Path, to_stdout: bool) -> None:
    """The batch's monitoring figures, in a few lines (and where the JSON is)."""
    from transferflow.serving.monitoring import alerts

    if figures is None:
        typer.echo(
            "  monitoring: this version has no monitoring reference (registered before "
            "monitoring existed); retrain to watch batches.",
            err=to_stdout,
        )
        return
    acc, drift = figures["accuracy"], figures["drift"]

    def num(v):
        return "–" if v is None else f"{v:.3f}"

    def shares(values: dict) -> str:
        return ", ".join(f"{k} {v:.2f}" for k, v in values.items())

    training = figures["training_label_shares"]

    lines = [
        f"  estimated accuracy {num(acc['estimated'])} (out-of-fold {num(acc['expected'])}, "
        f"alert below {num(acc['floor'])})"
        + (f"; confidence calibrated on {on}" if (on := acc.get("calibrated_on")) else ""),
        f"  drift {num(drift['score'])} (proxy A-distance to the training target, alert above "
        f"{num(drift['limit'])}); vocabulary overlap {num(figures['vocab_overlap'])}, "
        f"OOV rate {num(figures['oov_rate'])}",
        f"  predicted labels {shares(figures['predicted_shares'])} ("
        + (f"training: {shares(training)}" if training else "no target labels to compare with")
        + ")",
    ]
    crossed = alerts(figures)
    lines.append(("  ALERT: " + "; ".join(crossed)) if crossed else "  within the limits")
    if not to_stdout:
        from transferflow.serving.scoring import monitoring_path

        lines.append(f"  monitoring: {monitoring_path(Path(output_path))}")
    for line in lines:
        typer.echo(line, err=to_stdout)


def _check_score_paths(input_path: Path, output_path: Path) -> None:
    """Fail fast, before anything loads: the input is a file and the output follows the path
    policy (:func:`transferflow.storage.paths.output_file`: a regular file or '-', never the
    input)."""
    from transferflow.errors import DataError
    from transferflow.storage.files import is_url

    if not is_url(input_path) and (why := paths.not_a_file(input_path)):
        raise DataError(f"--input {input_path}: {why}.")
    target = paths.output_file(output_path, "--output")
    if target is not None:
        paths.refuse_inputs(target, [input_path], "--output")
