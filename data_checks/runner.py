"""Run GX 1.x expectations on pandas frames and turn the outcome into readable checks.

Each gate is a list of suites; each suite is a list of expectations run on one frame. Results can
also be rendered as GX Data Docs (HTML) into a folder of the run.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from transferflow.data_checks.messages import plain
from transferflow.errors import FailedCheck

# GX sends usage statistics unless told not to; this machine and many users' are offline anyway.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

_LOCK = threading.Lock()  # one GX context per process; its stores are not thread-safe


@dataclass
class SuiteResult:
    """Outcome of one suite on one frame."""

    suite: str
    success: bool
    failures: list[FailedCheck] = field(default_factory=list)
    evaluated: int = 0


@dataclass
class GateReport:
    """Outcome of one gate: its suites, the figures it measured, and what it means for the run."""

    gate: str
    mode: str  # fail | warn
    suites: list[SuiteResult]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[FailedCheck]:
        """Every failed check of every suite."""
        return [f for s in self.suites for f in s.failures]

    @property
    def evaluated(self) -> int:
        """Number of expectations evaluated."""
        return sum(s.evaluated for s in self.suites)

    @property
    def status(self) -> str:
        """``passed``, ``warned`` (failed in warn mode) or ``failed``."""
        if not self.failures:
            return "passed"
        return "warned" if self.mode == "warn" else "failed"

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary for metrics.json and reports."""
        return {
            "status": self.status,
            "mode": self.mode,
            "checks": self.evaluated,
            "failed": [f.describe() for f in self.failures],
            "figures": self.figures,
        }


_CONTEXTS: dict[str, Any] = {}
_SITE = "transferflow_run"


