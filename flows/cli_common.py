"""Pieces the CLI modules share: the error exit, the option helper, what a training command
imports while its server starts, and where its flow keeps results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from transferflow.errors import TransferflowError


class _PlainHelp:
    """Typer shows a flag (``--help``, ``--json``...) with a ``<bool>`` type; a flag takes no
    value, so every flag of every command is shown bare."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = ""
        return option

    def get_params(self, ctx):
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class _Command(_PlainHelp, TyperCommand):
    def invoke(self, ctx):
        """Run the command; a user mistake (exit 2, gates 3) or an environment failure (disk
        full, read-only folder, permission denied: exit 2) is printed as one paragraph, never as
        a traceback, whichever command raised it."""
        from transferflow.errors import environment_failure

        try:
            return super().invoke(ctx)
        except TransferflowError as exc:  # every command: a user mistake is one message
            raise _fail(exc) from None
        except OSError as exc:
            failure = environment_failure(exc)
            # A listing piped into `head` (a broken pipe with no file named): the reader has what
            # it wanted, and click ends the call quietly (exit 1, as for its own --help). score's
            # predictions on standard output name the stream: rows were lost, so it says so.
            quiet = isinstance(exc, BrokenPipeError) and exc.filename is None
            if failure is None or quiet:
                raise
            raise fail_with(str(failure), failure.exit_code) from None


class _Group(_PlainHelp, TyperGroup):
    pass


class App(typer.Typer):
    """``typer.Typer`` whose commands show ``--help`` as a plain flag."""

    def __init__(self, **kwargs):
        # Markdown: help is written as docstrings, wrapped at ~100 columns; markdown joins a
        # paragraph's lines (rich mode kept the docstring's line breaks) and shows ``code``.
        kwargs.setdefault("rich_markup_mode", "markdown")
        super().__init__(cls=_Group, **kwargs)

    def command(self, *args, cls=None, **kwargs):
        """``Typer.command`` whose commands print a user mistake as one paragraph."""
        return super().command(*args, cls=cls or _Command, **kwargs)


def _fail(exc: TransferflowError) -> typer.Exit:
    return fail_with(str(exc), exc.exit_code)


def exit_code_of(exc: BaseException) -> int | None:
    """The CLI exit code of a user mistake (2, gates 3), or None for anything else (a bug)."""
    return exc.exit_code if isinstance(exc, TransferflowError) else None


def fail_with(message: str, exit_code: int) -> typer.Exit:
    """Print ``Error: message`` once, in red on stderr; the exit to raise."""
    typer.secho(f"Error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(exit_code)


RegistryOpt = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="Model registry folder (default: $TRANSFERFLOW_REGISTRY_DIR, else "
        "$TRANSFERFLOW_HOME/registry; see 'transferflow where').",
        show_default=False,
    ),
]
ModelNameOpt = Annotated[
    str | None,
    typer.Option(
        "--model-name",
        help="Registered model name (one per target task; 'transferflow models list' shows "
        "them); needed when the registry holds several.",
        show_default=False,
    ),
]


# What a training flow imports (~8 s), imported while the local server this call starts comes up
# (~10 s on a fresh PREFECT_HOME). Left to the first model task, Keras and JAX alone added ~2.5 s
# to a cold run on 2,000 source rows.
TRAINING_MODULES = (
    "transferflow.flows.transfer",
    "great_expectations",
    "transferflow.models.wide_deep",
    "transferflow.models.solver",  # Keras on JAX (the backend is chosen on import), JAX
    "optax",
    "gensim.models",
    "sklearn.feature_extraction.text",
    "sklearn.model_selection",
)


def with_result_storage(flow_fn, cfg):
    """The flow with Prefect's result storage beside a remote artefact store (unchanged for a
    local one: :func:`~transferflow.tasks.caching.prefect_result_storage`)."""
    from transferflow.tasks.caching import prefect_result_storage

    storage = prefect_result_storage(cfg.cache)
    return flow_fn.with_options(result_storage=storage) if storage else flow_fn
