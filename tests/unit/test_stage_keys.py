"""Cache keys derived from the stage signatures (tasks/caching.py, ``StageInputs``): changing any
one input a stage reads changes its key, and nothing else does.

For every cached stage the test builds one set of inputs, then varies every leaf of them in turn
(every field of every settings section, every part a ``Reads`` annotation names, the seed) and
checks that the key changes; varying a part the stage does not read, a file's path (not its
content) or the cache settings must leave the key alone. A stage that gains a parameter is
covered by the same loop without a change here."""

import json
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from transferflow.config.settings import (
    CacheConfig,
    DomainShiftGate,
    EmbeddingConfig,
    EmbeddingsGate,
    LeakageGate,
    ModelConfig,
    PromotionGate,
    RawInputGate,
    SourceModelGate,
    TransferConfig,
)
from transferflow.data.vectors import ParsedVectors
from transferflow.storage.artifacts import ArtifactRef, DatasetRef, EmbeddingsRef, ModelRef
from transferflow.tasks import gates, model_gates, reporting, stages
from transferflow.tasks.caching import Reads, Writes, stage_key

# Every task the flow caches (tasks.caching.cached): the stages, the gates' checks and the
# report's costly parts.
STAGES = [
    stages.build_embeddings,
    stages.train_source_model,
    stages.fine_tune_target_model,
    stages.train_target_only_model,
    stages.train_pooled_baseline,
    gates.raw_input_checks,
    gates.leakage_checks,
    model_gates.embeddings_checks,
    gates.measure_domain_shift,
    gates.domain_shift_checks,
    model_gates.source_model_checks,
    model_gates.promotion_checks,
    reporting.score_candidates,
    reporting.draw_figures,
]
SECTIONS = [EmbeddingConfig, ModelConfig, TransferConfig, RawInputGate, LeakageGate,
            EmbeddingsGate, DomainShiftGate, SourceModelGate, PromotionGate]  # fmt: skip


def _ref(name: str) -> ArtifactRef:
    return ArtifactRef(path=f"/store/{name}", sha256=(name * 64)[:64])


def _dataset(role: str) -> DatasetRef:
    return DatasetRef.model_construct(
        name=role,
        parts={p: _ref(f"{role}{p}") for p in ("pool", "train", "test", "unlabeled")},
        counts={"pool": 10, "train": 8, "test": 2, "unlabeled": 5},
        labels=["negative", "positive"],
        label_counts={},
        test_from_split=True,
        label_kind="text",
        input_sha256={},
    )


def _model(name: str) -> ModelRef:
    return ModelRef.model_construct(
        role=name,
        kind="keras",
        model=_ref(f"{name}m"),
        files={"vocab.json": _ref(f"{name}f")},
        labels=["negative", "positive"],
        architecture="wide-deep",
        summary={},
    )


def _inputs() -> dict[str, Any]:
    return {
        "data": _dataset("d"),
        "reference": _dataset("r"),
        "role": "target",
        "docs_dir": None,
        "expected_size": 100,
        "parsed": ParsedVectors.model_construct(vectors=_ref("pv"), tokens=_ref("pt")),
        "models": {"transfer": _model("transfer"), "pooled_lr": _model("pooled")},
        "pooled": _model("pooled"),
        "drawn_from": {"candidates": {"transfer": {"accuracy": 0.9}}, "shown": "transfer"},
        "source": _dataset("s"),
        "target": _dataset("t"),
        "emb": EmbeddingsRef.model_construct(
            vectors=_ref("v"), vector_size=16, vocab_size=10, token_coverage=0.9, origin="w2v"
        ),
        "source_model": ModelRef.model_construct(
            role="source",
            kind="keras",
            model=_ref("m"),
            files={"vocab.json": _ref("f")},
            labels=["negative", "positive"],
            architecture="wide-deep",
            summary={},
        ),  # fmt: skip
        "cfg": None,  # per stage: the section its signature names
        "model_cfg": ModelConfig(),
        "seed": 42,
        "cache": CacheConfig(),
    }


