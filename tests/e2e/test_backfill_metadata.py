"""A backfill is one run over many days: each day's materialisation carries that day's own values.

One ranged run (history, then the seven days from the planted incident as one
run, as a single-run backfill does) into a real ephemeral DagsterInstance;
every day's latest materialisation is checked against the warehouse with SQL
written here, and the plotted values must move from day to day.
"""

from datetime import date, timedelta

import dagster as dg
import pytest

from orchestration.lib.project_config import load_config

pytestmark = pytest.mark.slow

RANGE_DAYS = 7


@pytest.fixture(scope="module")
def backfill(e2e_world, full_db, full_instance):
    """full_db: history_db plus the incident's seven days in one run, recorded by an ephemeral instance."""
    from tests.e2e.conftest import Pipeline

    source, truth = e2e_world
    first = date.fromisoformat(truth["incident"]["start_date"])
    p = Pipeline(source, full_db, truth, date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"]))
    days = [first + timedelta(days=i) for i in range(RANGE_DAYS)]
    assert days[-1] == p.last - timedelta(days=2)  # the range full_db's run covered
    return p, full_instance, days


def events(instance, path: list[str], day: date) -> list[dict]:
    """Every materialisation of the asset's partition ``day``, newest first, as plain values."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(path), asset_partitions=[day.isoformat()]), limit=10
    ).records
    return [{k: v.value for k, v in r.asset_materialization.metadata.items()} for r in records]


def metadata(instance, path: list[str], day: date) -> dict:
    found = events(instance, path, day)
    assert len(found) == 1, f"{'/'.join(path)} {day}: {len(found)} events"  # one event per day, none disagreeing
    return found[0]


def test_each_day_of_a_backfill_plots_its_own_decision_estimate_and_net_value(backfill):
    p, instance, days = backfill
    lifts = p.query(
        "SELECT as_of_date, model_id, metric, "
        "CASE WHEN estimate = 'cuped' THEN cuped_relative_lift ELSE relative_lift END AS lift "
        "FROM attribution.experiment_results WHERE analysis_window = 'cumulative' AND as_of_date BETWEEN ? AND ?",
        [days[0], days[-1]],
    )
    assert lifts["as_of_date"].nunique() == len(days)
    shown = {}
    for day in days:
        ui = metadata(instance, ["attribution", "experiment_results"], day)
        expected = lifts[lifts["as_of_date"].dt.date == day]
        for r in expected.itertuples():
            assert ui[f"relative_lift_pct/{r.model_id}/{r.metric}"] == pytest.approx(round(100 * r.lift, 1))
        assert sorted(k for k in ui if k.startswith("relative_lift_pct/")) == sorted(
            f"relative_lift_pct/{m}/{x}" for m, x in zip(expected["model_id"], expected["metric"])
        )
        shown[day] = ui
    key = next(k for k in shown[days[0]] if k.startswith("relative_lift_pct/") and k.endswith("/revenue_per_user"))
    assert len({shown[d][key] for d in days}) > 1, "the plot is flat: every day shows one day's lift"
    # the preview of each day is that day's (its lift, worded as the summary prints it)
    first_lift = shown[days[0]][key]
    assert f"{first_lift:+.1f}%" in shown[days[0]]["latest"]

    net = p.query(
        "SELECT as_of_date, model_id, net_value FROM attribution.model_impact "
        "WHERE analysis_window = 'cumulative' AND as_of_date BETWEEN ? AND ?",
        [days[0], days[-1]],
    )
    currency = load_config().currency
    values = {}
    for day in days:
        ui = metadata(instance, ["attribution", "model_impact"], day)
        for r in net[net["as_of_date"].dt.date == day].itertuples():
            assert ui[f"net_value_{currency}/{r.model_id}"] == pytest.approx(round(r.net_value))
            values.setdefault(r.model_id, set()).add(ui[f"net_value_{currency}/{r.model_id}"])
    assert values and all(len(v) > 1 for v in values.values())


def test_each_day_of_a_backfill_plots_its_own_drift_breaches_and_row_counts(backfill):
    p, instance, days = backfill
    model = p.truth["incident"]["model_id"]
    psi = p.query(
        "SELECT date, max(psi) AS psi FROM marts.feature_drift_daily WHERE model_id = ? AND date BETWEEN ? AND ? "
        "GROUP BY date",
        [model, days[0], days[-1]],
    )
    alerts = p.query(
        "SELECT date, count(*) AS n FROM marts.alerts WHERE model_id = ? AND date BETWEEN ? AND ? GROUP BY date",
        [model, days[0], days[-1]],
    )
    kpi = p.query("SELECT date FROM marts.kpi_daily")
    loaded = p.query(
        "SELECT _partition_date AS date, count(*) AS n FROM raw.predictions WHERE _partition_date BETWEEN ? AND ? "
        "GROUP BY ALL",
        [days[0], days[-1]],
    )
    plotted = []
    for day in days:
        health = metadata(instance, ["marts", "alerts"], day)
        expected_psi = psi[psi["date"].dt.date == day]["psi"]
        assert health[f"psi_max/{model}"] == pytest.approx(round(float(expected_psi.iloc[0]), 4))
        breaches = alerts[alerts["date"].dt.date == day]["n"]
        assert health[f"breaches/{model}"] == (int(breaches.iloc[0]) if len(breaches) else 0)
        plotted.append(health[f"psi_max/{model}"])

        raw = metadata(instance, ["raw", "predictions"], day)
        assert raw["rows_loaded"] == int(loaded[loaded["date"].dt.date == day]["n"].iloc[0])
        assert raw["days"] == 1

        rows = metadata(instance, ["marts", "kpi_daily"], day)
        assert rows["rows_of_day"] == int((kpi["date"].dt.date == day).sum())
        assert rows["dagster/row_count"] == int((kpi["date"].dt.date <= day).sum())
    assert len(set(plotted)) == len(days), plotted  # the planted drift moves day by day
    assert max(plotted) > 0.2


def test_each_day_of_a_backfill_counts_its_own_key_results_and_verdicts(backfill):
    p, instance, days = backfill
    statuses = p.query(
        "SELECT date, status, count(*) AS n FROM marts.okr_progress WHERE date BETWEEN ? AND ? GROUP BY ALL",
        [days[0], days[-1]],
    )
    failing = p.query(
        "SELECT date, count_if(NOT passed) AS n FROM marts.bias_verdicts WHERE date BETWEEN ? AND ? GROUP BY ALL",
        [days[0], days[-1]],
    )
    for day in days:
        okr = metadata(instance, ["marts", "okr_progress"], day)
        of_day = statuses[statuses["date"].dt.date == day]
        assert okr["by_status"] == dict(zip(of_day["status"], of_day["n"].astype(int)))
        verdicts = metadata(instance, ["marts", "bias_verdicts"], day)
        assert verdicts["failing_verdicts"] == int(failing[failing["date"].dt.date == day]["n"].iloc[0])
    # the report is written for the range's last day only, and says so on the others
    assert "path" in metadata(instance, ["reports", "daily_report"], days[-1])
    earlier = metadata(instance, ["reports", "daily_report"], days[0])
    assert "path" not in earlier and "backfill" in earlier["report"]
