"""A sweep's summary: mean ± sd tables over pairs, paired wins of transfer, learning curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CANDIDATES = (
    "transfer",
    "target_only",
    "source_only",
    "pooled_lr",
    "tfidf_target",
    "tfidf_pooled",
    "nblr_pooled",
)


STOPPED = "(stopped at a gate)"


def paired_counts(diff) -> dict[str, Any]:
    """Wins, ties and losses of paired accuracy differences (a pandas Series, one per pair and
    seed), and their mean in points."""
    return {
        "wins": int((diff > 0).sum()),
        "ties": int((diff == 0).sum()),
        "losses": int((diff < 0).sum()),
        "mean_gain_points": round(100 * float(diff.mean()), 2),
    }


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
                {"architecture": arch, "strategy": strat, "vs": other, "n": int(n)}
                | paired_counts(diff)
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