def _call(stage) -> dict[str, Any]:
    hints = typing.get_type_hints(stage.fn, include_extras=True)
    values = _inputs()
    sections = {"cfg": {section: section() for section in SECTIONS}}
    out = {}
    for name in hints:
        if name == "return":
            continue
        if name == "cfg":
            out[name] = sections["cfg"][hints[name]]
        else:
            out[name] = values[name]
    return out


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every value a key can depend on (a file reference counts by its hash)."""
    if isinstance(value, ArtifactRef):
        return [(*path, "sha256")]
    if isinstance(value, BaseModel):
        return [
            leaf
            for f in type(value).model_fields
            for leaf in _leaves(getattr(value, f), (*path, f))
        ]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list | tuple) and value:
        return _leaves(value[0], (*path, 0))
    return [path]


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return 7
    if isinstance(value, list | tuple):
        return [*value, value[0] if value else 1]
    raise AssertionError(f"no change for {value!r}")


def _with(value: Any, path: tuple, leaf: Any) -> Any:
    """``value`` with the leaf at ``path`` replaced (models copied, never validated)."""
    if not path:
        return leaf
    head, rest = path[0], path[1:]
    if isinstance(value, BaseModel):
        if isinstance(value, DatasetRef) and head in ("pool", "train", "test", "unlabeled"):
            head, rest = "parts", (head, *rest)
        return value.model_copy(update={head: _with(getattr(value, head), rest, leaf)})
    if isinstance(value, dict):
        return {**value, head: _with(value[head], rest, leaf)}
    if isinstance(value, list):
        return [_with(value[0], rest, leaf), *value[1:]]
    raise AssertionError(path)


def _get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step] if isinstance(value, dict | list) else getattr(value, step)
    return value


def _reads(stage, name: str) -> tuple[str, ...] | None:
    hint = typing.get_type_hints(stage.fn, include_extras=True)[name]
    marks = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Reads)]
    return marks[0].parts if marks else None


def _writes(stage, name: str) -> bool:
    hint = typing.get_type_hints(stage.fn, include_extras=True)[name]
    return Writes in getattr(hint, "__metadata__", ())


def _key(stage, params: dict[str, Any]) -> str:
    return stage_key(stage.fn, stage.name, params)


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_every_input_a_stage_reads_changes_its_key(stage):
    params = _call(stage)
    base = _key(stage, params)
    checked = 0
    for name, value in params.items():
        if isinstance(value, CacheConfig) or _writes(stage, name):
            continue
        parts = _reads(stage, name)
        roots = [(part,) for part in parts] if parts else [()]
        for root in roots:
            for path in _leaves(_get(value, root), root):
                leaf = _get(value, path)
                if isinstance(leaf, Path) or (path and path[-1] == "pretrained_path"):
                    continue  # a file in a setting counts by content: the next test
                varied = {**params, name: _with(value, path, _changed(leaf))}
                assert _key(stage, varied) != base, f"{stage.name}: {name}.{path} not in the key"
                checked += 1
    assert checked >= 2, checked


@pytest.mark.parametrize("stage", STAGES, ids=lambda s: s.name)
def test_what_a_stage_does_not_read_leaves_its_key_alone(stage):
    params = _call(stage)
    base = _key(stage, params)
    for name, value in params.items():
        parts = _reads(stage, name)
        if isinstance(value, CacheConfig):
            varied = {**params, name: CacheConfig(enabled=False, refresh=True)}
            assert _key(stage, varied) == base, "cache settings are not an input"
        if _writes(stage, name):  # where a task writes (e.g. a run's Data Docs) is no input
            assert _key(stage, {**params, name: Path("/elsewhere/docs")}) == base
        if isinstance(value, DatasetRef) and parts:
            for part in {"pool", "train", "test", "unlabeled"} - set(parts):
                varied = {**params, name: _with(value, (part, "sha256"), "f" * 64)}
                assert _key(stage, varied) == base, f"{stage.name} does not read {name}.{part}"
        if isinstance(value, DatasetRef | EmbeddingsRef | ModelRef):
            # The same content at another path is the same input.
            for root in [(part,) for part in parts] if parts else [()]:
                for leaf in _leaves(_get(value, root), root):
                    if leaf[-1] != "sha256":
                        continue  # not a file reference
                    moved = _with(value, (*leaf[:-1], "path"), "/elsewhere/file")
                    assert _key(stage, {**params, name: moved}) == base


def test_a_vectors_file_counts_by_content_not_path(tmp_path):
    stage = stages.build_embeddings
    params = _call(stage)
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_text("1 2\nx 0.5 0.5\n")
    b.write_text("1 2\nx 0.5 0.5\n")
    c.write_text("1 2\nx 0.5 0.6\n")

    def key(path: Path) -> str:
        cfg = EmbeddingConfig(pretrained_path=path, pretrained_format="word2vec")
        return _key(stage, {**params, "cfg": cfg})

    assert key(a) == key(b) != key(c)


_JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_KEYS = st.text().filter(lambda k: not k.startswith("$"))  # "$model" etc. mark encoded types
_NESTED = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_NESTED)
def test_a_cached_stage_result_reads_back_as_computed_key_order_included(value):
    """The invariant behind "a rerun writes what a cold run writes": a stage result read back
    from its cache record equals the result computed, and every dict keeps its key order
    (dict equality ignores order; a record that sorted keys reordered a rerun's candidates)."""
    from transferflow.tasks.caching import StageResultSerializer

    serializer = StageResultSerializer()
    back = serializer.loads(serializer.dumps(value))
    assert back == value
    assert json.dumps(back) == json.dumps(value)  # the same order, all the way down
