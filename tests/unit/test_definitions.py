"""Loading the code location is cheap and side-effect free; the schedule targets yesterday."""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest


def test_loading_definitions_opens_no_warehouse(tmp_path, monkeypatch):
    db = tmp_path / "never_created.duckdb"
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    from orchestration.definitions import build_definitions

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw/predictions", "marts/experiment_stats", "attribution/experiment_results"} <= keys
    assert not db.exists()


def test_attribution_is_downstream_of_the_blocking_gate_and_dbt():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey(["attribution", "experiment_results"])).parent_keys
    assert dg.AssetKey(["marts", "experiment_stats"]) in parents
    assert dg.AssetKey(["raw", "predictions"]) in parents
    gate = dg.AssetCheckKey(dg.AssetKey(["raw", "predictions"]), "raw_predictions_suite")
    assert graph.get_check_spec(gate).blocking


def test_daily_schedule_requests_yesterdays_partition():
    from orchestration.definitions import defs

    schedule = defs.resolve_schedule_def("daily_impact_ledger_schedule")
    assert schedule.cron_schedule == "0 6 * * *"
    when = datetime(2026, 10, 31, 6, 0, tzinfo=timezone.utc)
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-10-30"]


def test_okr_assets_join_the_daily_job_downstream_of_attribution_and_the_kpi_marts():
    from orchestration.defs.okrs.assets import OKR_PROGRESS_KEY, SCORECARD_KEY
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    progress_parents = graph.get(OKR_PROGRESS_KEY).parent_keys
    assert {
        dg.AssetKey(["attribution", "model_impact"]),
        dg.AssetKey(["attribution", "experiment_results"]),
        dg.AssetKey(["marts", "kpi_daily"]),
        dg.AssetKey(["marts", "model_health_daily"]),
    } <= progress_parents
    assert dg.AssetKey(["attribution", "experiment_results"]) in graph.get(SCORECARD_KEY).parent_keys
    for key in (OKR_PROGRESS_KEY, SCORECARD_KEY):
        node = graph.get(key)
        assert node.group_name == "okrs" and node.partitions_def is not None
    job = defs.resolve_job_def("daily_impact_ledger")
    assert {OKR_PROGRESS_KEY, SCORECARD_KEY} <= set(job.asset_layer.selected_asset_keys)


def test_published_assets_declare_freshness_and_a_missed_day_is_checked_outside_the_daily_job():
    from orchestration.definitions import build_definitions
    from orchestration.defs.publish.assets import PUBLISHED_TABLE_KEYS, SNAPSHOT_KEY

    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    published = {*PUBLISHED_TABLE_KEYS, SNAPSHOT_KEY}
    for key in published:
        policy = graph.get(key).freshness_policy
        # yesterday's partition must land between midnight and the 06:00 schedule + 2 h grace
        assert (policy.deadline_cron, policy.lower_bound_delta, policy.timezone) == (
            "0 8 * * *",
            timedelta(hours=8),
            "UTC",
        )
    freshness_checks = {k for k in graph.asset_check_keys if k.name == "freshness_check"}
    assert {k.asset_key for k in freshness_checks} == published

    job = defs.resolve_job_def("daily_impact_ledger")
    retraining = {dg.AssetKey(["retraining", "training_candidates"]), dg.AssetKey(["retraining", "training_snapshot"])}
    assert set(job.asset_layer.selected_asset_keys) == set(graph.get_all_asset_keys()) - retraining
    job_checks = set(job.asset_layer.asset_graph.asset_check_keys)
    assert not job_checks & freshness_checks
    assert dg.AssetCheckKey(dg.AssetKey(["raw", "predictions"]), "raw_predictions_suite") in job_checks


def test_freshness_deadline_follows_the_schedule_hour(monkeypatch):
    from orchestration.defs.freshness import published_freshness_policy

    monkeypatch.setenv("IMPACT_LEDGER_SCHEDULE_HOUR", "22")
    policy = published_freshness_policy()
    assert (policy.deadline_cron, policy.lower_bound_delta) == ("0 23 * * *", timedelta(hours=23))
    monkeypatch.setenv("IMPACT_LEDGER_SCHEDULE_HOUR", "25")
    with pytest.raises(ValueError, match="IMPACT_LEDGER_SCHEDULE_HOUR"):
        published_freshness_policy()


def test_every_asset_has_a_domain_group_and_an_owner_and_the_sensors_run_by_default():
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name in {
            "ingest",
            "staging",
            "kpis",
            "model_health",
            "bias",
            "attribution",
            "retraining",
            "publish",
            "okrs",
        }, key
        assert node.owners, key
    assert graph.get(dg.AssetKey(["marts", "kpi_daily"])).owners == ["team:analytics"]
    sensors = {s.name: s for s in defs.sensors}
    for name in ("alert_notifications", "freshness_checks_sensor", "retraining_sensor"):
        assert sensors[name].default_status == dg.DefaultSensorStatus.RUNNING
