"""Keras, always on the JAX backend, imported only when a stage needs it (start-up stays fast)."""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

BACKEND = "jax"


def keras() -> ModuleType:
    """Import Keras on the JAX backend.

    The backend is chosen here, in code, so users need not export ``KERAS_BACKEND``; it must happen
    before the first ``import keras`` anywhere in the process.

    Returns:
        The ``keras`` module.

    Raises:
        RuntimeError: when Keras was already imported with another backend.
    """
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = BACKEND
        # XLA prints a line per compile at INFO on some platforms; keep logs readable.
        logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    import keras as _keras

    _persistent_compilation_cache()
    if _keras.backend.backend() != BACKEND:
        raise RuntimeError(
            f"Keras was imported with the '{_keras.backend.backend()}' backend before transferflow "
            f"could select '{BACKEND}'. Import transferflow before keras, or set KERAS_BACKEND=jax."
        )
    return _keras


def _persistent_compilation_cache() -> None:
    """Keep XLA's compiled programs on disk (``$TRANSFERFLOW_XLA_CACHE`` or ``<local root>/xla``),
    so a new process (the next CLI call, a sweep worker) reuses them instead of compiling again;
    programs that compiled in under 0.1 s are not kept (loading one costs about that)."""
    import jax

    if getattr(jax.config, "jax_compilation_cache_dir", None):
        return  # the user chose one
    from transferflow.storage import state

    folder = str(state.xla_dir())
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
