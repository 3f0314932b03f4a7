"""The OKR file: validation errors, metric selection SQL (vs pandas on small tables) and progress (vs hand computation)."""

import datetime as dt
import math
import textwrap

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.lib.okrs import (
    KeyResult,
    OkrConfigError,
    OkrFile,
    expected_progress,
    key_result_values,
    load_okrs,
    metric_value_query,
    okr_progress,
)
from orchestration.lib.settings import dbt_var

METRICS = dbt_var("experiment_metrics")
D = dt.date


def kr(**overrides) -> KeyResult:
    base = dict(
        id="kr",
        objective="obj",
        description="",
        kind="kpi",
        metric="conversion_rate",
        model_id=None,
        experiment_id=None,
        weight=None,
        baseline=0.05,
        target=0.07,
        start_date=D(2026, 9, 1),
        deadline=D(2026, 12, 31),
        window_days=7,
        attribution_metric=None,
    )
    return KeyResult(**(base | overrides))


# --- the file ----------------------------------------------------------------------


def test_the_shipped_okr_file_is_valid_and_binds_every_kind():
    okrs = load_okrs(METRICS)
    kinds = {k.kind for k in okrs.key_results}
    assert kinds == {"kpi", "health", "net_value", "lift"}
    assert len({k.id for k in okrs.key_results}) == len(okrs.key_results)
    assert all(k.objective in okrs.objectives for k in okrs.key_results)
    # the scorecard judges at least one KPI through an experiment metric, and a lower-is-better target exists
    assert any(k.kind == "kpi" and k.attribution_metric for k in okrs.key_results)
    assert any(k.lower_is_better for k in okrs.key_results)


def _write(tmp_path, key_result: str, objective_extra: str = "") -> object:
    path = tmp_path / "okrs.yml"
    body = textwrap.indent(textwrap.dedent(key_result).strip(), " " * 6)
    path.write_text(f"objectives:\n  - id: obj\n{objective_extra}    key_results:\n{body}\n")
    return path


GOOD = """
- id: conv
  metric: {kind: kpi, name: conversion_rate}
  baseline: 0.05
  target: 0.06
  start_date: 2026-09-01
  deadline: 2026-12-31
"""


def test_a_minimal_file_loads_with_defaults(tmp_path):
    okrs = load_okrs(METRICS, _write(tmp_path, GOOD))
    (k,) = okrs.key_results
    assert (k.kind, k.metric, k.window_days, k.weight, k.start_date) == (
        "kpi",
        "conversion_rate",
        7,
        None,
        D(2026, 9, 1),
    )
    assert k.target_relative_effect == pytest.approx(0.2)


def test_objective_dates_are_inherited(tmp_path):
    kr_text = "- id: conv\n  metric: {kind: kpi, name: conversion_rate}\n  baseline: 0.05\n  target: 0.06\n"
    path = _write(tmp_path, kr_text, "    start_date: 2026-10-01\n    deadline: 2026-11-01\n")
    (k,) = load_okrs(METRICS, path).key_results
    assert (k.start_date, k.deadline) == (D(2026, 10, 1), D(2026, 11, 1))


