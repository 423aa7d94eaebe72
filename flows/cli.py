"""``transferflow`` command line: ad-hoc runs of the flows.

Every flag maps onto one field of :class:`transferflow.config.RunConfig`; ``--config FILE.yaml``
gives any of them in a file, ``--set section.field=value`` reaches the rest. Flags beat the file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from transferflow.errors import ConfigError, TransferflowError

app = typer.Typer(
    name="transferflow",
    help="Transfer learning for text classification, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Transfer learning for text classification, orchestrated by Prefect."""


def _fail(exc: TransferflowError) -> typer.Exit:
    typer.secho(f"Error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(exc.exit_code)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level.")
    return raw


def _parse_set(items: list[str]) -> list[tuple[str, Any]]:
    import yaml

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set '{item}': expected section.field=value.")
        out.append((key.strip(), yaml.safe_load(value)))
    return out


def assemble_config(config_file: Path | None, flags: dict[str, Any], sets: list[str]):
    """Build the RunConfig from (in rising priority) the demo or a file, flags, and ``--set``.

    Args:
        config_file: optional YAML file.
        flags: dotted setting path -> value, for flags the user gave (None = not given).
        sets: ``section.field=value`` strings.

    Returns:
        The validated RunConfig.
    """
    from transferflow.config import build_config, demo_settings, set_dotted

    given = {k: v for k, v in flags.items() if v is not None and v != []}
    if config_file is not None:
        raw = _read_yaml(config_file)
    elif "data.source.paths" in given or "data.target.paths" in given:
        raw = {}
    else:  # no data given: the built-in demo
        raw = demo_settings()
    for key in ("data.source.paths", "data.target.paths"):
        domain = key.split(".")[1]
        if key in given and not raw.get("data", {}).get(domain, {}).get("name"):
            set_dotted(raw, f"data.{domain}.name", _default_name(given[key][0]))
    if "data.source.paths" in given and "data.target.paths" not in given and config_file is None:
        raise ConfigError("--source was given without --target: both domains are needed.")
    for key, value in given.items():
        if key == "text_columns":
            for domain in ("source", "target"):
                set_dotted(raw, f"data.{domain}.text_columns", value)
        elif key == "label_column":
            for domain in ("source", "target"):
                set_dotted(raw, f"data.{domain}.label_column", value)
        else:
            set_dotted(
                raw,
                key,
                [str(v) for v in value]
                if isinstance(value, list)
                else (str(value) if isinstance(value, Path) else value),
            )
    for key, value in _parse_set(sets):
        set_dotted(raw, key, value)
    return build_config(raw)


def _default_name(location: str | Path) -> str:
    # 'mdsd/books/train.csv' (or 's3://b/mdsd/books/train.csv') -> 'books': the file stem unless it
    # is a generic split name.
    from transferflow.files import location_path

    path = location_path(location)
    stem = path.name.split(".")[0]
    return path.parent.name if stem.lower() in {"train", "test", "data", "dev"} else stem


def _opt(kind, *names: str, help: str):  # noqa: A002 - mirrors typer's parameter name
    return Annotated[kind, typer.Option(*names, help=help, show_default=False)]


ConfigOpt = _opt(Path | None, "--config", "-c", help="YAML config file (see README).")
SourceOpt = _opt(list[str] | None, "--source", help="Source training file or URL (repeatable).")
SourceTestOpt = _opt(
    list[str] | None, "--source-test", help="Source test file or URL (repeatable)."
)
SourceNameOpt = _opt(str | None, "--source-name", help="Source domain name.")
TargetOpt = _opt(list[str] | None, "--target", help="Target training file or URL (repeatable).")
TargetTestOpt = _opt(
    list[str] | None, "--target-test", help="Target test file or URL (repeatable)."
)
TargetNameOpt = _opt(str | None, "--target-name", help="Target domain name.")
TextColumnOpt = _opt(
    list[str] | None, "--text-column", help="Text column, both domains (repeat to join several)."
)
LabelColumnOpt = _opt(str | None, "--label-column", help="Label column, both domains.")
TrainSizeOpt = _opt(
    int | None,
    "--target-train-size",
    help="Cap on target training labels, balanced by class (default: all).",
)
TestSizeOpt = _opt(
    float | None, "--test-size", help="Test share when there is no test file (default 0.2)."
)
VectorsOpt = _opt(str | None, "--vectors", help="Pretrained vectors file or URL.")
SeedOpt = _opt(int | None, "--seed", help="Random seed (default 42).")
SetOpt = _opt(
    list[str] | None, "--set", help="Any setting: section.field=value (YAML value). Repeatable."
)


