"""marts.leading_lagging against a pandas/scipy/statsmodels recomputation, and the planted incident's lead over the KPI drop."""

import shutil
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from orchestration.lib.leading import kpi_drop_leads
from orchestration.lib.settings import dbt_var
from tests.dbt_in_process import run_dbt
from tests.oracles.leading_correlation import correlate


def test_correlations_of_daily_changes_partial_on_weekday_match_pandas_at_every_lag(latest):
    cfg = dbt_var("leading_lagging")
    as_of = latest.last
    table = latest.query("SELECT * FROM marts.leading_lagging WHERE as_of_date = ?", [as_of])
    assert len(table) == 2 * len(cfg["health_metrics"]) * len(cfg["kpis"]) * (cfg["max_lag_days"] + 1)
    kpis = latest.query("SELECT * FROM marts.kpi_daily ORDER BY date").set_index("date")
    health = latest.query(
        "SELECT * FROM marts.model_health_daily WHERE model_id = 'recommender' ORDER BY date"
    ).set_index("date")
    assert health["model_version"].nunique() == 1  # one live version: no version choice to reimplement
    for metric, kpi in (("mean_score", "conversion_rate"), ("precision", "revenue_per_active_user")):
        h, k = health[metric].diff(), kpis[kpi].diff()
        for lag in range(cfg["max_lag_days"] + 1):
            window = [as_of - timedelta(days=i) for i in range(cfg["window_days"])][::-1]
            x = h.reindex(pd.to_datetime([d - timedelta(days=lag) for d in window]))
            y = k.reindex(pd.to_datetime(window))
            expected = correlate(x.to_numpy(), y.to_numpy(), window)  # partial on weekday
            row = table[
                (table["model_id"] == "recommender")
                & (table["health_metric"] == metric)
                & (table["kpi"] == kpi)
                & (table["lag_days"] == lag)
            ].iloc[0]
            assert row["n_days"] == expected.n_days
            known = [d for d, a, b in zip(window, x, y) if pd.notna(a) and pd.notna(b)]
            consecutive = all(b - a == timedelta(days=1) for a, b in zip(known, known[1:]))
            if expected.n_days >= cfg["min_days"]:
                assert row["correlation"] == pytest.approx(expected.correlation, abs=1e-9, nan_ok=True)
                if consecutive:  # no day missing: the lag-1 autocorrelations are statsmodels' acf
                    assert row["n_effective"] == pytest.approx(expected.n_effective, rel=1e-9)
                    if np.isnan(expected.p_value):  # the weekday controls leave too few pairs
                        assert pd.isna(row["p_value"])
                    else:
                        assert row["p_value"] == pytest.approx(expected.p_value, rel=1e-6, abs=1e-12)
            else:
                assert pd.isna(row["correlation"]) and pd.isna(row["p_value"])
    best = table[table["is_best_lag"]].groupby(["model_id", "health_metric", "kpi"])["lag_days"].count()
    assert (best == 1).all()
    # Holm over everything searched on the day (statsmodels), and significant follows it
    tested = table.dropna(subset=["p_value"])
    assert (tested["family_size"] == len(tested)).all()
    np.testing.assert_allclose(
        tested["p_value_adjusted"], multipletests(tested["p_value"], method="holm")[1], rtol=1e-12
    )
    assert (table["significant"] == (table["p_value_adjusted"] < cfg["alpha"]).fillna(False)).all()


def test_the_incident_alert_leads_the_planted_kpi_drop(latest):
    incident = latest.truth["incident"]
    planted_drop = date.fromisoformat(incident["kpi_drop"]["start_date"])
    import duckdb

    with duckdb.connect(str(latest.db), read_only=True) as conn:
        ((drop, lead),) = kpi_drop_leads(conn, latest.last, ["conversion_rate"])
    assert drop is not None and abs((drop.start_date - planted_drop).days) <= 1
    assert lead is not None and lead.model_id == incident["model_id"]
    assert abs((lead.alert_date - date.fromisoformat(incident["start_date"])).days) <= 2
    assert abs(lead.lead_days - incident["kpi_drop"]["lag_days"]) <= 2
    # The drifted score rises as conversion falls, the planted lag later. (The short
    # test world has only 16 days of changes, and its largest |r| can sit on a
    # launch transient; on the 60-day demo world is_best_lag is exactly the planted lag.)
    profile = latest.query(
        "SELECT lag_days, correlation FROM marts.leading_lagging WHERE as_of_date = ? AND model_id = ? "
        "AND health_metric = 'mean_score' AND kpi = 'conversion_rate' AND correlation IS NOT NULL ORDER BY correlation",
        [latest.last, incident["model_id"]],
    )
    assert (
        abs(profile["lag_days"].iloc[0] - incident["kpi_drop"]["lag_days"]) <= 1
        and profile["correlation"].iloc[0] < -0.3
    )
    # What the summary prints: the incident's lead (the alert before the sustained drop), and correlations
    # only when significant: one shared step in ~16 days of changes is not evidence among hundreds searched.
    from orchestration.summary import _leading_indicators

    with duckdb.connect(str(latest.db), read_only=True) as conn:
        lines = _leading_indicators(conn, latest.last)
    assert any(
        f"on {incident['model_id']} on {lead.alert_date}, {lead.lead_days} day(s) earlier" in line for line in lines
    )
    significant = latest.query(
        "SELECT kpi FROM marts.leading_lagging WHERE as_of_date = ? AND significant", [latest.last]
    )
    assert sum("leads by" in line for line in lines) == significant["kpi"].nunique()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kpis": ["conversion_rate", "revenu"]}, "kpis entry 'revenu' is not a column of marts.kpi_daily"),
        ({"min_days": 2}, "min_days must lie in 3..window_days (28), got 2"),
        ({"max_lag_days": "7"}, "max_lag_days must be a whole number >= 0, got '7'"),
    ],
)
def test_a_bad_leading_lagging_var_names_the_key_before_any_sql_runs(latest, tmp_path, monkeypatch, change, message):
    shutil.copy(latest.db, tmp_path / "warehouse.duckdb")  # the compiler reads the marts' columns
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "warehouse.duckdb"))
    day = latest.last.isoformat()
    variables = {"min_date": day, "max_date": day, "leading_lagging": {**dbt_var("leading_lagging"), **change}}
    result = run_dbt("compile", ["leading_lagging"], str(tmp_path / "target"), variables)
    assert not result.success
    assert message in str(result.exception)
