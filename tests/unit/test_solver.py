"""The solver's compiled programs: a member without word vectors is fitted on the same program as
the member with them (zero features of the vectors' width), with the same weights (bit for bit on
these small designs); and independent member fits run two at a time give the results of fitting
them one after another."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.config.settings import DEMO_DIR
from transferflow.models import solver
from transferflow.models.nb import fit_nb
from transferflow.models.parallel import in_parallel
from transferflow.text.features import NgramFeaturizer


@pytest.fixture(scope="module")
def rows():
    """Real reviews (demo yelp + amazon), TF-IDF n-grams and random deep features."""
    yelp = pd.read_csv(DEMO_DIR / "yelp.csv").sample(160, random_state=1)
    amazon = pd.read_csv(DEMO_DIR / "amazon.csv").sample(80, random_state=1)
    texts = [*yelp["text"], *amazon["text"]]
    y = np.array([*yelp["label"], *amazon["label"]], dtype=np.int32)
    domain = np.array([solver.SOURCE] * 160 + [solver.TARGET] * 80, dtype=np.int32)
    featurizer = NgramFeaturizer.fit(texts)
    deep = np.random.default_rng(0).normal(size=(len(texts), 12)).astype(np.float32)
    with_vectors = solver.make_design(featurizer.transform(texts), deep, y, domain)
    bare = solver.make_design(featurizer.transform(texts), None, y, domain)  # no zero block
    return {
        "texts": texts,
        "y": y,
        "domain": domain,
        "featurizer": featurizer,
        "with": with_vectors,
        "without": with_vectors.without_vectors(),
        "bare": bare,
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # softmax regression
        {"prior": "source"},  # L2-SP towards other weights (finetune)
        {"row_weight": "domains"},  # joint
        {"copies": 3, "mix": ((1.0, 1.0, 0.0), (1.0, 0.0, 1.0))},  # shared-private
    ],
    ids=["plain", "prior", "row-weights", "shared-private"],
)
def test_zero_features_leave_a_fit_without_vectors_unchanged(rows, kwargs):
    kwargs = dict(kwargs)
    if kwargs.get("prior") == "source":
        rng = np.random.default_rng(1)
        kwargs["prior"] = [
            rng.normal(size=(rows["bare"].n_features, 2)).astype(np.float32),
            np.zeros(2, np.float32),
        ]
    if kwargs.get("row_weight") == "domains":
        kwargs["row_weight"] = np.where(rows["domain"] == solver.SOURCE, 0.3, 1.7)
    ours, ours_copies = solver.fit_copies(rows["without"], 2, 3.0, **kwargs)
    bare, _ = solver.fit_copies(rows["bare"], 2, 3.0, **kwargs)
    assert len(ours) == len(bare) == 2  # the zero block's weights belong to no member
    for a, b in zip(ours, bare, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ours_copies[2], 0.0)  # the zero block never moved
    np.testing.assert_array_equal(
        solver.log_proba(ours, rows["without"]), solver.log_proba(bare, rows["bare"])
    )


def _fresh(rows, n: int):
    """Designs of the first ``n`` rows (a row count no other test compiles for)."""
    texts, y, domain = rows["texts"][:n], rows["y"][:n], rows["domain"][:n]
    deep = np.random.default_rng(2).normal(size=(n, 12)).astype(np.float32)
    design = solver.make_design(rows["featurizer"].transform(texts), deep, y, domain)
    return texts, y, domain, design


def test_the_same_rows_with_and_without_vectors_compile_one_program(rows):
    *_, design = _fresh(rows, 97)
    before = solver._minimize._cache_size()
    solver.fit(design, 2, 0.7)
    assert solver._minimize._cache_size() == before + 1  # these shapes were new
    solver.fit(design.without_vectors(), 2, 0.7)
    solver.fit(design, 2, 0.7, row_weight=np.linspace(0.5, 2, 97))
    assert solver._minimize._cache_size() == before + 1


def test_the_nb_member_shares_the_program_of_its_rows(rows):
    texts, y, domain, design = _fresh(rows, 203)
    solver.fit(design, 2, 0.3)
    before = solver._minimize._cache_size()
    fit_nb(rows["featurizer"], texts, y, domain, 2, 0, grid=(1.0,), zero_width=12)
    assert solver._minimize._cache_size() == before


def test_fits_in_parallel_are_the_fits_one_after_another(rows):
    c_values = [0.1, 1.0, 10.0]
    jobs = [lambda c=c, d=d: solver.fit(rows[d], 2, c) for c in c_values for d in ("with", "bare")]
    one_by_one = [job() for job in jobs]
    seen: list[tuple[float, str]] = []
    parallel = in_parallel(
        jobs, lambda share: seen.append((share, threading.current_thread().name))
    )
    for a, b in zip(parallel, one_by_one, strict=True):
        for x, z in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, z)
    # Progress moves as fits finish, reaches 1, and is reported from the calling thread (where
    # Prefect's run context is).
    shares = [share for share, _ in seen]
    assert len(shares) >= len(jobs) // 2 and shares == sorted(shares) and shares[-1] == 1.0
    assert {name for _, name in seen} == {threading.current_thread().name}


def test_a_failing_fit_stops_the_others_and_raises(rows):
    started = []

    def fails():
        raise ValueError("boom")

    def slow(i):
        started.append(i)
        return solver.fit(rows["bare"], 2, 1.0)

    with pytest.raises(ValueError, match="boom"):
        in_parallel([fails, *[lambda i=i: slow(i) for i in range(20)]])
    assert len(started) < 20  # queued fits were cancelled


@given(st.lists(st.floats(0, 0.02), min_size=1, max_size=12))
@settings(max_examples=40, deadline=None)
def test_progress_moves_up_to_one_for_any_jobs(delays):
    """Invariant, on generated job counts and durations: results in job order; progress is
    reported from the calling thread, never goes back and ends at 1."""
    import time

    jobs = [lambda i=i, d=d: (time.sleep(d), i)[1] for i, d in enumerate(delays)]
    seen: list[tuple[float, str]] = []
    out = in_parallel(jobs, lambda share: seen.append((share, threading.current_thread().name)))
    shares = [share for share, _ in seen]
    assert out == list(range(len(delays)))
    assert shares == sorted(shares) and shares[-1] == 1.0
    assert {name for _, name in seen} == {threading.current_thread().name}