@pytest.mark.parametrize(
    "replace, field, why",
    [
        (("kind: kpi", "kind: vibes"), "metric.kind", "unknown kind 'vibes'"),
        (("name: conversion_rate", "name: happiness"), "metric.name", "not a column of marts.kpi_daily"),
        (
            ("{kind: kpi, name: conversion_rate}", "{kind: kpi, name: conversion_rate, weight: nope}"),
            "metric.weight",
            "not a column of marts.kpi_daily",
        ),
        (("deadline: 2026-12-31", "deadline: 2026-08-01"), "deadline", "is not after start_date"),
        (("target: 0.06", "target: 0.05"), "baseline", "nothing to progress"),
        (("baseline: 0.05", "baseline: lots"), "baseline", "not a finite number"),
        (("start_date: 2026-09-01", "start_date: someday"), "start_date", "not a date"),
        (
            ("{kind: kpi, name: conversion_rate}", "{kind: lift, model: recommender, metric: happiness}"),
            "metric.metric",
            "not a declared experiment metric",
        ),
        (
            ("{kind: kpi, name: conversion_rate}", "{kind: health, name: precision}"),
            "metric.model",
            "required for kind health",
        ),
        (
            ("{kind: kpi, name: conversion_rate}", "{kind: health, model: recommender, name: revenue}"),
            "metric.name",
            "not a column of marts.model_health_daily",
        ),
        (
            ("{kind: kpi, name: conversion_rate}", "{kind: net_value, model: recommender, name: x}"),
            "metric",
            "unknown key(s) ['name']",
        ),
        (("target: 0.06", "target: 0.06\n  window_days: 0"), "window_days", "not a positive whole number"),
        (
            ("target: 0.06", "target: 0.06\n  attribution_metric: happiness"),
            "attribution_metric",
            "not a declared experiment metric",
        ),
        (("target: 0.06", "target: 0.06\n  tagret: 0.07"), "['tagret']", "unknown field"),
        (("deadline: 2026-12-31\n", ""), "deadline", "is missing"),
    ],
)
def test_bad_key_results_name_the_file_key_result_and_field(tmp_path, replace, field, why):
    path = _write(tmp_path, GOOD.replace(*replace))
    with pytest.raises(OkrConfigError) as err:
        load_okrs(METRICS, path)
    message = str(err.value)
    assert str(path) in message and "key result 'conv'" in message and field in message and why in message


def test_attribution_metric_only_on_kpis_and_ids_unique(tmp_path):
    lift = GOOD.replace("{kind: kpi, name: conversion_rate}", "{kind: net_value, model: recommender}")
    with pytest.raises(OkrConfigError, match="'attribution_metric' only applies to kind kpi"):
        load_okrs(
            METRICS, _write(tmp_path, lift.replace("target: 0.06", "target: 0.06\n  attribution_metric: conversion"))
        )
    with pytest.raises(OkrConfigError, match="key result 'conv': duplicate key result id"):
        load_okrs(METRICS, _write(tmp_path, GOOD + GOOD))


def test_missing_or_empty_files_are_named(tmp_path):
    with pytest.raises(OkrConfigError, match="nope.yml: OKR file not found"):
        load_okrs(METRICS, tmp_path / "nope.yml")
    (tmp_path / "empty.yml").write_text("objectives: []\n")
    with pytest.raises(OkrConfigError, match="empty.yml: 'objectives' must be a non-empty list"):
        load_okrs(METRICS, tmp_path / "empty.yml")


# --- selecting values (SQL) ---------------------------------------------------------

DECIDED = {"decision_grade": True, "decision_grade_reason": None}  # an attribution row a decision may rest on
# the intervals an attribution row carries (not read by the tests that do not look at significance)
INTERVALS = {
    c: float("nan")
    for c in (
        "net_value_ci_low",
        "net_value_ci_high",
        "relative_ci_low",
        "relative_ci_high",
        "cuped_relative_ci_low",
        "cuped_relative_ci_high",
    )
} | {"significant": None}


@pytest.fixture
def conn():
    with duckdb.connect() as c:
        for schema in ("marts", "attribution"):
            c.execute(f"CREATE SCHEMA {schema}")
        yield c


def _values(conn, k: KeyResult, first: dt.date, last: dt.date) -> pd.Series:
    sql, params = metric_value_query(k, first, last)
    frame = conn.execute(sql, params).df()
    return frame.set_index(pd.to_datetime(frame["date"]))["current_value"]


