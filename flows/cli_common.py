"""Pieces the CLI modules share: the error exit and the option helper."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.errors import TransferflowError


def _fail(exc: TransferflowError) -> typer.Exit:
    typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(exc.exit_code)


def _opt(kind, *names: str, help: str):  # noqa: A002 - mirrors typer's parameter name
    return Annotated[kind, typer.Option(*names, help=help, show_default=False)]


RegistryOpt = _opt(
    Path | None,
    "--registry",
    help="Model registry folder (default: $TRANSFERFLOW_REGISTRY_DIR or ./registry).",
)
