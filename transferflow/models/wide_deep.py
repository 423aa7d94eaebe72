"""Training the ``wide-deep`` network: the source model, its adaptation to the target, and the
target-only baseline, all as members of one Keras network (see :mod:`transferflow.models.network`).

Members come in two *views*: ``wide`` reads the n-grams and the mean word vector, ``ngrams`` the
n-grams alone. On validation splits of MDSD training data the word vectors helped most with few
labels and cost accuracy with many; averaging both views was best or near best at every budget
(docs/benchmarks.md). Per view, the adaptation strategies are:

* ``finetune``: continue from the source weights with an L2 penalty towards them (L2-SP, Chelba &
  Acero 2006); ``C`` by k-fold cross-validation on the target labels;
* ``joint``: ``alpha * L_source + beta * L_target`` on both domains' labels (``alpha = beta`` is
  pooled training), from the source weights;
* ``shared-private``: shared weights plus a private copy per domain (Daumé 2007's feature
  augmentation as an architecture); a target text is scored with shared + target weights.

``transfer.strategy: ensemble`` (the default) averages all three per view with one member of
NB-weighted logistic regression on pooled source + target labels (binarised n-grams scaled by their
log-count ratio, Wang & Manning 2012): seven members, the NB member weighted as much as the six
others together (see :func:`_member_weights`; ``transfer.ensemble_weights: out-of-fold`` chooses
the NB member's share from out-of-fold evidence, :mod:`transferflow.models.ensemble_weights`).

The module runs past 400 lines because the three training paths (source model, adaptation,
pooled member) share its private helpers for designs, priors and networks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import numpy as np

from transferflow.config.settings import ModelConfig, Strategy, TransferConfig
from transferflow.models.member import Member
from transferflow.models.nb import fit_nb
from transferflow.models.parallel import in_parallel
from transferflow.models.text_model import TextModel
from transferflow.text.features import NgramFeaturizer

VIEWS = {"wide": True, "ngrams": False}  # view -> reads the word vectors
NB = "nb/pooled"  # the ensemble's NB-weighted member (binarised n-grams); always last


class Labelled(NamedTuple):
    """Training texts and their labels."""

    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class Inputs:
    """What a new network reads: fitted n-grams and the word vectors (``matrix`` rows 2... are
    ``tokens``; rows 0 and 1 padding and unknown), ``max_len`` tokens per text."""

    featurizer: NgramFeaturizer
    tokens: list[str]
    matrix: np.ndarray
    max_len: int


def _design(model: TextModel, texts: list[str], y: np.ndarray, domain: np.ndarray):
    """The solver's design for ``texts``: n-gram matrix plus the network's own deep features."""
    from transferflow.models.network import deep_features
    from transferflow.models.solver import make_design

    csr = model.featurizer.transform(texts)
    return make_design(csr, deep_features(model.network, model.encoder(), texts), y, domain)


def _new(
    inputs: Inputs, labels: list[str], members: list[str], weights: list[float] | None = None
) -> TextModel:
    from transferflow.models.network import build_network

    network = build_network(
        inputs.featurizer.n_features,
        inputs.matrix,
        len(labels),
        len(members),
        n_binary=_n_binary(members),
        member_weights=_member_weights(members) if weights is None else list(weights),
    )
    return TextModel(
        network, inputs.featurizer, list(inputs.tokens), list(labels), inputs.max_len,
        list(members), {},
    )  # fmt: skip


def _n_binary(members: list[str]) -> int:
    """How many of the (last) members read binarised n-grams."""
    return sum(m.startswith("nb/") for m in members)


def _member_weights(members: list[str]) -> list[float] | None:
    """The ensemble's default mean: half for the NB-weighted member(s), half for the TF-IDF
    members (the centre of the prior when the weights are chosen from out-of-fold evidence,
    :mod:`transferflow.models.ensemble_weights`, and the weights when they cannot be).

    Two families of linear features, weighted alike: on validation splits of MDSD training data
    an even split beat giving the NB member one share in seven at 50, 200 and 1,000 labels
    (docs/benchmarks.md). ``None`` (equal weights) without both families.
    """
    n_binary = _n_binary(members)
    if n_binary in (0, len(members)):
        return None
    rest = len(members) - n_binary
    return [0.5 / rest] * rest + [0.5 / n_binary] * n_binary


def _default_weights(members: list[str]) -> np.ndarray:
    """:func:`_member_weights` as an array (equal weights where that is ``None``)."""
    return np.asarray(_member_weights(members) or [1.0 / len(members)] * len(members))


def _report(progress, done: int, total: int) -> None:
    """Tell ``progress(share)`` (0..1) how many members are fitted; fitting is per member."""
    if progress is not None:
        progress(done / total)


def _index(labels: list[str], classes: list[str]) -> np.ndarray:
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {classes}")
    return np.array([classes.index(v) for v in labels], dtype=np.int32)


def _as_member(weights: list[np.ndarray], use_vectors: bool) -> Member:
    return Member(weights[0], weights[1], weights[2] if use_vectors else None)


def _prior(member: Member, use_vectors: bool) -> list[np.ndarray]:
    out = [member.wide_kernel, member.wide_bias]
    return [*out, member.deep_kernel] if use_vectors and member.deep_kernel is not None else out


def _views(cfg: ModelConfig) -> dict[str, bool]:
    return {v: VIEWS[v] for v in cfg.views}


def _mean(probas: list[np.ndarray | None], weights: list[float] | None = None):
    """The members' out-of-fold probabilities, combined as the network combines them."""
    present = [p for p in probas if p is not None]
    if len(present) < len(probas):
        return None
    return np.average(np.stack(present), axis=0, weights=weights)


