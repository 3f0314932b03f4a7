"""The experiment measures and metrics a project declares, checked before dbt renders them into SQL.

``marts.experiment_stats`` turns each measure into columns (``cumulative_<name>``, ``day_<name>``,
``pre_<name>``) and each metric into sums of those; the attribution step reads the metrics' direction and
guardrail settings. A typo there used to surface as a compile error or a missing column deep in a dbt run;
here it is a message naming the key. Defaults: ``vars`` of dbt_project.yml.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# a name becomes part of a column name in the SQL
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MeasureSpec(_Spec):
    """A per-unit aggregate of one activity source over a period (experiment_stats.sql)."""

    source: Literal["orders", "sessions"]
    aggregate: Literal["count", "sum"]
    expression: str | None = None  # SQL over the source's columns: what `sum` adds up
    where: str | None = None  # SQL filter over the source's columns, activity_date and assigned_date

    @model_validator(mode="after")
    def _sum_needs_expression(self):
        if self.aggregate == "sum" and not self.expression:
            raise ValueError("aggregate 'sum' needs an expression (the SQL it adds up)")
        return self


class MetricSpec(_Spec):
    """The per-unit value an experiment compares, from measures."""

    type: Literal["proportion", "mean", "ratio"]
    measure: str | None = None  # proportion, mean
    numerator: str | None = None  # ratio
    denominator: str | None = None  # ratio
    covariate: str | None = None  # the CUPED pre-period measure (proportion, mean)
    maturity_days: int | None = Field(default=None, ge=0)
    direction: Literal["higher_is_better", "lower_is_better"] = "higher_is_better"
    guardrail: bool = False
    non_inferiority_margin: float = Field(default=0.0, ge=0)
    description: str | None = None

    @model_validator(mode="after")
    def _measures_for_type(self):
        if self.type == "ratio":
            if not (self.numerator and self.denominator) or self.measure:
                raise ValueError("a ratio metric takes numerator and denominator (measures), not measure")
            if self.covariate:
                raise ValueError("a ratio metric has no CUPED covariate (the delta method alone)")
        elif not self.measure or self.numerator or self.denominator:
            raise ValueError(f"a {self.type} metric takes measure, not numerator/denominator")
        return self

    def measures_used(self) -> list[str]:
        return [m for m in (self.measure, self.numerator, self.denominator, self.covariate) if m]


def _problems(kind: str, specs: dict, model: type[_Spec]) -> tuple[dict, list[str]]:
    parsed, problems = {}, []
    if not isinstance(specs, dict) or not specs:
        return parsed, [f"{kind}: declare at least one (leave the key out for dbt_project.yml's defaults)"]
    for name, spec in specs.items():
        if not NAME.match(str(name)):
            problems.append(f"{kind}.{name}: a name of letters, digits and _ (it becomes a SQL column name)")
        try:
            parsed[name] = model.model_validate(spec if spec is not None else {})
        except ValidationError as err:
            for e in err.errors():
                where = ".".join(str(k) for k in (kind, name, *e["loc"]))
                problems.append(f"{where}: {e['msg'].removeprefix('Value error, ')}")
    return parsed, problems


def check_experiment_definitions(measures: dict, metrics: dict, attribution: dict) -> None:
    """Raise ValueError listing every problem of the measures, metrics and attribution value metric in effect
    (the project file's, else dbt_project.yml's defaults)."""
    parsed_measures, problems = _problems("experiment_measures", measures, MeasureSpec)
    parsed_metrics, more = _problems("experiment_metrics", metrics, MetricSpec)
    problems += more
    if parsed_measures or not problems:
        for name, metric in parsed_metrics.items():
            unknown = [m for m in metric.measures_used() if m not in measures]
            if unknown:
                problems.append(
                    f"experiment_metrics.{name}: unknown measure(s) {unknown}; experiment_measures are {sorted(measures)}"
                )
    value_metric = (attribution or {}).get("value_metric")
    if value_metric is not None and isinstance(metrics, dict) and metrics and value_metric not in metrics:
        problems.append(
            f"attribution.value_metric: {value_metric!r} is not an experiment metric; set it to one of {sorted(metrics)}"
        )
    if problems:
        raise ValueError("; ".join(problems))


def non_negative_metrics(measures: dict, metrics: dict) -> set[str]:
    """The metrics no unit's value of which is ever negative, so their relative lift is never below -100%: a
    proportion, and a mean (a ratio) of measures that count rows or sum a column the loader keeps non-negative
    (contract.non_negative_columns: orders.revenue). A sum of any other expression may be negative."""
    from orchestration.lib.contract import non_negative_columns

    def never_negative(name: str) -> bool:
        spec = measures.get(name) or {}
        if spec.get("aggregate") == "count":
            return True
        expression = str(spec.get("expression") or "").strip().strip('"')
        return spec.get("aggregate") == "sum" and expression in non_negative_columns(str(spec.get("source")))

    out = set()
    for name, spec in (metrics or {}).items():
        used = [spec.get(k) for k in ("measure", "numerator", "denominator") if spec.get(k)]
        if spec.get("type") == "proportion" or (used and all(never_negative(m) for m in used)):
            out.add(name)
    return out