def _data_flags(**given: Any) -> dict[str, Any]:
    """Map the data flags shared by ``run`` and ``validate`` onto setting paths."""
    names = {
        "source": "data.source.paths",
        "source_test": "data.source.test_paths",
        "source_name": "data.source.name",
        "target": "data.target.paths",
        "target_test": "data.target.test_paths",
        "target_name": "data.target.name",
        "text_column": "text_columns",
        "label_column": "label_column",
        "target_train_size": "data.target_train_size",
        "test_size": "data.test_size",
        "vectors": "embeddings.pretrained_path",
        "seed": "seed",
    }
    return {names[k]: v for k, v in given.items()}


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
    target_name: TargetNameOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    target_train_size: TrainSizeOpt = None,
    test_size: TestSizeOpt = None,
    vectors: VectorsOpt = None,
    vectors_format: _opt(
        str | None, "--vectors-format", help="auto | word2vec | word2vec-binary | glove | fasttext"
    ) = None,
    vector_size: _opt(int | None, "--vector-size", help="Vector dimension.") = None,
    strategy: _opt(
        str | None, "--strategy", help="ensemble (default) | finetune | joint | shared-private"
    ) = None,
    max_len: _opt(
        int | None, "--max-len", help="Tokens per text the word-vector mean reads."
    ) = None,
    alpha: _opt(float | None, "--alpha", help="'joint'/'ensemble': source loss weight.") = None,
    beta: _opt(float | None, "--beta", help="'joint'/'ensemble': target loss weight.") = None,
    seed: SeedOpt = None,
    output_dir: _opt(Path | None, "--output-dir", help="Parent of run folders.") = None,
    run_name: _opt(str | None, "--run-name", help="Run folder name.") = None,
    refresh_cache: Annotated[
        bool, typer.Option("--refresh-cache", help="Recompute every cached stage.", metavar="")
    ] = False,
    cache_dir: _opt(
        str | None, "--cache-dir", help="Artefact store folder or fsspec URL (s3://...)."
    ) = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the cache.", metavar="")
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
    flags = _data_flags(
        source=source,
        source_test=source_test,
        source_name=source_name,
        target=target,
        target_test=target_test,
        target_name=target_name,
        text_column=text_column,
        label_column=label_column,
        target_train_size=target_train_size,
        test_size=test_size,
        vectors=vectors,
        seed=seed,
    )
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
            "cache.refresh": True if refresh_cache else None,
            "cache.dir": cache_dir,
            "cache.enabled": False if no_cache else None,
            "learning_curve.enabled": True if learning_curve else None,
        }
    )
    try:
        if learning_curve:
            flags["learning_curve.sizes"] = _int_list(learning_curve, "--learning-curve")
        cfg = assemble_config(config, flags, set_ or [])
        from transferflow.preflight import check_inputs

        check_inputs(cfg)  # before Prefect and the ML libraries are even imported
        with _prefect_server():
            from flows.transfer import transfer_learning
            from tasks.caching import prefect_result_storage

            storage = prefect_result_storage(cfg.cache)
            flow_fn = (
                transfer_learning.with_options(result_storage=storage)
                if storage
                else transfer_learning
            )
            result = flow_fn(cfg)
    except TransferflowError as exc:
        raise _fail(exc) from None
    _print_summary(result)