def test_kpi_trailing_weighted_mean_matches_pandas_rolling(conn):
    # a rate final on its day (conversion_rate's window ends kpi_lookback_days back: the test further down)
    rng = np.random.default_rng(7)
    days = pd.date_range("2026-09-01", "2026-09-20")
    kpis = pd.DataFrame(
        {
            "date": days.date,
            "sessions": rng.integers(50, 500, len(days)).astype(float),
            "refund_rate": rng.uniform(0.03, 0.08, len(days)),
        }
    )
    kpis.loc[4, "refund_rate"] = None  # a day without a value
    kpis = kpis.drop(index=[10, 11])  # two days missing altogether
    conn.execute("CREATE TABLE marts.kpi_daily AS SELECT * FROM kpis")
    k = kr(metric="refund_rate", weight="sessions", window_days=5)
    got = _values(conn, k, D(2026, 9, 1), D(2026, 9, 20))

    # oracle: time-based rolling sums over the calendar days of each window
    indexed = kpis.set_index(pd.to_datetime(kpis["date"])).dropna(subset=["refund_rate"])
    weighted = (indexed["refund_rate"] * indexed["sessions"]).rolling("5D").sum()
    expected = (weighted / indexed["sessions"].rolling("5D").sum()).reindex(days)
    # days without a row of their own still have a trailing window
    for day in (pd.Timestamp("2026-09-05"), pd.Timestamp("2026-09-11"), pd.Timestamp("2026-09-12")):
        window = indexed[(indexed.index > day - pd.Timedelta(days=5)) & (indexed.index <= day)]
        expected[day] = (window["refund_rate"] * window["sessions"]).sum() / window["sessions"].sum()
    assert len(got) == len(days)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-12)

    unweighted = _values(conn, kr(metric="refund_rate", window_days=3), D(2026, 9, 20), D(2026, 9, 20)).iloc[0]
    assert unweighted == pytest.approx(
        kpis.set_index("date").loc[[D(2026, 9, 18), D(2026, 9, 19), D(2026, 9, 20)], "refund_rate"].mean()
    )
    # before any data: no value
    assert math.isnan(_values(conn, k, D(2026, 8, 20), D(2026, 8, 20)).iloc[0])


def test_a_key_result_keeps_its_deadlines_value_after_it_once_its_window_has_none(conn):
    # a trial's model stopped after the deadline: its key result went from "missed" to "no_data" a week later,
    # the outcome lost from the report
    from orchestration.lib.okrs import key_result_values, okr_progress

    kpis = pd.DataFrame({"date": pd.date_range("2026-09-01", "2026-09-30").date, "refund_rate": 0.06})
    kpis.loc[kpis["date"] >= D(2026, 9, 20), "refund_rate"] = None  # the data ends on 09-19
    conn.execute("CREATE TABLE marts.kpi_daily AS SELECT * FROM kpis")
    k = kr(metric="refund_rate", deadline=D(2026, 9, 22), window_days=3)
    okrs = type("Okrs", (), {"key_results": [k]})()
    values = key_result_values(conn, okrs, D(2026, 9, 18), D(2026, 9, 30))
    values = values.set_index(pd.to_datetime(values["date"]).dt.date)
    # by hand: the 3-day window of the deadline 09-22 holds 09-20..09-22, no value: nothing to keep after it
    assert values["current_value"].isna().loc[[D(2026, 9, 23), D(2026, 9, 30)]].all()
    k = kr(metric="refund_rate", deadline=D(2026, 9, 21), window_days=3)  # the window of 09-21 holds 09-19's 0.06
    okrs.key_results = [k]
    values = key_result_values(conn, okrs, D(2026, 9, 18), D(2026, 9, 30))
    rows = okr_progress(okrs, values).set_index("date")
    assert rows.loc[D(2026, 9, 30), "current_value"] == pytest.approx(0.06)
    assert rows.loc[D(2026, 9, 30), "value_as_of"] == D(2026, 9, 19)  # the deadline window's newest day
    assert rows.loc[D(2026, 9, 30), "status"] == "missed"  # progress 0.5 at the deadline
    assert rows.loc[D(2026, 9, 25), "status"] == "missed" and rows.loc[D(2026, 9, 20), "status"] == "behind"