def train_from_scratch(
    inputs: Inputs,
    rows: Labelled,
    classes: list[str],
    *,
    cfg: ModelConfig,
    seed: int,
    role: str,
    progress=None,
) -> tuple[TextModel, np.ndarray | None]:
    """Fit one member per view on labelled texts, ``C`` by cross-validation each (the source
    model, or the target-only baseline).

    Args:
        inputs: n-grams and word vectors the network reads.
        rows: training texts and labels.
        classes: the class order.
        cfg: the model settings (views, folds, grid of ``C``).
        seed: seed of the folds.
        role: name recorded in the model (e.g. ``source``).
        progress: optional ``progress(share)`` called as members are fitted.

    Returns:
        (model, the members' averaged out-of-fold probabilities at their chosen ``C``, ``None``
        with too few labels to cross-validate); ``info`` holds ``C`` and the cross-validated
        log-loss per view.
    """
    from transferflow.models.network import stack_members
    from transferflow.models.selection import choose_c
    from transferflow.models.solver import SOURCE, fit

    views = _views(cfg)
    y = _index(rows.labels, classes)
    model = _new(inputs, classes, [f"{v}/{role}" for v in views])
    full = _design(model, rows.texts, y, np.full(len(y), SOURCE))

    def fit_view(use_vectors: bool):
        design = full if use_vectors else full.without_vectors()
        c, scores, oof = choose_c(
            design, len(classes), seed, grid=tuple(cfg.c_grid), k=cfg.cv_folds
        )
        return _as_member(fit(design, len(classes), c), use_vectors), c, scores, oof

    fitted = in_parallel([partial(fit_view, u) for u in views.values()], progress)
    members = [m for m, _, _, _ in fitted]
    cs = {v: c for v, (_, c, _, _) in zip(views, fitted, strict=True)}
    losses = {v: scores for v, (_, _, scores, _) in zip(views, fitted, strict=True)}
    oofs = [oof for _, _, _, oof in fitted]
    stack_members(model.network, members)
    model.info.update(
        {
            "role": role,
            "C": cs,
            "cv_log_loss": {
                v: {str(c): round(x, 5) for c, x in sc.items()} for v, sc in losses.items()
            },
        }
    )
    return model, _mean(oofs)