@app.command()
def validate(
    config: ConfigOpt = None,
    source: SourceOpt = None,
    source_test: SourceTestOpt = None,
    source_name: SourceNameOpt = None,
    target: TargetOpt = None,
    target_test: TargetTestOpt = None,
    target_name: TargetNameOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    target_train_size: TrainSizeOpt = None,
    test_size: TestSizeOpt = None,
    vectors: VectorsOpt = None,
    seed: SeedOpt = None,
    docs_dir: _opt(Path | None, "--docs-dir", help="Write GX Data Docs (HTML) here.") = None,
    set_: SetOpt = None,
) -> None:
    """Run only the data-quality gates (raw input, leakage, domain shift); no training.

    Exit code 0 when every gate passes (or only warns), 3 when one fails.
    """
    flags = _data_flags(
        source=source,
        source_test=source_test,
        source_name=source_name,
        target=target,
        target_test=target_test,
        target_name=target_name,
        text_column=text_column,
        label_column=label_column,
        target_train_size=target_train_size,
        test_size=test_size,
        vectors=vectors,
        seed=seed,
    )
    try:
        cfg = assemble_config(config, flags, set_ or [])
        from transferflow.preflight import check_inputs

        check_inputs(cfg)
        with _prefect_server():
            from flows.validate import validate_data

            gates = validate_data(cfg, docs_dir)
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo("")
    for name, g in gates.items():
        typer.echo(f"  {name:<18} {g['status']:<7} {g['checks']:>3} checks")
        for failure in g["failed"]:
            typer.echo(f"      - {failure}")
    if docs_dir is not None:
        typer.echo(f"  Data Docs: {Path(docs_dir) / 'index.html'}")


@app.command()
def suggest(
    unlabeled: _opt(
        Path | None,
        "--unlabeled",
        help="Unlabelled target texts to choose from (CSV/TSV/JSONL/Parquet; any label column "
        "is ignored). Default with the demo: the demo's target file.",
    ) = None,
    output: _opt(
        Path, "--output", help="CSV to write: the texts to label next, most useful first."
    ) = Path("to_label.csv"),
    n: _opt(int | None, "--n", help="How many texts to suggest (default 100).") = None,
    method: _opt(
        str | None,
        "--method",
        help="margin-cluster (default) | margin | badge | random (see docs/models.md).",
    ) = None,
    config: ConfigOpt = None,
    source: SourceOpt = None,
    source_test: SourceTestOpt = None,
    source_name: SourceNameOpt = None,
    target: TargetOpt = None,
    target_test: TargetTestOpt = None,
    target_name: TargetNameOpt = None,
    text_column: TextColumnOpt = None,
    label_column: LabelColumnOpt = None,
    target_train_size: TrainSizeOpt = None,
    test_size: TestSizeOpt = None,
    vectors: VectorsOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
) -> None:
    """Which unlabelled target texts to label next: trains (or reuses from the cache) the transfer
    model on the labels there are and writes the texts whose labels should help most.

    Never suggests a text that is already labelled or in the test set. Without data flags: the
    built-in demo (the demo's unused amazon reviews are the unlabelled texts).
    """
    flags = _data_flags(
        source=source,
        source_test=source_test,
        source_name=source_name,
        target=target,
        target_test=target_test,
        target_name=target_name,
        text_column=text_column,
        label_column=label_column,
        target_train_size=target_train_size,
        test_size=test_size,
        vectors=vectors,
        seed=seed,
    )
    flags.update({"suggest.n": n, "suggest.strategy": method})
    try:
        cfg = assemble_config(config, flags, set_ or [])
        if unlabeled is None:
            from transferflow.config import DEMO_DIR

            if cfg.data.target.paths != [DEMO_DIR / "amazon.csv"]:
                raise ConfigError(
                    "--unlabeled FILE is needed: the target texts without labels to choose from."
                )
            unlabeled = DEMO_DIR / "amazon.csv"
        from transferflow.preflight import check_inputs, check_output_file

        check_inputs(cfg)
        check_output_file(cfg, output, unlabeled, "--output")
        with _prefect_server():
            from flows.suggest import suggest as suggest_flow

            result = suggest_flow(cfg, unlabeled, output)
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo("")
    typer.echo(
        f"Suggested {result['suggested']} of {result['candidates']} candidate texts "
        f"({result['strategy']}): {result['output']}"
    )
    left = {k: result[k] for k in ("blank", "labelled_or_test", "repeated") if result[k]}
    if left:
        typer.echo(f"  left out of {result['rows']} rows: {left}")


