"""Watching scored batches: does a batch still look like the data the model was trained on, and
how accurate is the model likely to be on it, without labels?

At registration each version stores ``reference.json`` (plain data, hash-verified like its other
files): a sample of its target training texts, its target training labels' shares, and a
calibration of its confidence (isotonic regression of "the prediction was right" on the top
probability), fitted on the model's own predictions on the run's target test set, or, without
one, on the run's out-of-fold predictions of the target training labels.

While a file is scored, :class:`BatchMonitor` keeps the predicted-label counts, the sum of the
calibrated confidences (confidence-based performance estimation, as NannyML's CBPE: the mean
calibrated probability of being right is the expected accuracy, if only the inputs shifted), and a
uniform sample of the batch's texts. At the end it measures the batch against the reference with
the project's domain-shift figures: proxy A-distance (the drift score), vocabulary overlap, the
out-of-vocabulary rate of the model's word vectors, and the label distance of the predictions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FILE = "reference.json"
SAMPLE = 1000  # texts kept from the training target and from a batch (bounds the drift cost)


MIN_HELD_OUT = 30  # labelled held-out rows needed to calibrate on them instead of out-of-fold


def build_reference(
    texts: list[str],
    labels: list[str],
    classes: list[str],
    oof_proba: np.ndarray | None,
    seed: int,
    held_out: tuple[np.ndarray, list[str]] | None = None,
) -> dict[str, Any]:
    """The monitoring reference of a model: what its target training data looked like.

    Args:
        texts: the target training texts (for a model trained without target labels, the
            unlabelled target texts it was adapted to).
        labels: the training texts' labels (empty without target labels).
        classes: the model's classes (column order of ``oof_proba``).
        oof_proba: out-of-fold probabilities on those rows, or None (too few labels): the
            confidence is then used uncalibrated.
        seed: seed of the text sample.
        held_out: the model's own probabilities on labelled rows it never trained on (the
            run's target test set) and their labels. With at least ``MIN_HELD_OUT`` of them the
            confidence is calibrated on these instead: out-of-fold predictions come from the
            cross-validation's fold models, which are less sure than the final model (above all
            after self-training, which refits on hundreds of pseudo-labels), so a calibration
            fitted on them reads the final model's confidence as near-certain accuracy.

    Returns:
        Plain data for ``reference.json``.
    """
    rng = np.random.default_rng(seed)
    keep = rng.choice(len(texts), min(SAMPLE, len(texts)), replace=False)
    counts = {c: labels.count(c) for c in classes}
    total = sum(counts.values())
    reference: dict[str, Any] = {
        "texts": [texts[i] for i in sorted(keep)],
        # No labels (a zero-label model): no shares to compare predicted labels with.
        "label_shares": {c: round(n / total, 6) for c, n in counts.items()} if total else {},
        "calibration": None,
        "oof_accuracy": None,
    }
    if oof_proba is not None and not (len(labels) and len(oof_proba) == len(labels)):
        oof_proba = None
    if oof_proba is not None:
        reference["oof_accuracy"] = round(float(_right(oof_proba, labels, classes).mean()), 6)
    if held_out is not None and len(held_out[1]) >= MIN_HELD_OUT:
        proba, truth = held_out
        reference["calibration"] = _isotonic(proba, truth, classes)
        reference["calibrated_on"] = f"the model's predictions on {len(truth)} target test rows"
    elif oof_proba is not None:
        reference["calibration"] = _isotonic(oof_proba, labels, classes)
        reference["calibrated_on"] = f"out-of-fold predictions of {len(labels)} training labels"
    return reference


def _right(proba: np.ndarray, labels: list[str], classes: list[str]) -> np.ndarray:
    y = np.array([classes.index(v) if v in classes else -1 for v in labels])
    return (proba.argmax(axis=1) == y).astype(float)


def _isotonic(proba: np.ndarray, labels: list[str], classes: list[str]) -> dict[str, list]:
    """Isotonic regression of "the prediction was right" on the top probability."""
    from sklearn.isotonic import IsotonicRegression

    right = _right(proba, labels, classes)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
    iso.fit(proba.max(axis=1), right)
    return {
        "x": [round(float(v), 6) for v in iso.X_thresholds_],
        "y": [round(float(v), 6) for v in iso.y_thresholds_],
    }


def write_reference(path: Path, reference: dict[str, Any]) -> Path:
    """Write ``reference.json`` (sorted keys: the same reference gives the same bytes)."""
    path.write_text(json.dumps(reference, sort_keys=True), encoding="utf-8")
    return path


def read_reference(path: Path) -> dict[str, Any]:
    """Read a ``reference.json``."""
    return json.loads(path.read_text(encoding="utf-8"))


def calibrated(confidence: np.ndarray, calibration: dict[str, list[float]] | None) -> np.ndarray:
    """The probability that predictions with these top probabilities are right."""
    if not calibration or not calibration.get("x"):
        return confidence
    return np.interp(confidence, calibration["x"], calibration["y"])


@dataclass
class BatchMonitor:
    """Accumulates what a scored batch looks like, chunk by chunk (bounded memory).

    Args:
        reference: the model version's ``reference.json``.
        classes: the model's classes (column order of the probabilities).
        vocabulary: returns the model's word-vector tokens (for the out-of-vocabulary rate;
            called at the end, when the model is loaded anyway).
        seed: seed of the batch's text sample.
    """

    reference: dict[str, Any]
    classes: list[str]
    vocabulary: Callable[[], set[str]]
    seed: int = 0
    rows: int = 0
    _confidence_sum: float = 0.0
    _counts: np.ndarray | None = None
    _sample: list[str] = field(default_factory=list)
    _keys: np.ndarray = field(default_factory=lambda: np.empty(0))

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._counts = np.zeros(len(self.classes), dtype=np.int64)

    def update(self, texts: list[str], proba: np.ndarray) -> None:
        """Add a chunk: its texts and the model's probabilities for them."""
        assert self._counts is not None
        self.rows += len(texts)
        self._confidence_sum += float(
            calibrated(proba.max(axis=1), self.reference.get("calibration")).sum()
        )
        self._counts += np.bincount(proba.argmax(axis=1), minlength=len(self.classes))
        # A uniform sample of the whole stream: keep the texts with the smallest random keys.
        keys = self._rng.random(len(texts))
        merged = np.concatenate([self._keys, keys])
        pool = self._sample + list(texts)
        keep = np.argsort(merged, kind="stable")[:SAMPLE]
        self._keys, self._sample = merged[keep], [pool[i] for i in keep]

    def figures(self, max_drift: float, max_accuracy_drop: float) -> dict[str, Any]:
        """The batch's monitoring figures (see the module docstring), with the limits and whether
        they are crossed.

        Args:
            max_drift: the largest proxy A-distance from the training target that is tolerated.
            max_accuracy_drop: how far (in accuracy, 0-1) the estimate may fall below the model's
                out-of-fold accuracy.
        """
        from transferflow.data.shift import label_distance, proxy_a_distance, vocab_overlap
        from transferflow.text.tokens import count_tokens

        assert self._counts is not None
        texts = self._sample
        reference_texts = self.reference.get("texts") or []
        predicted = {c: int(n) for c, n in zip(self.classes, self._counts, strict=True)}
        training = self.reference.get("label_shares") or {}
        pad = None
        if min(len(texts), len(reference_texts)) >= 5:
            pad = proxy_a_distance(reference_texts, texts, self.seed, max_per_domain=SAMPLE)
        tokens = count_tokens(texts)
        total = sum(tokens.values())
        known = self.vocabulary()
        oov = sum(n for t, n in tokens.items() if t not in known) / total if total else 0
        estimated = self._confidence_sum / self.rows if self.rows else None
        expected = self.reference.get("oof_accuracy")
        floor = None if expected is None else round(expected - max_accuracy_drop, 4)
        return {
            "rows": self.rows,
            "estimated_accuracy": None if estimated is None else round(estimated, 4),
            "accuracy": {
                "estimated": None if estimated is None else round(estimated, 4),
                "expected": expected,  # out-of-fold accuracy on the training target
                "floor": floor,
                "below_floor": bool(
                    estimated is not None and floor is not None and estimated < floor
                ),
                "calibrated": self.reference.get("calibration") is not None,
                "calibrated_on": self.reference.get("calibrated_on"),
            },
            "drift": {
                "score": pad,
                "measure": "proxy A-distance to the training target texts (0 alike, 2 apart)",
                "limit": max_drift,
                "exceeded": bool(pad is not None and pad > max_drift),
            },
            "vocab_overlap": vocab_overlap(reference_texts, texts) if texts else None,
            "oov_rate": round(oov, 4),
            "predicted_labels": predicted,
            "predicted_shares": {c: round(n / self.rows, 4) for c, n in predicted.items()}
            if self.rows
            else {},
            "training_label_shares": training,
            "label_distance": label_distance(
                {c: int(round(s * 1_000_000)) for c, s in training.items()}, predicted
            )
            if self.rows and training
            else None,
            "sampled_texts": len(texts),
        }


