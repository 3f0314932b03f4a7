"""Daily operations: the numbers a person reads in the UI match the warehouse, and alerts reach the notifier once."""

import json
from datetime import timedelta

import dagster as dg
import duckdb
import pandas as pd
import pytest

from orchestration.defs.notify.sensors import alert_notifications_sensor
from orchestration.lib.publish import PUBLISHED
from orchestration.lib.project_config import load_config
from orchestration.lib.settings import analytics_path

pytestmark = pytest.mark.slow


def latest_metadata(instance, *path):
    [record] = instance.fetch_materializations(dg.AssetKey(list(path)), limit=1).records
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def test_one_day_carries_plottable_metadata_and_its_alerts_are_notified_once(
    daily_runs, daily_instance, tmp_path, monkeypatch
):
    p = daily_runs
    day = p.incident + timedelta(days=6)  # the last of the daily runs
    alerts_dir = tmp_path / "alerts"
    monkeypatch.setenv("IMPACT_LEDGER_ALERTS", str(alerts_dir))
    monkeypatch.setenv("IMPACT_LEDGER_ANALYTICS_DB", str(p.db.parent / "analytics.duckdb"))  # what that run published
    monkeypatch.delenv("IMPACT_LEDGER_ALERT_WEBHOOK", raising=False)
    instance = daily_instance
    raw = latest_metadata(instance, "raw", "predictions")
    loaded = p.query("SELECT count(*) AS n FROM raw.predictions WHERE _partition_date = ?", [day])["n"].iloc[0]
    quarantined = p.query("SELECT count(*) AS n FROM raw_quarantine.predictions WHERE _partition_date = ?", [day])[
        "n"
    ].iloc[0]
    assert (raw["rows_loaded"], raw["rows_quarantined"]) == (loaded, quarantined)
    assert isinstance(raw["rows_read"], int)

    # dbt marts: row counts counted after dbt exited, for the table and for the run's day
    kpi = latest_metadata(instance, "marts", "kpi_daily")
    assert kpi["dagster/row_count"] == len(p.query("SELECT * FROM marts.kpi_daily"))
    assert kpi["rows_in_range"] == 1

    results = latest_metadata(instance, "attribution", "experiment_results")
    # the decision estimate (CUPED where the row uses it), in percent to the 0.1 the summary prints
    lifts = p.query(
        "SELECT model_id, metric, CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END "
        "AS lift FROM attribution.experiment_results WHERE analysis_window = 'cumulative' AND as_of_date = ?",
        [day],
    )
    assert len(lifts) > 0
    for r in lifts.itertuples():
        assert results[f"relative_lift_pct/{r.model_id}/{r.metric}"] == pytest.approx(round(100 * r.lift, 1))
    assert "relative lift [95% CI]" in results["latest"] and "significant (Holm)" in results["latest"]

    impact = latest_metadata(instance, "attribution", "model_impact")
    net = p.query(
        "SELECT model_id, net_value FROM attribution.model_impact WHERE analysis_window = 'cumulative' AND as_of_date = ?",
        [day],
    )
    currency = load_config().currency
    assert {k: impact[f"net_value_{currency}/{k}"] for k in net["model_id"]} == pytest.approx(
        {k: round(v) for k, v in zip(net["model_id"], net["net_value"])}
    )

    health = latest_metadata(instance, "marts", "alerts")
    model = p.truth["incident"]["model_id"]
    drift = p.query(
        "SELECT max(psi) AS psi FROM marts.feature_drift_daily WHERE date = ? AND model_id = ?", [day, model]
    )
    assert health[f"psi_max/{model}"] == pytest.approx(round(drift["psi"].iloc[0], 4))  # as the preview rounds it
    assert health[f"psi_max/{model}"] > 0.2  # the planted drift is on the plot

    # the sensor, ticked twice against the snapshot the run published
    with duckdb.connect(str(analytics_path()), read_only=True) as snapshot:
        snapshot_alerts = snapshot.execute(
            "SELECT DISTINCT date, model_id, metric, coalesce(subject, '') AS subject, CASE WHEN metric = "
            "'version_change' THEN model_version ELSE '' END AS version FROM marts.alerts ORDER BY date"
        ).df()
        made = snapshot.execute("SELECT model_id, date FROM marts.model_health_daily WHERE predictions > 0").df()
        failed_gates = snapshot.execute("SELECT DISTINCT date, suite FROM quality.gate_results WHERE NOT passed").df()
        verdicts = snapshot.execute(
            "SELECT date, model_id, attribute, passed, passes_disparate_impact, passes_equal_opportunity, "
            "passes_equalized_odds, passes_calibration FROM marts.bias_verdicts"
        ).df()
    assert len(snapshot_alerts) > 0
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_sensor_context(instance=instance, cursor=None)
        alert_notifications_sensor.evaluate_tick(context)
        jsonl = alerts_dir / "notifications.jsonl"
        sent = [json.loads(line) for line in jsonl.read_text().splitlines()]
        horizon_start = (day - timedelta(days=31)).isoformat()
        # an alert incident: its first day, the next alert after a day the model predicted without one a new one
        expected = set()
        for (model, metric, subject, _), same in snapshot_alerts.groupby(["model_id", "metric", "subject", "version"]):
            predicted = set(made.loc[made["model_id"] == model, "date"])
            days = sorted(set(same["date"]))
            starts = [
                i
                for i, d in enumerate(days)
                if i == 0 or (metric != "version_change" and any(days[i - 1] < x < d for x in predicted))
            ]
            for i, start in enumerate(starts):
                last = days[(starts[i + 1] if i + 1 < len(starts) else len(days)) - 1]
                if last.date().isoformat() >= horizon_start:
                    expected.add(f"alert|{days[start].date().isoformat()}|{model}|{metric}|{subject}")
        expected |= {
            f"gate|{r.date.date().isoformat()}||quality_gate|{r.suite}"
            for r in failed_gates.itertuples()
            if r.date.date().isoformat() >= horizon_start
        }
        # a fairness verdict that starts failing (after a pass, or first seen, or beside another failing one), sent
        # while its pair's failing run lasts
        checks = ["passes_disparate_impact", "passes_equal_opportunity", "passes_equalized_odds", "passes_calibration"]
        for (model, attribute), pair in verdicts.sort_values("date").groupby(["model_id", "attribute"]):
            failing = (~pair["passed"].astype(bool)).tolist()
            failed = [{c for c in checks if pd.notna(r[c]) and not bool(r[c])} for _, r in pair.iterrows()]
            dates = [d.date().isoformat() for d in pair["date"]]
            for i, fails in enumerate(failing):
                if fails and (i == 0 or not failing[i - 1] or failed[i] - failed[i - 1]):
                    end = i
                    while end + 1 < len(failing) and failing[end + 1]:
                        end += 1
                    if dates[end] >= horizon_start:
                        expected.add(f"fairness|{dates[i]}|{model}|fairness|{attribute}")
        assert sorted(n["dedup_key"] for n in sent) == sorted(expected)
        second = alert_notifications_sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=context.cursor)
        )
        assert second.skip_message == "snapshot unchanged since the last tick"
        assert len(jsonl.read_text().splitlines()) == len(sent)