@app.command()
def sweep(
    grid: Annotated[Path, typer.Option("--grid", help="Sweep grid YAML file (see README).")],
    task_runner: _opt(str, "--task-runner", help="local (default) | dask") = "local",
    workers: _opt(
        int | None,
        "--workers",
        help="Parallel workers (Dask: LocalCluster processes; default one per core).",
    ) = None,
    dask_address: _opt(
        str | None, "--dask-address", help="Use a running Dask scheduler, e.g. tcp://10.0.0.5:8786."
    ) = None,
    output_dir: _opt(Path | None, "--output-dir", help="Parent of sweep folders.") = None,
) -> None:
    """Run many transfer runs (pairs x budgets x architectures/strategies x seeds) in parallel."""
    from transferflow.sweep import load_grid

    try:
        parsed = load_grid(grid)
        if output_dir is not None:
            parsed = parsed.model_copy(update={"output_dir": output_dir})
        from flows.sweep import run_sweep

        # run_sweep builds the task runner (and raises on bad options) before the flow starts.
        with _prefect_server():
            result = run_sweep(parsed, task_runner, workers, dask_address)
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo("")
    typer.echo((Path(result["dir"]) / "summary.md").read_text(encoding="utf-8"))
    typer.echo(f"Results: {result['dir']} (results.csv, summary.md, curves.png)")


server_app = typer.Typer(
    help="The local Prefect server that CLI runs share (used when PREFECT_API_URL is not set)."
)
app.add_typer(server_app, name="server")


@server_app.command("start")
def server_start() -> None:
    """Start the local background server now (runs start it on first use anyway)."""
    from flows import local_server

    try:
        url, started = local_server.ensure(local_server.prefect_home())
    except TransferflowError as exc:
        raise _fail(exc) from None
    state = "started" if started else "already running"
    typer.echo(f"{state}: {url.removesuffix('/api')} (API {url})")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local background server runs, and where (exit 1 when it does not)."""
    from flows import local_server

    home = local_server.prefect_home()
    state = local_server.read_state(home)
    if state is None or not local_server.healthy(state["url"]):
        typer.echo(f"not running (PREFECT_HOME={home})")
        raise typer.Exit(1)
    address = state["url"].removesuffix("/api")
    typer.echo(f"running: {address} (pid {state['pid']}, log {state['log']})")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local background server (its database, with the run history, is kept)."""
    from flows import local_server

    url = local_server.stop(local_server.prefect_home())
    typer.echo(f"stopped {url.removesuffix('/api')}" if url else "no background server was running")


cache_app = typer.Typer(help="Inspect and clean the artefact store (cached vectors and models).")
app.add_typer(cache_app, name="cache")
CacheDirOpt = _opt(
    str | None, "--cache-dir", help="Store folder or URL (default: the run default)."
)


def _store(cache_dir: str | None):
    from transferflow.store import default_root, open_store

    try:
        return open_store(cache_dir or default_root())
    except TransferflowError as exc:  # e.g. a URL whose fsspec package is not installed
        raise _fail(exc) from None


def is_url_store(store) -> bool:
    from transferflow.store import RemoteArtifactStore

    return isinstance(store, RemoteArtifactStore)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@cache_app.command("list")
def cache_list(cache_dir: CacheDirOpt = None) -> None:
    """List cache entries: stage, age, last use, size."""
    import time

    store = _store(cache_dir)
    entries = store.entries()
    now = time.time()
    typer.echo(f"store: {store.location} ({len(entries)} entries)")
    for e in sorted(entries, key=lambda e: e.created):
        typer.echo(
            f"  {e.key:<64} {(now - e.created) / 86400:6.1f} d old  "
            f"used {(now - e.last_used) / 86400:5.1f} d ago  {_size(e.size):>9}"
        )


@cache_app.command("clear")
def cache_clear(cache_dir: CacheDirOpt = None) -> None:
    """Delete the whole store."""
    store = _store(cache_dir)
    try:
        freed = store.clear()
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"removed the store at {store.location} (objects/, entries/, locks/, tmp/): "
        f"{_size(freed)} freed"
    )


