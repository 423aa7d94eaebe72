"""An unlabelled file's texts ranked by a model: which of them to label next.

Texts already labelled or in the test set (same normalised text) are never suggested, and each
distinct text is suggested once. The strategies themselves are in
:mod:`transferflow.serving.suggest`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from transferflow.serving.suggest import suggest


def model_features(model, texts: list[str]):
    """The model's view of ``texts`` for diversity: TF-IDF n-gram rows beside the unit mean word
    vector, each half scaled to length 1/sqrt(2) (rows of unit length), SciPy CSR."""
    import scipy.sparse as sp

    from transferflow.models.network import deep_features

    wide = model.featurizer.transform(texts)
    deep = deep_features(model.network, model.encoder(), texts)
    return sp.hstack([wide, sp.csr_matrix(deep)], format="csr") * np.float32(np.sqrt(0.5))


def read_unlabeled(
    path, text_columns: list[str], id_column: str | None, exclude: set[str]
) -> tuple[list[str], list[str], dict[str, int], dict[str, list[Any]]]:
    """The candidate texts of an unlabelled file: blank texts, texts in ``exclude`` (normalised:
    already labelled or in the test set) and repeats of an earlier row are left out.

    Args:
        path: CSV/TSV/JSONL/Parquet file (any label column in it is ignored).
        text_columns: text column(s), joined with a space.
        id_column: column whose value identifies a row in the output (else the data row number).
        exclude: normalised texts never to suggest.

    Returns:
        (texts, ids, counts of rows read / left out per reason, the candidates' text columns as
        the file has them: column -> values).

    Raises:
        DataError: unreadable file, missing text columns, no rows.
    """
    from transferflow.data.tables import normalise_text
    from transferflow.errors import DataError
    from transferflow.serving.scoring import iter_chunks, joined_text

    texts, ids = [], []
    columns: dict[str, list[Any]] = {c: [] for c in text_columns}
    counts = {"rows": 0, "blank": 0, "labelled_or_test": 0, "repeated": 0}
    seen: set[str] = set()
    for chunk in iter_chunks(path, 50_000):
        hint = " Pass --text-column to name the text column(s) of the unlabelled file."
        joined = joined_text(chunk, text_columns, path, hint, offset=counts["rows"])
        has_id = id_column is not None and id_column in chunk.columns
        row_ids = (
            chunk[id_column].astype(str).tolist()
            if has_id
            else [str(counts["rows"] + i + 1) for i in range(len(chunk))]
        )
        originals = chunk[list(text_columns)].to_numpy(dtype=object)
        for i, (text, row_id) in enumerate(zip(joined.tolist(), row_ids, strict=True)):
            key = normalise_text(text)
            if not key:
                counts["blank"] += 1
            elif key in exclude:
                counts["labelled_or_test"] += 1
            elif key in seen:
                counts["repeated"] += 1
            else:
                seen.add(key)
                texts.append(text)
                ids.append(row_id)
                for column, value in zip(text_columns, originals[i], strict=True):
                    columns[column].append(value)
        counts["rows"] += len(chunk)
    if counts["rows"] == 0:
        raise DataError(f"{path}: has a header but no data rows.")
    return texts, ids, counts, columns


def suggest_file(
    model,
    path,
    output,
    *,
    text_columns: list[str],
    id_column: str | None,
    exclude: set[str],
    n: int,
    strategy: str,
    seed: int,
) -> dict:
    """Rank an unlabelled file's texts with ``model`` and write the ``n`` to label next.

    The output CSV (written atomically) has: ``rank``, ``id`` (the id column's value or the data
    row number), ``text``, ``predicted_label``, ``confidence`` (top class probability),
    ``margin`` and ``reason``.

    Args:
        model: the transfer model (a ``TextModel``).
        path: the unlabelled file.
        output: CSV to write.
        text_columns, id_column, exclude: see :func:`read_unlabeled`.
        n: how many texts.
        strategy: one of :data:`transferflow.serving.suggest.STRATEGIES`.
        seed: random seed.

    Returns:
        Counts, the strategy and the first rows of the table (for the report and the UI).

    Raises:
        DataError: see :func:`read_unlabeled`; also when no candidate text is left.
    """
    import pandas as pd

    from transferflow.errors import DataError
    from transferflow.storage import paths
    from transferflow.storage.files import atomic_path

    # The path policy here too (deployments call this without the CLI's preflight).
    target = paths.output_file(output, "output", stream=False)
    assert target is not None  # stream=False: never standard output
    paths.refuse_inputs(target, [path], "output")
    texts, ids, counts, columns = read_unlabeled(path, text_columns, id_column, exclude)
    if not texts:
        raise DataError(
            f"{path}: no text left to suggest ({counts['rows']} rows: {counts['blank']} blank, "
            f"{counts['labelled_or_test']} already labelled or in the test set, "
            f"{counts['repeated']} repeated)."
        )
    members = None
    if strategy == "committee":
        # The network's output is the members' weighted mean: derived here, not featurised twice.
        members = model.member_proba(texts)
        proba = np.einsum("rmc,m->rc", *members)
    else:
        proba = model.predict_proba(texts)
    needs_features = strategy in ("margin-cluster", "badge", "typical-cluster")
    features = model_features(model, texts) if needs_features else None
    picked = suggest(proba, features, n, strategy, seed, members)
    labels = np.asarray(model.labels, dtype=object)
    rows = picked.rows
    # The file's own id column and text columns, as given (without an id column: the data row).
    id_name = id_column if id_column is not None and _has_column(path, id_column) else "row"
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            id_name: [ids[r] for r in rows],
            **{c: [values[r] for r in rows] for c, values in columns.items()},
            "predicted_label": labels[proba[rows].argmax(axis=1)],
            "confidence": proba[rows].max(axis=1).round(4),
            "margin": picked.margin.round(4),
            "reason": picked.reason,
        }
    )
    with atomic_path(target) as tmp:
        table.to_csv(tmp, index=False)
    return {
        **counts,
        "candidates": len(texts),
        "suggested": len(rows),
        "strategy": strategy,
        "output": str(target),
        "table": table.head(100).to_dict(orient="records"),
        "text_columns": list(columns),
    }


def _has_column(path, column: str) -> bool:
    from transferflow.serving.scoring import iter_chunks

    return column in next(iter_chunks(path, 1)).columns


__all__ = ["model_features", "read_unlabeled", "suggest_file"]
