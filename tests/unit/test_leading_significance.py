"""marts.leading_lagging's p-values: built by dbt on simulated series, checked against pandas, scipy and statsmodels.

Null worlds (no health metric moves the KPIs) must print a lead on fewer than 5% of
as-of dates although ~840 correlations are searched each day, also when a health metric
and a KPI share a weekly cycle (a common cause, not a lead); a planted lead is found.
"""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from orchestration.lib.settings import dbt_var
from tests.dbt_in_process import run_dbt
from tests.oracles.leading_correlation import correlate

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


def _build(tmp_path, tables: dict[str, pd.DataFrame], monkeypatch, **settings) -> pd.DataFrame:
    """Write the marts leading_lagging reads, run the dbt model over every day (``settings`` override the
    leading_lagging var's), return it."""

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
    variables = {"leading_lagging": {**dbt_var("leading_lagging"), **settings}} if settings else None
    result = run_dbt("run", ["leading_lagging"], str(tmp_path / "target"), variables, dates=(min(days), max(days)))
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


def test_p_values_match_fisher_z_partial_on_weekday_with_bartletts_effective_sample_size_and_holm(null_world):
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
        ("model_b", "recall", "refund_rate", 3),
    ):
        y = kpis[kpi].diff().reindex(window)
        x = health.loc[model][metric].diff().reindex([d - timedelta(days=lag) for d in window])
        expected = correlate(x, y, window)
        row = day[
            (day["model_id"] == model)
            & (day["health_metric"] == metric)
            & (day["kpi"] == kpi)
            & (day["lag_days"] == lag)
        ].iloc[0]
        assert row["n_days"] == expected.n_days == cfg["window_days"] and expected.controls == 6
        assert row["correlation"] == pytest.approx(expected.correlation, abs=1e-9)
        assert row["n_effective"] == pytest.approx(expected.n_effective, rel=1e-9)
        # erfc approximation: relative error < 1.2e-7
        assert row["p_value"] == pytest.approx(expected.p_value, rel=1e-6, abs=1e-12)
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
    dates = _full_window_dates(table)
    significant = table[table["significant"] & table["as_of_date"].isin(dates)]
    assert set(significant["kpi"]) == {"conversion_rate"}  # nothing else is a lead on any day
    best = significant.sort_values("p_value_adjusted").groupby("as_of_date").head(1)
    assert (best["model_id"] == "model_b").all() and (best["health_metric"] == "positive_rate").all()
    assert (best["lag_days"] == 4).all() and (best["correlation"] < 0).all() and best["is_best_lag"].all()
    # Found on 17 of the 18 full windows: on the last, r = -0.88 over n_effective 18.5 leaves 9.5 degrees of
    # freedom after the six weekday controls, Holm p 0.015 (p of the plain correlation times 840: 3e-5).
    assert len(best) >= 0.9 * len(dates), f"found on {len(best)} of {len(dates)} as-of dates"
    as_of = best["as_of_date"].max().date()
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:
        lines = [line for line in _leading_indicators(conn, as_of) if "leads by" in line]
    assert len(lines) == 1 and "model_b positive_rate leads by 4 day(s)" in lines[0]


def _weekend(dates) -> np.ndarray:
    return np.array([d.weekday() >= 5 for d in dates], dtype=float)


