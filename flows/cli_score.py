"""``transferflow score``: batch predictions for a file, in the calling process (its featurising
processes end with it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.flows import local_server
from transferflow.flows.cli_common import ModelNameOpt, RegistryOpt, TextColumnOpt
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
    text_column: TextColumnOpt = None,
    id_column: Annotated[
        str,
        typer.Option(
            "--id-column", help="Column copied to the output when present.", show_default=False
        ),
    ] = "id",
) -> None:
    """Score a file with a registered model: predicted label and class probabilities per row."""
    _check_score_paths(input_path, output_path)
    to_stdout = str(output_path) == STDOUT
    with local_server.for_this_call():
        from transferflow.flows.score import score as score_flow

        out = score_flow(
            input_path, output_path, registry, model, text_column, id_column, model_name
        )
    typer.echo(
        f"scored {out['rows']} rows with model '{out['model_name']}' v{out['version']} in "
        f"{out['seconds']:.2f} s "
        f"({out['rows_per_second']:.0f} rows/s): {out['output']}",
        err=to_stdout,  # standard output holds the predictions alone
    )


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