def _context(docs_dir: Path | None = None):
    """The GX context collecting one run's validations (one per Data Docs folder; a shared one
    when no Data Docs are wanted)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    key = str(Path(docs_dir).resolve()) if docs_dir is not None else ""
    if key in _CONTEXTS:
        return _CONTEXTS[key]
    # GX announces its temporary docs folder at INFO from a logger that sets its own level.
    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    # GX draws a "Calculating Metrics" progress bar per validation; in pipeline logs that is spam.
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if key:
        ctx.add_data_docs_site(
            site_name=_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": key,
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    _CONTEXTS[key] = ctx
    return ctx


class _RendererFault(logging.Filter):
    """Counts and drops GX's own rendering faults (it logs some expectations' missing fields,
    e.g. ``unexpected_percent`` of a distinct-values check, as an ERROR with a traceback): the
    user sees one warning instead of a traceback that is not theirs to fix."""

    def __init__(self) -> None:
        super().__init__()
        self.faults = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            self.faults += 1
            return False
        return True


def build_docs(docs_dir: Path | None) -> Path | None:
    """Render every validation run for ``docs_dir`` as GX Data Docs there (once, at the end of a
    run: rendering per suite would cost more than the validations) and forget them.

    Returns:
        The site's ``index.html``, or ``None`` when nothing was validated for it.
    """
    if docs_dir is None:
        return None
    with _LOCK:
        ctx = _CONTEXTS.pop(str(Path(docs_dir).resolve()), None)
        if ctx is None:
            return None
        # A folder that cannot be made is the machine's business (a clear OSError), not a
        # rendering fault for GX to log with a traceback.
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        # GX reports rendering faults on its renderer modules' loggers (a logger's filter sees
        # only its own records, not its children's: each gets the filter).
        quiet = _RendererFault()
        renderers = [
            logging.getLogger(name)
            for name in list(logging.Logger.manager.loggerDict)
            if name.startswith("great_expectations.render")
        ]
        for renderer in renderers:
            renderer.addFilter(quiet)
        try:
            ctx.build_data_docs(site_names=[_SITE])
        finally:
            for renderer in renderers:
                renderer.removeFilter(quiet)
        if quiet.faults:
            logging.getLogger(__name__).warning(
                "GX could not render %d part(s) of the Data Docs in %s (a Great Expectations "
                "rendering fault, not a data problem); the checks' results are complete in the "
                "gate report.",
                quiet.faults,
                docs_dir,
            )
    index = Path(docs_dir) / "index.html"
    return index if index.is_file() else None


def forget_docs(docs_dir: Path | None) -> None:
    """Drop the validation results collected for ``docs_dir`` without rendering them (Data Docs
    not wanted for a run that passed)."""
    if docs_dir is not None:
        with _LOCK:
            _CONTEXTS.pop(str(Path(docs_dir).resolve()), None)


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and callable(value.item) else value


def _describe_observed(result: dict[str, Any], index_cols: list[str]) -> str:
    if result.get("observed_value") is None and (
        result.get("partial_unexpected_list") is not None
        and result.get("partial_missing_list") is not None
    ):  # set comparisons (distinct values): say what is extra and what is missing
        extra = [_plain(v) for v in result["partial_unexpected_list"]]
        missing = [_plain(v) for v in result["partial_missing_list"]]
        parts = ([f"unexpected {extra}"] if extra else []) + (
            [f"missing {missing}"] if missing else []
        )
        return "; ".join(parts) or "(no value)"
    if "observed_value" in result:
        return repr(_plain(result["observed_value"]))
    count = result.get("unexpected_count")
    if count is None:
        return "(no value)"
    if result.get("element_count") == 1 and result.get("partial_unexpected_list"):
        # A one-row frame of measured figures: the figure itself is the observation.
        return repr(_plain(result["partial_unexpected_list"][0]))
    pct = result.get("unexpected_percent")
    text = f"{count} bad row(s)" + (f" ({pct:.1f}%)" if pct is not None else "")
    where = result.get("partial_unexpected_index_list") or []
    if where and isinstance(where[0], dict):
        spots = []
        for item in where[:5]:
            if "file" in item and "row" in item:
                extra = [
                    repr(_plain(item[k]))[:40]
                    for k in index_cols
                    if k in item and k not in ("file", "row")
                ]
                place = " ".join([f"{item['file']} row {item['row']}", *extra])
                values = [repr(_plain(v))[:40] for k, v in item.items() if k not in index_cols]
                # With the text shown as an index column the flag value adds nothing.
                values = [] if extra else values
            else:
                place = " ".join(f"{k} {_plain(item[k])}" for k in index_cols if k in item)
                values = [repr(_plain(v))[:40] for k, v in item.items() if k not in index_cols]
            spots.append(place + (f": {values[0]}" if values else ""))
        text += ", e.g. " + "; ".join(spots)
    elif result.get("partial_unexpected_list"):
        shown = result["partial_unexpected_list"][:5]
        text += ", e.g. " + ", ".join(repr(_plain(v))[:40] for v in shown)
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
    parts = []
    for k, v in shown.items():
        if isinstance(v, (list, set, tuple)) and len(v) >= 8:
            parts.append(f"{k}=[{len(v)} values]")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


def _delete_if_present(collection, name: str) -> None:
    try:
        collection.delete(name)
    except Exception:  # noqa: BLE001 - absent is fine; GX raises several types for that
        pass


def run_suite(
    gate: str,
    subject: str,
    frame: pd.DataFrame,
    expectations: list[Any],
    index_columns: list[str] | None = None,
    docs_dir: Path | None = None,
) -> SuiteResult:
    """Validate ``frame`` against ``expectations`` with an ephemeral GX context.

    Args:
        gate: gate name (reported with each failure).
        subject: what the frame is (e.g. ``target train``); also names the GX suite.
        frame: the data.
        expectations: GX 1.x expectation objects.
        index_columns: columns that locate a bad row in reports (default: ``file`` and ``row``
            when the frame has them).
        docs_dir: when given, the result is kept for :func:`build_docs` to render as GX Data
            Docs into this folder.

    Returns:
        The result, with one :class:`FailedCheck` per failed expectation.
    """
    import great_expectations as gx

    if index_columns is None:
        index_columns = [c for c in ("file", "row") if c in frame.columns]
    result_format: dict[str, Any] = {"result_format": "SUMMARY"}
    if index_columns:
        result_format["unexpected_index_column_names"] = index_columns
    name = f"{gate} - {subject}"
    with _LOCK:
        ctx = _context(docs_dir)
        for collection in (ctx.checkpoints, ctx.validation_definitions, ctx.suites):
            _delete_if_present(collection, name)
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
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch_def, suite=suite)
        )
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(name=name, validation_definitions=[vd], result_format=result_format)
        )
        run = checkpoint.run(batch_parameters={"dataframe": frame})
        outcome = next(iter(run.run_results.values()))
    failures = []
    for res in outcome.results:
        if res.success:
            continue
        cfg = res.expectation_config
        kwargs = dict(cfg.kwargs)
        if res.exception_info and res.exception_info.get("raised_exception"):
            observed = "error: " + str(res.exception_info.get("exception_message"))[:200]
        else:
            observed = _describe_observed(res.result, index_columns)
        failures.append(
            FailedCheck(
                gate=gate,
                expectation=cfg.type,
                column=kwargs.get("column"),
                observed=observed,
                expected=_describe_expected(kwargs),
                hint=plain(gate, cfg.type, kwargs.get("column")),
            )
        )
    return SuiteResult(
        suite=name, success=bool(outcome.success), failures=failures, evaluated=len(outcome.results)
    )


def one_row(**figures: Any) -> pd.DataFrame:
    """A one-row frame of measured figures, for expectations on scalar metrics."""
    return pd.DataFrame([figures])
