"""Objectives and key results: the declared file, the SQL that reads each key result's metric, progress per day.

The project file's `okrs` section declares objectives, each with key results bound to one
metric: a KPI column of marts.kpi_daily (``kpi``), a model-health column of
marts.model_health_daily (``health``), a model's cumulative net value
(``net_value``, attribution.model_impact) or its cumulative relative lift on an
experiment metric (``lift``, attribution.experiment_results), both of one
treatment arm (``variant``, required where the model's experiment has several:
check_arms). SQL selects and
smooths the values (a few rows per key result and day); progress against the
linear pace from start to deadline is plain arithmetic here. No Dagster.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from orchestration.lib.attribution import experiment_design
from orchestration.lib.settings import DBT_PROJECT_DIR, dbt_var
from orchestration.lib.yaml_files import read_yaml

KINDS = ("kpi", "health", "net_value", "lift")
ARM_KINDS = ("net_value", "lift")  # one treatment arm's value vs its experiment's control
DEFAULT_WINDOW_DAYS = 7
# Columns of the dbt marts that are not metrics a key result can track.
_NOT_METRICS = {"date", "model_id", "model_version", "cbpe_calibrated", "labels_as_of"}
_BINDING_KEYS = {
    "kpi": {"kind", "name", "weight"},
    "health": {"kind", "model", "name", "weight"},
    "net_value": {"kind", "model", "experiment", "variant"},
    "lift": {"kind", "model", "metric", "experiment", "variant"},
}
_KR_KEYS = {
    "id",
    "description",
    "metric",
    "baseline",
    "target",
    "start_date",
    "deadline",
    "window_days",
    "attribution_metric",
    "model",
}

V, D, F, B = "VARCHAR", "DATE", "DOUBLE", "BOOLEAN"
PROGRESS_SCHEMA = {
    "date": D,
    "objective": V,
    "key_result": V,
    "description": V,
    "metric_kind": V,
    "metric": V,
    "model_id": V,
    "treatment_variant": V,
    "baseline": F,
    "target": F,
    "start_date": D,
    "deadline": D,
    "current_value": F,
    "value_as_of": D,
    "progress": F,
    "expected_progress": F,
    "on_track": B,
    "status": V,
    "trustworthy": B,
    "untrusted_reason": V,
    # net_value / lift: the value's 95% interval and whether it excludes 0 (a lift: the row's Holm-adjusted
    # `significant`): two trials read "achieved, trustworthy" beside a headline "not significant: CI includes 0"
    "ci_low": F,
    "ci_high": F,
    "significant": B,
}
# what key_result_values returns beside key_result, date and current_value (kpi / health: value_as_of only)
VALUE_COLUMNS = [
    "value_as_of",
    "treatment_variant",
    "trustworthy",
    "untrusted_reason",
    "ci_low",
    "ci_high",
    "significant",
]


class OkrConfigError(ValueError):
    """The OKR file is malformed; the message names the file, key result and field."""


@dataclass(frozen=True)
class KeyResult:
    id: str
    objective: str
    description: str
    kind: str  # kpi | health | net_value | lift
    metric: str  # KPI / health column, 'net_value', or the experiment metric of a lift
    model_id: str | None  # the model (health, net_value, lift; optional for kpi: restricts attribution)
    experiment_id: str | None  # optional: pins the experiment of a net_value / lift binding
    weight: str | None  # kpi / health: column weighting the trailing mean (e.g. sessions)
    baseline: float
    target: float
    start_date: dt.date
    deadline: dt.date
    window_days: int  # trailing days averaged for kpi / health values
    attribution_metric: str | None  # kpi: the experiment metric that attributes it (e.g. conversion)
    variant: str | None = None  # net_value / lift: the treatment arm (None: the experiment's only one)

    @property
    def lower_is_better(self) -> bool:
        return self.target < self.baseline

    @property
    def experiment_metric(self) -> str | None:
        """The experiment metric whose lift moves this key result, if any."""
        return self.metric if self.kind == "lift" else self.attribution_metric

    @property
    def target_relative_effect(self) -> float:
        """The treatment effect the key result asks for, relative to control.

        A lift target is already relative; a KPI going from baseline to target
        implies a relative change of target / baseline - 1.
        """
        if self.kind == "lift":
            return self.target
        return self.target / self.baseline - 1 if self.baseline else math.nan


@dataclass(frozen=True)
class OkrFile:
    path: str  # where the OKRs were declared (project file or standalone file), for messages
    objectives: dict[str, str]  # id -> description
    key_results: list[KeyResult]


def dbt_model_columns(model: str) -> set[str]:
    """Columns documented for a dbt model in the project's schema files (the one list Python and dbt share)."""
    for schema_file in sorted((DBT_PROJECT_DIR / "models").rglob("*.yml")):
        for entry in (read_yaml(schema_file) or {}).get("models", []) or []:
            if entry.get("name") == model:
                return {c["name"] for c in entry.get("columns", [])}
    raise KeyError(f"dbt model {model!r} is not documented under {DBT_PROJECT_DIR / 'models'}")


