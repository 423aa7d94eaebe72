"""Unlabelled target texts: how they are read, cleaned and chosen for self-training."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.config.settings import DataConfig, DatasetConfig
from transferflow.data.datasets import drop_after_gate, prepare_dataset, read_frame
from transferflow.data.tables import load_domain
from transferflow.models.self_training import class_shares, pseudo_labels


def _labelled(path: Path, n: int = 60) -> Path:
    pd.DataFrame(
        {"text": [f"labelled review {i}" for i in range(n)], "label": [i % 2 for i in range(n)]}
    ).to_csv(path, index=False)
    return path


def test_unlabeled_files_are_read_without_their_labels(tmp_path):
    """An unlabelled file needs only the text column; a label column in it is ignored."""
    train = _labelled(tmp_path / "train.csv")
    no_label = tmp_path / "u1.csv"
    pd.DataFrame({"text": ["first unlabelled", "second unlabelled"]}).to_csv(no_label, index=False)
    with_label = tmp_path / "u2.jsonl"
    pd.DataFrame({"text": ["third unlabelled"], "label": ["7"]}).to_json(
        with_label, orient="records", lines=True
    )
    cfg = DatasetConfig(name="t", paths=[train], unlabeled_paths=[no_label, with_label])
    data = load_domain(cfg, test_size=0.2, seed=0)
    assert data.unlabeled["text"].tolist() == [
        "first unlabelled",
        "second unlabelled",
        "third unlabelled",
    ]
    assert data.unlabeled["label"].isna().all()
    assert len(data.train) == len(data.pool)  # no cap: every training row keeps its label


def test_rows_beyond_the_label_cap_are_unlabelled_texts_unless_switched_off(tmp_path):
    cfg = DatasetConfig(name="t", paths=[_labelled(tmp_path / "train.csv")])
    data = load_domain(cfg, test_size=0.2, seed=1, train_size=10)
    assert len(data.train) == 10 and len(data.unlabeled) == len(data.pool) - 10
    assert not set(data.unlabeled["text"]) & set(data.train["text"])
    assert data.unlabeled["label"].isna().all()
    alone = load_domain(cfg, test_size=0.2, seed=1, train_size=10, beyond_cap=False)
    assert alone.unlabeled is None
    assert sorted(alone.pool["text"]) == sorted(alone.train["text"]) == sorted(data.train["text"])


def test_zero_labels_leave_every_training_row_unlabelled(tmp_path):
    cfg = DatasetConfig(name="t", paths=[_labelled(tmp_path / "train.csv")])
    data = load_domain(cfg, test_size=0.2, seed=1, train_size=0)
    assert data.train.empty and len(data.unlabeled) == len(data.pool) == 48
    # A cap that takes every row leaves no unlabelled part at all (not an empty one).
    assert load_domain(cfg, test_size=0.2, seed=1, train_size=1000).unlabeled is None


def test_cleaned_copies_of_a_zero_label_target_keep_its_classes(tmp_path):
    """Classes are set once (the source's, for a zero-label target): a copy made by a gate's
    cleaning has no training labels to count them from, and keeps them."""
    train = tmp_path / "train.csv"
    texts = [f"review {i}" for i in range(40)] + ["review 1", ""]
    pd.DataFrame({"text": texts, "label": [i % 2 for i in range(42)]}).to_csv(train, index=False)
    cfg = DatasetConfig(name="t", paths=[train])
    ref = prepare_dataset(
        cfg, role="target", test_size=0.25, seed=0, train_size=0, out_dir=tmp_path
    )
    assert ref.labels == []  # nothing to count them from: the flow sets the source's
    ref = ref.model_copy(update={"labels": ["neg", "pos"]})
    cleaned = drop_after_gate(ref, role="target", out_dir=tmp_path)
    assert cleaned is not ref and cleaned.labels == ["neg", "pos"]


def test_unlabelled_texts_lose_repeats_blanks_and_labelled_texts(tmp_path):
    train = _labelled(tmp_path / "train.csv", 20)
    unl = tmp_path / "u.csv"
    texts = ["new text", "New  text", "labelled review 3", "", "another one", "another one"]
    pd.DataFrame({"text": texts}).to_csv(unl, index=False)
    cfg = DatasetConfig(name="t", paths=[train], unlabeled_paths=[unl])
    ref = prepare_dataset(
        cfg, role="target", test_size=0.25, seed=0, train_size=None, out_dir=tmp_path
    )
    cleaned = drop_after_gate(ref, role="target", out_dir=tmp_path)
    kept = read_frame(cleaned.unlabeled)["text"].tolist()
    # "New  text" normalises to "new text"; a labelled text is learnt from with its label only.
    assert kept == ["new text", "another one"]
    assert cleaned.dropped_blank_text["unlabeled"] == 1
    assert cleaned.dropped_repeats["unlabeled"] == 2
    assert sum(cleaned.dropped_labelled.values()) == 1
    assert cleaned.text_parts == [cleaned.pool, cleaned.unlabeled]


_WORDS = st.sampled_from(["good", "bad", "phone", "Phone", "case", "  ", "!", "it", "works", "No"])
_TEXTS = st.lists(_WORDS, min_size=1, max_size=3).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(
    labelled=st.lists(_TEXTS, min_size=8, max_size=20, unique_by=lambda t: " ".join(t.split())),
    test=st.lists(_TEXTS, min_size=0, max_size=8),
    unlabelled=st.lists(_TEXTS, min_size=1, max_size=30),
)
def test_no_labelled_text_is_ever_an_unlabelled_text(tmp_path_factory, labelled, test, unlabelled):
    """The invariant: after cleaning, no unlabelled text is a labelled training or test text
    (so no test text is learnt from), each other unlabelled text is kept once, and every row
    left out is counted. Users label texts taken from their unlabelled file (the cold start),
    so a large overlap is expected, not a broken split."""
    from transferflow.data.tables import normalise_text

    tmp = tmp_path_factory.mktemp("u")
    pd.DataFrame({"text": labelled, "label": [i % 2 for i in range(len(labelled))]}).to_csv(
        tmp / "train.csv", index=False
    )
    test_paths = []
    if test:
        pd.DataFrame({"text": test, "label": [i % 2 for i in range(len(test))]}).to_csv(
            tmp / "test.csv", index=False
        )
        test_paths = [tmp / "test.csv"]
    pd.DataFrame({"text": unlabelled}).to_csv(tmp / "u.csv", index=False)
    cfg = DatasetConfig(
        name="t", paths=[tmp / "train.csv"], test_paths=test_paths, unlabeled_paths=[tmp / "u.csv"]
    )
    ref = prepare_dataset(cfg, role="target", test_size=0.25, seed=0, train_size=None, out_dir=tmp)
    cleaned = drop_after_gate(ref, role="target", out_dir=tmp)

    def keys(part) -> set[str]:
        return set(read_frame(part)["text"].dropna().map(normalise_text)) - {""}

    kept = (
        read_frame(cleaned.unlabeled)["text"].map(normalise_text).tolist()
        if (cleaned.unlabeled is not None)
        else []
    )
    labelled_keys = keys(cleaned.train) | keys(cleaned.test)
    assert not set(kept) & labelled_keys
    assert len(kept) == len(set(kept))
    expected = {normalise_text(t) for t in unlabelled} - labelled_keys - {""}
    assert set(kept) == expected
    rows_in = ref.counts.get("unlabeled", 0)
    left_out = (
        cleaned.dropped_blank_text.get("unlabeled", 0)
        + cleaned.dropped_repeats.get("unlabeled", 0)
        + sum(cleaned.dropped_labelled.values())
    )
    assert rows_in - len(kept) == left_out


def test_unlabelled_files_are_sampled_to_their_cap(tmp_path):
    unl = tmp_path / "u.csv"
    pd.DataFrame({"text": [f"unlabelled {i}" for i in range(500)]}).to_csv(unl, index=False)
    cfg = DatasetConfig(name="t", paths=[_labelled(tmp_path / "train.csv")], unlabeled_paths=[unl])
    one = load_domain(cfg, test_size=0.2, seed=3, unlabeled_max_rows=120).unlabeled
    again = load_domain(cfg, test_size=0.2, seed=3, unlabeled_max_rows=120).unlabeled
    assert len(one) == 120 and one.equals(again)


def test_unlabelled_texts_are_for_the_target_only(tmp_path):
    from pydantic import ValidationError

    path = _labelled(tmp_path / "train.csv")
    with pytest.raises(ValidationError, match="unlabelled texts are read for the target"):
        DataConfig(
            source={"name": "s", "paths": [path], "unlabeled_paths": [path]},
            target={"name": "t", "paths": [path]},
        )


def test_class_shares_need_five_rows_per_class():
    assert class_shares({"a": 5, "b": 15}, ["a", "b"]).tolist() == [0.25, 0.75]
    assert class_shares({"a": 4, "b": 15}, ["a", "b"]) is None
    assert class_shares({"b": 15}, ["a", "b"]) is None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 4).flatmap(
        lambda k: st.tuples(
            st.just(k),
            st.lists(
                st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k), min_size=1, max_size=60
            ),
            st.floats(0.0, 1.0),
        )
    )
)
def test_pseudo_labels_keep_the_class_shares_and_the_surest_rows(case):
    """Invariant: each class gets at most its quota (share x rows x class share), every chosen
    row carries the model's prediction, and no unchosen row predicted as that class is surer
    than a chosen one."""
    k, rows, share = case
    proba = np.array(rows) / np.array(rows).sum(axis=1, keepdims=True)
    classes = [f"c{i}" for i in range(k)]
    shares = np.full(k, 1.0 / k)
    chosen, labels = pseudo_labels(proba, classes, share, shares)
    assert list(chosen) == sorted(set(chosen.tolist()))
    pred = proba.argmax(axis=1)
    assert labels == [classes[pred[i]] for i in chosen]
    for c in range(k):
        mine = [i for i in chosen if pred[i] == c]
        assert len(mine) <= round(share * len(proba) / k) + 1e-9
        others = [i for i in np.flatnonzero(pred == c) if i not in set(chosen.tolist())]
        if mine and others:
            assert proba[mine, c].min() >= proba[others, c].max()


def _texts_only(path: Path, n: int = 40) -> Path:
    pd.DataFrame({"text": [f"unlabelled review number {i}" for i in range(n)]}).to_csv(
        path, index=False
    )
    return path


def test_a_target_of_unlabelled_texts_alone_has_no_labels_and_a_test_set_only_if_given(tmp_path):
    """A cold start: no labelled target file. Nothing is labelled, nothing is split off for a
    test set; a labelled test file, when given, is the test set."""
    unl = _texts_only(tmp_path / "texts.csv")
    cfg = DatasetConfig(name="t", paths=[], unlabeled_paths=[unl])
    domain = load_domain(cfg, test_size=0.2, seed=0)
    assert len(domain.pool) == len(domain.train) == len(domain.test) == 0
    assert len(domain.unlabeled) == 40 and not domain.test_from_split
    tested = load_domain(
        cfg.model_copy(update={"test_paths": [_labelled(tmp_path / "test.csv", 20)]}),
        test_size=0.2,
        seed=0,
    )
    assert len(tested.test) == 20 and len(tested.train) == 0
    ref = prepare_dataset(
        cfg, role="target", test_size=0.2, seed=0, train_size=None, out_dir=tmp_path
    )
    assert ref.unlabelled_only and ref.n_train == 0 and ref.n_test == 0
    # Cleaned copies stay what they are.
    assert drop_after_gate(ref, role="target", out_dir=tmp_path).unlabelled_only


@pytest.mark.parametrize(
    ("target", "budget", "message"),
    [
        ({"name": "t", "paths": []}, None, "no unlabelled target texts"),
        ({"name": "t", "paths": [], "unlabeled_paths": ["u.csv"]}, 50, "no labelled target file"),
    ],
)
def test_a_target_without_a_labelled_file_needs_unlabelled_texts_and_no_label_budget(
    tmp_path, target, budget, message
):
    from pydantic import ValidationError

    source = {"name": "s", "paths": [str(_labelled(tmp_path / "train.csv"))]}
    with pytest.raises(ValidationError, match=message):
        DataConfig(source=source, target=target, target_train_size=budget)
    with pytest.raises(ValidationError, match="at least one labelled source file"):
        DataConfig(source={"name": "s", "paths": []}, target={"name": "t", "paths": ["x.csv"]})


def test_the_cli_takes_a_source_and_unlabelled_target_texts_without_a_target_file(tmp_path):
    from transferflow.config.sources import assemble_config
    from transferflow.errors import ConfigError

    src, unl = _labelled(tmp_path / "yelp.csv"), _texts_only(tmp_path / "phones.csv")
    cfg = assemble_config(
        None, {"data.source.paths": [src], "data.target.unlabeled_paths": [unl]}, []
    )
    assert cfg.data.target.paths == [] and cfg.data.target.name == "phones"
    assert [str(p) for p in cfg.data.target.unlabeled_paths] == [str(unl)]
    with pytest.raises(ConfigError, match="--target-unlabeled"):
        assemble_config(None, {"data.source.paths": [src]}, [])
