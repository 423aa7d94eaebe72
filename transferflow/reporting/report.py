"""What a run leaves for people: report.md, the run's artefact listing and its configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transferflow.reporting import words
from transferflow.storage.files import write_json_atomic, write_text_atomic

# Plain symbols from common text fonts: emoji need an emoji font, which servers often lack.
_STATUS = {"passed": "✓ passed", "warned": "! warned", "failed": "✗ failed"}


def _gate_table(gates: dict[str, Any]) -> list[str]:
    lines = ["| gate | status | mode | checks | details |", "|---|---|---|---:|---|"]
    for name, g in gates.items():
        details = "; ".join(g["failed"]) if g["failed"] else ""
        figures = {k: v for k, v in g.get("figures", {}).items() if not isinstance(v, dict)}
        if not details and figures:
            details = ", ".join(f"{k}={v}" for k, v in figures.items())
        details = details.replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {name} | {_STATUS.get(g['status'], g['status'])} | {g['mode']} | "
            f"{g['checks']} | {details} |"
        )
    return lines


NO_TEST_SET = (
    "give labelled target texts as a test file (`--target-test`) to measure the models; "
    "`transferflow suggest` picks the texts to label first"
)


def render_report(metrics: dict[str, Any], title: str) -> str:
    """Markdown report: verdict, candidates side by side, gates, domain shift, per-class figures.

    Args:
        metrics: the dict written to ``metrics.json``.
        title: report heading.

    Returns:
        Markdown text.
    """
    cands = metrics["candidates"]
    lines = [f"# {title}", ""]
    data = metrics.get("data", {})
    if data:
        src, tgt = data["source"], data["target"]
        sampled = (
            f" (a uniform sample of the files' {src['rows_in_files']:,} rows: "
            "`data.source_max_rows`)"
            if src.get("rows_in_files")
            else ""
        )
        lines += [
            f"Source **{src['name']}**: {src['counts']['train']} labelled training rows{sampled}. "
            f"Target **{tgt['name']}**: {tgt['counts']['train']} training labels, "
            + (f"{tgt['counts']['test']} test rows" if tgt["counts"]["test"] else "no test set")
            + (
                f", {tgt['counts']['unlabeled']} unlabelled texts"
                if tgt["counts"].get("unlabeled")
                else ""
            )
            + f". Labels: {', '.join(tgt['labels'])}.",
            "",
        ]
        if src.get("labels") and src["labels"] != tgt["labels"]:
            from transferflow.data.labels import case_note

            note = case_note(src["labels"], tgt["labels"])
            lines += [
                f"**The source's labels ({', '.join(src['labels'])}) are not the target's**: "
                "transfer keeps the source model's n-grams and word vectors and fits new "
                "weights on the target labels, and the `source_only` and `pooled_lr` baselines, "
                "which predict the source's classes, were not trained."
                + (f" {note}" if note else ""),
                "",
            ]
        if st := metrics.get("self_training"):
            lines += [
                f"Self-training: the transfer model labelled {sum(st['pseudo_labelled'].values())}"
                f" of the {st['unlabeled_texts']} unlabelled target texts it was surest of "
                f"({', '.join(f'{k}: {v}' for k, v in st['pseudo_labelled'].items())}) and was "
                "refitted with them (`transfer.self_training`)"
                + (
                    "; members that choose `C` by cross-validation kept the one their first fit "
                    "chose on the target labels (`transfer.self_training_c`)."
                    if st.get("C_kept")
                    else "."
                ),
                "",
            ]
        if (ew := metrics.get("ensemble_weights")) and any(
            m.startswith("nb/") for m in ew["members"]
        ):
            nb = sum(w for m, w in ew["members"].items() if m.startswith("nb/"))
            lines += [
                f"Ensemble weights: the NB-weighted member {nb:.0%}, the TF-IDF members "
                f"{1 - nb:.0%} together ({ew['from']}; `transfer.ensemble_weights`).",
                "",
            ]
        cleaned = _cleaning_line(data)
        if cleaned:
            lines += [cleaned, ""]
    selection = metrics.get("selection")
    if selection:
        # Without out-of-fold predictions the rule compared nothing: its reason says why.
        rule = (
            f" Rule: {selection['rule']}, on {selection['n']} target training labels."
            if selection.get("oof_accuracy")
            else ""
        )
        lines += [f"Chosen model: **{selection['chosen']}**: {selection['reason']}.{rule}", ""]
        if selection["negative_transfer"]:
            lines += [
                "**Negative transfer**: target_only is significantly better than transfer "
                "out-of-fold.",
                "",
            ]
    oof = (selection or {}).get("oof_accuracy", {})
    pvals = (selection or {}).get("p_vs_transfer", {})
    lines += ["## Candidates on the target test set", ""]
    if not cands:
        lines += [
            f"No target test set, so no candidate is measured on the target: {NO_TEST_SET}.",
            "",
        ]
    else:
        lines += [
            "| candidate | accuracy | macro-F1 | ROC AUC | out-of-fold accuracy "
            "| p that it beats transfer (one-sided McNemar) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
    for name, m in cands.items():
        auc = f"{m['roc_auc']:.4f}" if "roc_auc" in m else "–"
        mark = " **(chosen)**" if selection and name == selection["chosen"] else ""
        v = f"{oof[name]:.4f}" if name in oof else "–"
        p = f"{pvals[name]:.4f}" if name in pvals else "–"
        lines.append(
            f"| {name}{mark} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | {auc} | {v} | {p} |"
        )
    gain = metrics.get("transfer_gain", {}).get("accuracy_vs_target_only")
    if gain is not None:
        verdict = (
            "helped" if gain > 0 else ("did not help" if gain == 0 else "hurt (negative transfer)")
        )
        lines += [
            "",
            f"On the test set, transfer {verdict}: {gain:+.4f} accuracy versus target-only.",
        ]
    if metrics.get("gates"):
        lines += ["", "## Data-quality gates", "", *_gate_table(metrics["gates"])]
    shift = metrics.get("domain_shift")
    if shift:
        lines += [
            "",
            "## Domain shift",
            "",
            f"- vocabulary overlap (target token occurrences seen in the source): "
            f"{shift['vocab_overlap']:.3f}",
            "- label-distribution distance (total variation): "
            + (
                (
                    "n/a (no target labels)"
                    if not data or not data["target"]["counts"]["train"]
                    else "n/a (the source's classes are not the target's)"
                )
                if shift["label_distance"] is None
                else f"{shift['label_distance']:.3f}"
            ),
            f"- proxy A-distance (0 = alike, 2 = separable): {shift['proxy_a_distance']:.3f}",
        ]
    curve = metrics.get("learning_curve")
    if curve and curve["sizes"]:
        lines += [
            "",
            "## How many target labels? (test accuracy)",
            "",
            "| target labels | transfer | target_only | gain |",
            "|---:|---:|---:|---:|",
        ]
        for n, t, o in zip(curve["sizes"], curve["transfer"], curve["target_only"], strict=True):
            gain = f"{t - o:+.4f}" if t is not None and o is not None else "–"
            fmt = lambda v: "–" if v is None else f"{v:.4f}"  # noqa: E731
            lines.append(f"| {n} | {fmt(t)} | {fmt(o)} | {gain} |")
    if cands:
        lines += ["", "## Per-class results (test set)", ""]
    for name, m in cands.items():
        lines += [
            f"### {name}",
            "",
            "| class | precision | recall | F1 | support |",
            "|---|---:|---:|---:|---:|",
        ]
        for cls, pc in m["per_class"].items():
            lines.append(
                f"| {cls} | {pc['precision']:.4f} | {pc['recall']:.4f} | {pc['f1']:.4f} | "
                f"{pc['support']} |"
            )
        labels = m["confusion_matrix"]["labels"]
        lines += ["", "Confusion matrix (rows: true, columns: predicted):", ""]
        lines += ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for lab, row in zip(labels, m["confusion_matrix"]["matrix"], strict=True):
            lines.append(f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |")
        lines.append("")
    return "\n".join(lines)


def render_gate_failure(exc, gates: dict[str, Any], title: str) -> str:
    """Markdown for a run stopped by a gate: the failed checks, then the gates that ran before.

    Args:
        exc: the :class:`~transferflow.errors.GateFailedError`.
        gates: summaries of the gates that completed before it.
        title: run name.

    Returns:
        Markdown text.
    """
    lines = [
        f"# {title}: stopped by gate `{exc.gate}`",
        "",
        f"The `{exc.gate}` gate failed{' for ' + exc.subject if exc.subject else ''}; "
        "nothing after "
        "it ran and no model was chosen.",
        "",
        "| what is wrong, and what to do | observed | expected | expectation (column) |",
        "|---|---|---|---|",
    ]
    for f in exc.failures:
        check = f.expectation + (f" ({f.column})" if f.column else "")
        row = [f.hint or "", f.observed, f.expected, check]
        lines.append(
            "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |"
        )
    if gates:
        lines += ["", "Gates that passed before it:", "", *_gate_table(gates)]
    lines += ["", "Data Docs (HTML, all expectations and their results): `data_docs/index.html`."]
    return "\n".join(lines)


def write_report(markdown: str, out_dir: Path) -> Path:
    """Write ``report.md`` atomically into the run folder."""
    return write_text_atomic(out_dir / "report.md", markdown)


def link_artifacts(refs: dict[str, Any], folder: Path) -> Path:
    """Copy a run's models and vectors into its folder and list them in ``artifacts.json``.

    Copies, not hard links to the content-addressed store: a later change in the store (a damaged
    object being recomputed, ``cache clear``) must never change a finished run's files.

    Args:
        refs: role -> :class:`~transferflow.storage.artifacts.ArtifactRef`.
        folder: the run's ``artifacts`` folder (inside the staging folder while the run works).

    Returns:
        The path of ``artifacts.json``; its paths are relative to the run folder, so they stay
        valid when the staging folder is renamed.
    """
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    listing = {}
    for role, ref in refs.items():
        src = Path(ref.verified_path())
        dst = folder / f"{role}{''.join(src.suffixes[-1:])}"
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        listing[role] = {"path": str(dst.relative_to(folder.parent)), "sha256": ref.sha256}
    return write_json_atomic(folder.parent / "artifacts.json", listing)


def write_config(config_json: str, out_dir: Path) -> Path:
    """Record the run's full configuration next to its results."""
    return write_json_atomic(out_dir / "config.json", json.loads(config_json))


