"""Figures written for people in logs and messages: ``pool 1400, train 1400`` rather than a
Python dict's repr."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def counts(figures: Mapping[Any, Any], sep: str = " ") -> str:
    """``{"pool": 1400, "train": 4}`` -> ``"pool 1400, train 4"`` (``"none"`` when empty);
    ``sep=": "`` where the keys are values themselves (labels: ``"0: 700, 1: 700"``)."""
    return ", ".join(f"{key}{sep}{value}" for key, value in figures.items()) or "none"


def items(values: Iterable[Any]) -> str:
    """``["0", "1"]`` -> ``"0, 1"``: labels, names."""
    return ", ".join(str(v) for v in values)


def figures(values: Mapping[str, float | None], names: Mapping[str, str], digits: int = 3) -> str:
    """``{"proxy_a_distance": 1.3189}`` -> ``"proxy A-distance 1.319"`` (a missing figure: n/a;
    a key without a name: the key)."""
    return ", ".join(
        f"{names.get(k, k)} {'n/a' if v is None else f'{v:.{digits}f}'}" for k, v in values.items()
    )


def unlabelled_left_out(repeats: int, labelled: Mapping[str, int]) -> str:
    """What cleaning left out of the unlabelled texts, e.g. ``"13 repeats and 50 that are
    labelled target texts (training 40, test 10)"``; empty when nothing was."""
    said = [f"{repeats} repeats"] if repeats else []
    if total := sum(labelled.values()):
        said.append(
            f"{total} that are labelled target texts (training {labelled.get('train', 0)}, "
            f"test {labelled.get('test', 0)})"
        )
    return " and ".join(said)