def test_health_value_is_the_live_versions(conn):
    health = pd.DataFrame(
        {
            "date": [D(2026, 9, 1)] * 3 + [D(2026, 9, 2)] * 2,
            "model_id": ["rec", "rec", "other", "rec", "rec"],
            "model_version": ["v1", "v2", "v1", "v1", "v2"],
            "predictions": [1800, 200, 5000, 300, 1700],  # v2 is a canary on day 1, live on day 2
            "labelled": [100, 10, 100, 20, 80],
            "precision": [0.6, 0.9, 0.1, 0.5, 0.8],
        }
    )
    conn.execute("CREATE TABLE marts.model_health_daily AS SELECT * FROM health")
    k = kr(kind="health", metric="precision", model_id="rec", window_days=1)
    assert _values(conn, k, D(2026, 9, 1), D(2026, 9, 2)).tolist() == pytest.approx([0.6, 0.8])
    two_days = _values(
        conn,
        kr(kind="health", metric="precision", model_id="rec", window_days=2, weight="labelled"),
        D(2026, 9, 2),
        D(2026, 9, 2),
    ).iloc[0]
    assert two_days == pytest.approx((0.6 * 100 + 0.8 * 80) / 180)


def test_a_label_based_health_value_on_few_labels_is_not_trustworthy(conn):
    # a trial's precision key result was "achieved" at 1.0 on a window holding one labelled decline
    health = pd.DataFrame(
        {
            "date": [D(2026, 10, d) for d in range(10, 17)],
            "model_id": "risk",
            "model_version": "v1",
            "predictions": 80,
            "labelled": [1, 0, 0, 0, 0, 0, 0],
            "precision": [1.0] + [None] * 6,
            "mean_score": 0.3,
        }
    )
    conn.execute("CREATE TABLE marts.model_health_daily AS SELECT * FROM health")
    precision = kr(kind="health", metric="precision", model_id="risk", baseline=0.5, target=0.6, window_days=7)
    okrs = type("Okrs", (), {"key_results": [precision]})()
    rows = okr_progress(okrs, key_result_values(conn, okrs, D(2026, 10, 16), D(2026, 10, 16), min_labelled=50))
    row = rows.iloc[0]
    # by hand: the window 10-10..10-16 holds 1 labelled prediction, under 50
    assert row["status"] == "achieved" and row["trustworthy"] == False  # noqa: E712
    assert row["untrusted_reason"] == "1 labelled prediction(s) in the window, fewer than alerts.min_labelled (50)"
    enough = okr_progress(okrs, key_result_values(conn, okrs, D(2026, 10, 16), D(2026, 10, 16), min_labelled=1))
    assert enough.iloc[0]["trustworthy"] == True and enough.iloc[0]["untrusted_reason"] is None  # noqa: E712
    # a metric not read from labels says nothing of them
    score = kr(kind="health", metric="mean_score", model_id="risk", baseline=0.5, target=0.2, window_days=7)
    okrs.key_results = [score]
    plain = okr_progress(okrs, key_result_values(conn, okrs, D(2026, 10, 16), D(2026, 10, 16), min_labelled=50))
    assert plain.iloc[0]["trustworthy"] is None and plain.iloc[0]["untrusted_reason"] is None