def metric_columns() -> dict[str, set[str]]:
    return {
        "kpi": dbt_model_columns("kpi_daily") - _NOT_METRICS,
        "health": dbt_model_columns("model_health_daily") - _NOT_METRICS,
    }


def _date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise OkrConfigError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise OkrConfigError(f"{where}: {value!r} is not a finite number")
    return float(value)


def _parse_key_result(raw, objective: dict, where: str, experiment_metrics: dict, columns: dict) -> KeyResult:
    if not isinstance(raw, dict) or not raw.get("id"):
        raise OkrConfigError(f"{where}: every key result needs an 'id'")
    where = f"{where} key result '{raw['id']}'"
    unknown = set(raw) - _KR_KEYS
    if unknown:
        raise OkrConfigError(f"{where}: unknown field(s) {sorted(unknown)} (known: {sorted(_KR_KEYS)})")
    inherited = {k: objective[k] for k in ("start_date", "deadline") if k in objective} | raw
    for required in ("metric", "baseline", "target", "start_date", "deadline"):
        if required not in inherited:
            raise OkrConfigError(f"{where}: field '{required}' is missing")
    binding = raw["metric"]
    if not isinstance(binding, dict) or binding.get("kind") not in KINDS:
        kind = binding.get("kind") if isinstance(binding, dict) else binding
        raise OkrConfigError(f"{where}: field 'metric.kind': unknown kind {kind!r} (known: {list(KINDS)})")
    kind = binding["kind"]
    unknown = set(binding) - _BINDING_KEYS[kind]
    if unknown:
        raise OkrConfigError(
            f"{where}: field 'metric': unknown key(s) {sorted(unknown)} for kind {kind} "
            f"(known: {sorted(_BINDING_KEYS[kind])})"
        )
    needed = {"kpi": ["name"], "health": ["model", "name"], "net_value": ["model"], "lift": ["model", "metric"]}[kind]
    for key in needed:
        if not binding.get(key):
            raise OkrConfigError(f"{where}: field 'metric.{key}' is required for kind {kind}")
    if kind in ("kpi", "health"):
        for key in ("name", "weight"):
            if binding.get(key) is not None and binding[key] not in columns[kind]:
                table = "marts.kpi_daily" if kind == "kpi" else "marts.model_health_daily"
                raise OkrConfigError(
                    f"{where}: field 'metric.{key}': {binding[key]!r} is not a column of {table} "
                    f"(known: {sorted(columns[kind])})"
                )
    if kind == "lift" and binding["metric"] not in experiment_metrics:
        raise OkrConfigError(
            f"{where}: field 'metric.metric': {binding['metric']!r} is not a declared experiment "
            f"metric (dbt var experiment_metrics: {sorted(experiment_metrics)})"
        )
    attribution_metric = raw.get("attribution_metric")
    if attribution_metric is not None:
        if kind != "kpi":
            raise OkrConfigError(f"{where}: field 'attribution_metric' only applies to kind kpi")
        if attribution_metric not in experiment_metrics:
            raise OkrConfigError(
                f"{where}: field 'attribution_metric': {attribution_metric!r} is not a declared "
                f"experiment metric (dbt var experiment_metrics: {sorted(experiment_metrics)})"
            )
    variant = binding.get("variant")
    if variant is not None and (not isinstance(variant, str) or not variant):
        raise OkrConfigError(f"{where}: field 'metric.variant': {variant!r} is not a treatment arm's name")
    if raw.get("model") is not None and kind != "kpi":
        raise OkrConfigError(f"{where}: field 'model' belongs inside 'metric' for kind {kind}")
    window = raw.get("window_days", DEFAULT_WINDOW_DAYS)
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise OkrConfigError(f"{where}: field 'window_days': {window!r} is not a positive whole number of days")
    baseline = _number(inherited["baseline"], f"{where}: field 'baseline'")
    target = _number(inherited["target"], f"{where}: field 'target'")
    if baseline == target:
        raise OkrConfigError(
            f"{where}: fields 'baseline' and 'target' are both {baseline}: there is nothing to progress"
        )
    if kind == "kpi" and attribution_metric and baseline == 0:
        raise OkrConfigError(f"{where}: field 'baseline': 0 implies no relative effect for attribution_metric")
    start = _date(inherited["start_date"], f"{where}: field 'start_date'")
    deadline = _date(inherited["deadline"], f"{where}: field 'deadline'")
    if deadline <= start:
        raise OkrConfigError(f"{where}: field 'deadline' {deadline} is not after start_date {start}")
    return KeyResult(
        id=str(raw["id"]),
        objective=objective["id"],
        description=str(raw.get("description", "")),
        kind=kind,
        metric={
            "kpi": binding.get("name"),
            "health": binding.get("name"),
            "net_value": "net_value",
            "lift": binding.get("metric"),
        }[kind],
        model_id=binding.get("model") or raw.get("model"),
        experiment_id=binding.get("experiment"),
        weight=binding.get("weight"),
        baseline=baseline,
        target=target,
        start_date=start,
        deadline=deadline,
        window_days=window,
        attribution_metric=attribution_metric,
        variant=variant,
    )


