"""The run's data as stages: read and split each domain's files, drop what the gates allow to
drop, measure the domain shift. Each stage writes Parquet artefacts and returns references with
content hashes. The word vectors built from these texts are in :mod:`transferflow.data.vectors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from transferflow.config.settings import DatasetConfig
from transferflow.data.tables import LABEL, TEXT, label_kind, load_domain
from transferflow.storage.artifacts import ArtifactRef, DatasetRef, write_artifact
from transferflow.storage.files import local_copy, recorded, sha256_file


def read_frame(ref) -> pd.DataFrame:
    """Read a verified Parquet artefact."""
    return pd.read_parquet(ref.verified_path())


def read_texts(refs: list[ArtifactRef]) -> list[str]:
    """The non-missing texts of several Parquet parts, in order."""
    return [t for ref in refs for t in read_frame(ref)[TEXT].dropna().tolist()]


def _write_frame(frame: pd.DataFrame, path: Path):
    return write_artifact(path, lambda tmp: frame.to_parquet(tmp, index=False))


def _label_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(frame[LABEL].value_counts(dropna=True).items())}


def _dataset_ref(
    name: str,
    frames: dict[str, pd.DataFrame],
    role: str,
    out_dir: Path,
    suffix: str = "",
    classes: list[str] | None = None,
    **fields: Any,
) -> DatasetRef:
    """Store ``frames`` as Parquet parts and reference them. The classes are those of the
    training labels; a copy without training labels (a zero-label target, whose classes are the
    source's) keeps ``classes``, those of the reference it was made from."""
    parts = {
        part: _write_frame(frame, out_dir / f"{role}_{part}{suffix}.parquet")
        for part, frame in frames.items()
    }
    return DatasetRef(
        name=name,
        parts=parts,
        counts={part: len(frame) for part, frame in frames.items()},
        labels=sorted(_label_counts(frames["train"])) or list(classes or []),
        label_counts={part: _label_counts(frame) for part, frame in frames.items()},
        **fields,
    )


def prepare_dataset(
    cfg: DatasetConfig,
    *,
    role: str,
    test_size: float,
    seed: int,
    train_size: int | None,
    out_dir: Path,
    max_rows: int | None = None,
    beyond_cap: bool = True,
    unlabeled_max_rows: int | None = None,
) -> DatasetRef:
    """Read one domain's files, split and cap them, and store the parts as Parquet.

    Args:
        cfg: the domain's files and columns.
        role: ``source`` or ``target`` (names the files).
        test_size: test share when there is no test file.
        seed: random seed.
        train_size: optional balanced cap on labelled training rows.
        out_dir: folder for the artefacts.
        max_rows: keep a seeded uniform sample of at most this many rows of the training files,
            read in chunks (bounded memory); ``None``: every row.
        beyond_cap: the training rows beyond ``train_size`` serve as unlabelled texts.
        unlabeled_max_rows: the most rows kept of the unlabelled files (a seeded sample).

    Returns:
        A reference to the prepared data with its label summary and input hashes (the part
        ``unlabeled`` holds the texts without labels, when there are any).
    """
    domain = load_domain(
        cfg,
        test_size=test_size,
        seed=seed,
        train_size=train_size,
        max_rows=max_rows,
        beyond_cap=beyond_cap,
        unlabeled_max_rows=unlabeled_max_rows,
    )
    frames = {"pool": domain.pool, "train": domain.train, "test": domain.test}
    if domain.unlabeled is not None:
        frames["unlabeled"] = domain.unlabeled
    return _dataset_ref(
        cfg.name,
        frames,
        role,
        out_dir,
        test_from_split=domain.test_from_split,
        # Without a labelled file the test labels, if any, say what kind the labels are.
        label_kind=label_kind((domain.pool if cfg.paths else domain.test)[LABEL]),
        input_sha256={
            recorded(p): sha256_file(local_copy(p))
            for p in [*cfg.paths, *cfg.test_paths, *cfg.unlabeled_paths]
        },
        rows_in_files=(
            domain.rows_read if max_rows is not None and domain.rows_read > max_rows else None
        ),
        unlabelled_only=not cfg.paths,
    )


def drop_after_gate(
    data: DatasetRef, *, role: str, out_dir: Path, drop_repeats: bool = True
) -> DatasetRef:
    """Remove what the raw-input gate tolerates but no model should learn from: rows whose text
    is missing or blank (every part), and exact repeats (the same text with the same label, one
    kept) from the training parts. The test part keeps every row it was given, repeats
    included: a test set stays as published. Unlabelled texts lose their repeats and every text
    that is also a labelled training or test text (counted in ``dropped_labelled``).

    Args:
        data: validated domain data.
        role: ``source`` or ``target`` (names the files).
        out_dir: folder for the cleaned artefacts.
        drop_repeats: ``data.drop_repeats``.

    Returns:
        ``data`` itself when nothing is dropped, else a reference to cleaned copies with updated
        counts and ``dropped_blank_text`` / ``dropped_repeats`` / ``dropped_labelled`` set.
    """
    frames = {part: pd.read_parquet(ref.verified_path()) for part, ref in data.parts.items()}
    blank, repeats, labelled = {}, {}, {}
    for part, frame in frames.items():
        keep = frame[TEXT].notna() & frame[TEXT].astype(str).str.strip().ne("")
        blank[part] = int((~keep).sum())
        frame = frame[keep]
        if part == "unlabeled":
            # A text without a label is learnt from once, and not at all when it is labelled:
            # with its label when it trains, never when it is a test text (users label texts
            # taken from their unlabelled file, so this overlap is expected, not a broken split).
            from transferflow.data.tables import normalise_text

            key = frame[TEXT].map(normalise_text)
            out = pd.Series(False, index=frame.index)
            for labelled_part in ("train", "test"):
                if labelled_part in frames:
                    seen = set(frames[labelled_part][TEXT].dropna().map(normalise_text)) - {""}
                    hit = key.isin(seen) & ~out
                    labelled[labelled_part] = int(hit.sum())
                    out |= hit
            again = key.duplicated(keep="first") & ~out
            repeats[part] = int(again.sum())
            frame = frame[~(again | out)]
        elif drop_repeats and part != "test":
            again = frame.duplicated(subset=[TEXT, LABEL], keep="first") & frame[LABEL].notna()
            repeats[part] = int(again.sum())
            frame = frame[~again]
        frames[part] = frame.reset_index(drop=True)
    if not any(blank.values()) and not any(repeats.values()) and not any(labelled.values()):
        return data
    return _dataset_ref(
        data.name,
        frames,
        role,
        out_dir,
        suffix="_valid",
        classes=data.labels,
        test_from_split=data.test_from_split,
        label_kind=data.label_kind,
        input_sha256=data.input_sha256,
        rows_in_files=data.rows_in_files,
        unlabelled_only=data.unlabelled_only,
        dropped_blank_text=blank if any(blank.values()) else {},
        dropped_repeats=repeats if any(repeats.values()) else {},
        dropped_labelled=labelled if any(labelled.values()) else {},
    )


def drop_test_texts_from_training(
    data: DatasetRef, test: pd.DataFrame, *, role: str, out_dir: Path
) -> DatasetRef:
    """Remove training rows whose text (normalised) is also a test text.

    Called after the leakage gate accepted a small overlap: the test set stays as published and the
    duplicates leave the training side, so nothing is both trained and tested on.

    Args:
        data: prepared domain data (its ``test`` part is never changed).
        test: the target test rows.
        role: ``source`` or ``target`` (names the files).
        out_dir: folder for the cleaned artefacts.

    Returns:
        ``data`` itself when nothing overlaps, else a reference to cleaned copies, with the removed
        rows counted in ``dropped_test_overlap``.
    """
    from transferflow.data.tables import normalise_text

    seen = set(test[TEXT].map(normalise_text)) - {""}
    frames = {part: pd.read_parquet(ref.verified_path()) for part, ref in data.parts.items()}
    dropped = {}
    for part, frame in frames.items():
        if part == "test" and role == "target":
            continue
        leaked = frame[TEXT].map(normalise_text).isin(seen)
        dropped[part] = int(leaked.sum())
        frames[part] = frame[~leaked].reset_index(drop=True)
    if not any(dropped.values()):
        return data
    return _dataset_ref(
        data.name,
        frames,
        role,
        out_dir,
        suffix="_noleak",
        classes=data.labels,
        test_from_split=data.test_from_split,
        label_kind=data.label_kind,
        input_sha256=data.input_sha256,
        rows_in_files=data.rows_in_files,
        unlabelled_only=data.unlabelled_only,
        dropped_blank_text=data.dropped_blank_text,
        dropped_repeats=data.dropped_repeats,
        dropped_labelled=data.dropped_labelled,
        dropped_test_overlap=dropped,
    )


def domain_shift_figures(
    source: DatasetRef, target: DatasetRef, seed: int
) -> dict[str, float | None]:
    """Vocabulary overlap, label distance and proxy A-distance between the training pools.

    Args:
        source: prepared source data.
        target: prepared target data.
        seed: seed for the domain classifier's sample and folds.

    Returns:
        ``{"vocab_overlap", "label_distance", "proxy_a_distance"}``.
    """
    from transferflow.data.shift import label_distance, proxy_a_distance, vocab_overlap

    src, tgt = read_texts(source.domain_parts), read_texts(target.domain_parts)
    # With zero target labels, or other classes than the source's, the label distributions
    # cannot be compared: no figure (the gate's check then has nothing to judge), never one made
    # up from the test labels or from classes that are not each other's.
    return {
        "vocab_overlap": vocab_overlap(src, tgt),
        "label_distance": (
            label_distance(source.label_counts["train"], target.label_counts["train"])
            if target.n_train and source.labels == target.labels
            else None
        ),
        "proxy_a_distance": proxy_a_distance(src, tgt, seed),
    }


def with_training_rows(
    data: DatasetRef, train: pd.DataFrame, *, role: str, out_dir: Path, suffix: str
) -> DatasetRef:
    """``data`` with another set of labelled training rows (pool and test unchanged): what a
    user has after labelling more texts.

    Args:
        data: prepared domain data.
        train: the new training rows (``text``, ``label``).
        role: ``source`` or ``target`` (names the files).
        out_dir: folder for the new artefacts.
        suffix: distinguishes the files of this training set.

    Returns:
        A reference to the data with the new training rows.
    """
    frames = {part: pd.read_parquet(ref.verified_path()) for part, ref in data.parts.items()}
    frames["train"] = train.reset_index(drop=True)
    return _dataset_ref(
        data.name,
        frames,
        role,
        out_dir,
        suffix=suffix,
        classes=data.labels,
        test_from_split=data.test_from_split,
        label_kind=data.label_kind,
        input_sha256=data.input_sha256,
        rows_in_files=data.rows_in_files,
        unlabelled_only=data.unlabelled_only,
        dropped_blank_text=data.dropped_blank_text,
        dropped_repeats=data.dropped_repeats,
        dropped_test_overlap=data.dropped_test_overlap,
    )
