"""Train/test splits that keep identical texts on one side, and balanced label budgets."""

from __future__ import annotations

import numpy as np
import pandas as pd

from transferflow.data.schema import LABEL, TEXT, normalise_text
from transferflow.errors import DataError


def stratified_split(
    frame: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a frame into train and test, keeping class shares, with duplicates kept together.

    Rows whose texts are equal after :func:`normalise_text` form one group and land on the same
    side: short reviews ("Great product.") repeat, and a text on both sides would be train/test
    leakage. Rows with a missing label stay in the training part so the data gate can report them.

    Args:
        frame: a ``text``/``label`` frame.
        test_size: share of rows for the test part, in (0, 1).
        seed: random seed.

    Returns:
        (train, test) frames with reset indexes.

    Raises:
        DataError: when the frame is too small to give both parts a row.
    """
    rng = np.random.default_rng(seed)
    labelled = frame[frame[LABEL].notna()]
    if len(labelled) < 2:
        raise DataError(f"Only {len(labelled)} labelled row(s): too few to split into train/test.")
    groups = labelled.groupby(labelled[TEXT].map(normalise_text), sort=True).groups
    # Each group is assigned to the test part as a whole, label by label (by its first row).
    by_label: dict[str, list[np.ndarray]] = {}
    for _, idx in sorted(groups.items()):
        idx = np.asarray(idx)
        by_label.setdefault(str(labelled.at[idx[0], LABEL]), []).append(idx)
    stratify = all(sum(len(g) for g in gs) >= 2 and len(gs) >= 2 for gs in by_label.values())
    pools = by_label if stratify else {"all": [g for gs in by_label.values() for g in gs]}
    test_idx: list[int] = []
    for label in sorted(pools):
        group_list = pools[label]
        n_rows = sum(len(g) for g in group_list)
        want = min(max(1, int(round(n_rows * test_size))), n_rows - 1)
        taken = 0
        for i in rng.permutation(len(group_list)):
            if taken >= want:
                break
            if taken + len(group_list[i]) > want and taken > 0:
                continue  # skip a large group that would overshoot; a smaller one may fit
            test_idx.extend(group_list[i].tolist())
            taken += len(group_list[i])
    is_test = frame.index.isin(test_idx)
    if is_test.all() or not is_test.any():
        raise DataError("Cannot split into train/test: every text is the same.")
    return frame[~is_test].reset_index(drop=True), frame[is_test].reset_index(drop=True)


def balanced_sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """Take ``size`` rows spread as evenly as possible over the classes.

    Classes with fewer rows than their share give all they have; the shortfall goes to the others.

    Args:
        frame: a ``text``/``label`` frame.
        size: rows wanted.
        seed: random seed.

    Returns:
        The sampled rows in a seeded random order (all rows when ``size`` >= len(frame)).
    """
    if size >= len(frame):
        return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    groups = {
        lab: rng.permutation(frame.index[frame[LABEL] == lab].to_numpy())
        for lab in sorted(frame[LABEL].dropna().unique())
    }
    quota = dict.fromkeys(groups, 0)
    left = size
    while left > 0:
        open_ = [lab for lab in groups if quota[lab] < len(groups[lab])]
        if not open_:
            break
        share = max(1, left // len(open_))
        for lab in open_:
            take = min(share, len(groups[lab]) - quota[lab], left)
            quota[lab] += take
            left -= take
            if left == 0:
                break
    chosen = (
        np.concatenate([groups[lab][: quota[lab]] for lab in groups])
        if groups
        else np.array([], dtype=np.int64)
    )
    return frame.loc[rng.permutation(chosen)].reset_index(drop=True)