def parse_okrs(raw, experiment_metrics: dict, where: str) -> OkrFile:
    """Validate the `okrs` section ({objectives: [...]}); ``where`` names its file in errors. Empty: no OKRs."""
    if not raw:
        return OkrFile(where, {}, [])
    objectives = raw.get("objectives") if isinstance(raw, dict) else None
    if not isinstance(objectives, list) or not objectives:
        raise OkrConfigError(f"{where}: 'objectives' must be a non-empty list")
    columns = metric_columns()
    described, key_results, seen = {}, [], set()
    for i, objective in enumerate(objectives):
        if not isinstance(objective, dict) or not objective.get("id"):
            raise OkrConfigError(f"{where}: objective #{i + 1} needs an 'id'")
        at = f"{where}: objective '{objective['id']}'"
        if objective["id"] in described:
            raise OkrConfigError(f"{at}: duplicate objective id")
        if not isinstance(objective.get("key_results"), list) or not objective["key_results"]:
            raise OkrConfigError(f"{at}: field 'key_results' must be a non-empty list")
        described[objective["id"]] = str(objective.get("description", ""))
        for item in objective["key_results"]:
            kr = _parse_key_result(item, objective, at, experiment_metrics, columns)
            if kr.id in seen:
                raise OkrConfigError(f"{at} key result '{kr.id}': duplicate key result id (ids are unique per file)")
            seen.add(kr.id)
            key_results.append(kr)
    return OkrFile(where, described, key_results)


def load_okrs(experiment_metrics: dict, path: Path | None = None) -> OkrFile:
    """The OKRs of the project file (its `okrs` section), or of a standalone YAML file at ``path``.

    ``experiment_metrics`` is the dbt var of that name.
    """
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise OkrConfigError(f"{path}: OKR file not found")
        raw = yaml.safe_load(path.read_text())
        if not raw:
            raise OkrConfigError(f"{path}: 'objectives' must be a non-empty list")
        return parse_okrs(raw, experiment_metrics, str(path))
    from orchestration.lib.project_config import load_config

    config = load_config()
    return parse_okrs(config.okrs, experiment_metrics, f"{config.path or 'project config'}: okrs")