def _cleaning_line(data: dict) -> str:
    """What was dropped before training (blank texts, repeats, test texts), per domain: rows of
    the files read (the pool and the test part; the labelled rows are drawn from the pool)."""
    said = []
    for role in ("source", "target"):
        d = data.get(role, {})
        parts = []
        for key, what in (
            ("dropped_blank_text", "rows without text"),
            ("dropped_repeats", "exact repeats"),
            ("dropped_test_overlap", "training rows whose text is a target test text"),
        ):
            counts = d.get(key) or {}
            if n := counts.get("pool", 0) + counts.get("test", 0):
                parts.append(f"{n} {what}")
        if left_out := words.unlabelled_left_out(
            (d.get("dropped_repeats") or {}).get("unlabeled", 0), d.get("dropped_labelled") or {}
        ):
            parts.append(f"unlabelled texts left out: {left_out}")
        if parts:
            said.append(f"{role} {d.get('name', '')}: {', '.join(parts)}")
    return ("Dropped before training: " + "; ".join(said) + ".") if said else ""


def with_figures(markdown_text: str, figures: dict[str, Path]) -> str:
    """The report with its figures inside, as PNG data URIs: the Prefect UI shows a markdown
    artifact, and cannot open ``report.html`` or a figure from the machine that ran the flow."""
    import base64

    return _with_section(
        markdown_text,
        figures,
        lambda path: (
            "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")
        ),
    )


def with_figure_files(markdown_text: str, figures: dict[str, Path], folder: Path) -> str:
    """The report as ``report.md`` in ``folder`` shows it: its figures linked by paths relative
    to that folder, so a markdown viewer (an editor, a code host) shows them wherever the run
    folder is moved."""
    return _with_section(
        markdown_text, figures, lambda path: Path(path).relative_to(folder).as_posix()
    )


def _with_section(markdown_text: str, figures: dict[str, Path], src: Callable[[Path], str]) -> str:
    if not figures:
        return markdown_text
    parts = [markdown_text.rstrip(), "", "## Figures", ""]
    for name, path in figures.items():
        title = name.replace("_", " ").capitalize()
        parts += [f"### {title}", "", f"![{name}]({src(path)})", ""]
    return "\n".join(parts)
