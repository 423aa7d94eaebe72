"""One fitted member of the wide-deep network, as the solver fits it and the network stacks it
(numpy only: importing it loads no Keras)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Member:
    """One fitted member of the network: its columns of the wide layer (n-gram kernel, bias) and
    of the deep layer (``None``: the member reads no word vectors).

    ``scale`` (binarised, NB-weighted members): the per-n-gram factor the solver's features were
    multiplied by; :func:`stack_members` folds it into the kernel.
    """

    wide_kernel: np.ndarray
    wide_bias: np.ndarray
    deep_kernel: np.ndarray | None = None
    scale: np.ndarray | None = None

    @property
    def reads_vectors(self) -> bool:
        """Whether the member reads word vectors."""
        return self.deep_kernel is not None

    def solver_weights(self) -> list[np.ndarray]:
        """``[wide kernel, bias(, deep kernel)]`` as :mod:`transferflow.models.solver` fits them."""
        out = [self.wide_kernel, self.wide_bias]
        return out if self.deep_kernel is None else [*out, self.deep_kernel]
