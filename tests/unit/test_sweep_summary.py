"""The sweep's summary tables (pure functions over a results frame, no Prefect)."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from transferflow.experiments.summary import mean_table, summarise


def _rows() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for pair in (("a", "b"), ("b", "a")):
            base = {"architecture": "wide-deep", "strategy": "ensemble", "seed": seed}
            base |= {"source": pair[0], "target": pair[1]}
            # n = 0: a zero-label run trains transfer and source_only only.
            rows += [
                {**base, "n_requested": 0, "candidate": "transfer", "accuracy": 0.75 + seed / 100},
                {**base, "n_requested": 0, "candidate": "source_only", "accuracy": 0.70},
            ]
            for cand, acc in (("transfer", 0.80), ("target_only", 0.72), ("source_only", 0.70)):
                rows.append({**base, "n_requested": 50, "candidate": cand, "accuracy": acc})
    return pd.DataFrame(rows)


def test_a_candidate_not_run_at_a_budget_reads_as_a_dash_and_has_no_wins_row():
    result = summarise(_rows())
    table = mean_table(result["table"])
    assert table.loc["target_only (wide-deep, ensemble)", 0] == "–"
    assert table.loc["target_only (wide-deep, ensemble)", 50] == "72.0 ± 0.0"
    assert table.loc["transfer (wide-deep, ensemble)", 0] == "75.5 ± 0.0"
    wins = result["wins"]
    assert not ((wins["vs"] == "target_only") & (wins["n"] == 0)).any()
    row = wins[(wins["vs"] == "target_only") & (wins["n"] == 50)].iloc[0]
    assert (row["wins"], row["losses"], row["mean_gain_points"]) == (4, 0, 8.0)
    assert "nan" not in table.to_string()
    worst = result["worst_vs_target_only"]
    assert list(worst["n_requested"]) == [50, 50] and (worst["points"] == 8.0).all()


@settings(max_examples=30, deadline=None)
@given(
    budgets=st.lists(st.sampled_from([0, 10, 50, 200]), min_size=1, max_size=4, unique=True),
    others=st.lists(
        st.sets(st.sampled_from(["target_only", "source_only", "pooled_lr", "nblr_pooled"])),
        min_size=4,
        max_size=4,
    ),
    seeds=st.integers(1, 3),
    accuracy=st.floats(0.0, 1.0),
)
def test_no_summary_table_shows_nan_whatever_ran(budgets, others, seeds, accuracy):
    """Invariant: whichever candidates ran at whichever budgets, the summary's tables hold
    numbers or "–", never NaN."""
    rows = []
    for n, extra in zip(budgets, others, strict=False):
        for seed in range(seeds):
            base = {"architecture": "wide-deep", "strategy": "ensemble", "seed": seed}
            base |= {"source": "a", "target": "b", "n_requested": n}
            for cand in ["transfer", *sorted(extra)]:
                rows.append({**base, "candidate": cand, "accuracy": accuracy})
    result = summarise(pd.DataFrame(rows))
    assert "nan" not in mean_table(result["table"]).to_string()
    assert not result["wins"].isna().any().any()
    assert not result["worst_vs_target_only"].isna().any().any()
