"""Loading the code location is cheap and side-effect free; the schedule targets yesterday."""

from datetime import datetime, timezone

import dagster as dg


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
    assert {dg.AssetKey(["attribution", "model_impact"]), dg.AssetKey(["attribution", "experiment_results"]),
            dg.AssetKey(["marts", "kpi_daily"]), dg.AssetKey(["marts", "model_health_daily"])} <= progress_parents
    assert dg.AssetKey(["attribution", "experiment_results"]) in graph.get(SCORECARD_KEY).parent_keys
    for key in (OKR_PROGRESS_KEY, SCORECARD_KEY):
        node = graph.get(key)
        assert node.group_name == "okrs" and node.partitions_def is not None
    job = defs.resolve_job_def("daily_impact_ledger")
    assert {OKR_PROGRESS_KEY, SCORECARD_KEY} <= set(job.asset_layer.selected_asset_keys)
