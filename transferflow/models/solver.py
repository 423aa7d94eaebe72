"""Full-batch L-BFGS for the trainable layers of the ``wide-deep`` network: an L2 penalty towards
a prior, row weights, and shared-plus-private weight copies.

A member's logits are ``X @ W + b + D @ V``: ``X`` the TF-IDF n-gram matrix (the ``wide``
``NgramBag`` layer), ``D`` the unit-length mean word vectors (the frozen layers' output, computed
once by the network itself) and ``V`` the ``deep`` Dense layer. The objective, for weight copies
``P_c`` and rows ``i`` of domain ``d(i)``::

    C * sum_i w_i * cross_entropy(logits(sum_c A[d(i), c] * P_c; x_i), y_i)
      + 1/2 * sum_c ||P_c - prior_c||^2            (biases are not penalised)

With one copy and a zero prior this is softmax regression (scikit-learn's multinomial
``LogisticRegression`` objective); with the source weights as prior it is L2-SP fine-tuning
(Chelba & Acero 2006); row weights ``alpha`` and ``beta`` per domain give the joint objective;
three copies (shared, source, target) with ``A = [[1, 1, 0], [1, 0, 1]]`` are feature
augmentation (Daumé 2007) as an architecture.

Why not ``model.fit``: the fitted parts are convex, and full-batch L-BFGS reaches their optimum
deterministically, with no epochs, learning rate or early-stopping split to choose. Why not the
layers' own ``stateless_call``: with rows padded per width group, XLA took 4.4 s to compile one
gradient per data shape (ten shapes a run); the same equations on the n-gram matrix in coordinate
form (one gather, one segment sum) compile in a fraction of that. ``tests/unit/test_wide_deep.py``
checks that the Keras network, given these weights, predicts exactly what the solver computed.
Cross-validation folds (:mod:`transferflow.models.selection`) are row-weight masks over the same
arrays, so all fits on one design share one compiled program. The optimiser is optax's L-BFGS
(zoom line search) inside one jitted ``while_loop``: SciPy's L-BFGS-B spent ~3 ms per iteration
in its own bookkeeping for the ~70,000 weights of an MDSD model, more than the gradient itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import NamedTuple

import numpy as np

from transferflow.models.keras_backend import keras

keras()
import jax  # noqa: E402  (after keras() chose the backend)
import jax.numpy as jnp  # noqa: E402

C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
SOURCE, TARGET = 0, 1
# Stop when an iteration lowers the objective by under this share of its value.
FTOL = 1e-6
THREADS = 2


def bucket(n: int) -> int:
    """``n`` rounded up to within 1/8 of a power of two (few distinct shapes, little padding)."""
    n = max(int(n), 1)
    step = max(1, 1 << max(0, n.bit_length() - 4))
    return -(-n // step) * step


@dataclass
class Design:
    """Training rows in fixed-shape coordinate form.

    Attributes:
        rows, cols, vals: the n-gram matrix's non-zeros (padded with zeros to a bucket size);
            ``cols`` are n-gram indices from 0.
        deep: (rows, vector size) deep features, or ``None`` for members without word vectors.
        y: class index per row; domain: ``SOURCE``/``TARGET`` per row.
        n: real rows (the arrays have ``bucket(n)``; padded rows have weight 0).
        n_features: n-grams.
        zero_width: for a design without word vectors, the width of all-zero deep features it
            is fitted with (0: none). Why: XLA compiles one program per set of array shapes, at
            ~1.4 s each on a 2-core machine (a third of a cold run); with zero features of the
            vectors' width, the rows a member with vectors is fitted on and the same rows
            without them share one program. A zero column block leaves the objective and its
            optimum unchanged (its gradient is 0, its weights stay at their zero start and are
            dropped). The program differs, so XLA may order a sum differently: the weights are
            equal bit for bit on the small designs of ``tests/unit/test_solver.py``, and within
            float rounding (largest difference 1.3e-5) on a books -> kitchen source model,
            whose test metrics were identical.
    """

    rows: jax.Array
    cols: jax.Array
    vals: jax.Array
    deep: jax.Array | None
    y: jax.Array
    domain: jax.Array
    n: int
    n_features: int
    zero_width: int = 0

    def pad(self, per_row: np.ndarray) -> jax.Array:
        """A per-row vector padded with zeros to the arrays' row count."""
        out = np.zeros(self.y.shape[0], np.float32)
        out[: self.n] = per_row
        return jnp.asarray(out)

    def without_vectors(self) -> Design:
        """The same rows for a member that reads no word vectors (fitted with zero features of
        the vectors' width, so both share one compiled program)."""
        return replace(self, deep=None, zero_width=_deep_width(self))

    def deep_or_zeros(self) -> jax.Array:
        """The deep features, or the zero features a design without vectors is fitted with."""
        if self.deep is not None:
            return self.deep
        return jnp.zeros((self.y.shape[0], self.zero_width), jnp.float32)