# --- selecting each key result's value per day (SQL) --------------------------

# an attribution row is believed when trustworthy and decision-grade: a trial's lift key result read "achieved,
# trustworthy" on rows of 14 and 18 students, untested (3 events in the holdout)
_ARM_COLUMNS = (
    "experiment_id, treatment_variant, trustworthy AND coalesce(decision_grade, true) AS trustworthy, "
    "CASE WHEN trustworthy AND NOT coalesce(decision_grade, true) THEN 'not decision-grade: ' || "
    "CAST(decision_grade_reason AS VARCHAR) ELSE CAST(untrusted_reason AS VARCHAR) END AS untrusted_reason"
)
# One row per day of the range, even when the metric has no value that day.
_DAYS = (
    "SELECT CAST(d AS DATE) AS date FROM range(CAST(? AS DATE), CAST(? AS DATE) + INTERVAL 1 DAY, INTERVAL 1 DAY) t(d)"
)


# health metrics read from labels: their window's value rests on its labelled predictions
LABEL_BASED = {
    "precision",
    "recall",
    "f1",
    "human_precision",
    "human_recall",
    "brier_score",
    "expected_calibration_error",
}


# KPI columns of a day that later days still change: a session converts with a completed order up to
# kpi_lookback_days later (the newest days' conversion only rises as orders land)
UNSETTLED_KPIS = {"conversion_rate", "converting_sessions"}


def _trailing_mean_sql(source: str, column: str, weight: str | None, labelled: bool = False, settle: int = 0) -> str:
    # Mean over the non-null values of the trailing window; a weight column
    # (e.g. sessions for conversion_rate) makes it the pooled rate of the window.
    # Exact decimal sums: parallel double sums differ in the last bits between
    # runs, and a backfill must give the rows that daily runs give.
    # value_as_of: the window's newest day with a value.
    # labelled: also the window's labelled predictions (window_labelled)
    # settle: the window ends that many days before the day (days whose value is not final yet are left out)
    w = f'm."{weight}"' if weight else "1.0"
    window_labelled = ", CAST(coalesce(sum(m.labelled), 0) AS BIGINT) AS window_labelled" if labelled else ""
    return f"""
WITH days AS ({_DAYS}), m AS ({source})
SELECT days.date, CAST(sum(CAST(m."{column}" * {w} AS DECIMAL(38, 15))) AS DOUBLE)
    / nullif(CAST(sum(CAST({w} AS DECIMAL(38, 15))) AS DOUBLE), 0) AS current_value, max(m.date) AS value_as_of
    {window_labelled}
FROM days
LEFT JOIN m ON m.date BETWEEN days.date - {settle} - (? - 1) AND days.date - {settle} AND m."{column}" IS NOT NULL
    AND {w} IS NOT NULL
GROUP BY days.date ORDER BY days.date
"""


