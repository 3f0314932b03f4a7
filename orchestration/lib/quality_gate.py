"""Run a declarative Great Expectations suite over a DataFrame and summarise the outcome.

Suites live under expectations/suites/ as YAML in GX's own vocabulary
(expectation type + kwargs). Validation runs on pandas frames in an ephemeral
GX context: GX's SQL datasource on DuckDB is broken (GX #10738, #11579), and a
partition's slice fits in memory. GX is imported lazily because it costs ~2 s.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from orchestration.lib.settings import EXPECTATIONS_DIR

SAMPLE_SIZE = 5


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None
    unexpected_percent: float | None
    sample_unexpected: list[Any] = field(default_factory=list)
    observed_value: Any = None

    def describe(self) -> str:
        where = f" on {self.column}" if self.column else ""
        counts = (
            f": {self.unexpected_count} unexpected row(s) ({self.unexpected_percent:.2f}%), e.g. {self.sample_unexpected}"
            if self.unexpected_count is not None
            else f": observed {self.observed_value}"
        )
        return f"{self.expectation}{where}{counts}"


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    rows: int
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        if self.success:
            return f"suite {self.suite}: all {len(self.outcomes)} expectations passed on {self.rows} rows"
        lines = [f"suite {self.suite}: {len(self.failed)} of {len(self.outcomes)} expectations failed on {self.rows} rows"]
        lines += [f"- {o.describe()}" for o in self.failed]
        return "\n".join(lines)


def load_suite(name: str, directory: Path = EXPECTATIONS_DIR / "suites") -> dict:
    path = directory / f"{name}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"expectation suite '{name}' not found at {path}")
    suite = yaml.safe_load(path.read_text())
    for i, exp in enumerate(suite.get("expectations", [])):
        if "type" not in exp or "kwargs" not in exp:
            raise ValueError(f"{path}: expectation #{i + 1} needs 'type' and 'kwargs'")
    return suite


def suite_columns(suite: dict) -> list[str]:
    """Columns a suite reads, so only those are fetched from the warehouse."""
    cols = []
    for exp in suite["expectations"]:
        for key in ("column", "column_A", "column_B"):
            if key in exp["kwargs"] and exp["kwargs"][key] not in cols:
                cols.append(exp["kwargs"][key])
        for col in exp["kwargs"].get("column_list", []):
            if col not in cols:
                cols.append(col)
    return cols


def validate_frame(frame: pd.DataFrame, suite: dict, parameters: dict | None = None) -> SuiteResult:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep run logs readable
    batch = (
        context.data_sources.add_pandas(name="impact_ledger")
        .add_dataframe_asset(name=suite["name"])
        .add_batch_definition_whole_dataframe("partition")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    gx_suite = gx.ExpectationSuite(name=suite["name"])
    for exp in suite["expectations"]:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta", {}))
        )
    result = batch.validate(
        gx_suite,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE},
        expectation_parameters=parameters or {},
    )
    outcomes = []
    for r in result.results:
        details = r.result or {}
        outcomes.append(
            ExpectationOutcome(
                expectation=r.expectation_config.type,
                column=r.expectation_config.kwargs.get("column"),
                success=bool(r.success),
                unexpected_count=details.get("unexpected_count"),
                unexpected_percent=details.get("unexpected_percent"),
                sample_unexpected=list(details.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
                observed_value=details.get("observed_value"),
            )
        )
    return SuiteResult(suite["name"], len(frame), outcomes)
