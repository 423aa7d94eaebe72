"""Sweeps: many transfer runs over domain pairs x label budgets x architectures/strategies x seeds.

A sweep *point* is one (source, target, architecture, strategy, seed). At each label budget the
``sweep`` flow runs the ``transfer-learning`` flow itself (gates, report and all; the registry off),
so a sweep measures what a user's run does; the runs of one point share their word vectors and
source model through the artefact store's cache. This module holds the grid, each budget's run
configuration (:func:`budget_config`), the rows made from a run's metrics (:func:`run_rows`), the
scikit-learn references (:func:`reference_rows`) and the summary (:func:`summarise`).
"""

from __future__ import annotations

import tempfile
import time
from itertools import product
from pathlib import Path
from typing import Any, Literal

import numpy as np
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

CANDIDATES = (
    "transfer",
    "target_only",
    "source_only",
    "pooled_lr",
    "tfidf_target",
    "tfidf_pooled",
    "nblr_pooled",
)


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


STOPPED = "(stopped at a gate)"


def budget_config(config: RunConfig, n: int, runs_dir: Path) -> RunConfig:
    """The run configuration of one sweep point at label budget ``n``: the point's settings with
    ``data.target_train_size = n``, its run folder under ``runs_dir`` and the registry off (a
    sweep compares settings; it promotes no model)."""
    d = config.data
    name = (
        f"{d.source.name}-to-{d.target.name}-n{n}-{config.model.architecture}-"
        f"{config.transfer.strategy}-seed{config.seed}"
    )
    return config.model_copy(
        update={
            "data": d.model_copy(update={"target_train_size": n}),
            "registry": config.registry.model_copy(update={"enabled": False}),
            "output_dir": runs_dir,
            "run_name": name,
        }
    )


def _row(config: RunConfig, n: int, n_used: int, candidate: str, **figures: Any) -> dict:
    return {
        "source": config.data.source.name,
        "target": config.data.target.name,
        "architecture": config.model.architecture,
        "strategy": config.transfer.strategy,
        "seed": config.seed,
        "n_requested": n,
        "n": n_used,
        "candidate": candidate,
        **figures,
    }


def run_rows(config: RunConfig, n: int, metrics: dict[str, Any], seconds: float) -> list[dict]:
    """One row per candidate of a completed ``transfer-learning`` run at budget ``n`` (its
    ``metrics.json``); ``seconds`` is the run's wall time, gates and report included."""
    n_used = int(metrics["data"]["target"]["counts"]["train"])
    return [
        _row(
            config,
            n,
            n_used,
            name,
            accuracy=round(float(m["accuracy"]), 4),
            macro_f1=round(float(m["macro_f1"]), 4),
            seconds=round(seconds, 2),
            stopped_at="",
            run=str(metrics["run"]["name"]),
        )  # fmt: skip
        for name, m in metrics["candidates"].items()
    ]


def stopped_row(config: RunConfig, n: int, gate: str, seconds: float) -> dict:
    """The row of a run at budget ``n`` that a gate stopped (no accuracy: nothing was trained
    past the gate, as in a user's run)."""
    return _row(
        config, n, 0, STOPPED, accuracy=float("nan"), macro_f1=float("nan"),
        seconds=round(seconds, 2), stopped_at=gate, run="",
    )  # fmt: skip


def reference_rows(config: RunConfig, budgets: list[int]) -> list[dict[str, Any]]:
    """The scikit-learn reference baselines of one sweep point at each budget (TF-IDF + LR on the
    target labels and on pooled labels; NB-LR on pooled labels, two classes only), on the same
    splits and drops as the point's runs."""
    import pandas as pd

    from transferflow.data.datasets import drop_after_gate, prepare_dataset, read_frame
    from transferflow.data.tables import LABEL, TEXT
    from transferflow.evaluation.metrics import classification_metrics
    from transferflow.models import baselines

    d, seed = config.data, config.seed
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tf-sweep-") as tmp:
        work = Path(tmp)

        def dataset(cfg: DatasetConfig, role: str, n: int | None):
            out = work / f"{role}-{n}"
            out.mkdir(exist_ok=True)
            ref = prepare_dataset(
                cfg, role=role, test_size=d.test_size, seed=seed, train_size=n, out_dir=out
            )
            return drop_after_gate(ref, role=role, out_dir=out)  # as the flow does

        src = dataset(d.source, "source", None)
        src_train = read_frame(src.train)
        for n in budgets:
            tgt = dataset(d.target, "target", n)
            train, test = read_frame(tgt.train), read_frame(tgt.test)
            texts, truth = test[TEXT].tolist(), test[LABEL].tolist()

            def score(proba: np.ndarray, labels: list[str]) -> dict[str, float]:
                m = classification_metrics(truth, proba, labels)  # noqa: B023
                return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}

            pooled = pd.concat([src_train, train], ignore_index=True)
            fits = {"tfidf_target": train, "tfidf_pooled": pooled}
            if train.empty:  # zero labels: nothing to fit on the target alone
                fits.pop("tfidf_target")
            labels = tgt.labels or src.labels
            for name, frame in fits.items():
                t0 = time.perf_counter()
                pipe = baselines.train_tfidf_lr(frame[TEXT].tolist(), frame[LABEL].tolist(), seed)
                figures = score(baselines.tfidf_proba(pipe, texts, labels), labels)
                rows.append(
                    _row(config, n, len(train), name, **figures,
                         seconds=round(time.perf_counter() - t0, 2), stopped_at="", run="")
                )  # fmt: skip
            if src.labels == labels and len(labels) == 2:
                t0 = time.perf_counter()
                nb = baselines.train_nb_lr(pooled[TEXT].tolist(), pooled[LABEL].tolist())
                figures = score(baselines.nb_lr_proba(nb, texts, labels), labels)
                rows.append(
                    _row(config, n, len(train), "nblr_pooled", **figures,
                         seconds=round(time.perf_counter() - t0, 2), stopped_at="", run="")
                )  # fmt: skip
    return rows


