"""Sweeps: many transfer runs over domain pairs x label budgets x architectures/strategies x seeds.

A sweep *point* is one (source, target, architecture, strategy, seed): its word vectors and source
model are built once and shared by all its label budgets, for which the transfer model and the
baselines are trained and scored on the target test set. :func:`run_point` does one point with the
same stage functions as the ``transfer-learning`` flow; the ``sweep`` flow runs the points as
parallel tasks (locally or on Dask) and :func:`summarise` makes the results table.

Sweeps are for comparing settings: they skip the data-quality gates, the report per run and the
model registry (run ``transferflow validate`` on new data first).
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
    label_budgets: list[int] = Field(min_length=1, description="Target training labels (balanced).")
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

    @field_validator("domains", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, dict):  # the key is the domain's name
            return {k: {"name": k, **d} if isinstance(d, dict) else d for k, d in value.items()}
        return value

    @model_validator(mode="after")
    def _known_domains(self) -> SweepGrid:
        if any(n < 4 for n in self.label_budgets):
            raise ValueError("every label budget must be at least 4")
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
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid sweep grid: {problems}") from None
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


def run_point(
    config: RunConfig, budgets: list[int], references: bool = True
) -> list[dict[str, Any]]:
    """Train and score every candidate of one sweep point at each label budget.

    The candidates are trained by the same stage functions as a ``transferflow run`` (every one
    on all n target labels, as a run does), only without the gates, report and registry.

    Args:
        config: the point's run configuration (``data.target_train_size`` is ignored).
        budgets: target label budgets; the point's vectors and source model are shared by all.
        references: also the scikit-learn reference baselines (TF-IDF + LR target-only and
            pooled; NB-LR pooled, two classes only).

    Returns:
        One row per budget and candidate: source, target, architecture, strategy, seed,
        n_requested, n (labels actually used), candidate, accuracy, macro_f1, seconds,
        peak_rss_mb (the process's peak memory after the point).
    """
    import pandas as pd

    from transferflow.data.datasets import (
        drop_after_gate,
        make_embeddings,
        prepare_dataset,
        read_frame,
    )
    from transferflow.data.tables import LABEL, TEXT
    from transferflow.evaluation.metrics import classification_metrics
    from transferflow.models import baselines
    from transferflow.models.candidates import (
        candidate_proba,
        fine_tune,
        train_pooled_lr,
        train_source,
        train_target_only,
    )

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
            return drop_after_gate(ref, role=role, out_dir=out)  # as the flow does after its gate

        start = time.perf_counter()
        src = dataset(d.source, "source", None)
        tgt_all = dataset(d.target, "target", None)
        emb = make_embeddings(src, tgt_all, config.embeddings, seed=seed, out_dir=work)
        source_model = train_source(src, tgt_all, emb, config.model, seed=seed, out_dir=work)
        shared = time.perf_counter() - start
        src_train = read_frame(src.train)
        test = read_frame(tgt_all.test)
        texts, truth = test[TEXT].tolist(), test[LABEL].tolist()

        def score(proba: np.ndarray, labels: list[str]) -> dict[str, float]:
            m = classification_metrics(truth, proba, labels)
            return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}

        same = src.labels == tgt_all.labels
        for n in budgets:
            tgt = dataset(d.target, "target", n)
            train = read_frame(tgt.train)
            out = work / f"models-{n}"
            out.mkdir()
            results: dict[str, dict[str, float]] = {}

            def timed(name: str, train, *args, **kwargs) -> None:
                t0 = time.perf_counter()
                ref = train(*args, seed=seed, out_dir=out, **kwargs)  # noqa: B023
                results[name] = {  # noqa: B023 - called within this iteration
                    **score(candidate_proba(ref, texts), ref.labels),
                    "seconds": time.perf_counter() - t0,
                }

            # Sweeps choose no model: the out-of-fold predictions for that are skipped.
            timed(
                "transfer",
                fine_tune,
                source_model,
                src,
                tgt,
                emb,
                config.model,
                config.transfer,
                oof=False,
            )
            results["transfer"]["seconds"] += shared
            timed("target_only", train_target_only, tgt, emb, config.model)
            if same:
                results["source_only"] = {
                    **score(candidate_proba(source_model, texts), src.labels),
                    "seconds": 0.0,
                }
                timed("pooled_lr", train_pooled_lr, src, tgt, emb, config.model)
            if references:
                pooled = pd.concat([src_train, train], ignore_index=True)
                for name, frame in {"tfidf_target": train, "tfidf_pooled": pooled}.items():
                    t0 = time.perf_counter()
                    pipe = baselines.train_tfidf_lr(
                        frame[TEXT].tolist(), frame[LABEL].tolist(), seed
                    )
                    results[name] = {
                        **score(baselines.tfidf_proba(pipe, texts, tgt.labels), tgt.labels),
                        "seconds": time.perf_counter() - t0,
                    }
                if same and len(tgt.labels) == 2:
                    t0 = time.perf_counter()
                    nb = baselines.train_nb_lr(pooled[TEXT].tolist(), pooled[LABEL].tolist())
                    results["nblr_pooled"] = {
                        **score(baselines.nb_lr_proba(nb, texts, tgt.labels), tgt.labels),
                        "seconds": time.perf_counter() - t0,
                    }
            for name, r in results.items():
                rows.append(
                    {
                        "source": d.source.name,
                        "target": d.target.name,
                        "architecture": config.model.architecture,
                        "strategy": config.transfer.strategy,
                        "seed": seed,
                        "n_requested": n,
                        "n": len(train),
                        "candidate": name,
                        "accuracy": round(r["accuracy"], 4),
                        "macro_f1": round(r["macro_f1"], 4),
                        "seconds": round(r["seconds"], 2),
                    }
                )
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


def summarise(frame) -> dict[str, Any]:  # frame: pandas DataFrame of run_point rows
    """Mean ± sd tables, paired wins of transfer, and where it trails its own target_only.

    Returns:
        ``table`` (candidate x n: mean, std over pairs, count), ``wins`` (per compared candidate
        and n: wins/ties/losses of transfer over pair-seed runs, mean gain in points) and
        ``worst_vs_target_only`` (the five pair-budget means where transfer trails most).
    """
    import pandas as pd

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
    gap = (
        (per_pair.xs("transfer", level="candidate") - per_pair.xs("target_only", level="candidate"))
        .rename("points")
        .reset_index()
    )
    gap["points"] = (100 * gap["points"]).round(2)
    return {
        "table": table,
        "wins": pd.DataFrame(wins),
        "worst_vs_target_only": gap.sort_values("points").head(5),
    }


def mean_table(table) -> Any:  # -> DataFrame of "mean ± sd" strings, candidates x budgets
    """``summarise()['table']`` as printable "mean ± sd" percentages, one block per setting."""
    import pandas as pd

    out = []
    for (arch, strat), part in table.groupby(["architecture", "strategy"]):
        means = part.pivot(index="candidate", columns="n_requested", values="mean")
        sds = part.pivot(index="candidate", columns="n_requested", values="std").fillna(0.0)
        order = [c for c in CANDIDATES if c in means.index]
        cells = pd.DataFrame(
            [
                [f"{100 * means.loc[c, n]:.1f} ± {100 * sds.loc[c, n]:.1f}" for n in means.columns]
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
