"""``transferflow suggest``: which unlabelled target texts to label next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.config.sources import assemble_config
from transferflow.errors import ConfigError
from transferflow.flows import local_server
from transferflow.flows.cli_common import TRAINING_MODULES, with_result_storage
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


def suggest(
    unlabeled: Annotated[
        Path | None,
        typer.Option(
            "--unlabeled",
            help="Unlabelled target texts to choose from (CSV/TSV/JSONL/Parquet; any label column "
            "is ignored). Default with the demo: the demo's target file.",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="CSV to write: the texts to label next, most useful first (required).",
            show_default=False,
        ),
    ] = None,
    n: Annotated[
        int | None,
        typer.Option("--n", help="How many texts to suggest (default 100).", show_default=False),
    ] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="margin (default: the least sure texts) | random | balanced-margin | "
            "softrank-margin | margin-cluster | badge | typical-cluster | committee "
            "(see docs/models.md).",
            show_default=False,
        ),
    ] = None,
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
    cache_dir: CacheDirOpt = None,
    set_: SetOpt = None,
) -> None:
    """Which unlabelled target texts to label next (trains or reuses the transfer model).

    Trains (or reuses from the cache) the transfer model on the labels there are and writes the
    texts to label next, chosen by --method, with the model's prediction and margin for each.

    Never suggests a text that is already labelled or in the test set. Without data flags: the
    built-in demo (the demo's unused amazon reviews are the unlabelled texts).
    """
    if output is None:  # nothing lands in the working folder unless the user names it
        raise ConfigError(
            "--output FILE.csv is needed: where to write the texts to label next (for example "
            "--output to_label.csv)."
        )
    flags = data_flags(locals())
    flags.update({"suggest.n": n, "suggest.strategy": method})
    cfg = assemble_config(config, flags, set_ or [])
    if unlabeled is None and len(cfg.data.target.unlabeled_paths) == 1:
        # The texts the model learnt from without labels are the ones to choose from.
        unlabeled = Path(str(cfg.data.target.unlabeled_paths[0]))
    if unlabeled is None:
        from transferflow.config.settings import DEMO_DIR

        if cfg.data.target.paths != [DEMO_DIR / "amazon.csv"]:
            raise ConfigError(
                "--unlabeled FILE is needed: the target texts without labels to choose from."
            )
        unlabeled = DEMO_DIR / "amazon.csv"
    from transferflow.data.preflight import check_inputs, check_output_file

    check_inputs(cfg)
    output = check_output_file(cfg, output, unlabeled, "--output")
    with local_server.for_this_call(warm=("transferflow.flows.suggest", *TRAINING_MODULES[1:])):
        from transferflow.flows.suggest import suggest as suggest_flow

        result = with_result_storage(suggest_flow, cfg)(cfg, unlabeled, output)
    typer.echo("")
    typer.echo(
        f"Suggested {result['suggested']} of {result['candidates']} candidate texts "
        f"({result['strategy']}): {result['output']}"
    )
    said = {"blank": "without text", "labelled_or_test": "already labelled or in the test set",
            "repeated": "repeats of an earlier row"}  # fmt: skip
    left = [f"{result[k]} {what}" for k, what in said.items() if result[k]]
    if left:
        typer.echo(f"  left out of the file's {result['rows']} rows: {', '.join(left)}")
