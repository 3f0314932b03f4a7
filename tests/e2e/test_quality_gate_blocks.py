"""A corrupted day fails its gate and is held back: blocking when it is the run's only day, only that day
inside a backfill; a backfill and day-by-day runs give the same verdicts and the same marts."""

import shutil
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest

from tests.warehouse_diff import rows_only_in_each

pytestmark = pytest.mark.slow


def test_corrupt_predictions_block_attribution_for_that_day(pipeline, tmp_path, monkeypatch):
    day = pipeline.last - timedelta(days=1)
    source = tmp_path / "corrupt_source"
    shutil.copytree(pipeline.source, source)
    path = source / "predictions" / f"predictions_{day.isoformat()}.parquet"
    frame = pd.read_parquet(path)
    frame.loc[frame.index[:50], "score"] = 1.7  # systemic: 5% of the day
    # 50 duplicate ids, scored anew (conflicts), and 20 rows sent twice (exact copies: quarantined, not counted)
    frame = pd.concat([frame, frame.iloc[100:150].assign(score=lambda f: f["score"] / 2), frame.iloc[200:220]])
    frame.to_parquet(path, index=False)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))

    outcome = pipeline.run(day)

    assert not outcome.success
    gate = [f for f in outcome.failures if "raw_predictions_suite" in f and f.startswith("check")]
    assert gate, outcome.failures
    assert "expect_column_values_to_be_between on score: 50 unexpected" in gate[0]
    assert "expect_compound_columns_to_be_unique on prediction_id, _day: 100 unexpected" in gate[0]
    assert len(gate) == 1  # every other table passed its gate
    assert "attribution/experiment_results" not in outcome.materialized
    assert (
        pipeline.query("SELECT count(*) AS n FROM attribution.experiment_results WHERE as_of_date = ?", [day])["n"][0]
        == 0
    )
    gate_log = pipeline.query("SELECT * FROM quality.gate_results WHERE date = ? AND suite = 'raw_predictions'", [day])
    assert not gate_log["passed"].iloc[0] and "score" in gate_log["failed_expectations"].iloc[0]

    # the next day is clean and gets published; the held-back day is the predictions table's only, which no lift
    # reads: the cumulative results are not marked untrustworthy for it (a held-back orders day does: below)
    assert pipeline.run(day + timedelta(days=1)).success
    results = pipeline.query(
        "SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [day + timedelta(days=1)]
    )
    cumulative = results[results["analysis_window"] == "cumulative"]
    assert len(cumulative)
    assert not cumulative["untrusted_reason"].fillna("").str.contains("quality gate raw_predictions").any()
    # the quarantine still holds every bad row: nothing is lost
    quarantined = pipeline.query(
        "SELECT count(*) AS n FROM raw_quarantine.predictions WHERE _partition_date = ?", [day]
    )["n"][0]
    assert quarantined >= 120


# Columns that record when the pipeline saw something (as tests/e2e/test_backfill.py), not what the data says.
RUN_HISTORY = {
    "marts.alerts": ["first_detected_on", "last_evaluated_on"],
    "marts.retraining_requests": ["snapshot_path"],
    # the pace since the table's previous row: day by day, the row before the day after the blocked day is
    # two days back (the blocked run wrote none)
    "marts.metric_scorecard": ["units_per_day", "days_needed", "mde_relative_at_deadline", "detectable_by_deadline"],
}

# Day by day, the bad day's run was blocked (ERROR): no mart was built for it, also none that does not read
# orders (feature drift has no lookback), while the backfill built them without the held-back orders. Rows of
# later days computed from that day's own mart rows differ by construction:
BUILT_FROM_THE_BLOCKED_DAY = {
    # trailing correlations of max_psi changes count one day fewer
    "marts.leading_lagging": "health_metric = 'max_psi' AND as_of_date >= DATE '{day}'",
    # drift alerts on 3 consecutive days: the blocked day has no drift alerts day by day
    "marts.retraining_requests": "date >= DATE '{day}'",
    # PSI pooled over a version's last 7 days (alerts.rules.psi.pool_days): the blocked day has no drift bins
    # day by day, so the week after it pools one day fewer
    "marts.feature_drift_daily": "date > DATE '{day}' AND date < DATE '{day}' + INTERVAL 7 DAY",
}