def test_net_value_and_lift_read_the_cumulative_row_of_the_main_experiment(conn):
    impact = pd.DataFrame(
        {
            "model_id": ["rec"] * 4,
            "experiment_id": ["big", "big", "small", "big"],
            "analysis_window": ["cumulative", "day", "cumulative", "cumulative"],
            "as_of_date": [D(2026, 9, 2), D(2026, 9, 2), D(2026, 9, 2), D(2026, 9, 3)],
            "treated_units": [900, 900, 10, 950],
            "net_value": [100.0, 7.0, 5.0, 120.0],
        }
    ).assign(treatment_variant="treatment", trustworthy=True, untrusted_reason=None, **DECIDED, **INTERVALS)
    conn.execute("CREATE TABLE attribution.model_impact AS SELECT * FROM impact")
    k = kr(kind="net_value", metric="net_value", model_id="rec", baseline=0, target=1000)
    got = _values(conn, k, D(2026, 9, 1), D(2026, 9, 3))
    assert math.isnan(got.iloc[0]) and got.iloc[1:].tolist() == [100.0, 120.0]
    pinned = _values(
        conn,
        kr(kind="net_value", metric="net_value", model_id="rec", experiment_id="small"),
        D(2026, 9, 2),
        D(2026, 9, 2),
    )
    assert pinned.tolist() == [5.0]

    results = pd.DataFrame(
        {
            "model_id": ["rec"] * 3,
            "experiment_id": ["big"] * 3,
            "metric": ["revenue_per_user", "revenue_per_user", "conversion"],
            "analysis_window": ["cumulative"] * 3,
            "as_of_date": [D(2026, 9, 2), D(2026, 9, 3), D(2026, 9, 3)],
            "n_treatment": [900, 950, 950],
            "estimate": ["welch", "cuped", "cuped"],
            "relative_lift": [0.10, 0.12, 0.5],
            "cuped_relative_lift": [0.09, 0.11, 0.4],
        }
    ).assign(treatment_variant="treatment", trustworthy=True, untrusted_reason=None, **DECIDED, **INTERVALS)
    conn.execute("CREATE TABLE attribution.experiment_results AS SELECT * FROM results")
    lift = kr(kind="lift", metric="revenue_per_user", model_id="rec", baseline=0, target=0.2)
    assert _values(conn, lift, D(2026, 9, 2), D(2026, 9, 3)).tolist() == [0.10, 0.11]  # CUPED when the results use it


def test_a_lift_or_net_value_of_a_row_that_is_not_decision_grade_is_not_trustworthy(conn):
    # a trial's lift key result read "achieved, trustworthy" at +157% .. +800% on 14 against 18 students, untested
    small = "control arm: 18 units (< min_units_per_arm 30); not tested: 3 events in the control arm (< 5)"
    results = pd.DataFrame(
        {
            "model_id": "rec",
            "experiment_id": "e",
            "metric": "conversion",
            "analysis_window": "cumulative",
            "as_of_date": [D(2026, 9, 1), D(2026, 9, 2), D(2026, 9, 3)],
            "n_treatment": 14,
            "estimate": "welch",
            "relative_lift": [1.57, 8.0, 2.43],
            "cuped_relative_lift": None,
            "treatment_variant": "treatment",
            "trustworthy": [True, True, False],
            "untrusted_reason": [None, None, "sample ratio mismatch"],
            "decision_grade": [True, False, False],
            "decision_grade_reason": [None, small, f"{small}; not trustworthy"],
        }
    ).assign(**INTERVALS)
    conn.execute("CREATE TABLE attribution.experiment_results AS SELECT * FROM results")
    k = kr(kind="lift", metric="conversion", model_id="rec", baseline=0, target=0.2)
    sql, params = metric_value_query(k, D(2026, 9, 1), D(2026, 9, 3))
    frame = conn.execute(sql, params).df()
    assert frame["trustworthy"].tolist() == [True, False, False]
    # the grade's reason where the row was trusted, the trust's own where it was not
    reasons = frame["untrusted_reason"].tolist()
    assert pd.isna(reasons[0]) and reasons[1:] == [f"not decision-grade: {small}", "sample ratio mismatch"]


# --- progress --------------------------------------------------------------------


def test_expected_progress_is_the_clipped_linear_pace():
    start, deadline = D(2026, 9, 1), D(2026, 9, 11)
    assert expected_progress(D(2026, 8, 30), start, deadline) == 0.0
    assert expected_progress(D(2026, 9, 4), start, deadline) == pytest.approx(0.3)
    assert expected_progress(D(2026, 9, 30), start, deadline) == 1.0