def finish_point(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stamp the process's peak memory on a point's rows and give back JAX's compiled programs
    (a Dask worker runs many points in one process)."""
    peak = _peak_rss_mb()
    for row in rows:
        row["peak_rss_mb"] = peak
    _release_compiled()
    return rows


def _release_compiled() -> None:
    """Drop JAX's in-memory compiled programs after a point.

    Each compiled program keeps ~15 memory mappings that live as long as the process. One process
    that trained eight MDSD pairs in a row reached the kernel's limit (65,530 mappings) and died
    in LLVM ("Cannot allocate memory"); a Dask worker runs many points in one process.
    ``jax.clear_caches()`` gives the mappings back (measured: 3,527 -> 510 after 200 compiles).
    The on-disk XLA cache still makes the next point's compiles cheap.
    """
    import jax

    jax.clear_caches()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB); documents memory per sweep worker."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def summarise(frame) -> dict[str, Any]:  # frame: pandas DataFrame of a sweep's rows
    """Mean ± sd tables, paired wins of transfer, and where it trails its own target_only; runs
    stopped at a gate are left out (and listed by the sweep's summary).

    Returns:
        ``table`` (candidate x n: mean, std over pairs, count), ``wins`` (per compared candidate
        and n: wins/ties/losses of transfer over pair-seed runs, mean gain in points) and
        ``worst_vs_target_only`` (the five pair-budget means where transfer trails most).
    """
    import pandas as pd

    frame = frame[frame["candidate"] != STOPPED]

    keys = ["architecture", "strategy"]
    per_pair = frame.groupby([*keys, "candidate", "n_requested", "source", "target"])[
        "accuracy"
    ].mean()
    table = (
        per_pair.groupby([*keys, "candidate", "n_requested"])
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    wide = frame.pivot_table(
        index=[*keys, "source", "target", "n_requested", "seed"],
        columns="candidate",
        values="accuracy",
    )
    wins = []
    for other in [c for c in CANDIDATES if c != "transfer" and c in wide]:
        for (arch, strat, n), part in wide.groupby(level=[*keys, "n_requested"]):
            diff = (part["transfer"] - part[other]).dropna()
            if diff.empty:  # not run at this budget (zero-label runs train no target_only)
                continue
            wins.append(
                {
                    "architecture": arch,
                    "strategy": strat,
                    "vs": other,
                    "n": int(n),
                    "wins": int((diff > 0).sum()),
                    "ties": int((diff == 0).sum()),
                    "losses": int((diff < 0).sum()),
                    "mean_gain_points": round(100 * float(diff.mean()), 2),
                }
            )
    ran = set(per_pair.index.get_level_values("candidate"))
    if {"transfer", "target_only"} <= ran:
        gap = (
            per_pair.xs("transfer", level="candidate")
            - per_pair.xs("target_only", level="candidate")
        ).rename("points")
    else:  # only zero-label budgets: no target_only to trail
        gap = pd.Series(dtype=float, name="points", index=per_pair.index.droplevel("candidate")[:0])
    gap = gap.dropna().reset_index()  # budgets without target_only (zero-label runs)
    gap["points"] = (100 * gap["points"]).round(2)
    return {
        "table": table,
        "wins": pd.DataFrame(wins),
        "worst_vs_target_only": gap.sort_values("points").head(5),
    }


def mean_table(table) -> Any:  # -> DataFrame of "mean ± sd" strings, candidates x budgets
    """``summarise()['table']`` as printable "mean ± sd" percentages, one block per setting; "–"
    where a candidate was not run at a budget (zero-label runs train only transfer and
    source_only)."""
    import pandas as pd

    out = []
    for (arch, strat), part in table.groupby(["architecture", "strategy"]):
        means = part.pivot(index="candidate", columns="n_requested", values="mean")
        sds = part.pivot(index="candidate", columns="n_requested", values="std").fillna(0.0)
        order = [c for c in CANDIDATES if c in means.index]
        cells = pd.DataFrame(
            [
                [
                    "–"
                    if pd.isna(means.loc[c, n])
                    else f"{100 * means.loc[c, n]:.1f} ± {100 * sds.loc[c, n]:.1f}"
                    for n in means.columns
                ]
                for c in order
            ],
            index=pd.Index([f"{c} ({arch}, {strat})" for c in order], name="candidate"),
            columns=means.columns,
        )
        out.append(cells)
    return pd.concat(out)


def plot_curves(table, path: Path) -> Path:
    """Learning curves: mean accuracy over pairs against target labels, one line per candidate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for (arch, strat, name), part in table.groupby(["architecture", "strategy", "candidate"]):
        part = part.sort_values("n_requested")
        label = (
            name
            if table[["architecture", "strategy"]].drop_duplicates().shape[0] == 1
            else f"{name} ({arch}, {strat})"
        )
        ax.errorbar(
            part["n_requested"],
            100 * part["mean"],
            yerr=100 * part["std"].fillna(0),
            label=label,
            marker="o",
            capsize=3,
            linewidth=2 if name == "transfer" else 1,
        )
    sizes = sorted(table["n_requested"].unique())
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("target training labels")
    ax.set_ylabel("target test accuracy (%), mean over pairs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
    return path
