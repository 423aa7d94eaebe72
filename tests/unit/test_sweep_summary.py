"""The sweep's summary tables (pure functions over a results frame, no Prefect)."""

import pandas as pd

from transferflow.experiments.sweep import mean_table, summarise


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