def test_progress_rows_by_hand_in_both_directions():
    up = kr(id="up", baseline=0.05, target=0.07, start_date=D(2026, 9, 1), deadline=D(2026, 9, 11))
    down = kr(
        id="down", metric="refund_rate", baseline=0.06, target=0.04, start_date=D(2026, 9, 1), deadline=D(2026, 9, 11)
    )
    okrs = OkrFile("okrs", {"obj": ""}, [up, down])
    values = pd.DataFrame(
        [
            ("up", D(2026, 8, 31), 0.055),  # before the start
            ("up", D(2026, 9, 6), 0.062),  # 60% of the way, pace 50%
            ("up", D(2026, 9, 8), 0.062),  # 60%, pace 70%
            ("up", D(2026, 9, 9), 0.071),  # past the target
            ("up", D(2026, 9, 10), None),
            ("down", D(2026, 9, 6), 0.055),  # lower is better: 25% of the way, pace 50%
            ("down", D(2026, 9, 7), 0.065),  # moved the wrong way
            ("down", D(2026, 9, 12), 0.045),  # after the deadline, not reached
        ],
        columns=["key_result", "date", "current_value"],
    )
    out = okr_progress(okrs, values).set_index(["key_result", "date"])
    rows = {k: out.loc[k] for k in out.index}
    assert rows[("up", D(2026, 8, 31))]["status"] == "not_started"
    r = rows[("up", D(2026, 9, 6))]
    assert (r["progress"], r["expected_progress"], r["on_track"], r["status"]) == (
        pytest.approx(0.6),
        pytest.approx(0.5),
        True,
        "on_track",
    )
    r = rows[("up", D(2026, 9, 8))]
    assert (r["progress"], r["expected_progress"], r["on_track"], r["status"]) == (
        pytest.approx(0.6),
        pytest.approx(0.7),
        False,
        "behind",
    )
    assert rows[("up", D(2026, 9, 9))]["progress"] == pytest.approx(1.05)
    assert rows[("up", D(2026, 9, 9))]["status"] == "achieved"
    r = rows[("up", D(2026, 9, 10))]
    assert math.isnan(r["progress"]) and r["on_track"] is None and r["status"] == "no_data"
    assert rows[("down", D(2026, 9, 6))]["progress"] == pytest.approx(0.25)
    assert rows[("down", D(2026, 9, 6))]["status"] == "behind"
    assert rows[("down", D(2026, 9, 7))]["progress"] == pytest.approx(-0.25)
    assert rows[("down", D(2026, 9, 12))]["status"] == "missed"
    assert rows[("down", D(2026, 9, 12))]["expected_progress"] == 1.0


