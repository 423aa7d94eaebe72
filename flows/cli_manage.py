"""``transferflow server|cache|models``: managing the local Prefect server, the artefact store and
the model registry (registered as sub-commands by :mod:`transferflow.flows.cli`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from transferflow.errors import ConfigError, TransferflowError
from transferflow.flows.cli_common import App, ModelNameOpt, RegistryOpt, _fail

server_app = App(
    help="The local Prefect server that CLI runs share (used when PREFECT_API_URL is not set)."
)


@server_app.command("start")
def server_start() -> None:
    """Start the local background server now (runs start it on first use anyway)."""
    from transferflow.flows import local_server

    url, started = local_server.ensure(local_server.prefect_home())
    state = "started" if started else "already running"
    typer.echo(f"{state}: {url.removesuffix('/api')} (API {url})")


@server_app.command("status")
def server_status() -> None:
    """Say whether the local background server of this ``PREFECT_HOME`` runs, and where (exit 1
    when it does not)."""
    from transferflow.flows import local_server

    home = local_server.prefect_home()
    state = local_server.read_state(home)
    if state is not None and local_server.healthy(state["url"]):
        address = state["url"].removesuffix("/api")
        typer.echo(f"running: {address} (pid {state.get('pid')}, PREFECT_HOME={home})")
        return
    typer.echo(f"not running (PREFECT_HOME={home})")
    raise typer.Exit(1)


@server_app.command("stop")
def server_stop() -> None:
    """Stop the local background server of this ``PREFECT_HOME`` (``prefect server stop``; its
    database, with the run history, is kept)."""
    from transferflow.flows import local_server

    url = local_server.stop(local_server.prefect_home())
    typer.echo(f"stopped {url.removesuffix('/api')}" if url else "no background server was running")


cache_app = App(help="Inspect and clean the artefact store (cached vectors and models).")
CacheDirOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-dir", help="Store folder or URL (default: the run default).", show_default=False
    ),
]


def _store(cache_dir: str | None):
    from transferflow.storage.store import default_root, open_store

    return open_store(cache_dir or default_root())  # a bad URL: one message (App's commands)


def _is_url_store(store) -> bool:
    """Whether the artefact store is at an fsspec URL (no local folder to check first)."""
    from transferflow.storage.remote import RemoteArtifactStore

    return isinstance(store, RemoteArtifactStore)


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _age(seconds: float) -> str:
    """An age in the units ``cache prune --older-than`` takes (s, m, h, d)."""
    seconds = max(0.0, seconds)
    for limit, unit, size in ((120, "s", 1), (7200, "m", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds / 86400:.1f}d"


@cache_app.command("list")
def cache_list(cache_dir: CacheDirOpt = None) -> None:
    """List cache entries, oldest first: stage and key, age, time since last use (in the units
    of ``cache prune --older-than``), size."""
    import time

    store = _store(cache_dir)
    entries = store.entries()
    now = time.time()
    total = sum(e.size for e in entries)
    typer.echo(f"store: {store.location} ({len(entries)} entries, {_size(total)})")
    if entries:
        typer.echo(f"  {'entry':<64} {'age':>6} {'last used':>10} {'size':>9}")
    for e in sorted(entries, key=lambda e: e.created):
        typer.echo(
            f"  {e.key:<64} {_age(now - e.created):>6} {_age(now - e.last_used) + ' ago':>10} "
            f"{_size(e.size):>9}"
        )


@cache_app.command("clear")
def cache_clear(cache_dir: CacheDirOpt = None) -> None:
    """Delete the whole store."""
    store = _store(cache_dir)
    freed = store.clear()
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

    age = _parse_age(older_than)
    store = _store(cache_dir)
    if not _is_url_store(store) and store.root.exists() and not store.is_store():
        raise _fail(
            ConfigError(f"{store.location} is not a transferflow store; nothing was pruned.")
        )
    old = [e.key for e in store.entries() if time.time() - e.last_used > age]
    freed = store.remove_entries(old)
    typer.echo(f"removed {len(old)} entries, {_size(freed)} of artefacts freed")


models_app = App(help="The model registry: models by name, their versions and champions.")


def _catalog(path: Path | None):
    from transferflow.storage.catalog import Catalog

    return Catalog(path)


def _registry(path: Path | None, name: str | None):
    """Model ``name`` (or the only one) of the registry at ``path``."""
    return _catalog(path).select(name)


@models_app.command("list")
def models_list(
    model_name: ModelNameOpt = None,
    registry: RegistryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of versions.")] = False,
) -> None:
    """List registered models and their versions; each name's champion is marked with *.

    Test accuracies are each version's own target test set (its hash is shown): versions trained
    on other data are not comparable.
    """
    import json

    catalog = _catalog(registry)
    names = [model_name] if model_name is not None else catalog.names()
    rows = []
    for name in names:
        reg = catalog.select(name)
        champion = reg.champion()
        for v in reg.versions():
            try:
                r = reg.show(v)
            except TransferflowError as exc:
                rows.append({"model_name": name, "version": v, "error": str(exc)})
                continue
            rows.append(
                {
                    "model_name": name,
                    "version": v,
                    "champion": v == champion,
                    "registered_at": r.get("registered_at"),
                    "source": r.get("source"),
                    "target": r.get("target"),
                    "role": r.get("role"),
                    "architecture": r.get("architecture"),
                    "test_accuracy": ((r.get("metrics") or {}).get("test") or {}).get("accuracy"),
                    "test_set_sha256": r.get("target_test_sha256"),
                    "files_ok": _files_ok(reg, v),
                }
            )
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no models registered in {catalog.root}")
        return
    width = max(10, *(len(r["model_name"]) for r in rows))
    typer.echo(
        f"  {'model':<{width}} {'version':<8} {'registered (UTC)':<21} {'source -> target':<28} "
        f"{'role':<12} {'test acc.':>9}  {'test set':<10} files"
    )
    for r in rows:
        if "error" in r:
            typer.echo(f"  {r['model_name']:<{width}} v{r['version']:<7} unreadable: {r['error']}")
            continue
        mark = "*" if r["champion"] else " "
        pair = f"{r['source'] or '?'} -> {r['target'] or '?'}"
        acc = f"{r['test_accuracy']:.4f}" if r["test_accuracy"] is not None else "–"
        typer.echo(
            f"{mark} {r['model_name']:<{width}} v{r['version']:<7} {r['registered_at'] or '–':<21} "
            f"{pair:<28} {r['role'] or '–':<12} "
            f"{acc:>9}  {str(r['test_set_sha256'])[:8]:<10} "
            f"{'ok' if r['files_ok'] else 'MODIFIED'}"
        )


def _files_ok(reg, version: int) -> bool:
    try:
        reg.verified_files(version)
    except TransferflowError:
        return False
    return True


@models_app.command("show")
def models_show(
    version: Annotated[
        int | None,
        typer.Argument(
            metavar="VERSION",
            help="Version number ('transferflow models list' shows them); default: the champion.",
            show_default=False,
        ),
    ] = None,
    model_name: ModelNameOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Print a version's record (JSON; the champion's without VERSION), with ``files_ok``:
    whether its files match their hashes."""
    import json

    reg = _registry(registry, model_name)
    version = reg.resolve(version)
    record = {"model_name": reg.name, **reg.show(version), "files_ok": _files_ok(reg, version)}
    typer.echo(json.dumps(record, indent=2))
    if not record["files_ok"]:
        typer.secho(
            f"Warning: files of v{version} are missing or were modified since it was registered; "
            "it cannot be scored or promoted.",
            fg=typer.colors.YELLOW,
            err=True,
        )