def _deep_width(design: Design) -> int:
    """The width of the deep features a design is fitted with (its zero block's, without
    vectors)."""
    return design.zero_width if design.deep is None else int(design.deep.shape[1])


def make_design(csr, deep: np.ndarray | None, y: np.ndarray, domain: np.ndarray) -> Design:
    """Design from a CSR n-gram matrix, deep features, labels and domains (same row order)."""
    n, nnz = csr.shape[0], csr.nnz
    n_pad, nnz_pad = bucket(n), bucket(nnz)
    coo = csr.tocoo()
    # Padding entries (value 0) point at the last padded row, so row indices stay sorted.
    rows, cols, vals = (
        np.full(nnz_pad, n_pad - 1, np.int32),
        np.zeros(nnz_pad, np.int32),
        np.zeros(nnz_pad, np.float32),
    )
    rows[:nnz], cols[:nnz], vals[:nnz] = coo.row, coo.col, coo.data

    def padded(a, dtype):
        out = np.zeros((n_pad, *np.shape(a)[1:]), dtype)
        out[:n] = a
        return jnp.asarray(out)

    return Design(
        jnp.asarray(rows),
        jnp.asarray(cols),
        jnp.asarray(vals),
        None if deep is None else padded(deep, np.float32),
        padded(y, np.int32),
        padded(domain, np.int32),
        n,
        csr.shape[1],
    )


def _logits(params, design_arrays):
    rows, cols, vals, deep, n_pad = design_arrays
    wide, bias = params[0], params[1]
    # X @ W for X in coordinate form; rows are sorted (row-major CSR order).
    z = jax.ops.segment_sum(
        vals[:, None] * wide[cols], rows, num_segments=n_pad, indices_are_sorted=True
    )
    z = z + bias
    if len(params) > 2:
        z = z + deep @ params[2]
    return z


class Problem(NamedTuple):
    """The arrays of one fit (a JAX pytree: traced, not static): the design in coordinate form
    (``rows``, ``cols``, ``vals``; ``deep`` features), labels, domains, per-row loss weights, the
    weights each copy is penalised towards (``prior``) and the inverse penalty ``C``."""

    rows: jax.Array
    cols: jax.Array
    vals: jax.Array
    deep: jax.Array
    y: jax.Array
    domain: jax.Array
    weights: jax.Array
    prior: list[jax.Array]
    C: jax.Array


class Shape(NamedTuple):
    """What a fit is compiled for (static: XLA compiles once per value): the (domains x copies)
    ``mix``, the padded row count and the iteration limit."""

    mix: tuple[tuple[float, ...], ...]
    n_pad: int
    max_iter: int


def _objective(shape: Shape, p: Problem):
    A = jnp.asarray(shape.mix, dtype=jnp.float32)  # (domains, copies)
    arrays = (p.rows, p.cols, p.vals, p.deep, shape.n_pad)

    def logp_for(copies, d):
        return jax.nn.log_softmax(_logits([jnp.tensordot(A[d], v, axes=1) for v in copies], arrays))

    def objective(copies):
        if shape.mix[SOURCE] == shape.mix[TARGET]:  # one set of weights for both domains
            logp = logp_for(copies, TARGET)
        else:
            logp = jnp.where(
                (p.domain == TARGET)[:, None], logp_for(copies, TARGET), logp_for(copies, SOURCE)
            )
        nll = -jnp.take_along_axis(logp, p.y[:, None], axis=1)[:, 0]
        total = p.C * jnp.sum(p.weights * nll)
        for i, (v, prior) in enumerate(zip(copies, p.prior, strict=True)):
            if i != 1:  # params[1] is the bias: not penalised
                total = total + 0.5 * jnp.sum((v - prior) ** 2)
        return total

    return objective