def test_a_project_file_without_okrs_has_none(tmp_path, monkeypatch):
    config = tmp_path / "impact_ledger.yml"
    config.write_text("currency: EUR\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    assert load_okrs(METRICS).key_results == []


def _frame(conn, okrs, first, last) -> pd.DataFrame:
    [k] = okrs.key_results
    return conn.execute(*metric_value_query(k, first, last)).df().assign(key_result=k.id)


def test_a_net_value_or_lift_says_its_interval_and_whether_it_excludes_0(conn):
    # two trials: "achieved, trustworthy" beside the headline's net value 7,123 [-910, 15,156], not significant
    impact = pd.DataFrame(
        {
            "model_id": "rec",
            "experiment_id": "e",
            "analysis_window": "cumulative",
            "as_of_date": [D(2026, 9, 1), D(2026, 9, 2), D(2026, 9, 3)],
            "treated_units": 900,
            "net_value": [7_123.0, 9_000.0, 8_000.0],
            "net_value_ci_low": [-910.0, 1_200.0, float("nan")],
            "net_value_ci_high": [15_156.0, 16_800.0, float("nan")],
        }
    ).assign(treatment_variant="treatment", trustworthy=True, untrusted_reason=None, **DECIDED)
    conn.execute("CREATE TABLE attribution.model_impact AS SELECT * FROM impact")
    okrs = OkrFile(
        "okrs", {"obj": ""}, [kr(kind="net_value", metric="net_value", model_id="rec", baseline=0, target=5000)]
    )
    rows = okr_progress(okrs, _frame(conn, okrs, D(2026, 9, 1), D(2026, 9, 3))).set_index("date")
    # achieved on each day by progress alone; significant only where the interval excludes 0 (by hand)
    assert rows["status"].tolist() == ["achieved"] * 3
    assert rows["significant"].tolist() == [False, True, None]
    assert (rows.loc[D(2026, 9, 1), "ci_low"], rows.loc[D(2026, 9, 1), "ci_high"]) == (-910.0, 15_156.0)

    results = pd.DataFrame(
        {
            "model_id": "rec",
            "experiment_id": "e",
            "metric": "conversion",
            "analysis_window": "cumulative",
            "as_of_date": [D(2026, 9, 1), D(2026, 9, 2)],
            "n_treatment": 900,
            "estimate": ["welch", "cuped"],
            "relative_lift": [0.31, 0.44],
            "relative_ci_low": [-0.128, 0.10],
            "relative_ci_high": [1.40, 0.90],
            "cuped_relative_lift": [0.30, 0.435],
            "cuped_relative_ci_low": [-0.2, 0.156],
            "cuped_relative_ci_high": [1.3, 0.863],
            "significant": [False, True],  # the Holm-adjusted decision, as the headline says it
        }
    ).assign(treatment_variant="treatment", trustworthy=True, untrusted_reason=None, **DECIDED)
    conn.execute("CREATE TABLE attribution.experiment_results AS SELECT * FROM results")
    okrs = OkrFile("okrs", {"obj": ""}, [kr(kind="lift", metric="conversion", model_id="rec", baseline=0, target=0.3)])
    lift = okr_progress(okrs, _frame(conn, okrs, D(2026, 9, 1), D(2026, 9, 2))).set_index("date")
    assert lift["status"].tolist() == ["achieved", "achieved"] and lift["significant"].tolist() == [False, True]
    # the decision estimate's interval: Welch's on the first day, CUPED's on the second
    assert lift[["ci_low", "ci_high"]].values.tolist() == [[-0.128, 1.40], [0.156, 0.863]]


def test_a_conversion_key_result_reads_the_newest_days_whose_conversions_are_final(conn, tmp_path, monkeypatch):
    # a trial: the conversion key result read 0.218, "behind", on days whose orders had not landed (0.270 once they
    # had): a session converts with an order up to kpi_lookback_days later
    config = tmp_path / "project.yml"
    config.write_text("kpi_lookback_days: 3\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(config))
    days = pd.date_range("2026-10-01", "2026-10-20").date
    rates = [0.27] * 17 + [0.10, 0.05, 0.02]  # the last three days' orders not in yet
    kpis = pd.DataFrame({"date": days, "conversion_rate": rates, "sessions": 100, "revenue": 50.0})
    conn.execute("CREATE TABLE marts.kpi_daily AS SELECT * FROM kpis")
    conversion = kr(kind="kpi", metric="conversion_rate", weight="sessions", model_id=None, window_days=7)
    sql, params = metric_value_query(conversion, D(2026, 10, 20), D(2026, 10, 20))
    got = conn.execute(sql, params).df().iloc[0]
    # by hand: the 7 days ending 3 days back (10-11 .. 10-17), weighted by sessions
    window = kpis[(kpis["date"] >= D(2026, 10, 11)) & (kpis["date"] <= D(2026, 10, 17))]
    assert got["current_value"] == pytest.approx(np.average(window["conversion_rate"], weights=window["sessions"]))
    assert pd.Timestamp(got["value_as_of"]).date() == D(2026, 10, 17)
    # revenue is booked on its order's day: its window ends on the day itself
    revenue = kr(kind="kpi", metric="revenue", model_id=None, window_days=7)
    sql, params = metric_value_query(revenue, D(2026, 10, 20), D(2026, 10, 20))
    assert pd.Timestamp(conn.execute(sql, params).df().iloc[0]["value_as_of"]).date() == D(2026, 10, 20)