def alerts(figures: dict[str, Any]) -> list[str]:
    """The limits a batch crossed, in words (empty: none)."""
    out = []
    drift, accuracy = figures["drift"], figures["accuracy"]
    if drift["exceeded"]:
        out.append(f"drift {drift['score']:.3f} above the limit {drift['limit']:.3f}")
    if accuracy["below_floor"]:
        out.append(
            f"estimated accuracy {accuracy['estimated']:.3f} below {accuracy['floor']:.3f} "
            f"(out-of-fold {accuracy['expected']:.3f} minus the allowed drop)"
        )
    return out


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], low: float, high: float) -> str:
    """A one-line plot of ``values`` between ``low`` and ``high`` (a gap for a missing value)."""
    out = []
    for v in values:
        if v is None:
            out.append(" ")
            continue
        share = 0.0 if high <= low else (min(max(v, low), high) - low) / (high - low)
        out.append(_BARS[round(share * (len(_BARS) - 1))])
    return "".join(out)


def _wide(line: str) -> str:
    # Each value two characters wide: a few batches still read as a plot.
    return "".join(c * 2 for c in line)


def history_markdown(name: str, batches: list[dict[str, Any]]) -> str:
    """The monitoring report of model ``name``: the latest batch, a plot of the trend and a table
    of the batches (oldest first), as markdown."""
    if not batches:
        return f"# Monitoring: model `{name}`\n\nNo batch scored yet."
    last = batches[-1]
    acc, drift = last["accuracy"], last["drift"]
    state = "**ALERT**: " + "; ".join(alerts(last)) if alerts(last) else "within its limits"
    est = [b.get("accuracy", {}).get("estimated") for b in batches]
    pads = [b.get("drift", {}).get("score") for b in batches]
    lines = [
        f"# Monitoring: model `{name}`",
        "",
        f"Latest batch: v{last['version']} on `{_short(last.get('input'))}`, "
        f"{last['rows']:,} rows, {last.get('scored_at', '?')}: {state}.",
        "",
        f"- estimated accuracy {_num(acc['estimated'])} (out-of-fold on the training target "
        f"{_num(acc['expected'])}; alert below {_num(acc['floor'])})",
        f"- drift {_num(drift['score'])} (proxy A-distance to the training target texts; alert "
        f"above {_num(drift['limit'])})",
        "",
        f"Trend over the last {len(batches)} batches (oldest left):",
        "",
        "```",
        f"estimated accuracy  {_wide(sparkline(est, 0.5, 1.0))}  (0.5 … 1.0)",
        f"drift               {_wide(sparkline(pads, 0.0, 2.0))}  (0 … 2)",
        "```",
        "",
        "| # | scored (UTC) | rows | estimated accuracy | drift | alert | version | input | "
        "OOV rate | predicted shares |",
        "|---:|---|---:|---:|---:|---|---:|---|---:|---|",
    ]
    for i, b in enumerate(batches, 1):
        shares = ", ".join(f"{k} {v:.2f}" for k, v in (b.get("predicted_shares") or {}).items())
        when = str(b.get("scored_at", "?")).replace("T", " ").removesuffix("Z")[5:16]
        lines.append(
            f"| {i} | {when} | {b.get('rows', 0):,} | "
            f"{_num(b.get('accuracy', {}).get('estimated'))} | "
            f"{_num(b.get('drift', {}).get('score'))} | {'**yes**' if alerts(b) else ''} | "
            f"v{b.get('version')} | {_short(b.get('input'))} | "
            f"{_num(b.get('oov_rate'))} | {shares} |"
        )
    return "\n".join(lines)


def _short(path: Any) -> str:
    # The file and its folder: batches are often 'test.csv' in one folder per source.
    return "/".join(Path(str(path or "?")).parts[-2:])


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"
