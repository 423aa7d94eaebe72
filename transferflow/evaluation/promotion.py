"""Which candidate a run chooses, and whether it becomes the registry's champion.

Every target label is used for training; none is held out. The choice compares the candidates'
*out-of-fold* predictions on the target training labels (each row predicted by a model fitted
without it, from the same cross-validation folds). Transfer stays the choice unless a baseline
is better in a way one or two examples cannot explain: it must have more correct out-of-fold
predictions than transfer *and* an exact McNemar test on the rows where the two disagree must
give p below ``gates.promotion.significance`` (0.05). A tie is not a win.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from transferflow.config.settings import BaselineConfig
from transferflow.data.tables import LABEL, TEXT
from transferflow.models.candidates import CANDIDATE_ORDER
from transferflow.storage.artifacts import DatasetRef, ModelRef
from transferflow.storage.files import recorded, write_json_atomic


def mcnemar_p(transfer_right: np.ndarray, other_right: np.ndarray) -> float:
    """One-sided exact McNemar p-value that the other model is more often right than transfer.

    Args:
        transfer_right: per row, whether transfer's prediction is correct.
        other_right: per row, whether the other model's is.

    Returns:
        P(at least as many "other right, transfer wrong" rows among the discordant ones, if both
        were equally good); 1.0 when they never disagree.
    """
    from scipy.stats import binomtest

    b = int(np.sum(other_right & ~transfer_right))  # rows only the other model gets right
    c = int(np.sum(transfer_right & ~other_right))  # rows only transfer gets right
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="greater").pvalue)


def select_model(
    oof: dict[str, np.ndarray | None], y_true: list[str], labels: list[str], significance: float
) -> dict[str, Any]:
    """Choose the model to register from out-of-fold predictions (never test data).

    Args:
        oof: candidate -> out-of-fold class probabilities on the target training rows (columns in
            ``labels`` order), or ``None`` when it has none.
        y_true: the target training labels.
        labels: class order.
        significance: p-value below which a better baseline replaces transfer.

    Returns:
        ``{"chosen", "reason", "rule", "n", "oof_accuracy", "p_vs_transfer",
        "transfer_beats_target_only", "gain_vs_target_only"}``; ``transfer_beats_target_only``
        is False only when target_only is significantly better (negative transfer), and
        ``None`` without out-of-fold evidence (no or too few target labels: nothing compared).

    Raises:
        ValueError: no transfer candidate.
    """
    if "transfer" not in oof:
        raise ValueError("no 'transfer' candidate to judge")
    rule = (
        f"a baseline replaces transfer only with more correct out-of-fold predictions and an "
        f"exact McNemar p < {significance}"
    )
    base = {
        "rule": rule,
        "n": len(y_true),
        "oof_accuracy": {},
        "p_vs_transfer": {},
        "transfer_beats_target_only": True,
        "gain_vs_target_only": None,
    }
    if oof["transfer"] is None:
        return {
            **base,
            "transfer_beats_target_only": None,
            "chosen": "transfer",
            "reason": (
                "no target labels (zero-label run): transfer, learnt from the source and the "
                "unlabelled target texts, kept without out-of-fold evidence"
                if not y_true
                else "too few target labels to cross-validate: transfer kept untested"
            ),
        }
    truth = np.asarray(y_true, dtype=object)
    right = {
        name: np.asarray(labels, dtype=object)[p.argmax(axis=1)] == truth
        for name, p in oof.items()
        if p is not None
    }
    acc = {name: round(float(r.mean()), 4) for name, r in right.items()}
    p_values = {
        name: round(mcnemar_p(right["transfer"], r), 4)
        for name, r in right.items()
        if name != "transfer"
    }
    winners = [
        n
        for n in p_values
        if right[n].sum() > right["transfer"].sum() and p_values[n] < significance
    ]
    chosen = (
        max(winners, key=lambda n: (acc[n], -CANDIDATE_ORDER.index(n))) if winners else "transfer"
    )
    if chosen == "transfer":
        reason = "no baseline is significantly better on out-of-fold predictions"
    else:
        reason = (
            f"{chosen} is significantly better than transfer on out-of-fold predictions "
            f"({acc[chosen]:.4f} vs {acc['transfer']:.4f}, McNemar p = {p_values[chosen]})"
        )
    gain = round(acc["transfer"] - acc["target_only"], 4) if "target_only" in acc else None
    return {
        **base,
        "chosen": chosen,
        "reason": reason,
        "oof_accuracy": acc,
        "p_vs_transfer": p_values,
        "transfer_beats_target_only": "target_only" not in winners,
        "gain_vs_target_only": gain,
    }


def baseline_roles(cfg: BaselineConfig, same_labels: bool) -> list[str]:
    """Which baselines a run trains, given the settings and whether the label sets match."""
    roles = []
    if cfg.target_only:
        roles.append("target_only")
    if cfg.source_only and same_labels:
        roles.append("source_only")
    if cfg.pooled_lr and same_labels:
        roles.append("pooled_lr")
    return roles


def finalise_metrics(
    metrics: dict[str, Any], gates: dict[str, Any], out_dir: Path
) -> dict[str, Any]:
    """Add the gates' outcomes and the model selection to ``metrics.json`` (rewritten atomically).

    Args:
        metrics: as written by ``evaluate``.
        gates: gate name -> summary (the ``promotion`` summary's figures hold the selection).
        out_dir: run folder.

    Returns:
        The completed metrics.
    """
    metrics = {**metrics, "gates": gates}
    if "promotion" in gates:
        selection = dict(gates["promotion"]["figures"])
        # Only evidence of it counts: None (nothing compared) is not negative transfer.
        selection["negative_transfer"] = selection["transfer_beats_target_only"] is False
        selection["split"] = "target training labels, out-of-fold"
        metrics["selection"] = selection
    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def register_chosen(
    metrics: dict[str, Any],
    candidates: dict[str, ModelRef],
    target: DatasetRef,
    source: DatasetRef,
    config: Any,
    run_dir: Path,
    registry,
) -> dict[str, Any]:
    """Register the run's chosen model as a new version and move the champion if it earned it.

    The champion moves when transfer was chosen (no baseline significantly better out-of-fold)
    and the new version is at least as accurate as the current champion on this run's target
    test data (the champion is re-scored on it, so the comparison is like for like).

    Args:
        metrics: the run's final metrics (with ``selection`` and ``gates``).
        candidates: role -> model reference.
        target: prepared target data (its test split is the comparison set).
        source: prepared source data (its input hashes are recorded).
        config: the run's :class:`~transferflow.config.settings.RunConfig`.
        run_dir: the run's final folder (recorded).
        registry: the :class:`~transferflow.storage.registry.Registry`.

    Returns:
        ``{"version", "champion", "promoted", "reason"}``.
    """
    import tempfile

    import pandas as pd

    from transferflow.evaluation import lineage
    from transferflow.serving import monitoring
    from transferflow.serving.scoring import Scorer

    selection = metrics["selection"]
    chosen = selection["chosen"]
    ref = candidates[chosen]
    # verified_path() checks the hashes: a damaged artefact is never registered.
    files = {
        "model.keras": ref.model.verified_path(),
        **{name: r.verified_path() for name, r in ref.files.items() if name != "oof.npz"},
    }
    test_metrics = metrics["candidates"].get(chosen)  # None without a target test set
    record = {
        "role": chosen,
        "kind": ref.kind,
        "architecture": ref.architecture,
        "labels": ref.labels,
        "text_columns": config.data.target.text_columns,
        "source": source.name,
        "target": target.name,
        "model_name": registry.name,
        "data_sha256": {**source.input_sha256, **target.input_sha256},
        "target_test_sha256": target.test.sha256,
        "metrics": {
            "test": (
                {k: test_metrics[k] for k in ("accuracy", "macro_f1")} if test_metrics else None
            ),
            "oof_accuracy": selection.get("oof_accuracy", {}).get(chosen),
        },
        "selection": selection,
        "config": json.loads(config.model_dump_json()),
        "run_dir": recorded(run_dir),
    }
    # What the model trained on (every labelled training text of both domains), so that later
    # comparisons leave those texts out.
    trained = [
        text
        for data in (source, target)
        for part, part_ref in data.parts.items()
        if part in ("train", "val")
        for text in pd.read_parquet(part_ref.verified_path())[TEXT].tolist()
    ]
    with tempfile.TemporaryDirectory() as tmp:
        files[lineage.FILE] = lineage.write(Path(tmp) / lineage.FILE, trained)
        files[monitoring.FILE] = monitoring.write_reference(
            Path(tmp) / monitoring.FILE, _monitoring_reference(ref, target, config.seed)
        )
        version, new = registry.register(files, record)
    if not new:  # e.g. a nightly run on unchanged data: the same bytes, no new version
        if chosen == "transfer" and config.registry.auto_promote:
            registry.promote(version, if_champion=None)
        return {
            "version": version,
            "champion": registry.champion(),
            "promoted": False,
            "reason": f"identical to v{version} (same model files): not registered again",
        }
    champion = registry.champion()
    promoted, reason = False, ""
    if not config.registry.auto_promote:
        reason = "auto-promotion is off"
    elif chosen != "transfer":
        reason = f"a baseline ({chosen}) was chosen over transfer"
    elif champion is None:
        promoted, reason = True, "first champion"
    elif target.n_train == 0 and target.n_test == 0:
        reason = (
            f"no target labels and no test set: nothing shows it is better than champion "
            f"v{champion}; registered, not promoted ('transferflow models promote VERSION' "
            "does it by hand)"
        )
    else:
        test = pd.read_parquet(target.test.verified_path())
        scorer = Scorer(registry, champion)
        if scorer.labels != ref.labels:
            promoted, reason = True, "the champion predicts other labels"
        else:
            promoted, reason = _against_champion(registry, scorer, version, test)
    # Only while the champion is still the one compared against: another run may have moved it.
    if promoted and not registry.promote(version, if_champion=champion):
        promoted = False
        reason = f"{reason}; not promoted: another run moved the champion meanwhile"
    return {
        "version": version,
        "champion": registry.champion(),
        "promoted": promoted,
        "reason": reason,
    }


def _against_champion(registry, champion_scorer, version: int, test) -> tuple[bool, str]:
    """Compare the new version with the champion on the test rows neither trained on.

    The new model never trained on its own run's test rows; the champion may have (an earlier
    split of the same data, or data that grew). Its recorded training texts are left out. With
    fewer than :data:`~transferflow.evaluation.lineage.MIN_ROWS` rows left the comparison says
    too little, and the run's out-of-fold evidence decides (transfer was chosen: promoted).

    Returns:
        (promote, the reason in words).
    """
    from transferflow.evaluation import lineage
    from transferflow.serving.scoring import Scorer

    champion = champion_scorer.version
    texts = test[TEXT].tolist()
    labels = test[LABEL].to_numpy()
    mask = np.ones(len(texts), dtype=bool)
    note = f"v{champion} records no training texts, so all test rows count"
    if (trained_on := champion_scorer.verified.get(lineage.FILE)) is not None:  # hash-checked
        mask = lineage.unseen(texts, lineage.read(trained_on))
        note = f"{int(mask.sum())} of {len(texts)} test rows unseen by v{champion}"
    n = int(mask.sum())
    if n < lineage.MIN_ROWS:
        return True, (
            f"only {n} of {len(texts)} test rows are unseen by champion v{champion} (fewer than "
            f"{lineage.MIN_ROWS}): decided on the out-of-fold evidence, which chose transfer"
        )
    rows = [t for t, keep in zip(texts, mask, strict=True) if keep]

    def accuracy(scorer) -> float:
        predicted = np.asarray(scorer.labels)[scorer.predict_proba(rows).argmax(axis=1)]
        # Rounded like the run's own metrics, so an equally good model counts as not worse.
        return round(float(np.mean(predicted == labels[mask])), 4)

    new_acc, champ_acc = accuracy(Scorer(registry, version)), accuracy(champion_scorer)
    return new_acc >= champ_acc, (
        f"accuracy {new_acc:.4f} vs champion v{champion} {champ_acc:.4f} on this run's target "
        f"test rows neither trained on ({note})"
    )


def _monitoring_reference(ref: ModelRef, target: DatasetRef, seed: int) -> dict[str, Any]:
    """What scored batches are compared with: the target training texts and labels, and the
    model's confidence calibrated on its predictions of the target test set (or, without one,
    its out-of-fold predictions of the training labels; :mod:`transferflow.serving.monitoring`)."""
    import pandas as pd

    from transferflow.models.candidates import candidate_proba, oof_proba
    from transferflow.serving.monitoring import MIN_HELD_OUT, build_reference

    train = pd.read_parquet(target.train.verified_path())
    texts, labels = train[TEXT].tolist(), train[LABEL].astype(str).tolist()
    if not texts and target.unlabeled is not None:
        # A zero-label model: batches are compared with the target texts it was adapted to.
        texts = pd.read_parquet(target.unlabeled.verified_path())[TEXT].dropna().tolist()
    test = pd.read_parquet(target.test.verified_path()).dropna(subset=[LABEL])
    held_out = None
    if len(test) >= MIN_HELD_OUT:
        held_out = (
            candidate_proba(ref, test[TEXT].tolist()),
            test[LABEL].astype(str).tolist(),
        )
    return build_reference(texts, labels, ref.labels, oof_proba(ref), seed, held_out)
