"""Experiment measures and metrics a project file declares (not dbt_project.yml's defaults) reach
marts.experiment_stats: dbt builds their sufficient statistics on a hand-made warehouse, checked against pandas.

The raw tables come from the real loader; dbt builds the four staging views and experiment_stats (about 10 s).
"""

from datetime import date, datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.lib.project_config import config_dbt_vars, parse_config
from orchestration.lib.raw_loader import load_partition
from tests.dbt_in_process import run_dbt
from tests.landing_files import write_parquet

START, AS_OF = date(2026, 9, 1), date(2026, 9, 3)
DAYS = pd.date_range(START, AS_OF).date
PROJECT = {
    "experiment_measures": {
        "big_orders": {"source": "orders", "aggregate": "count", "where": "revenue >= 20"},
        "spend": {"source": "orders", "aggregate": "sum", "expression": "revenue", "where": "status = 'completed'"},
        "visits": {"source": "sessions", "aggregate": "count"},
    },
    "experiment_metrics": {
        "big_buyer": {"type": "proportion", "measure": "big_orders"},
        "spend_per_user": {"type": "mean", "measure": "spend", "covariate": "visits"},
        "spend_per_visit": {"type": "ratio", "numerator": "spend", "denominator": "visits"},
    },
    "attribution": {"value_metric": "spend_per_user"},
}
# u1-u3 the never-exposed holdout, u4-u6 the model's arm; all assigned on the first day at 08:00
ARMS = {f"u{i}": ("holdout" if i <= 3 else "model") for i in range(1, 7)}
ASSIGNED = datetime(2026, 9, 1, 8)
# (user, when, revenue, status): one order before assignment (pre-period, not a measure's post activity)
ORDERS = [
    ("u1", datetime(2026, 9, 1, 9), 25.0, "completed"),
    ("u1", datetime(2026, 9, 3, 10), 5.0, "completed"),
    ("u2", datetime(2026, 9, 2, 11), 30.0, "refunded"),
    ("u4", datetime(2026, 9, 1, 7), 50.0, "completed"),
    ("u4", datetime(2026, 9, 2, 12), 40.0, "completed"),
    ("u5", datetime(2026, 9, 3, 13), 12.5, "completed"),
    ("u6", datetime(2026, 9, 3, 14), 22.0, "completed"),
]
# (user, when): pre-period sessions (the CUPED covariate) and post ones on each day
SESSIONS = [
    ("u1", datetime(2026, 8, 25, 9)),
    ("u1", datetime(2026, 9, 1, 9)),
    ("u2", datetime(2026, 9, 2, 9)),
    ("u2", datetime(2026, 9, 3, 9)),
    ("u4", datetime(2026, 8, 30, 9)),
    ("u4", datetime(2026, 8, 31, 9)),
    ("u4", datetime(2026, 9, 2, 9)),
    ("u5", datetime(2026, 9, 3, 9)),
    ("u6", datetime(2026, 9, 1, 9)),
    ("u6", datetime(2026, 9, 3, 10)),
]


QUIET = date(2026, 9, 4)  # a day without sessions or orders, its (empty) days passed by the quality gates


def _world(root, gated: bool = False):
    """The landing zone loaded into a warehouse; ``gated``: with the quiet day too, and every day's sessions and
    orders passed by the gates (quality.gate_results rows, as the Dagster checks write them)."""
    source, db = root / "landing", root / "warehouse.duckdb"
    experiment = {"experiment_id": "e1", "model_id": "m1", "control_variant": "holdout"}
    write_parquet(
        source, "experiments", pd.DataFrame([experiment | {"start_date": START, "end_date": date(2026, 9, 30)}])
    )
    variants = pd.DataFrame({"experiment_id": "e1", "variant": ["holdout", "model"], "expected_share": 0.5})
    write_parquet(source, "experiment_variants", variants)  # an assignment to an undeclared variant is quarantined
    orders = pd.DataFrame(ORDERS, columns=["user_id", "ordered_at", "revenue", "status"])
    orders.insert(0, "order_id", [f"o{i}" for i in range(len(orders))])
    sessions = pd.DataFrame(SESSIONS, columns=["user_id", "started_at"])
    sessions.insert(0, "session_id", [f"s{i}" for i in range(len(sessions))])
    assignments = pd.DataFrame({"experiment_id": "e1", "user_id": list(ARMS), "variant": list(ARMS.values())})
    write_parquet(source, "assignments", assignments.assign(assigned_at=ASSIGNED), START)
    days = sorted({t.date() for t in [*orders["ordered_at"], *sessions["started_at"]]} | ({QUIET} if gated else set()))
    for day in days:
        write_parquet(source, "orders", orders[orders["ordered_at"].dt.date == day], day)
        write_parquet(source, "sessions", sessions[sessions["started_at"].dt.date == day], day)
    with duckdb.connect(str(db)) as conn:
        for table in ("experiments", "experiment_variants"):
            load_partition(conn, table, source, AS_OF)
        for day in days:
            for table in ("assignments", "orders", "sessions"):
                load_partition(conn, table, source, day)
                if gated and table != "assignments":
                    conn.execute(
                        "INSERT INTO quality.gate_results (date, suite, table_name, passed) VALUES (?, ?, ?, true)",
                        [day, f"raw_{table}", table],
                    )
    return db