@partial(jax.jit, static_argnums=(0,))
def _minimize(shape: Shape, init, problem: Problem):
    import optax

    objective = _objective(shape, problem)
    max_iter = shape.max_iter
    opt = optax.lbfgs(memory_size=10)
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry):
        params, state, last, _ = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(params, updates), state, value, last

    def going(carry):
        _, state, value, last = carry
        count = optax.tree.get(state, "count")
        # Converged when an iteration lowers the objective by under FTOL of its value.
        return (count < 2) | ((count < max_iter) & (last - value > FTOL * jnp.abs(value)))

    inf = jnp.float32(jnp.inf)
    params, state, _, _ = jax.lax.while_loop(going, step, (init, opt.init(init), inf, inf))
    return params, optax.tree.get(state, "count")


def _shapes(design: Design, n_classes: int) -> list[tuple[int, ...]]:
    """The shapes of the weights the solver fits on ``design`` (a zero-feature block's
    included)."""
    shapes = [(design.n_features, n_classes), (n_classes,)]
    width = _deep_width(design)
    if width:
        shapes.append((width, n_classes))
    return shapes


def _with_zero_block(params: list, shapes: list[tuple[int, ...]]) -> list:
    """``params`` (a member's weights, or a prior) completed with zeros for the zero-feature
    block of a design without vectors."""
    return [*params, *(np.zeros(s, np.float32) for s in shapes[len(params) :])]


def fit(design: Design, n_classes: int, C: float, **kwargs) -> list[np.ndarray]:
    """Fit one member's weights ``[wide kernel, bias, deep kernel (with vectors)]``.

    Args:
        design: training rows (``design.deep`` is None for a member without word vectors).
        n_classes: classes.
        C: inverse penalty strength (larger follows the data more).
        **kwargs: ``row_weight`` (per-row loss weight, default 1; 0 leaves a row out),
            ``prior`` (weights to regularise the first copy towards, default zero; also the
            start), ``copies`` (1; 3 for shared + source + target), ``mix`` ((domains x copies)
            matrix: which copies make each domain's weights), ``max_iter``.

    Returns:
        The weights a target-domain text is scored with.
    """
    return fit_copies(design, n_classes, C, **kwargs)[0]


def fit_copies(
    design: Design,
    n_classes: int,
    C: float,
    *,
    row_weight: np.ndarray | None = None,
    prior: list[np.ndarray] | None = None,
    copies: int = 1,
    mix: tuple = ((1.0,), (1.0,)),
    max_iter: int = 500,
    init: list[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`fit`, also returning every weight copy (``init`` of a warm-started next fit, or the
    source and target copies of feature augmentation)."""
    shapes = _shapes(design, n_classes)
    prior = [np.zeros(s, np.float32) for s in shapes] if prior is None else prior
    prior = _with_zero_block(prior, shapes)
    prior_c = [
        jnp.asarray(
            np.concatenate(
                [np.asarray(p, np.float32)[None], np.zeros((copies - 1, *s), np.float32)]
            )
        )
        for p, s in zip(prior, shapes, strict=True)
    ]
    start = prior_c if init is None else [jnp.asarray(v) for v in init]
    weights = design.pad(np.ones(design.n) if row_weight is None else row_weight)
    mix_t = tuple(tuple(float(v) for v in r) for r in mix)
    deep = design.deep_or_zeros()
    out, count = _minimize(
        Shape(mix_t, int(design.y.shape[0]), max_iter),
        start,
        Problem(
            design.rows,
            design.cols,
            design.vals,
            deep,
            design.y,
            design.domain,
            weights,
            prior_c,
            jnp.float32(C),
        ),
    )
    copies_out = [np.asarray(v) for v in out]
    A = np.asarray(mix, dtype=np.float32)
    weights_out = [np.tensordot(A[TARGET], v, axes=1) for v in copies_out]
    if design.deep is None:  # the zero-feature block's weights (still zero) are no member's
        weights_out = weights_out[:2]
    return weights_out, copies_out


@partial(jax.jit, static_argnums=(0,))
def _log_proba(n_pad: int, params, rows, cols, vals, deep):
    return jax.nn.log_softmax(_logits(params, (rows, cols, vals, deep, n_pad)))


def log_proba(params: list[np.ndarray], design: Design) -> np.ndarray:
    """Per-row log-probabilities of a member with ``params`` (real rows only)."""
    deep = design.deep_or_zeros()
    out = _log_proba(
        int(design.y.shape[0]),
        [jnp.asarray(p) for p in _with_zero_block(params, _shapes(design, params[1].shape[-1]))],
        design.rows,
        design.cols,
        design.vals,
        deep,
    )
    return np.asarray(out)[: design.n]
