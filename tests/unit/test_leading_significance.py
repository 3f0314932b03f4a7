"""marts.leading_lagging's p-values: built by dbt on simulated series, checked against scipy and statsmodels.

Null worlds (no health metric moves the KPIs) must print a lead on fewer than 5% of
as-of dates although ~840 correlations are searched each day; a planted lead is found.
"""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tsa.stattools import acf

from orchestration.lib.settings import dbt_var
from tests.dbt_in_process import run_dbt

START = date(2025, 1, 1)
MODELS = ("model_a", "model_b")
HEALTH = ("expected_calibration_error", "precision", "recall", "positive_rate", "mean_score", "label_coverage")


def _null_world(days: int, seed: int) -> dict[str, pd.DataFrame]:
    """KPIs and health metrics with no link between them: stationary levels (daily changes
    autocorrelated at -0.5), AR(1) and random-walk levels, as real daily metrics behave."""
    rng = np.random.default_rng(seed)
    dates = [START + timedelta(days=i) for i in range(days)]

    def ar1(phi: float, scale: float) -> np.ndarray:
        out = np.zeros(days)
        for i in range(1, days):
            out[i] = phi * out[i - 1] + rng.normal(0, scale)
        return out

    kpis = pd.DataFrame(
        {
            "date": dates,
            "conversion_rate": 0.07 + rng.normal(0, 0.003, days),  # stationary: changes are MA(1), rho = -0.5
            "revenue_per_active_user": 40 + ar1(0.6, 1.0),
            "average_order_value": 60 + np.cumsum(rng.normal(0, 0.5, days)),  # random walk: white changes
            "refund_rate": 0.05 + rng.normal(0, 0.004, days),
        }
    )
    health = []
    drift = []
    for model in MODELS:
        levels = {
            "expected_calibration_error": 0.03 + np.abs(rng.normal(0, 0.01, days)),
            "precision": 0.6 + rng.normal(0, 0.02, days),
            "recall": 0.5 + ar1(0.5, 0.02),
            "positive_rate": 0.2 + rng.normal(0, 0.01, days),
            "mean_score": 0.3 + np.cumsum(rng.normal(0, 0.002, days)),
            "label_coverage": 0.8 + ar1(0.8, 0.01),
        }
        health.append(
            pd.DataFrame({"date": dates, "model_id": model, "model_version": "v1", "predictions": 2000, **levels})
        )
        for feature in ("f1", "f2"):
            drift.append(
                pd.DataFrame(
                    {
                        "date": dates,
                        "model_id": model,
                        "model_version": "v1",
                        "feature": feature,
                        "psi": np.abs(rng.normal(0.02, 0.01, days)),
                    }
                )
            )
    return {"kpi_daily": kpis, "model_health_daily": pd.concat(health), "feature_drift_daily": pd.concat(drift)}


def _build(tmp_path, tables: dict[str, pd.DataFrame], monkeypatch) -> pd.DataFrame:
    """Write the marts leading_lagging reads, run the dbt model over every day, return it."""

    db = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts; CREATE SCHEMA intermediate")
        for name, frame in tables.items():
            conn.register("frame", frame)
            conn.execute(f"CREATE TABLE marts.{name} AS SELECT * FROM frame")
            conn.unregister("frame")
        conn.execute("CREATE TABLE intermediate.int_label_refresh_days (model_id VARCHAR, date DATE)")
        conn.execute("CREATE TABLE marts.alerts (date DATE, model_id VARCHAR, metric VARCHAR, subject VARCHAR)")
    days = tables["kpi_daily"]["date"]
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    monkeypatch.setenv("IMPACT_LEDGER_TEMP_DIR", str(tmp_path / "tmp"))
    variables = {"min_date": min(days).isoformat(), "max_date": max(days).isoformat()}
    result = run_dbt("run", ["leading_lagging"], str(tmp_path / "target"), variables)
    assert result.success, result.exception
    with duckdb.connect(str(db)) as conn:
        return conn.execute("SELECT * FROM marts.leading_lagging ORDER BY ALL").df()


def _full_window_dates(table: pd.DataFrame) -> list:
    cfg = dbt_var("leading_lagging")
    first = table["as_of_date"].min() + pd.Timedelta(days=cfg["window_days"] + cfg["max_lag_days"])
    return sorted(d for d in table["as_of_date"].unique() if d >= first)


@pytest.fixture(scope="module")
def null_world(tmp_path_factory):
    tables = _null_world(days=260, seed=11)
    with pytest.MonkeyPatch.context() as mp:
        return tables, _build(tmp_path_factory.mktemp("null_world"), tables, mp)