def _parse_age(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise ConfigError(
            f"--older-than '{text}': expected a number and a unit (s, m, h, d, w), e.g. 30d."
        )
    return float(number) * units[unit]


@cache_app.command("prune")
def cache_prune(
    older_than: Annotated[str, typer.Option("--older-than", help="Age of last use, e.g. 30d.")],
    cache_dir: CacheDirOpt = None,
) -> None:
    """Delete entries not used for a while, and the artefacts only they referenced."""
    import time

    try:
        age = _parse_age(older_than)
    except TransferflowError as exc:
        raise _fail(exc) from None
    store = _store(cache_dir)
    if not is_url_store(store) and store.root.exists() and not store.is_store():
        raise _fail(
            ConfigError(f"{store.location} is not a transferflow store; nothing was pruned.")
        )
    old = [e.key for e in store.entries() if time.time() - e.last_used > age]
    freed = store.remove_entries(old)
    typer.echo(f"removed {len(old)} entries, {_size(freed)} of artefacts freed")


models_app = typer.Typer(help="The model registry: versions and the champion alias.")
app.add_typer(models_app, name="models")
RegistryOpt = _opt(
    Path | None,
    "--registry",
    help="Model registry folder (default: $TRANSFERFLOW_REGISTRY_DIR or ./registry).",
)


def _registry(path: Path):
    from transferflow.registry import Registry

    return Registry(path)


@models_app.command("list")
def models_list(
    registry: RegistryOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of versions.", metavar="")
    ] = False,
) -> None:
    """List registered versions; the champion is marked with *.

    Test accuracies are each version's own target test set (its hash is shown): versions trained
    on other data are not comparable.
    """
    import json

    reg = _registry(registry)
    champion = reg.champion()
    rows = []
    for v in reg.versions():
        try:
            r = reg.show(v)
        except TransferflowError as exc:
            rows.append({"version": v, "error": str(exc)})
            continue
        rows.append(
            {
                "version": v,
                "champion": v == champion,
                "registered_at": r.get("registered_at"),
                "source": r.get("source"),
                "target": r.get("target"),
                "role": r.get("role"),
                "architecture": r.get("architecture"),
                "test_accuracy": (r.get("metrics") or {}).get("test", {}).get("accuracy"),
                "test_set_sha256": r.get("target_test_sha256"),
                "files_ok": _files_ok(reg, v),
            }
        )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no model versions in {reg.root}")
        return
    typer.echo(
        f"  {'version':<8} {'registered (UTC)':<21} {'source -> target':<28} {'role':<12} "
        f"{'test acc.':>9}  {'test set':<10} files"
    )
    for r in rows:
        if "error" in r:
            typer.echo(f"  v{r['version']:<7} unreadable: {r['error']}")
            continue
        mark = "*" if r["champion"] else " "
        pair = f"{r['source']} -> {r['target']}"
        acc = f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "–"
        typer.echo(
            f"{mark} v{r['version']:<7} {r['registered_at']:<21} {pair:<28} {r['role']:<12} "
            f"{acc:>9}  {str(r['test_set_sha256'])[:8]:<10} "
            f"{'ok' if r['files_ok'] else 'MODIFIED'}"
        )


def _files_ok(reg, version: int) -> bool:
    try:
        for name in reg.show(version).get("files", {}):
            reg.verified_file(version, name)
    except TransferflowError:
        return False
    return True


@models_app.command("show")
def models_show(version: int, registry: RegistryOpt = None) -> None:
    """Print a version's record (JSON)."""
    import json

    try:
        typer.echo(json.dumps(_registry(registry).show(version), indent=2))
    except TransferflowError as exc:
        raise _fail(exc) from None


@models_app.command("promote")
def models_promote(version: int, registry: RegistryOpt = None) -> None:
    """Make VERSION the champion (refused when its files fail their hashes)."""
    try:
        reg = _registry(registry)
        reg.show(version)  # an unknown version is named as such
        if not _files_ok(reg, version):
            raise ConfigError(
                f"model version {version} has files that are missing or were modified "
                "since it was registered; it is not promoted. Register a new version "
                "with 'transferflow run'."
            )
        reg.promote(version)
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo(f"champion: v{version}")


@models_app.command("rollback")
def models_rollback(registry: RegistryOpt = None) -> None:
    """Make the previous champion the champion again."""
    try:
        version = _registry(registry).rollback()
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo(f"champion: v{version}")