def _tables(db) -> dict[str, list[str]]:
    """Every mart and attribution table -> its DATE and TIMESTAMP columns (a row's day is any of them)."""
    with duckdb.connect(str(db), read_only=True) as conn:
        rows = conn.execute(
            "SELECT c.table_schema || '.' || c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) WHERE t.table_type = 'BASE TABLE' "
            "AND c.table_schema IN ('marts', 'attribution') ORDER BY ALL"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column, dtype in rows:
        out.setdefault(table, [])
        if dtype in ("DATE", "TIMESTAMP") and column not in RUN_HISTORY.get(table, []):
            out[table].append(column)
    return out


def _corrupt_orders(source, day: date) -> int:
    """A systemic break on one day: a quarter of the orders get a negative revenue (the loader quarantines them)."""
    path = source / "orders" / f"orders_{day.isoformat()}.parquet"
    frame = pd.read_parquet(path)
    bad = len(frame) // 4
    frame.loc[frame.index[:bad], "revenue"] = -5.0
    frame.to_parquet(path, index=False)
    return bad


def test_a_backfill_holds_back_only_its_bad_day_and_equals_day_by_day_runs(e2e_world, history_db, tmp_path):
    source, truth = e2e_world
    first = date.fromisoformat(truth["incident"]["start_date"])
    days = [first + timedelta(days=i) for i in range(3)]
    bad_day = days[1]
    corrupt = tmp_path / "source"
    shutil.copytree(source, corrupt)
    assert _corrupt_orders(corrupt, bad_day) > 10
    backfill, daily = tmp_path / "backfill" / "warehouse.duckdb", tmp_path / "daily" / "warehouse.duckdb"
    for db in (backfill, daily):
        db.parent.mkdir()
        shutil.copy(history_db, db)

    from orchestration.runs import materialize_days

    with pytest.MonkeyPatch.context() as mp:
        for var, value in (
            ("IMPACT_LEDGER_SOURCE", corrupt),
            ("IMPACT_LEDGER_DB", backfill),
            ("IMPACT_LEDGER_EXPORTS", backfill.parent / "exports"),
            ("IMPACT_LEDGER_ANALYTICS_DB", backfill.parent / "analytics.duckdb"),
        ):
            mp.setenv(var, str(value))
        ranged = materialize_days(days[0], days[-1])
    # inside a backfill the bad day is held back (WARN) and the run goes on for the others
    assert ranged.success, ranged.failures
    gate = [f for f in ranged.failures if "raw_orders_suite" in f]
    assert len(gate) == 1 and f"held back 1 of 3 days ({bad_day})" in gate[0], ranged.failures
    assert "attribution/experiment_results" in ranged.materialized

    with pytest.MonkeyPatch.context() as mp:
        for var, value in (
            ("IMPACT_LEDGER_SOURCE", corrupt),
            ("IMPACT_LEDGER_DB", daily),
            ("IMPACT_LEDGER_EXPORTS", daily.parent / "exports"),
            ("IMPACT_LEDGER_ANALYTICS_DB", daily.parent / "analytics.duckdb"),
        ):
            mp.setenv(var, str(value))
        one_by_one = {day: materialize_days(day, day) for day in days}
    # run alone, the bad day fails every day of its run: ERROR, nothing downstream of raw.orders runs
    assert not one_by_one[bad_day].success
    assert "attribution/experiment_results" not in one_by_one[bad_day].materialized
    assert all(one_by_one[d].success for d in days if d != bad_day)

    # the held-back orders reach no mart: none of the bad day's orders are staged in either warehouse (the views
    # name their own catalog, so each file is opened on its own), though raw still holds them
    for db in (backfill, daily):
        with duckdb.connect(str(db), read_only=True) as conn:
            assert (
                conn.execute("SELECT count(*) FROM staging.stg_orders WHERE order_date = ?", [bad_day]).fetchone()[0]
                == 0
            )
            assert (
                conn.execute("SELECT count(*) FROM raw.orders WHERE _partition_date = ?", [bad_day]).fetchone()[0] > 0
            )
            # and the KPIs of a day without its orders are not published (0 orders would read as a collapse)
            assert conn.execute("SELECT count(*) FROM marts.kpi_daily WHERE date = ?", [bad_day]).fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM marts.kpi_daily WHERE date = ?", [days[-1]]).fetchone()[0] == 1
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{backfill}' AS backfill (READ_ONLY)")
        conn.execute(f"ATTACH '{daily}' AS daily (READ_ONLY)")
        # the same verdict, failed expectations and rows on every day of every suite
        gates = "SELECT * FROM {db}.quality.gate_results WHERE date BETWEEN '%s' AND '%s'" % (days[0], days[-1])
        assert (
            conn.execute(
                f"SELECT count(*) FROM ({gates.format(db='backfill')} EXCEPT ALL {gates.format(db='daily')})"
            ).fetchone()[0]
            == 0
        )
        assert (
            conn.execute(
                f"SELECT count(*) FROM ({gates.format(db='daily')} EXCEPT ALL {gates.format(db='backfill')})"
            ).fetchone()[0]
            == 0
        )
        verdicts = conn.execute(
            f"SELECT date, passed FROM ({gates.format(db='daily')}) WHERE suite = 'raw_orders' ORDER BY date"
        ).fetchall()
        assert verdicts == [(d, d != bad_day) for d in days]
        assert conn.execute(f"SELECT count(*) FROM ({gates.format(db='daily')}) WHERE NOT passed").fetchone()[0] == 1
        # the same marts, but for the bad day's own rows: its run was blocked day by day (no marts that day),
        # while the backfill built them without the held-back orders
        tables = _tables(backfill)
        assert tables == _tables(daily)
        assert {"marts.kpi_daily", "marts.experiment_stats", "attribution.experiment_results"} <= set(tables)
        for table, date_columns in tables.items():
            exclude = f"EXCLUDE ({', '.join(RUN_HISTORY[table])})" if table in RUN_HISTORY else ""
            not_bad_day = (
                " AND ".join(f"CAST(\"{c}\" AS DATE) IS DISTINCT FROM DATE '{bad_day}'" for c in date_columns) or "true"
            )
            if table in BUILT_FROM_THE_BLOCKED_DAY:
                not_bad_day += f" AND NOT ({BUILT_FROM_THE_BLOCKED_DAY[table].format(day=bad_day)})"
            select = lambda db: f"SELECT * {exclude} FROM {db}.{table} WHERE {not_bad_day}"  # noqa: E731
            only_backfill, only_daily = rows_only_in_each(conn, select, "backfill", "daily")
            assert (only_backfill, only_daily) == (0, 0), (
                f"{table}: {only_backfill} rows only in the backfill, {only_daily} only day by day"
            )
        # later cumulative attribution is untrusted in both, naming the held-back day
        after = conn.execute(
            "SELECT trustworthy, untrusted_reason FROM daily.attribution.experiment_results "
            "WHERE as_of_date = ? AND analysis_window = 'cumulative'",
            [days[-1]],
        ).fetchall()
        assert after and not any(t for t, _ in after)
        assert all(f"quality gate raw_orders failed on {bad_day}" in r for _, r in after)


def test_an_experiment_design_error_untrusts_its_results_and_blocks_no_model_marts(pipeline, monkeypatch):
    """Wrong experiment shares (one experiment's arms not summing to 1) fail raw_experiment_variants on every
    day; the blocking check stopped every mart, the health, drift and bias marts of every model included."""
    shared, private = pipeline.source, pipeline.db.parent / "world"
    private.mkdir()
    for table in shared.iterdir():  # the shared world stays as it is: links, the variants a changed copy
        if table.name != "experiment_variants":
            (private / table.name).symlink_to(table)
    (private / "experiment_variants").mkdir()
    variants = pd.read_parquet(shared / "experiment_variants")
    experiment = variants["experiment_id"].iloc[0]
    variants.loc[variants["experiment_id"] == experiment, "expected_share"] = 0.4  # 0.8 in all
    variants.to_parquet(private / "experiment_variants" / "experiment_variants.parquet", index=False)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(private))
    first, last = pipeline.last - timedelta(days=1), pipeline.last

    outcome = pipeline.run(first, last)

    assert outcome.success, outcome.failures
    assert [f for f in outcome.failures if "raw_experiment_variants" in f] == [
        "check raw/experiment_variants:raw_experiment_variants_suite warned: failed on 2 of 2 days "
        f"({first} .. {last}): experiment design: the results of {experiment} of those days are untrustworthy, the "
        "models' other marts proceed; fix raw.experiment_variants and run the days again"
    ]
    models = {m["model_id"] for m in pipeline.truth["models"]}
    for mart in ("model_health_daily", "feature_drift_daily", "bias_daily"):
        built = pipeline.query(f"SELECT DISTINCT model_id FROM marts.{mart} WHERE date = ?", [last])
        assert set(built["model_id"]) == models, mart
    gate_log = pipeline.query(
        "SELECT DISTINCT experiments FROM quality.gate_results WHERE suite = ? AND date = ?",
        ["raw_experiment_variants", last],
    )
    assert gate_log["experiments"].tolist() == [f'["{experiment}"]']  # the experiment its failing rows name
    results = pipeline.query("SELECT * FROM attribution.experiment_results WHERE as_of_date = ?", [last])
    broken = results["experiment_id"] == experiment
    assert broken.any() and (~broken).any() and not results.loc[broken, "trustworthy"].any()
    reason = f"quality gate raw_experiment_variants failed on {first} .. {last}"
    said = results["untrusted_reason"].fillna("").str.contains(reason, regex=False)
    # the other experiment, declared right, is not untrusted for this one's shares
    assert said.equals(broken), results[["experiment_id", "untrusted_reason"]]
    impact = pipeline.query("SELECT * FROM attribution.model_impact WHERE as_of_date = ?", [last])
    its_model = set(
        pipeline.query("SELECT model_id FROM staging.stg_experiments WHERE experiment_id = ?", [experiment])["model_id"]
    )
    assert len(impact) and not impact.loc[impact["model_id"].isin(its_model), "trustworthy"].any(), its_model
