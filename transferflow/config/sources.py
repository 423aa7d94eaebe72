"""Assembling one :class:`~transferflow.config.settings.RunConfig` from where settings come from:
the
built-in demo or a YAML file, command-line flags, and ``--set section.field=value`` overrides
(in rising priority). The CLI and tests call :func:`assemble_config`; deployments pass the
config itself as a parameter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transferflow.config.settings import DEMO_DIR, RunConfig, build_config
from transferflow.errors import ConfigError


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    from transferflow.storage.paths import not_a_file

    if why := not_a_file(path):
        raise ConfigError(f"--config {path}: {why}.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level.")
    return raw


def parse_sets(items: list[str]) -> list[tuple[str, Any]]:
    """``section.field=value`` strings (``--set``) as ``(dotted path, YAML value)`` pairs.

    Raises:
        ConfigError: an item without ``=`` or a value that is not plain YAML.
    """
    import yaml

    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set '{item}': expected section.field=value.")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise ConfigError(
                f"--set '{item}': the value is not plain YAML ({reason}). Give a number, "
                "true/false, a word, or a list such as [0.1, 1.0]; quote text with ':' or '#'."
            ) from None
        out.append((key.strip(), parsed))
    return out


def assemble_config(
    config_file: Path | None, flags: dict[str, Any], sets: list[str]
):  # -> RunConfig
    """Build the RunConfig from (in rising priority) the demo or a file, flags, and ``--set``.

    Args:
        config_file: optional YAML file.
        flags: dotted setting path -> value, for flags the user gave (None = not given).
        sets: ``section.field=value`` strings.

    Returns:
        The validated RunConfig.
    """
    from transferflow.config.settings import set_dotted

    given = {k: v for k, v in flags.items() if v is not None and v != []}
    if config_file is not None:
        raw = _read_yaml(config_file)
    elif "data.source.paths" in given or "data.target.paths" in given:
        raw = {}
    else:  # no data given: the built-in demo
        raw = demo_settings()
    for key in ("data.source.paths", "data.target.paths", "data.target.unlabeled_paths"):
        domain = key.split(".")[1]
        if key in given and not raw.get("data", {}).get(domain, {}).get("name"):
            set_dotted(raw, f"data.{domain}.name", _default_name(given[key][0]))
    if "data.source.paths" in given and "data.target.paths" not in given and config_file is None:
        if "data.target.unlabeled_paths" not in given:
            raise ConfigError(
                "--source was given without --target: both domains are needed (a target with "
                "no labels yet: its texts with --target-unlabeled)."
            )
        set_dotted(raw, "data.target.paths", [])  # a cold start: unlabelled target texts only
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
                [str(v) if isinstance(v, Path) else v for v in value]
                if isinstance(value, list)
                else (str(value) if isinstance(value, Path) else value),
            )
    for key, value in parse_sets(sets):
        set_dotted(raw, key, value)
    return build_config(raw)


def _default_name(location: str | Path) -> str:
    # 'mdsd/books/train.csv' (or 's3://b/mdsd/books/train.csv') -> 'books': the file stem unless it
    # is a generic split name.
    from transferflow.storage.files import location_path

    path = location_path(location)
    stem = path.name.split(".")[0]
    return path.parent.name if stem.lower() in {"train", "test", "data", "dev"} else stem


def demo_settings() -> dict[str, Any]:
    """Settings of the built-in demo: yelp + imdb reviews as source, 100 amazon phone reviews as
    target training labels (the rest of amazon split 70/30 for the test set).

    Returns:
        A nested dict for :func:`build_config` (a fresh copy each call).
    """
    return {
        "data": {
            "source": {
                "name": "yelp+imdb",
                "paths": [str(DEMO_DIR / "yelp.csv"), str(DEMO_DIR / "imdb.csv")],
            },
            "target": {"name": "amazon", "paths": [str(DEMO_DIR / "amazon.csv")]},
            "test_size": 0.3,
            "target_train_size": 100,
        },
    }


def demo_config(**overrides: Any) -> RunConfig:
    """The built-in demo as a validated RunConfig.

    Args:
        overrides: top-level RunConfig fields to replace (e.g. ``output_dir``).

    Returns:
        A RunConfig that reads the demo data shipped inside the package.
    """
    return build_config({**demo_settings(), **overrides})
