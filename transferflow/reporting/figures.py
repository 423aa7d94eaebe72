"""Pictures of a run (PNG) and a standalone ``report.html`` that embeds them (opens offline)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from transferflow.storage.files import atomic_path, write_text_atomic


def _plt():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def confusion(metrics: dict[str, Any], title: str, path: Path) -> Path:
    """Confusion matrix of one candidate on the target test set."""
    plt = _plt()
    labels = metrics["confusion_matrix"]["labels"]
    matrix = metrics["confusion_matrix"]["matrix"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    top = max((v for row in matrix for v in row), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            # White on the dark cells, black on the light ones: readable on every shade.
            colour = "white" if top and value > top / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=12)
    ax.set_xticks(range(len(labels)), labels, rotation=45)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return _save(fig, path)


def candidates_chart(candidates: dict[str, dict[str, Any]], path: Path) -> Path:
    """Accuracy and macro-F1 of every candidate on the target test set."""
    plt = _plt()
    names = list(candidates)
    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 3.5))
    width = 0.38
    for metric, offset in (("accuracy", -width / 2), ("macro_f1", width / 2)):
        values = [candidates[n][metric] for n in names]
        bars = ax.bar([i + offset for i in range(len(names))], values, width, label=metric)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Candidates on the target test set")
    return _save(fig, path)


def domain_shift_chart(
    shift: dict[str, float], path: Path, limits: dict[str, tuple[str, float]] | None = None
) -> Path:
    """The three domain-shift figures, each on its own scale, with the gate's threshold.

    Args:
        shift: the figures.
        path: PNG to write.
        limits: figure -> ("min" or "max", threshold) of the domain-shift gate.
    """
    plt = _plt()
    limits = limits or {}
    fig, axes = plt.subplots(1, 3, figsize=(9.5, 2.8))
    for ax, (key, top) in zip(
        axes, (("vocab_overlap", 1), ("label_distance", 1), ("proxy_a_distance", 2)), strict=True
    ):
        value_ = shift[key]
        ax.barh([0], [value_ or 0.0], color="tab:orange")
        ax.set_xlim(0, top)
        ax.set_yticks([])
        title = f"{key}\n" + ("n/a" if value_ is None else f"{value_:.3f}")
        if key in limits:
            kind, value = limits[key]
            ax.axvline(value, color="black", linestyle="--", linewidth=1.5)
            title += f" ({kind} {value:g})"
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def learning_curve_chart(curve: dict[str, list], path: Path) -> Path:
    """Target test accuracy against the number of target labels, transfer vs target_only."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in ("transfer", "target_only"):
        points = [(n, v) for n, v in zip(curve["sizes"], curve[name], strict=True) if v is not None]
        ax.plot([n for n, _ in points], [v for _, v in points], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xticks(curve["sizes"], [str(n) for n in curve["sizes"]])
    ax.minorticks_off()
    ax.set_xlabel("target training labels")
    ax.set_ylabel("test accuracy")
    ax.set_title("How many target labels are needed?")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def figure_inputs(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of ``metrics`` the pictures are drawn from: same inputs, same pictures (the key
    under which they are cached)."""
    keys = ("candidates", "learning_curve", "domain_shift", "domain_shift_limits")
    return {
        **{k: metrics.get(k) for k in keys},
        "shown": metrics.get("selection", {}).get("chosen", "transfer"),
    }


def write_figures(drawn_from: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """All pictures of a run into ``out_dir/figures``.

    Args:
        drawn_from: :func:`figure_inputs` of the run's metrics.
        out_dir: the folder that receives ``figures/``.

    Returns:
        name -> PNG path.
    """
    metrics = drawn_from
    folder = out_dir / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    shown = drawn_from["shown"]
    out = {}
    if metrics["candidates"]:  # none without a target test set
        out["candidates"] = candidates_chart(metrics["candidates"], folder / "candidates.png")
        out["confusion"] = confusion(
            metrics["candidates"][shown], f"{shown}: confusion matrix", folder / "confusion.png"
        )
    if (metrics.get("learning_curve") or {}).get("sizes"):
        out["learning_curve"] = learning_curve_chart(
            metrics["learning_curve"], folder / "learning_curve.png"
        )
    if metrics.get("domain_shift"):
        limits = {k: tuple(v) for k, v in (metrics.get("domain_shift_limits") or {}).items()}
        out["domain_shift"] = domain_shift_chart(
            metrics["domain_shift"], folder / "domain_shift.png", limits
        )
    return out


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1b1b1b;
background:#fff;line-height:1.45}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:4px 10px}
th{background:#eef2f7}td{background:#fff;color:#1b1b1b}code{background:#f3f3f3;padding:0 3px}
td:nth-child(2){white-space:nowrap}
img{max-width:100%;border:1px solid #ddd;margin:.4em 0}h1{font-size:1.6em}h2{margin-top:1.6em}
"""


def write_html_report(markdown_text: str, figures: dict[str, Path], title: str, path: Path) -> Path:
    """A standalone HTML report: everything report.md says, then the figures as data URIs (opens
    offline, from any folder).

    Args:
        markdown_text: the run's report.md.
        figures: name -> PNG.
        title: page title.
        path: where to write.

    Returns:
        ``path``.
    """
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    images = "".join(
        f"<h3>{html.escape(name.replace('_', ' ').capitalize())}</h3>"
        f"<img alt='{html.escape(name)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'>"
        for name, p in figures.items()
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{body}<h2>Figures</h2>{images}</body></html>"
    )
    return write_text_atomic(path, page)
