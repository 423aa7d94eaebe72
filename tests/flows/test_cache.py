"""Cross-run caching: content-keyed hits and misses, damaged artefacts, concurrency, resume."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from tests.conftest import tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.transfer import transfer_learning
from transferflow.storage.store import ArtifactStore

EXPENSIVE = {
    "build_embeddings",
    "train_source_model",
    "fine_tune_target_model",
    "train_target_only_model",
    "train_pooled_baseline",
}
GATES = [
    "validate_dataset[source]",
    "validate_dataset[target]",
    "check_split_integrity",
    "check_domain_shift",
    "check_embeddings",
    "check_source_model",
    "check_promotion",
]


def _run(raw):
    """Run the flow; return (metrics, {task name: state name})."""
    state = transfer_learning(build_config(raw), return_state=True)
    metrics = state.result()["metrics"]
    # Task-run states reach the server asynchronously: wait until every stage and gate is there.
    deadline = time.monotonic() + 60
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
        states = {r.name.rsplit("-", 1)[0]: r.state.name for r in runs if r.state}
        final = all(r.state and r.state.is_final() for r in runs)
        if (set(GATES) | EXPENSIVE) <= set(states) and final or time.monotonic() > deadline:
            return metrics, states
        time.sleep(0.5)


@pytest.fixture
def cached_raw(small_domains, tmp_path):
    """Tiny settings with a fresh store of their own."""
    raw = tiny_settings(small_domains["source"], small_domains["target"], tmp_path / "runs")
    raw["cache"] = {"dir": str(tmp_path / "store")}
    return raw


def _key_paths(value, prefix=()) -> list[tuple]:
    """Every key of nested dicts, in order."""
    if not isinstance(value, dict):
        return []
    out = []
    for key, item in value.items():
        out.append((*prefix, key))
        out.extend(_key_paths(item, (*prefix, key)))
    return out


def _expensive_states(states):
    return {k: v for k, v in states.items() if k in EXPENSIVE}


@pytest.mark.slow
def test_identical_rerun_hits_every_expensive_task(cached_raw):
    first, states1 = _run(cached_raw)
    assert set(_expensive_states(states1).values()) == {"Completed"}
    assert {states1[g] for g in GATES} == {"Completed"}
    second, states2 = _run(cached_raw)
    assert _expensive_states(states2) == dict.fromkeys(EXPENSIVE, "Cached")
    assert second["candidates"] == first["candidates"]
    # ... in the same order (dict equality ignores it): what a cold run writes, a rerun writes.
    assert _key_paths(second) == _key_paths(first)
    assert list(second["candidates"]) == ["transfer", "target_only", "source_only", "pooled_lr"]
    # Gate verdicts on the same data, settings and checks are reused, and say the same.
    assert {g: states2[g] for g in GATES} == dict.fromkeys(GATES, "Cached")
    assert second["gates"] == first["gates"]
    out = Path(cached_raw["output_dir"])
    assert not any(out.glob("*/data_docs"))
    # The figures were drawn once and copied into both run folders.
    pictures = sorted(out.glob("*/figures/*.png"))
    assert len(pictures) == 6 and len({p.read_bytes() for p in pictures}) == 3
    store = ArtifactStore(cached_raw["cache"]["dir"])
    assert [e.stage for e in store.entries()].count("draw_figures") == 1
    # Data Docs on request: every check runs again, so the docs show them all.
    docs_raw = {**cached_raw, "gates": {"data_docs": True}, "run_name": "with-docs"}
    third, states3 = _run(docs_raw)
    assert {states3[g] for g in GATES} == {"Completed"}
    assert third["gates"] == first["gates"]
    assert (out / "with-docs" / "data_docs" / "index.html").is_file()


@pytest.mark.slow
def test_refresh_recomputes(cached_raw):
    """--refresh-cache recomputes every expensive stage (new entries) and, the code being
    reproducible, the recomputed artefacts have the same bytes as the first run's."""
    from transferflow.storage.store import hashes_in

    def recorded():
        store = ArtifactStore(cached_raw["cache"]["dir"])
        out = {}
        for path in sorted((store.root / "entries").glob("*.json")):
            entry = json.loads(path.read_text())
            if entry["stage"] in EXPENSIVE:
                out[path.stem] = (
                    entry["created"],
                    sorted(h for _, h in hashes_in(entry["result"])),
                )
        return out

    _run(cached_raw)
    before = recorded()
    _, states = _run({**cached_raw, "cache": {**cached_raw["cache"], "refresh": True}})
    after = recorded()
    assert set(_expensive_states(states).values()) == {"Completed"}
    assert set(after) == set(before) and len(before) == len(EXPENSIVE)
    assert all(after[k][0] > before[k][0] for k in before)  # every entry written again
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}


@pytest.mark.slow
def test_in_place_edit_of_target_invalidates_what_depends_on_it(cached_raw, small_domains):
    _run(cached_raw)
    target = Path(small_domains["target"])
    frame = pd.read_csv(target)
    frame.loc[0, "text"] = frame.loc[0, "text"] + " Edited in place."
    frame.to_csv(target, index=False)  # same path, new content
    _, states = _run(cached_raw)
    # Word2Vec trains on the target texts too, so everything downstream is recomputed.
    assert set(_expensive_states(states).values()) == {"Completed"}


def _pretrained_vectors(path: Path, source: Path, target: Path) -> Path:
    from gensim.models import Word2Vec

    from transferflow.text.tokens import tokenize

    texts = [*pd.read_csv(source)["text"], *pd.read_csv(target)["text"]]
    model = Word2Vec(
        [tokenize(t) for t in texts], vector_size=16, min_count=1, epochs=20, seed=1, workers=1
    )
    model.wv.save_word2vec_format(str(path))
    return path