def metric_value_query(kr: KeyResult, first: dt.date, last: dt.date) -> tuple[str, list]:
    """SQL + parameters returning (date, current_value, value_as_of, ...) for every day first..last.

    kpi / health: trailing mean over ``window_days`` days ending that day
    (value_as_of: the window's newest day with a value); a conversion KPI's window ends kpi_lookback_days before it,
    on the newest day whose conversions are final. A health value is the
    live version's: the version with the most predictions that day (ties: the
    highest version id), so a canary never blends in. net_value / lift: the
    cumulative (since experiment start) value of the newest day up to that day
    with one (value_as_of; after an experiment's data ends its final value is
    carried forward), of the named treatment arm (``variant``; none named: the
    model's experiments have one arm each, check_arms), from the model's
    experiment (the pinned one, else the one with the most treated units), with
    the arm read and the row's trustworthy / untrusted_reason. A lift is the
    relative lift of the decision estimate (CUPED when the results used it).
    """
    if kr.kind == "kpi":
        # a conversion key result read the newest days before their orders landed (a trial's 0.218, "behind", where
        # the settled days gave 0.270, on track): its window ends kpi_lookback_days back (value_as_of says so)
        settle = int(dbt_var("kpi_lookback_days")) if kr.metric in UNSETTLED_KPIS else 0
        sql = _trailing_mean_sql("SELECT * FROM marts.kpi_daily", kr.metric, kr.weight, settle=settle)
        return sql, [first, last, kr.window_days]
    if kr.kind == "health":
        live = (
            "SELECT * FROM marts.model_health_daily WHERE model_id = ? "
            "QUALIFY row_number() OVER (PARTITION BY date ORDER BY predictions DESC, model_version DESC) = 1"
        )
        labelled = kr.metric in LABEL_BASED
        return _trailing_mean_sql(live, kr.metric, kr.weight, labelled), [first, last, kr.model_id, kr.window_days]
    if kr.kind == "net_value":
        source = (
            f"SELECT as_of_date AS date, net_value AS value, treated_units AS units, {_ARM_COLUMNS}, "
            "net_value_ci_low AS ci_low, net_value_ci_high AS ci_high, "
            "CASE WHEN isnan(net_value_ci_low) OR isnan(net_value_ci_high) THEN NULL "
            "ELSE net_value_ci_low > 0 OR net_value_ci_high < 0 END AS significant "
            "FROM attribution.model_impact WHERE analysis_window = 'cumulative' AND model_id = ?"
        )
        params = [kr.model_id]
    else:
        source = (
            "SELECT as_of_date AS date, CASE WHEN estimate = 'cuped' THEN cuped_relative_lift "
            f"ELSE relative_lift END AS value, n_treatment AS units, {_ARM_COLUMNS}, "
            "CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_low ELSE relative_ci_low END AS ci_low, "
            "CASE WHEN estimate = 'cuped' THEN cuped_relative_ci_high ELSE relative_ci_high END AS ci_high, "
            "significant FROM attribution.experiment_results WHERE analysis_window = 'cumulative' AND model_id = ? AND metric = ?"
        )
        params = [kr.model_id, kr.metric]
    for column, value in (("experiment_id", kr.experiment_id), ("treatment_variant", kr.variant)):
        if value:
            source += f" AND {column} = ?"
            params.append(value)
    sql = f"""
WITH days AS ({_DAYS}), m AS ({source}
    QUALIFY row_number() OVER (PARTITION BY as_of_date ORDER BY units DESC, experiment_id) = 1)
SELECT days.date, m.value AS current_value, m.date AS value_as_of, m.treatment_variant, m.trustworthy,
    m.untrusted_reason, m.ci_low, m.ci_high, m.significant
FROM days ASOF LEFT JOIN m ON days.date >= m.date ORDER BY days.date
"""
    return sql, [first, last, *params]


def check_arms(okrs: OkrFile, experiments: pd.DataFrame, variants: pd.DataFrame) -> None:
    """Every net_value / lift key result reads one treatment arm of its model's experiments, or fails naming them.

    ``experiments``: experiment_id, model_id, control_variant; ``variants``:
    experiment_id, variant (the design, attribution.experiment_design). Each
    arm is compared with its experiment's control on its own treated users: a
    key result without ``variant`` reads the only arm, and is an error where an
    experiment of the model (the pinned one, if any) has several (the query
    would take each day's larger arm). Their sum is no key result: the arms
    share the control, so their estimates are correlated and their intervals do
    not add up. A named variant that is no treatment arm of the model's
    experiments is an error too; a model without experiments yet has no value.
    """
    for kr in okrs.key_results:
        if kr.kind not in ARM_KINDS:
            continue
        where = f"{okrs.path}: objective '{kr.objective}' key result '{kr.id}': field 'metric.variant'"
        mine = experiments[experiments["model_id"] == kr.model_id]
        if kr.experiment_id:
            mine = mine[mine["experiment_id"] == kr.experiment_id]
        arms = {
            (e.experiment_id, e.control_variant): sorted(
                variants.loc[
                    (variants["experiment_id"] == e.experiment_id) & (variants["variant"] != e.control_variant),
                    "variant",
                ]
            )
            for e in mine.itertuples(index=False)
        }
        named = "; ".join(f"{e}: {', '.join(a)} (control {c})" for (e, c), a in sorted(arms.items()))
        if kr.variant is None and any(len(a) > 1 for a in arms.values()):
            raise OkrConfigError(
                f"{where} is required: model {kr.model_id}'s experiment has several treatment arms ({named}); "
                f"a {kr.kind} key result reads one arm vs the control: name it (one key result per arm)"
            )
        if kr.variant is not None and arms and not any(kr.variant in a for a in arms.values()):
            raise OkrConfigError(f"{where}: {kr.variant!r} is not a treatment arm of model {kr.model_id} ({named})")