def pooled_nb(model: TextModel, oof: np.ndarray | None) -> tuple[Member, float, np.ndarray | None]:
    """The NB member of a :func:`train_pooled` model as :func:`adapt` takes it (``nb``): its
    weights as the network holds them (the scale folded into the kernel, which
    :func:`~transferflow.models.network.stack_members` then copies unchanged), its ``C`` and
    the model's out-of-fold probabilities ``oof``."""
    (member,) = model.member_weights()
    kernel, bias = member.wide_kernel, member.wide_bias
    return Member(wide_kernel=kernel, wide_bias=bias), float(model.info["C"][NB]), oof


def train_pooled(
    inputs: Inputs,
    source: Labelled,
    target: Labelled,
    classes: list[str],
    *,
    cfg: ModelConfig,
    seed: int,
    progress=None,
) -> tuple[TextModel, np.ndarray | None]:
    """NB-weighted logistic regression on pooled source + target labels
    (:func:`~transferflow.models.nb.fit_nb`, one member): the strongest classic baseline measured
    (docs/benchmarks.md), and the ensemble's last member.

    Returns:
        (model, out-of-fold probabilities on the target rows or ``None``).
    """
    from transferflow.models.network import stack_members
    from transferflow.models.solver import SOURCE, TARGET

    y = np.concatenate([_index(source.labels, classes), _index(target.labels, classes)])
    dom = np.concatenate([np.full(len(source.labels), SOURCE), np.full(len(target.labels), TARGET)])
    model = _new(inputs, classes, [NB])
    member, c, oof = fit_nb(
        inputs.featurizer,
        [*source.texts, *target.texts],
        y,
        dom,
        len(classes),
        seed,
        grid=tuple(cfg.c_grid),
        folds=cfg.cv_folds,
        zero_width=int(inputs.matrix.shape[1]),
    )
    stack_members(model.network, [member])
    _report(progress, 1, 1)
    model.info.update({"role": "pooled_lr", "C": {NB: c}})
    return model, oof


@dataclass
class Adapted:
    """The fitted members of an adapted model, before their weights are chosen.

    ``model`` has the default weights; ``oofs`` are each member's out-of-fold probabilities on the
    target rows (``None`` where not computed), ``y`` the target rows' classes and ``masks`` the
    folds (``None`` with too few target labels to fold).
    """

    model: TextModel
    inputs: Inputs
    oofs: list[np.ndarray | None]
    y: np.ndarray
    masks: list[np.ndarray] | None