@models_app.command("promote")
def models_promote(
    version: Annotated[
        int,
        typer.Argument(
            metavar="VERSION", help="Version number ('transferflow models list' shows them)."
        ),
    ],
    model_name: ModelNameOpt = None,
    registry: RegistryOpt = None,
) -> None:
    """Make VERSION the champion of its model name (refused when its files fail their hashes)."""
    reg = _registry(registry, model_name)
    reg.show(version)  # an unknown version is named as such
    if not _files_ok(reg, version):
        raise ConfigError(
            f"model version {version} has files that are missing or were modified "
            "since it was registered; it is not promoted. Register a new version "
            "with 'transferflow run'."
        )
    reg.promote(version)
    typer.echo(f"{reg.name}: champion v{version}")


@models_app.command("rollback")
def models_rollback(model_name: ModelNameOpt = None, registry: RegistryOpt = None) -> None:
    """Make the previous champion of the model name the champion again."""
    reg = _registry(registry, model_name)
    version = reg.rollback()
    typer.echo(f"{reg.name}: champion v{version}")


def where(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the roots as JSON.", show_default=False)
    ] = False,
) -> None:
    """List every folder transferflow keeps state in (one base folder, $TRANSFERFLOW_HOME, moves
    them all), and Prefect's own PREFECT_HOME: what to delete to start again."""
    import json

    from transferflow.flows.local_server import prefect_home
    from transferflow.storage import state

    rows = [(r.name, r.location, r.moved_by, r.holds) for r in state.roots()]
    rows.append(("prefect", str(prefect_home()), "PREFECT_HOME", "Prefect's database and server"))
    if json_out:
        keys = ("name", "location", "moved_by", "holds")
        typer.echo(json.dumps([dict(zip(keys, row, strict=True)) for row in rows], indent=2))
        return
    width = max(len(row[0]) for row in rows)
    for name, location, moved_by, holds in rows:
        typer.echo(f"{name:<{width}}  {location}  ({holds}; moved by {moved_by})")