def check_before_loading(conn=None) -> OkrFile:
    """The run's OKRs, checked before its data loads rather than at the okr_progress and metric_scorecard steps
    (which check again): the project file's section (load_okrs: fields, kinds, the KPI and health columns, the
    experiment metrics) at the run's start; given ``conn`` once raw.experiments and raw.experiment_variants are
    loaded (the run's first tables, which staging's experiment design selects as they are), each net_value /
    lift key result's treatment arm (check_arms). Raises OkrConfigError."""
    okrs = load_okrs(dbt_var("experiment_metrics"))
    if conn is not None and any(kr.kind in ARM_KINDS for kr in okrs.key_results):
        experiments = conn.execute("SELECT experiment_id, model_id, control_variant FROM raw.experiments").df()
        check_arms(okrs, experiments, conn.execute("SELECT experiment_id, variant FROM raw.experiment_variants").df())
    return okrs


def key_result_values(
    conn, okrs: OkrFile, first: dt.date, last: dt.date, min_labelled: int | None = None
) -> pd.DataFrame:
    """(key_result, date, current_value, VALUE_COLUMNS) of every key result and day first..last
    (metric_value_query), once check_arms has found each net_value / lift key result its arm in the experiment
    design. A label-based health value whose window holds fewer than ``min_labelled`` labelled predictions
    (alerts.min_labelled) is not trustworthy: a trial's precision key result was "achieved" on one label."""
    if any(kr.kind in ARM_KINDS for kr in okrs.key_results):
        check_arms(okrs, *experiment_design(conn))
    # no OKRs declared: no rows
    values = [pd.DataFrame(columns=["date", "current_value", *VALUE_COLUMNS, "key_result"])]
    for kr in okrs.key_results:
        sql, params = metric_value_query(kr, first, last)
        frame = _after_deadline(conn, kr, conn.execute(sql, params).df()).assign(key_result=kr.id)
        if "window_labelled" in frame and min_labelled:
            frame = _few_labels(frame, min_labelled)
        values.append(frame)
    return pd.concat(values, ignore_index=True)


def _few_labels(frame: pd.DataFrame, min_labelled: int) -> pd.DataFrame:
    """A label-based value of too few labelled predictions: not trustworthy, with the count (its status stays the
    value's, as a net value's does beside its trustworthy flag)."""
    valued = frame["current_value"].notna()
    few = valued & (frame["window_labelled"] < min_labelled)
    frame = frame.assign(
        trustworthy=valued.where(~few, False).where(valued, None),
        untrusted_reason=[
            f"{n} labelled prediction(s) in the window, fewer than alerts.min_labelled ({min_labelled})" if f else None
            for n, f in zip(frame["window_labelled"], few, strict=True)
        ],
    )
    return frame.drop(columns="window_labelled")


def _after_deadline(conn, kr: KeyResult, frame: pd.DataFrame) -> pd.DataFrame:
    """A day after the deadline whose window has no value keeps the deadline's (value_as_of saying which day): the
    key result's outcome, not 'no_data' once a model stops or a KPI's data ends."""
    gap = (pd.to_datetime(frame["date"]).dt.date > kr.deadline) & frame["current_value"].isna()
    if not gap.any():
        return frame
    at = conn.execute(*metric_value_query(kr, kr.deadline, kr.deadline)).df()
    if at.empty or at["current_value"].isna().all():
        return frame
    frame = frame.copy()
    for column in ["current_value", *(c for c in VALUE_COLUMNS if c in at.columns and c in frame.columns)]:
        frame[column] = frame[column].astype(object)
        frame.loc[gap, column] = at[column].iloc[0]
    frame["current_value"] = frame["current_value"].astype(float)
    return frame


