"""The options ``run``, ``validate`` and ``suggest`` share (the data, the seed, the artefact
store, config files and ``--set``), and how they map onto setting paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file: any setting, nested as in docs/settings.md; flags beat it.",
        show_default=False,
    ),
]
SourceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        metavar="<file>",
        help="Source training file or URL (repeatable).",
        show_default=False,
    ),
]
SourceTestOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--source-test",
        metavar="<file>",
        help="Source test file or URL (repeatable).",
        show_default=False,
    ),
]
SourceNameOpt = Annotated[
    str | None, typer.Option("--source-name", help="Source domain name.", show_default=False)
]
TargetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target",
        metavar="<file>",
        help="Target training file or URL (repeatable).",
        show_default=False,
    ),
]
TargetTestOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target-test",
        metavar="<file>",
        help="Target test file or URL (repeatable).",
        show_default=False,
    ),
]
TargetUnlabeledOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--target-unlabeled",
        metavar="<file>",
        help="File or URL of unlabelled target texts (repeatable; same formats and text "
        "columns as the target, any label column ignored): they train the word vectors, the "
        "n-grams and the transfer model's self-training. With --source and no --target: a cold "
        "start, no target labels yet.",
        show_default=False,
    ),
]
TargetNameOpt = Annotated[
    str | None, typer.Option("--target-name", help="Target domain name.", show_default=False)
]
TextColumnOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--text-column",
        metavar="<column>",
        help="Text column, both domains (repeat to join several).",
        show_default=False,
    ),
]
LabelColumnOpt = Annotated[
    str | None,
    typer.Option("--label-column", help="Label column, both domains.", show_default=False),
]
TrainSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--target-train-size",
        help="Cap on target training labels, balanced by class (default: all; 0: none, the "
        "target file then only gives the test set).",
        show_default=False,
    ),
]
SourceMaxRowsOpt = Annotated[
    int | None,
    typer.Option(
        "--source-max-rows",
        help="The most source rows learnt from: larger sources are sampled, uniformly and "
        "seeded (default 50000; --set data.source_max_rows=null for every row).",
        show_default=False,
    ),
]
TestSizeOpt = Annotated[
    float | None,
    typer.Option(
        "--test-size",
        help="Test share when there is no test file (default 0.2).",
        show_default=False,
    ),
]
VectorsOpt = Annotated[
    str | None,
    typer.Option("--vectors", help="Pretrained vectors file or URL.", show_default=False),
]
CacheDirOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-dir",
        help="Artefact store folder or fsspec URL (s3://...).",
        show_default=False,
    ),
]
SeedOpt = Annotated[
    int | None, typer.Option("--seed", help="Random seed (default 42).", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="<key=value>",
        help="Any setting: section.field=value (YAML value). Repeatable.",
        show_default=False,
    ),
]


def data_flags(given: dict[str, Any]) -> dict[str, Any]:
    """Map the flags shared by ``run``, ``validate`` and ``suggest`` (the data, the seed, the
    artefact store) onto setting paths.

    Args:
        given: the command's parameters (``locals()``); names that are not data flags are ignored.
    """
    names = {
        "source": "data.source.paths",
        "source_test": "data.source.test_paths",
        "source_name": "data.source.name",
        "target": "data.target.paths",
        "target_test": "data.target.test_paths",
        "target_unlabeled": "data.target.unlabeled_paths",
        "target_name": "data.target.name",
        "text_column": "text_columns",
        "label_column": "label_column",
        "target_train_size": "data.target_train_size",
        "source_max_rows": "data.source_max_rows",
        "test_size": "data.test_size",
        "vectors": "embeddings.pretrained_path",
        "seed": "seed",
        # The same store for all three: validate reuses the gates' verdicts, suggest the models.
        "cache_dir": "cache.dir",
    }
    return {path: given[name] for name, path in names.items()}