def test_exports_equal_the_snapshot_on_every_exported_day(daily_runs):
    """After daily_db's runs (daily ones and a catch-up), each exported day holds exactly the snapshot's rows of that day: a run re-exports
    the days its lookback recomputed (label-based health, yesterday's KPIs), so no day's export goes stale."""
    p = daily_runs
    last_run_day = p.incident + timedelta(days=6)
    exports, snapshot = p.db.parent / "exports", p.db.parent / "analytics.duckdb"
    rewritten_before_last_day = set()
    with duckdb.connect() as conn:
        conn.execute(f"ATTACH '{snapshot}' AS snap (READ_ONLY)")
        for table, spec in PUBLISHED.items():
            name = table.split(".")[1]
            columns = conn.execute(
                "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position) FROM "
                "information_schema.columns WHERE table_catalog = 'snap' AND table_schema || '.' || "
                "table_name = ?",
                [table],
            ).fetchone()[0]
            if columns is None or not (exports / name).is_dir():
                continue
            parquet = f"read_parquet('{exports / name}/*/*.parquet', hive_partitioning = true)"
            exported_days = {d for (d,) in conn.execute(f"SELECT DISTINCT date FROM {parquet}").fetchall()}
            snapshot_days = {
                d for (d,) in conn.execute(f"SELECT DISTINCT {spec.day_column}::DATE FROM snap.{table}").fetchall()
            }
            window_start = last_run_day - timedelta(days=spec.lookback_days())
            assert {d for d in snapshot_days if window_start <= d <= last_run_day} <= exported_days, table
            assert exported_days <= snapshot_days, f"{table}: exported days without rows in the snapshot"
            in_exported = f"{spec.day_column}::DATE IN (SELECT DISTINCT date FROM {parquet})"
            for a, b in (
                (f"SELECT {columns} FROM {parquet}", f"SELECT {columns} FROM snap.{table} WHERE {in_exported}"),
                (f"SELECT {columns} FROM snap.{table} WHERE {in_exported}", f"SELECT {columns} FROM {parquet}"),
            ):
                differing = conn.execute(
                    f"SELECT {spec.day_column}::DATE AS day, count(*) AS n FROM ({a} EXCEPT ALL {b}) "
                    "GROUP BY 1 ORDER BY 1"
                ).fetchall()
                assert differing == [], f"{table}: exported rows differ from the snapshot on {differing}"
            if spec.lookback_days():
                rewritten_before_last_day |= {(name, d) for d in exported_days if d < p.incident}
    # the lookback tables' exports reach back before the first daily run's day (its lookback window)
    assert {name for name, _ in rewritten_before_last_day} >= {"model_health_daily", "bias_daily", "kpi_daily"}