# --- progress -------------------------------------------------------------------


def expected_progress(day: dt.date, start: dt.date, deadline: dt.date) -> float:
    """Linear pace: the share of the start..deadline period elapsed on ``day``, clipped to [0, 1]."""
    return min(max((day - start).days / (deadline - start).days, 0.0), 1.0)


def progress_status(day: dt.date, kr: KeyResult, progress: float, expected: float) -> str:
    if day < kr.start_date:
        return "not_started"
    if progress is None or math.isnan(progress):
        return "no_data"
    if progress >= 1:
        return "achieved"
    if day > kr.deadline:
        return "missed"
    return "on_track" if progress >= expected else "behind"


def okr_progress(okrs: OkrFile, values: pd.DataFrame) -> pd.DataFrame:
    """One row per key result and day of ``values`` (key_result, date, current_value), in PROGRESS_SCHEMA.

    progress = (current - baseline) / (target - baseline): 0 at the baseline,
    1 at the target, negative when the metric moved the wrong way, whichever
    direction the target lies in. on_track = progress >= the linear pace. The
    status is the progress's alone; ``trustworthy`` (net_value / lift: the
    attribution row read; a label-based health value: enough labelled predictions in its window; NULL for kpi
    and other health metrics) says whether to believe it, and ``significant`` (net_value / lift) whether it is
    more than noise: an achieved key result that is not is no achievement yet.
    ``values`` may lack VALUE_COLUMNS (then NULL; value_as_of: the date itself
    where there is a value).
    """
    by_id = {kr.id: kr for kr in okrs.key_results}
    rows = []
    for _, v in values.reindex(columns=[*values.columns.union(VALUE_COLUMNS, sort=False)]).iterrows():
        kr = by_id[v["key_result"]]
        day = pd.Timestamp(v["date"]).date()
        current = float(v["current_value"]) if pd.notna(v["current_value"]) else math.nan
        progress = (current - kr.baseline) / (kr.target - kr.baseline)
        expected = expected_progress(day, kr.start_date, kr.deadline)
        as_of = v["value_as_of"] if "value_as_of" in values else day
        trusted = _or_none(v["trustworthy"])
        rows.append(
            {
                "date": day,
                "objective": kr.objective,
                "key_result": kr.id,
                "description": kr.description,
                "metric_kind": kr.kind,
                "metric": kr.metric,
                "model_id": kr.model_id,
                "treatment_variant": _or_none(v["treatment_variant"]),
                "baseline": kr.baseline,
                "target": kr.target,
                "start_date": kr.start_date,
                "deadline": kr.deadline,
                "current_value": current,
                "value_as_of": None if math.isnan(current) or _or_none(as_of) is None else pd.Timestamp(as_of).date(),
                "progress": progress,
                "expected_progress": expected,
                "on_track": None if math.isnan(progress) else bool(progress >= expected),
                "status": progress_status(day, kr, progress, expected),
                "trustworthy": None if math.isnan(current) or trusted is None else bool(trusted),
                "untrusted_reason": None if math.isnan(current) else _or_none(v["untrusted_reason"]),
                "ci_low": _float(v["ci_low"]) if not math.isnan(current) else math.nan,
                "ci_high": _float(v["ci_high"]) if not math.isnan(current) else math.nan,
                "significant": None
                if math.isnan(current) or _or_none(v["significant"]) is None
                else bool(v["significant"]),
            }
        )
    return pd.DataFrame(rows, columns=list(PROGRESS_SCHEMA))


def _float(x) -> float:
    return math.nan if _or_none(x) is None else float(x)


def _or_none(x):
    return None if x is None or x is pd.NaT or (not isinstance(x, str) and pd.isna(x)) else x