def test_p_values_match_fisher_z_with_bartletts_effective_sample_size_and_holm(null_world):
    tables, table = null_world
    cfg = dbt_var("leading_lagging")
    as_of = _full_window_dates(table)[-1]
    day = table[table["as_of_date"] == as_of]
    kpis = tables["kpi_daily"].set_index("date")
    health = tables["model_health_daily"].set_index(["model_id", "date"])
    window = [as_of.date() - timedelta(days=i) for i in range(cfg["window_days"])][::-1]
    for model, metric, kpi, lag in (
        ("model_a", "precision", "conversion_rate", 0),
        ("model_b", "label_coverage", "revenue_per_active_user", 7),
        ("model_a", "mean_score", "average_order_value", 14),
    ):
        y = kpis[kpi].diff().reindex(window).to_numpy()
        x = health.loc[model][metric].diff().reindex([d - timedelta(days=lag) for d in window]).to_numpy()
        r = np.corrcoef(x, y)[0, 1]
        rx, ry = acf(x, nlags=1)[1], acf(y, nlags=1)[1]
        n_eff = len(x) / max(1.0, 1 + 2 * rx * ry)
        p = 2 * stats.norm.sf(abs(np.arctanh(r)) * np.sqrt(n_eff - 3))
        row = day[
            (day["model_id"] == model)
            & (day["health_metric"] == metric)
            & (day["kpi"] == kpi)
            & (day["lag_days"] == lag)
        ].iloc[0]
        assert row["n_days"] == len(x) == cfg["window_days"]
        assert row["correlation"] == pytest.approx(r, abs=1e-9)
        assert row["n_effective"] == pytest.approx(n_eff, rel=1e-9)
        assert row["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-12)  # erfc approximation: relative error < 1.2e-7
    tested = day.dropna(subset=["p_value"])
    # every model x metric (6 + max_psi) x KPI x lag with enough days is in the family
    assert len(tested) == (day["family_size"] == len(tested)).sum() == 2 * 7 * 4 * (cfg["max_lag_days"] + 1)
    holm = multipletests(tested["p_value"], method="holm")[1]
    np.testing.assert_allclose(tested["p_value_adjusted"], holm, rtol=1e-12)
    assert (tested["significant"] == (holm < cfg.get("alpha", 0.01))).all()


def test_null_worlds_print_a_lead_on_fewer_than_5_percent_of_days(null_world, tmp_path):
    from orchestration.summary import _leading_indicators

    _, table = null_world
    dates = _full_window_dates(table)
    assert len(dates) > 200
    naive = table[table["as_of_date"].isin(dates)].groupby("as_of_date")["p_value"].min()
    assert (naive < 0.05).mean() > 0.9  # the search alone finds a "lead" nearly every day
    db = tmp_path / "copy.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.register("ll", table)
        conn.execute("CREATE TABLE marts.leading_lagging AS SELECT * FROM ll")
        conn.register("k", null_world[0]["kpi_daily"])
        conn.execute("CREATE TABLE marts.kpi_daily AS SELECT * FROM k")
        conn.execute("CREATE TABLE marts.alerts (date DATE, model_id VARCHAR, metric VARCHAR, subject VARCHAR)")
        printed = [any("leads by" in line for line in _leading_indicators(conn, d.date())) for d in dates]
    assert np.mean(printed) < 0.05, f"{sum(printed)} of {len(dates)} days printed a lead"


def test_a_planted_lead_is_significant_at_its_lag(tmp_path, monkeypatch):
    from orchestration.summary import _leading_indicators

    tables = _null_world(days=60, seed=5)
    health = tables["model_health_daily"]
    kpis = tables["kpi_daily"]
    # model_b's positive rate moves conversion four days later (plus the KPI's own noise)
    rate = health.loc[health["model_id"] == "model_b", "positive_rate"].to_numpy()
    kpis["conversion_rate"] = kpis["conversion_rate"] - 0.6 * np.concatenate([np.full(4, rate[0]), rate[:-4]])
    table = _build(tmp_path, tables, monkeypatch)
    last = table[table["as_of_date"] == table["as_of_date"].max()]
    significant = last[last["significant"]]
    assert len(significant) and set(significant["kpi"]) == {"conversion_rate"}
    best = significant.sort_values("p_value_adjusted").iloc[0]
    assert (best["model_id"], best["health_metric"], best["lag_days"]) == ("model_b", "positive_rate", 4)
    assert best["correlation"] < 0 and best["is_best_lag"]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        lines = [line for line in _leading_indicators(conn, best["as_of_date"].date()) if "leads by" in line]
    assert len(lines) == 1 and "model_b positive_rate leads by 4 day(s)" in lines[0]