@app.command()
def score(
    input_path: Annotated[
        Path, typer.Option("--input", help="File to score (CSV/TSV/JSONL/Parquet).")
    ],
    output_path: Annotated[Path, typer.Option("--output", help="Predictions CSV to write.")],
    model: _opt(int | None, "--model", help="Model version (default: the champion).") = None,
    registry: RegistryOpt = None,
    text_column: TextColumnOpt = None,
    id_column: _opt(str, "--id-column", help="Column copied to the output when present.") = "id",
) -> None:
    """Score a file with a registered model: predicted label and class probabilities per row."""
    try:
        _check_score_paths(input_path, output_path)
        with _prefect_server():
            from flows.score import score as score_flow

            out = score_flow(input_path, output_path, registry, model, text_column, id_column)
    except TransferflowError as exc:
        raise _fail(exc) from None
    typer.echo(
        f"scored {out['rows']} rows with model v{out['version']} in {out['seconds']:.2f} s "
        f"({out['rows_per_second']:.0f} rows/s): {out['output']}"
    )


@contextlib.contextmanager
def _prefect_server() -> Iterator[None]:
    """The Prefect server this call's flow runs on, checked before any work.

    ``PREFECT_API_URL`` (environment or Prefect profile) wins and must answer its health check
    within 3 s. Without it, the local background server is reused or started (see
    :mod:`flows.local_server`), unless ``TRANSFERFLOW_SERVER=temporary`` asks for Prefect's
    per-call temporary server.
    """
    import prefect.main  # noqa: F401 - configures Prefect's logging, filtered next

    from flows import _logging, local_server

    # The CLI prints a user mistake once, in full, at the end: Prefect's console lines about it
    # would repeat it three or four times (the server's run log keeps them).
    _logging.quiet_user_errors_on_console()
    url = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    if not url:
        from prefect.settings import PREFECT_API_URL

        url = (PREFECT_API_URL.value() or "").rstrip("/")
    if url:
        if not local_server.healthy(url):
            raise ConfigError(
                f"The Prefect server at PREFECT_API_URL={url} does not answer its health check. "
                "Start it ('prefect server start'), fix the URL, or unset PREFECT_API_URL to "
                "run on transferflow's local background server."
            )
        yield
        return
    mode = os.environ.get("TRANSFERFLOW_SERVER", "background")
    if mode not in ("background", "temporary"):
        raise ConfigError(
            f"TRANSFERFLOW_SERVER={mode!r}: expected 'background' (the default: one local server "
            "that later calls reuse) or 'temporary' (a server for this call only)."
        )
    if mode == "temporary":
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, started = local_server.ensure(local_server.prefect_home())
    if started:
        typer.echo(
            f"Started a Prefect server in the background at {url.removesuffix('/api')} (the UI "
            "is there); later calls reuse it. Stop it with 'transferflow server stop'.",
            err=True,
        )
    os.environ["PREFECT_API_URL"] = url  # for processes this call starts (sweep workers)
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def _check_score_paths(input_path: Path, output_path: Path) -> None:
    """Fail fast: the input exists and the output would not overwrite it."""
    from transferflow.errors import DataError
    from transferflow.files import is_url

    if not is_url(input_path) and not Path(input_path).is_file():
        raise DataError(f"--input {input_path}: file not found.")
    if Path(output_path).exists() and Path(output_path).resolve() == Path(input_path).resolve():
        raise ConfigError(
            f"--output {output_path} is the input file; inputs are never overwritten. "
            "Choose another output path."
        )
    if Path(output_path).is_dir():
        raise ConfigError(
            f"--output {output_path} is a folder; give a file path such as predictions.csv."
        )


def _print_summary(result: dict[str, Any]) -> None:
    metrics = result["metrics"]
    typer.echo("")
    typer.secho(f"Results: {result['run_dir']}", bold=True)
    typer.echo(f"  {'candidate':<12} {'accuracy':>9} {'macro-F1':>9}")
    for name, m in metrics["candidates"].items():
        typer.echo(f"  {name:<12} {m['accuracy']:>9.4f} {m['macro_f1']:>9.4f}")
    gain = metrics.get("transfer_gain", {}).get("accuracy_vs_target_only")
    if gain is not None:
        typer.echo(f"  transfer vs target-only: {gain:+.4f} accuracy")
    typer.echo(f"  report: {Path(result['run_dir']) / 'report.md'}")
    reg = result.get("registry")
    if reg:
        champion = f"v{reg['champion']}" if reg["champion"] is not None else "none yet"
        typer.echo(f"  registered model v{reg['version']}; champion: {champion} ({reg['reason']})")


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
