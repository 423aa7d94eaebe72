"""Run a list of GX expectations on a pandas frame and turn failures into readable checks."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from transferflow.errors import FailedCheck

# GX sends usage statistics unless told not to; this machine and many users' are offline anyway.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@dataclass
class SuiteResult:
    """Outcome of one suite on one frame."""

    suite: str
    success: bool
    failures: list[FailedCheck] = field(default_factory=list)
    evaluated: int = 0
    raw: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX announces its temporary docs folder at INFO from a logger that sets its own level.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    # GX draws a "Calculating Metrics" progress bar per validation; in pipeline logs that is spam.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return ctx


def _describe_observed(result: dict[str, Any], index_cols: list[str]) -> str:
    if "observed_value" in result:
        return repr(result["observed_value"])
    count = result.get("unexpected_count")
    if count is None:
        return "(no value)"
    pct = result.get("unexpected_percent")
    text = f"{count} bad row(s)" + (f" ({pct:.1f}%)" if pct is not None else "")
    where = result.get("partial_unexpected_index_list") or []
    if where and isinstance(where[0], dict):
        spots = []
        for item in where[:5]:
            place = " ".join(f"{k} {item[k]}" for k in index_cols if k in item)
            if "file" in item and "row" in item:
                place = f"{item['file']} row {item['row']}"
            values = [repr(v)[:40] for k, v in item.items() if k not in index_cols]
            spots.append(place + (f": {values[0]}" if values else ""))
        text += ", e.g. " + "; ".join(spots)
    elif result.get("partial_unexpected_list"):
        text += ", e.g. " + ", ".join(repr(v)[:40] for v in result["partial_unexpected_list"][:5])
    return text


def _describe_expected(kwargs: dict[str, Any]) -> str:
    shown = {
        k: v
        for k, v in kwargs.items()
        if k not in ("batch_id", "column", "result_format", "catch_exceptions", "meta")
        and v is not None
    }
    if not shown:
        return "every row to pass"
    return ", ".join(f"{k}={v!r}" if not isinstance(v, list) or len(v) < 8 else f"{k}=[{len(v)} values]"
                     for k, v in shown.items())


def run_suite(
    gate: str,
    subject: str,
    frame: pd.DataFrame,
    expectations: list[Any],
    index_columns: list[str] | None = None,
) -> SuiteResult:
    """Validate ``frame`` against ``expectations`` with an ephemeral GX context.

    Args:
        gate: gate name (reported with each failure).
        subject: what the frame is (e.g. ``target train``); also names the GX suite.
        frame: the data.
        expectations: GX 1.x expectation objects.
        index_columns: columns that locate a bad row in reports (default: ``file`` and ``row``
            when the frame has them).

    Returns:
        The result, with one :class:`FailedCheck` per failed expectation.
    """
    import great_expectations as gx

    ctx = _context()
    name = f"{gate}:{subject}"
    for existing in (ctx.validation_definitions, ctx.suites):
        try:
            existing.delete(name)
        except Exception:  # noqa: BLE001 - absent is fine; GX raises several types for that
            pass
    try:
        source = ctx.data_sources.get("transferflow")
    except (KeyError, ValueError):
        source = ctx.data_sources.add_pandas("transferflow")
    try:
        asset = source.get_asset(name)
    except (LookupError, ValueError):
        asset = source.add_dataframe_asset(name)
    try:
        batch_def = asset.get_batch_definition("whole")
    except (KeyError, ValueError):
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=list(expectations)))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch_def, suite=suite))
    if index_columns is None:
        index_columns = [c for c in ("file", "row") if c in frame.columns]
    index_cols = index_columns
    result_format: dict[str, Any] = {"result_format": "SUMMARY"}
    if index_cols:
        result_format["unexpected_index_column_names"] = index_cols
    outcome = vd.run(batch_parameters={"dataframe": frame}, result_format=result_format)
    failures = []
    for res in outcome.results:
        if res.success:
            continue
        cfg = res.expectation_config
        kwargs = dict(cfg.kwargs)
        if res.exception_info and res.exception_info.get("raised_exception"):
            observed = "error: " + str(res.exception_info.get("exception_message"))[:200]
        else:
            observed = _describe_observed(res.result, index_cols)
        failures.append(
            FailedCheck(
                gate=gate,
                expectation=cfg.type,
                column=kwargs.get("column"),
                observed=observed,
                expected=_describe_expected(kwargs),
            )
        )
    return SuiteResult(
        suite=name,
        success=bool(outcome.success),
        failures=failures,
        evaluated=len(outcome.results),
        raw=outcome.to_json_dict(),
    )