def adapt_members(
    source_model: TextModel,
    matrix: np.ndarray,
    source: Labelled,
    target: Labelled,
    *,
    transfer: TransferConfig,
    cfg: ModelConfig,
    seed: int,
    oof: bool = True,
    cs: dict[str, float] | None = None,
    nb: tuple[Member, float, np.ndarray | None] | None = None,
    progress=None,
) -> Adapted:
    """Fit the members of :func:`adapt` (same arguments) with the default weights, and each
    member's out-of-fold probabilities when ``oof`` (with too few target labels to fold, none).
    A ``finetune`` or NB member named in ``cs`` is fitted once with that ``C`` (no
    cross-validation, no out-of-fold probabilities); ``nb`` is the NB member already fitted on
    these rows (:func:`train_pooled`'s: member, ``C``, out-of-fold probabilities), not fitted
    again."""
    from transferflow.models.network import stack_members
    from transferflow.models.selection import choose_c, folds
    from transferflow.models.solver import SOURCE, TARGET, fit, fit_copies, log_proba

    strategy = transfer.strategy
    classes = source_model.labels
    chosen = strategy.members()
    ensemble = strategy is Strategy.ENSEMBLE
    views = _views(cfg)
    k = len(classes)
    y_t, y_s = _index(target.labels, classes), _index(source.labels, classes)
    names = [f"{v}/{s}" for v in views for s in chosen] + ([NB] if ensemble else [])
    inputs = Inputs(source_model.featurizer, source_model.tokens, matrix, source_model.max_len)
    model = _new(inputs, classes, names)
    tgt_full = _design(model, target.texts, y_t, np.full(len(y_t), TARGET))
    both_full = None
    if any(s is not Strategy.FINETUNE for s in chosen):
        both_full = _design(
            model,
            [*source.texts, *target.texts],
            np.concatenate([y_s, y_t]),
            np.concatenate([np.full(len(y_s), SOURCE), np.full(len(y_t), TARGET)]),
        )
    masks = folds(y_t, seed, cfg.cv_folds)
    src_members = dict(
        zip(
            [m.split("/")[0] for m in source_model.members],
            source_model.member_weights(),
            strict=True,
        )
    )

    given = cs or {}

    def fit_member(view: str, use_vectors: bool, s: Strategy):
        tgt = tgt_full if use_vectors else tgt_full.without_vectors()
        prior = _prior(src_members[view], use_vectors)
        if s is Strategy.FINETUNE and f"{view}/{s}" in given:
            c = float(given[f"{view}/{s}"])
            return _as_member(fit(tgt, k, c, prior=prior), use_vectors), c, None
        if s is Strategy.FINETUNE:
            c, _, member_oof = choose_c(
                tgt, k, seed, prior=prior, grid=tuple(cfg.c_grid), k=cfg.cv_folds
            )
            return _as_member(fit(tgt, k, c, prior=prior), use_vectors), c, member_oof
        assert both_full is not None  # every strategy but finetune pools the source rows
        both = both_full if use_vectors else both_full.without_vectors()
        c = float(source_model.info.get("C", {}).get(view, 1.0))
        kwargs: dict = {}
        base = np.ones(both.n, np.float32)
        if s is Strategy.JOINT:
            dom = np.asarray(both.domain)[: both.n]
            base = np.where(dom == SOURCE, transfer.alpha, transfer.beta).astype(np.float32)
        else:  # shared-private: shared + source-only + target-only copies
            kwargs = {"copies": 3, "mix": ((1.0, 1.0, 0.0), (1.0, 0.0, 1.0))}
        w, copies = fit_copies(both, k, c, row_weight=base, **kwargs)
        member_oof = None
        if oof and masks is not None:  # the same folds, warm-started from the full fit
            member_oof = np.zeros((len(y_t), k), np.float32)
            offset = len(y_s)
            for mask in masks:
                held = np.zeros(both.n, dtype=bool)
                held[offset + np.flatnonzero(mask)] = True
                params, _ = fit_copies(
                    both, k, c, row_weight=np.where(held, 0.0, base), init=copies, **kwargs
                )
                member_oof[mask] = np.exp(log_proba(params, both)[held])
        return _as_member(w, use_vectors), c, member_oof

    def fit_nb_member():
        if nb is not None:
            return nb
        return fit_nb(
            model.featurizer,
            [*source.texts, *target.texts],
            np.concatenate([y_s, y_t]),
            np.concatenate([np.full(len(y_s), SOURCE), np.full(len(y_t), TARGET)]),
            k,
            seed,
            grid=tuple(cfg.c_grid),
            folds=cfg.cv_folds,
            c=given.get(NB),
            zero_width=int(matrix.shape[1]),
        )

    jobs = [partial(fit_member, v, u, s) for v, u in views.items() for s in chosen]
    fitted = in_parallel([*jobs, *([fit_nb_member] if ensemble else [])], progress)
    members = [m for m, _, _ in fitted]
    cs = {name: c for name, (_, c, _) in zip(names, fitted, strict=True)}
    oofs: list[np.ndarray | None] = [o for _, _, o in fitted]
    if ensemble and masks is None:
        oofs[-1] = None
    stack_members(model.network, members)
    model.info.update(
        {
            "role": "transfer",
            "strategy": str(strategy),
            "C": cs,
            # whether the target labels could be folded, i.e. finetune's C was cross-validated
            "C_cross_validated": masks is not None,
            # members fitted once with a given C (no search)
            "C_given": [n for n in names if n in given and (n == NB or n.endswith("/finetune"))],
            "alpha": transfer.alpha,
            "beta": transfer.beta,
        }
    )
    if masks is None:
        oofs = [None] * len(oofs)
    return Adapted(model, inputs, oofs, y_t, masks)