@pytest.mark.slow
def test_only_target_changed_reuses_the_parsed_pretrained_vectors(
    cached_raw, small_domains, tmp_path
):
    vectors = _pretrained_vectors(
        tmp_path / "v.vec", small_domains["source"], small_domains["target"]
    )
    raw = {**cached_raw, "embeddings": {"pretrained_path": str(vectors)}}
    _run(raw)
    frame = pd.read_csv(small_domains["target"])
    frame.iloc[::2].to_csv(small_domains["target"], index=False)  # drop half of the target rows
    _, states = _run(raw)
    exp = _expensive_states(states)
    # The source model's n-grams are fitted on both domains' texts: it is retrained too, but
    # the vectors file is parsed once.
    assert exp["build_embeddings"] == "Completed"
    assert exp["fine_tune_target_model"] == "Completed"
    assert exp["train_target_only_model"] == "Completed"
    store = ArtifactStore(cached_raw["cache"]["dir"])
    assert len([e for e in store.entries() if e.stage == "convert_vectors"]) == 1  # parsed once


def _objects_of(store: ArtifactStore, stage: str) -> list[Path]:
    from transferflow.storage.store import hashes_in

    (entry,) = [e for e in store.entries() if e.stage == stage]
    data = json.loads((store.root / "entries" / f"{entry.key}.json").read_text())
    return [Path(p) for p, _ in hashes_in(data["result"])]


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_damaged_artefact_is_recomputed(cached_raw, damage):
    _run(cached_raw)
    store = ArtifactStore(cached_raw["cache"]["dir"])
    (model_file,) = [p for p in _objects_of(store, "train_source_model") if p.suffix == ".keras"]
    if damage == "missing":
        model_file.unlink()
    else:
        model_file.write_bytes(model_file.read_bytes()[:-100] + b"\0" * 100)
    _, states = _run(cached_raw)
    exp = _expensive_states(states)
    assert exp["train_source_model"] == "Completed"  # recomputed, no crash
    assert exp["build_embeddings"] == "Cached"
    # The recomputed model has the same bytes, so the stages keyed on its hash still hit.
    assert exp["fine_tune_target_model"] == "Cached"
    assert all(p.is_file() for p in _objects_of(store, "train_source_model"))


def _cli(raw_args, env, out):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "transferflow.flows.cli",
            "run",
            *raw_args,
            "--output-dir",
            str(out),
        ],  # fmt: skip
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _cli_args(small_domains, store):
    return [
        "--source",
        str(small_domains["source"]),
        "--target",
        str(small_domains["target"]),
        "--target-train-size",
        "60",
        "--test-size",
        "0.3",
        "--set",
        "embeddings.vector_size=32",
        "--set",
        "embeddings.min_count=1",
        "--set",
        f"cache.dir={store}",
    ]


def _env():
    from prefect.settings import PREFECT_API_URL

    return {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}


@pytest.mark.slow
def test_two_identical_runs_at_once_both_succeed_with_one_entry_each(small_domains, tmp_path):
    store = tmp_path / "store"
    args = _cli_args(small_domains, store)
    procs = [_cli(args, _env(), tmp_path / f"runs{i}") for i in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    entries = ArtifactStore(store).entries()
    counts = Counter(e.stage for e in entries)
    assert counts.pop("raw_input_checks") == 2  # the source's verdict and the target's
    assert set(counts.values()) == {1}  # one entry per stage: no duplicate work was stored
    metrics = [
        json.loads(next((tmp_path / f"runs{i}").glob("*/metrics.json")).read_text())
        for i in range(2)
    ]
    assert metrics[0]["candidates"] == metrics[1]["candidates"]


@pytest.mark.slow
def test_killed_run_resumes_from_completed_steps(small_domains, tmp_path):
    store = tmp_path / "store"
    args = _cli_args(small_domains, store)
    proc = _cli(args, _env(), tmp_path / "runs")
    deadline = time.time() + 300
    # Killed while fine-tuning: the source model is recorded and fine-tuning's scratch folder
    # in the store exists.
    while time.time() < deadline and not (
        list((store / "entries").glob("train_source_model-*.json"))
        and list((store / "tmp").glob("fine_tune_target_model-*"))
    ):
        time.sleep(0.05)
    assert proc.poll() is None, "run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)  # after the source model, before fine-tuning ends
    proc.wait()
    assert list((tmp_path / "runs").glob(".*.partial"))  # the killed run's staging folder
    assert list((store / "tmp").glob("fine_tune_target_model-*"))  # its scratch in the store
    stages_done = {e.stage for e in ArtifactStore(store).entries()}
    assert "fine_tune_target_model" not in stages_done
    # No partial artefact is ever read: every recorded object is complete and verified.
    rerun = _cli(args, _env(), tmp_path / "runs")
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output
    assert "Task run 'build_embeddings" in output and "Finished in state Cached" in output
    cached_tasks = {
        line.split("'")[1].rsplit("-", 1)[0]
        for line in output.splitlines()
        if "Finished in state Cached" in line
    }
    assert {"build_embeddings", "train_source_model"} <= cached_tasks
    assert "fine_tune_target_model" not in cached_tasks
    assert not list((tmp_path / "runs").glob(".*.partial"))  # removed by the next run
    assert not list((store / "tmp").iterdir())  # the store's scratch folders too


@pytest.mark.slow
def test_cold_runs_with_the_same_seed_give_identical_metrics(cached_raw):
    raw = {**cached_raw, "cache": {"enabled": False}}
    first, states = _run({**raw, "run_name": "a"})
    second, _ = _run({**raw, "run_name": "b"})
    assert "Cached" not in states.values()
    assert first["candidates"] == second["candidates"]
    assert np.isfinite(first["candidates"]["transfer"]["accuracy"])
