"""What a registered model trained on, so that it is only ever judged on texts it never saw.

Each version stores ``lineage.npz``: the sorted 64-bit hashes of the normalised texts of every
labelled training row (source and target). Before a new model is compared with the champion, the
comparison rows the champion trained on are left out (the new model never trained on its own
run's test rows: the split and the leakage gate see to that).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from transferflow.data.schema import normalise_text
from transferflow.storage.files import npz_bytes

FILE = "lineage.npz"
# Fewer comparison rows than this and a test-set comparison says too little: the run's
# out-of-fold evidence decides instead (30 rows: the usual floor for a binomial proportion's
# normal approximation; a 1-point accuracy difference is noise far above it).
MIN_ROWS = 30


def _hashes(texts: list[str]) -> np.ndarray:
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(normalise_text(t).encode(), digest_size=8).digest())
            for t in texts
        ),
        dtype=np.uint64,
        count=len(texts),
    )


def text_hashes(texts: list[str]) -> np.ndarray:
    """Sorted, unique 64-bit hashes of the texts as compared for leakage
    (:func:`~transferflow.data.schema.normalise_text`)."""
    return np.unique(_hashes(texts))


def write(path: Path, texts: list[str]) -> Path:
    """Write the lineage file of a model trained on ``texts`` (plain NPZ, no pickle)."""
    path.write_bytes(npz_bytes(text_hashes=text_hashes(texts)))
    return path


def read(path: Path) -> np.ndarray:
    """The training-text hashes of a lineage file."""
    with np.load(path, allow_pickle=False) as npz:
        return npz["text_hashes"]


def unseen(texts: list[str], trained_on: np.ndarray) -> np.ndarray:
    """Boolean mask of the ``texts`` whose normalised form is not in ``trained_on``."""
    return ~np.isin(_hashes(texts), trained_on)
