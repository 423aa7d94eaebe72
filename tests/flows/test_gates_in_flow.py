"""Each gate, inside the real flow, stops the run before the stages it guards."""

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from tests.conftest import tiny_settings
from transferflow.config.settings import build_config
from transferflow.flows.transfer import transfer_learning


def _run(raw):
    """Run the flow, returning its final state and the names of the task runs it made."""
    state = transfer_learning(build_config(raw), return_state=True)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return state, {r.name.split("-")[0].split("[")[0] for r in runs}


def _exception(state):
    with pytest.raises(Exception) as info:
        state.result()
    return info.value


def test_leakage_gate_counts_copied_test_rows(small_domains, tmp_path):
    """Done-when: 30 % of the target's test rows copied into training fail at the leakage gate."""
    target = pd.read_csv(small_domains["target"])
    test, train = target.iloc[:100], target.iloc[100:]
    copied = test.sample(frac=0.3, random_state=0)
    train_path, test_path = tmp_path / "t_train.csv", tmp_path / "t_test.csv"
    pd.concat([train, copied]).to_csv(train_path, index=False)
    test.to_csv(test_path, index=False)
    raw = tiny_settings(small_domains["source"], train_path, tmp_path / "runs")
    raw["data"]["target"]["test_paths"] = [str(test_path)]
    raw["gates"] = {"raw_input": {"max_duplicate_share": 0.5}}
    norm = lambda t: " ".join(str(t).lower().split())  # noqa: E731
    seen = set(pd.concat([train, copied])["text"].map(norm))
    expected = int(test["text"].map(norm).isin(seen).sum())
    assert expected >= 30  # the 30 copies, plus any duplicate the raw data already had
    state, tasks = _run(raw)
    exc = _exception(state)
    assert state.is_failed() and exc.gate == "leakage"
    assert f"{expected} bad row(s) ({expected:.1f}%)" in str(exc)
    assert "build_embeddings" not in tasks and "train_source_model" not in tasks


@pytest.mark.slow
def test_source_model_gate_stops_before_fine_tuning(small_domains, tmp_path):
    raw = tiny_settings(
        small_domains["source"],
        small_domains["target"],
        tmp_path / "runs",
        gates={"source_model": {"min_accuracy": 0.99}},
    )
    state, tasks = _run(raw)
    assert _exception(state).gate == "source_model"
    assert "train_source_model" in tasks and "fine_tune_target_model" not in tasks


@pytest.mark.slow
def test_embeddings_gate_on_poor_pretrained_vectors(small_domains, tmp_path):
    vectors = tmp_path / "tiny.vec"
    vectors.write_text("3 4\nthe 0.1 0.2 0.3 0.4\ngood 0.5 0.1 0.2 0.3\nbad 0.3 0.3 0.1 0.0\n")
    raw = tiny_settings(
        small_domains["source"],
        small_domains["target"],
        tmp_path / "runs",
        embeddings={"pretrained_path": str(vectors)},
    )
    raw["embeddings"].pop("vector_size")
    state, tasks = _run(raw)
    exc = _exception(state)
    assert exc.gate == "embeddings" and "target_coverage" in str(exc)
    assert "train_source_model" not in tasks


def test_domain_shift_gate_fails_when_asked(small_domains, tmp_path):
    raw = tiny_settings(
        small_domains["source"],
        small_domains["target"],
        tmp_path / "runs",
        gates={"domain_shift": {"mode": "fail", "max_proxy_a_distance": 0.0}},
    )
    state, tasks = _run(raw)
    assert _exception(state).gate == "domain_shift"
    assert "build_embeddings" not in tasks


def _inverted_source(small_domains, tmp_path):
    """A source labelled the other way round: learning from it can only hurt (negative transfer)."""
    source = pd.read_csv(small_domains["source"])
    path = tmp_path / "inverted_source.csv"
    source.assign(label=1 - source["label"]).to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_promotion_gate_in_fail_mode(small_domains, tmp_path):
    raw = tiny_settings(
        _inverted_source(small_domains, tmp_path),
        small_domains["target"],
        tmp_path / "runs",
        gates={"promotion": {"mode": "fail"}},
    )
    state, tasks = _run(raw)
    assert _exception(state).gate == "promotion"
    assert "publish_report" not in tasks
    assert not any(p.name.endswith(("partial",)) for p in (tmp_path / "runs").iterdir())


@pytest.mark.slow
def test_negative_transfer_is_said_plainly_and_a_baseline_chosen(small_domains, tmp_path):
    """Default settings (promotion gate in warn mode): the run completes with the baseline."""
    raw = tiny_settings(
        _inverted_source(small_domains, tmp_path),
        small_domains["target"],
        tmp_path / "runs",
        registry={"dir": str(tmp_path / "reg")},
    )
    result = transfer_learning(build_config(raw))
    selection = result["metrics"]["selection"]
    assert selection["negative_transfer"] and selection["chosen"] == "target_only"
    assert selection["p_vs_transfer"]["target_only"] < 0.05
    assert result["metrics"]["gates"]["promotion"]["status"] == "warned"
    report = (tmp_path / "runs" / result["run_dir"].split("/")[-1] / "report.md").read_text()
    assert "**Negative transfer**" in report and "Chosen model: **target_only**" in report
    # The baseline is registered, but a model chosen over transfer does not become champion.
    assert result["registry"]["champion"] is None and not result["registry"]["promoted"]
