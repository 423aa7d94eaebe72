"""The sweep grid: what a sweep runs (pairs x label budgets x architectures x strategies x seeds
on top of shared base settings), read from its YAML file, and each point's run configuration."""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from transferflow.config.settings import (
    DatasetConfig,
    RunConfig,
    _Section,
    build_config,
    set_dotted,
)
from transferflow.errors import ConfigError
from transferflow.storage.paths import check_name


class SweepGrid(_Section):
    """What a sweep runs: every combination of pairs, label budgets, architectures, strategies and
    seeds, on top of shared base settings."""

    name: str = Field(
        default="sweep",
        description="Sweep name (a plain name: the output folder and artifacts are named by it).",
    )

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        try:
            check_name(value, "name")
        except ConfigError as exc:
            raise ValueError(str(exc).removeprefix("name ")) from None
        return value

    base: dict[str, Any] = Field(
        default_factory=dict,
        description="RunConfig settings shared by all runs (e.g. {model: {architecture: cnn}}).",
    )
    domains: dict[str, DatasetConfig] = Field(
        min_length=2, description="Domain name -> its files (paths, test_paths, columns)."
    )
    pairs: list[tuple[str, str]] | Literal["all"] = Field(
        default="all", description="[source, target] pairs, or 'all' ordered pairs of domains."
    )
    label_budgets: list[int] = Field(
        min_length=1,
        description="Target training labels (balanced); 0: none (zero-label runs: transfer learns "
        "from the source and the unlabelled target texts).",
    )
    architectures: list[str] = Field(default_factory=lambda: ["wide-deep"], min_length=1)
    strategies: list[str] = Field(default_factory=lambda: ["ensemble"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    references: bool = Field(
        default=True,
        description="Also the scikit-learn reference baselines: TF-IDF + LR on the target labels "
        "and on pooled labels, NB-LR on pooled labels.",
    )
    output_dir: Path | None = Field(
        default=None,
        description="Parent of sweep folders; unset = $TRANSFERFLOW_HOME/sweeps "
        "(`transferflow where`).",
    )

    def sweeps_parent(self) -> Path:
        """The folder sweep folders go in: ``output_dir``, else ``$TRANSFERFLOW_HOME/sweeps``."""
        from transferflow.storage import state

        return self.output_dir if self.output_dir is not None else state.sweeps_dir()

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs_shape(cls, value: Any) -> Any:
        # One message for the two shapes pairs may take (pydantic would report each union branch).
        def is_pair(p: Any) -> bool:
            return (
                isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(d, str) for d in p)
            )

        if value == "all" or (isinstance(value, list) and all(is_pair(p) for p in value)):
            return value
        raise ValueError(
            "expected 'all' or a list of [source, target] pairs of domain names, e.g. "
            "[[books, dvd], [dvd, books]]"
        )

    @field_validator("domains", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, dict):  # the key is the domain's name
            return {k: {"name": k, **d} if isinstance(d, dict) else d for k, d in value.items()}
        return value

    @model_validator(mode="after")
    def _known_domains(self) -> SweepGrid:
        if any(0 < n < 4 or n < 0 for n in self.label_budgets):
            raise ValueError("every label budget must be 0 (no labels) or at least 4")
        for pair in self.resolved_pairs():
            unknown = [d for d in pair if d not in self.domains]
            if unknown or pair[0] == pair[1]:
                raise ValueError(
                    f"pair {list(pair)}: needs two different domains from {sorted(self.domains)}"
                )
        return self

    def resolved_pairs(self) -> list[tuple[str, str]]:
        """The (source, target) pairs."""
        if self.pairs == "all":
            names = list(self.domains)
            return [(s, t) for s in names for t in names if s != t]
        return [(str(p[0]), str(p[1])) for p in self.pairs]


def load_grid(path: Path) -> SweepGrid:
    """Read and validate a sweep grid YAML file.

    Raises:
        ConfigError: missing file, bad YAML, or a setting that is not valid.
    """
    import yaml
    from pydantic import ValidationError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: grid file not found.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of grid settings at the top level.")
    try:
        grid = SweepGrid.model_validate(raw)
    except ValidationError as exc:
        from transferflow.config.section import validation_lines

        lines = validation_lines(exc, SweepGrid)
        raise ConfigError(f"{path}: invalid sweep grid:\n" + "\n".join(lines)) from None
    for point in points(grid):  # every combination must make a valid run configuration
        point_config(grid, point)
    return grid


def points(grid: SweepGrid) -> list[dict[str, Any]]:
    """Every sweep point: source, target, architecture, strategy, seed (budgets are shared)."""
    return [
        {"source": s, "target": t, "architecture": a, "strategy": st, "seed": seed}
        for (s, t), a, st, seed in product(
            grid.resolved_pairs(), grid.architectures, grid.strategies, grid.seeds
        )
    ]


def point_config(grid: SweepGrid, point: dict[str, Any]) -> RunConfig:
    """The RunConfig of one sweep point (base settings + its pair, architecture, strategy, seed).

    Raises:
        ConfigError: the combination is not a valid configuration (names the point).
    """
    import copy

    raw = copy.deepcopy(grid.base)
    for role in ("source", "target"):
        set_dotted(raw, f"data.{role}", grid.domains[point[role]].model_dump(mode="json"))
    set_dotted(raw, "model.architecture", point["architecture"])
    set_dotted(raw, "transfer.strategy", point["strategy"])
    raw["seed"] = point["seed"]
    try:
        return build_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"sweep point {point}: {exc}") from None