def test_a_weekly_cycle_shared_by_a_health_metric_and_a_kpi_is_no_lead(tmp_path, monkeypatch):
    """Daily business metrics share the week: on weekends model_a's positive rate and conversion both jump (by
    ~6 times their levels' day-to-day noise), otherwise they are independent. The weekday is a common cause: plain
    correlations of the changes would call it a lead on nearly every day; partial on weekday they do not."""
    cfg = dbt_var("leading_lagging")
    tables = _null_world(days=75, seed=23)
    kpis, health = tables["kpi_daily"], tables["model_health_daily"]
    kpis["conversion_rate"] += 0.02 * _weekend(kpis["date"])
    cycled = health["model_id"] == "model_a"
    health.loc[cycled, "positive_rate"] += 0.06 * _weekend(health.loc[cycled, "date"])
    table = _build(tmp_path, tables, monkeypatch)
    dates = _full_window_dates(table)
    pair = table[
        (table["model_id"] == "model_a")
        & (table["health_metric"] == "positive_rate")
        & (table["kpi"] == "conversion_rate")
    ]
    y_all = kpis.set_index("date")["conversion_rate"].diff()
    x_all = health[cycled].set_index("date")["positive_rate"].diff()
    before, after = [], []
    for as_of in dates:
        window = [as_of.date() - timedelta(days=i) for i in range(cfg["window_days"])][::-1]
        y = y_all.reindex(window)
        day = pair[pair["as_of_date"] == as_of].set_index("lag_days")
        plain = []
        for lag in range(cfg["max_lag_days"] + 1):
            x = x_all.reindex([d - timedelta(days=lag) for d in window])
            plain.append(correlate(x, y, window, by_weekday=False).p_value)
            partial = correlate(x, y, window)
            assert day.loc[lag, "correlation"] == pytest.approx(partial.correlation, abs=1e-9)
            assert day.loc[lag, "p_value"] == pytest.approx(partial.p_value, rel=1e-6, abs=1e-12)
        # Plain Pearson + Fisher z (Bartlett's n_effective), Holm over the day's search: Holm's adjusted p of a
        # p-value is at most p times the family size, so below alpha here means significant there
        family = table.loc[table["as_of_date"] == as_of, "family_size"].max()
        assert family == 2 * 7 * 4 * (cfg["max_lag_days"] + 1)
        before.append(min(plain) * family < cfg.get("alpha", 0.01))
        after.append(day["significant"].any())
    print(
        f"weekly cycle, {len(dates)} as-of dates: significant before (plain) {np.mean(before):.0%}, "
        f"after (partial on weekday) {np.mean(after):.0%}"
    )
    assert np.mean(before) > 0.9, f"plain correlations significant on {np.mean(before):.0%} of days"
    assert np.mean(after) < 0.05, f"partial correlations significant on {np.mean(after):.0%} of days"
    # and no other pair turns into a lead on more days either
    assert table[table["as_of_date"].isin(dates)].groupby("as_of_date")["significant"].any().mean() < 0.05


def test_too_few_pairs_for_the_weekday_controls_have_a_correlation_but_no_p_value(tmp_path, monkeypatch):
    """With min_days 3, a window's first pairs leave n_effective - 3 - (weekdays - 1) <= 0, or fewer than three
    pairs a weekday: no p-value, out of the Holm family, never significant."""
    cfg = dbt_var("leading_lagging")
    tables = _null_world(days=30, seed=3)
    table = _build(tmp_path, tables, monkeypatch, min_days=3)
    kpis = tables["kpi_daily"].set_index("date")
    health = tables["model_health_daily"].set_index(["model_id", "date"])
    rows = table[
        (table["model_id"] == "model_a") & (table["health_metric"] == "recall") & (table["kpi"] == "refund_rate")
    ]
    seen = {"p_value": 0, "none": 0}
    for row in rows.itertuples():
        window = [row.as_of_date.date() - timedelta(days=i) for i in range(cfg["window_days"])][::-1]
        y = kpis["refund_rate"].diff().reindex(window)
        x = health.loc["model_a"]["recall"].diff().reindex([d - timedelta(days=row.lag_days) for d in window])
        expected = correlate(x, y, window)
        assert row.n_days == expected.n_days
        if expected.n_days < 3 or np.isnan(expected.correlation):  # a weekday's lone pair demeans to 0
            assert pd.isna(row.correlation) and pd.isna(row.p_value) and not row.significant
            continue
        assert row.correlation == pytest.approx(expected.correlation, abs=1e-9)
        # the window's pairs are consecutive days (a null world has every day): statsmodels' acf applies
        assert row.n_effective == pytest.approx(expected.n_effective, rel=1e-9)
        if np.isnan(expected.p_value):
            assert pd.isna(row.p_value) and pd.isna(row.p_value_adjusted) and not row.significant
            seen["none"] += 1
        else:
            assert row.p_value == pytest.approx(expected.p_value, rel=1e-6, abs=1e-12)
            seen["p_value"] += 1
    assert seen["none"] > 0 and seen["p_value"] > 0, seen
    assert (table.groupby("as_of_date")["p_value"].count() == table.groupby("as_of_date")["family_size"].max()).all()