def _experiment_stats(root, db, runs: list[tuple[date, date]]) -> pd.DataFrame:
    """marts.experiment_stats after dbt ``runs`` (first, last day) over the warehouse."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_TEMP_DIR", str(root / "tmp"))
        for first, last in runs:
            mp.setenv("IMPACT_LEDGER_MIN_DATE", first.isoformat())
            mp.setenv("IMPACT_LEDGER_MAX_DATE", last.isoformat())
            models = ["stg_experiments", "stg_assignments", "stg_orders", "stg_sessions", "experiment_stats"]
            result = run_dbt("run", models, str(root / "target"), config_dbt_vars(parse_config(PROJECT)))
            assert result.success, result.exception
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("SELECT * FROM marts.experiment_stats").df()


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment_metrics")
    return _experiment_stats(root, _world(root), [(AS_OF, AS_OF)])


def test_a_quiet_day_run_alone_gets_the_as_of_rows_a_backfill_over_it_gets(tmp_path):
    # a trial's 14 days between its last enrolment and its late outcomes: no sessions, no orders; its backfill wrote
    # their as-of rows (each day's cumulative sums), its daily runs none
    daily = _experiment_stats(tmp_path / "daily", _world(tmp_path / "daily", True), [(d, d) for d in [*DAYS, QUIET]])
    backfill = _experiment_stats(tmp_path / "backfill", _world(tmp_path / "backfill", True), [(START, QUIET)])
    keys = ["experiment_id", "variant", "metric", "analysis_window", "as_of_date"]
    assert set(daily["as_of_date"].dt.date) == {*DAYS, QUIET}
    pd.testing.assert_frame_equal(
        daily.drop(columns="built_at", errors="ignore").sort_values(keys).reset_index(drop=True),
        backfill.drop(columns="built_at", errors="ignore").sort_values(keys).reset_index(drop=True),
    )
    # by hand: nothing happened on the quiet day, so its cumulative sums are the day before's, its day's zero
    cumulative = daily[daily["analysis_window"] == "cumulative"].set_index(["variant", "metric", "as_of_date"])
    quiet, before = (cumulative.xs(pd.Timestamp(d), level="as_of_date") for d in (QUIET, AS_OF))
    assert quiet["value_sum"].tolist() == before["value_sum"].tolist() and quiet["value_sum"].sum() > 0
    day = daily[(daily["analysis_window"] == "day") & (daily["as_of_date"] == pd.Timestamp(QUIET))]
    assert len(day) and (day["value_sum"] == 0).all()


def _per_unit(window: str) -> pd.DataFrame:
    """Each unit's measures after assignment (to the end of the as-of day, or on it) and in the 14 days before."""
    orders = pd.DataFrame(ORDERS, columns=["user_id", "at", "revenue", "status"])
    sessions = pd.DataFrame(SESSIONS, columns=["user_id", "at"])
    post = (
        (lambda t: (t >= ASSIGNED) & (t.dt.date <= AS_OF)) if window == "cumulative" else (lambda t: t.dt.date == AS_OF)
    )
    pre = lambda t: (t < ASSIGNED) & (t >= ASSIGNED - pd.Timedelta(days=14))  # noqa: E731
    units = pd.DataFrame({"user_id": list(ARMS), "variant": list(ARMS.values())}).set_index("user_id")
    big, completed = orders["revenue"] >= 20, orders["status"] == "completed"
    units["big_orders"] = orders[big & post(orders["at"])].groupby("user_id").size()
    units["spend"] = orders[completed & post(orders["at"])].groupby("user_id")["revenue"].sum()
    units["visits"] = sessions[post(sessions["at"])].groupby("user_id").size()
    units["pre_big_orders"] = orders[big & pre(orders["at"])].groupby("user_id").size()
    units["pre_visits"] = sessions[pre(sessions["at"])].groupby("user_id").size()
    return units.fillna(0)


@pytest.mark.parametrize("window", ["cumulative", "day"])
def test_a_projects_own_metrics_get_the_sums_pandas_computes_per_arm(stats, window):
    units = _per_unit(window)
    metrics = {  # y, denominator, covariate per unit, as the metric types define them
        "big_buyer": ((units["big_orders"] > 0).astype(float), None, (units["pre_big_orders"] > 0).astype(float)),
        "spend_per_user": (units["spend"], None, units["pre_visits"]),
        "spend_per_visit": (units["spend"], units["visits"], None),
    }
    got = stats[stats["analysis_window"] == window]
    assert sorted(set(got["metric"])) == sorted(metrics)
    assert set(got["as_of_date"].dt.date) == {AS_OF}
    for (metric, variant), row in got.set_index(["metric", "variant"]).iterrows():
        y, d, x = (None if s is None else s[units["variant"] == variant] for s in metrics[metric])
        assert row["n"] == len(y) == 3
        assert row["is_control"] == (variant == "holdout")
        assert row["metric_type"] == PROJECT["experiment_metrics"][metric]["type"]
        expected = {
            "value_sum": y.sum(),
            "value_sum_sq": (y**2).sum(),
            "denominator_sum": None if d is None else d.sum(),
            "value_denominator_sum": None if d is None else (y * d).sum(),
            "covariate_sum": None if x is None else x.sum(),
            "value_covariate_sum": None if x is None else (y * x).sum(),
        }
        for column, want in expected.items():
            if want is None:
                assert pd.isna(row[column]), (metric, variant, column)
            else:
                assert float(row[column]) == pytest.approx(float(want)), (metric, variant, column)
    # the planted data gives both arms something to compare (not all zeros)
    assert np.count_nonzero(got["value_sum"].astype(float)) >= 4