def adapt(
    source_model: TextModel,
    matrix: np.ndarray,
    source: Labelled,
    target: Labelled,
    *,
    transfer: TransferConfig,
    cfg: ModelConfig,
    seed: int,
    oof: bool = True,
    weights: list[float] | None = None,
    cs: dict[str, float] | None = None,
    nb: tuple[Member, float, np.ndarray | None] | None = None,
    progress=None,
) -> tuple[TextModel, np.ndarray | None]:
    """Adapt a source model to target labels (same classes), per view.

    Args:
        source_model: the fitted source model (its n-grams and vocabulary are reused).
        matrix: word-vector matrix of ``source_model.tokens``.
        source: source training texts and labels.
        target: target training texts and labels.
        transfer: the strategy (``ensemble``: all three per view, averaged with a pooled
            NB-weighted member, :func:`~transferflow.models.nb.fit_nb`, the NB member's share
            chosen from out-of-fold evidence:
            :func:`~transferflow.models.ensemble_weights.choose_weights`) and ``joint``'s loss
            weights ``alpha`` (source) and ``beta`` (target).
        cfg: the model settings (views, folds, grid of ``C``).
        seed: seed of the folds.
        oof: compute the out-of-fold probabilities (extra fold fits of ``joint`` and
            ``shared-private``). An ensemble whose weights are not given computes them anyway
            to choose its weights.
        weights: the ensemble's member weights, if already chosen (self-training's second fit
            keeps the first fit's: out-of-fold evidence on pseudo-labels would flatter).
        cs: member name -> ``C`` for ``finetune`` and NB members, if already chosen (fitted
            once, without cross-validation; self-training's second fit, like ``weights``).
        nb: the ensemble's NB member if already fitted on the same rows: (member, ``C``,
            out-of-fold probabilities) of :func:`train_pooled`, the same fit (the run's
            ``pooled_lr`` baseline; not fitted twice).
        progress: optional ``progress(share)`` called as members are fitted.

    Returns:
        (adapted model, out-of-fold probabilities of the whole model on the target rows, from the
        same folds as ``finetune``'s choice of ``C``, weights chosen without each held-out fold;
        ``None`` with too few target labels or ``oof=False``). ``info["member_weights"]`` holds
        the weights and ``info["weights_from"]`` how they were chosen.

    Raises:
        ValueError: a target label outside the source model's classes.
    """
    from transferflow.models.ensemble_weights import FROM_OOF, choose_weights, honest_oof

    ensemble = transfer.strategy is Strategy.ENSEMBLE
    need = oof or (ensemble and weights is None and transfer.ensemble_weights != "fixed")
    fitted = adapt_members(
        source_model, matrix, source, target, transfer=transfer, cfg=cfg, seed=seed,
        oof=need, cs=cs, nb=nb, progress=progress,
    )  # fmt: skip
    model = fitted.model
    names = model.members
    default = _default_weights(names)
    if weights is not None:
        chosen, origin = (
            np.asarray(weights, np.float64),
            f"{FROM_OOF} of the fit before self-training",
        )
    else:
        chosen, origin = choose_weights(fitted.oofs, fitted.y, names, default, transfer)
    if not np.allclose(chosen, default, rtol=0, atol=1e-12):
        # The weights are part of the network's mean (no trainable weights of their own):
        # rebuild it with them and copy the fitted layers over.
        rebuilt = _new(fitted.inputs, model.labels, names, [float(w) for w in chosen])
        rebuilt.network.set_weights(model.network.get_weights())
        rebuilt.info.update(model.info)
        model = rebuilt
    model.info["member_weights"] = {
        m: round(float(w), 6) for m, w in zip(names, chosen, strict=True)
    }
    model.info["weights_from"] = origin
    if not oof:
        return model, None
    if not ensemble:
        return model, _mean(fitted.oofs)
    return model, honest_oof(fitted.oofs, fitted.y, fitted.masks, names, default, transfer)
