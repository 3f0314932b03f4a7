"""KPI drop detection and the lead time of the alert that preceded it."""

import math
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest

from orchestration.lib.leading import describe, earliest_preceding_alert, first_sustained_drop, kpi_drop_leads

START = date(2026, 9, 1)


def _series(values) -> pd.Series:
    return pd.Series(values, index=[START + timedelta(days=i) for i in range(len(values))], dtype=float)


def _noisy(n: int, seed: int = 1) -> np.ndarray:
    return 0.07 + np.random.default_rng(seed).normal(0, 0.002, n)


def test_a_planted_step_is_found_on_its_first_day_with_the_hand_computed_limit():
    values = _noisy(40)
    values[30:] -= 0.02  # ten standard deviations
    drop = first_sustained_drop(_series(values), "conversion_rate", baseline_days=14, persist_days=3, k=3.0)
    assert drop is not None and drop.start_date == START + timedelta(days=30)
    baseline = values[16:30]
    assert drop.baseline_level == pytest.approx(np.median(baseline), abs=1e-12)
    # the noise by hand: the 28 days before, their day-to-day changes' median absolute value, as a Gaussian's sd
    noise = 1.4826 * np.median(np.abs(np.diff(values[2:30]))) / np.sqrt(2)
    assert drop.limit == pytest.approx(np.median(baseline) - 3 * noise, abs=1e-12)
    assert drop.drop_mean == pytest.approx(values[30:33].mean(), abs=1e-12)
    assert drop.relative_change == pytest.approx(values[30:33].mean() / np.median(baseline) - 1)


def test_a_weekly_cycles_busy_days_in_the_baseline_are_no_drop_after_them():
    # a trial's revenue per active user: weekdays ~3-4, weekends 11 and 18 (callbacks landing on quiet days); the
    # 7-day baseline's mean (~6) put three ordinary weekdays after a weekend 53% "below" it
    rng = np.random.default_rng(3)
    values = 3.5 + rng.normal(0, 0.3, 42)
    values[[5, 6, 12, 13, 19, 20, 26, 27, 33, 34, 40, 41]] = [11, 18] * 6
    drop = first_sustained_drop(_series(values), "revenue_per_active_user")
    mean_rule = [  # what the mean baseline said: some weekday run below mean - 3 x noise
        i
        for i in range(7, 40)
        if (
            values[i : i + 3] < values[i - 7 : i].mean() - 3 * 1.4826 * np.median(np.abs(np.diff(values[:i]))) / 2**0.5
        ).all()
    ]
    assert mean_rule and drop is None
    values[28:] -= 3.3  # the weekdays fall to a tenth (the weekly jumps widen the noise: a halving is missed)
    assert first_sustained_drop(_series(values), "revenue_per_active_user").start_date == START + timedelta(days=28)


def test_one_bad_day_is_not_a_drop_and_noise_alone_never_is():
    values = _noisy(40)
    values[25] -= 0.05
    assert first_sustained_drop(_series(values), "kpi") is None
    assert first_sustained_drop(_series(values), "kpi", persist_days=1) is not None  # the same day, if one day sufficed


def test_a_missing_day_breaks_the_run_and_a_short_series_has_no_drop():
    values = _noisy(40)
    values[30:] -= 0.02
    series = _series(values)
    assert first_sustained_drop(series.drop(START + timedelta(days=31)), "kpi") is None  # no unbroken run + baseline
    assert first_sustained_drop(series.drop(START + timedelta(days=10)), "kpi").start_date == START + timedelta(days=30)
    assert first_sustained_drop(_series(values[:10]), "kpi") is None
    with pytest.raises(ValueError, match="baseline_days"):
        first_sustained_drop(series, "kpi", baseline_days=1)


def _wind_down(rng, days: int = 40, typical: int = 30) -> tuple[pd.Series, pd.Series]:
    """Average order values of a day's orders, each drawn from one lognormal (no shift), as the orders wind down from
    ``typical`` a day to 1 over the last 8 days: a trial's replies tailing off after its emails stopped."""
    counts = np.r_[np.full(days - 8, typical), [20, 12, 7, 4, 2, 1, 1, 1]]
    aov = [rng.lognormal(3.2, 0.6, c).mean() for c in counts]
    return _series(aov), _series(counts)


def test_a_ratio_kpi_of_fewer_units_widens_its_limit_so_a_wind_down_is_no_drop():
    # a trial's average order value of single orders (13.54 against a median of 31.87) read as a "48% fall"
    rng = np.random.default_rng(7)
    plain = widened = 0
    for _ in range(300):
        values, units = _wind_down(rng)
        plain += first_sustained_drop(values, "average_order_value") is not None
        widened += first_sustained_drop(values, "average_order_value", units=units) is not None
    # by hand: lognormal(3.2, 0.6) has mean 29.4 and sd 19.3, so 30-order days' AOV varies by ~3.5 and the limit
    # sits near 29.4 - 3 x 3.5 = 18.8; a single order falls below it with P = Phi((ln 18.8 - 3.2) / 0.6) = 0.33,
    # three in a row 0.036, over the tail's windows a few % of series. Widened by sqrt(30) the limit is below 0
    # for them: what is left is the steady days' own rate of a 3-sd run (~1%)
    assert plain >= 12 and widened <= 6 and 3 * widened < plain, (plain, widened)
    # a real fall on full days is still found, on its first day, with the plain limit (units as usual)
    values, units = _wind_down(rng)
    fallen = values.copy()
    fallen.iloc[20:] *= 0.5
    full = _series(np.full(len(values), 30))
    found = first_sustained_drop(fallen.iloc[:32], "average_order_value", units=full.iloc[:32])
    assert found is not None and found.start_date == START + timedelta(days=20)
    assert found == first_sustained_drop(fallen.iloc[:32], "average_order_value")


def test_the_earliest_alert_before_the_drop_gives_the_lead_time():
    values = _noisy(40)
    values[30:] -= 0.02
    drop = first_sustained_drop(_series(values), "conversion_rate")
    alerts = pd.DataFrame(
        {
            "date": [START + timedelta(days=d) for d in (5, 27, 28, 31)],  # day 5: too early; day 31: after the drop
            "model_id": ["m", "recommender", "recommender", "m"],
            "metric": ["volume_change", "psi", "expected_calibration_error", "psi"],
            "subject": ["predictions", "feature_device", "score", "x"],
        }
    )
    lead = earliest_preceding_alert(alerts, drop, max_lead_days=14)
    assert (lead.model_id, lead.metric, lead.alert_date, lead.lead_days) == (
        "recommender",
        "psi",
        START + timedelta(days=27),
        3,
    )
    assert "3 day(s) earlier" in describe(lead, drop) and "conversion_rate fell" in describe(lead, drop)
    assert earliest_preceding_alert(alerts.iloc[[0, 3]], drop) is None
    # an alert on the drop's first day is no lead: said as the same day (a trial read "0 day(s) earlier")
    same_day = alerts.assign(date=[START + timedelta(days=d) for d in (5, 30, 31, 31)])
    lead = earliest_preceding_alert(same_day, drop)
    assert lead.lead_days == 0 and describe(lead, drop).endswith(
        f"the first alert by then was psi (feature_device) on recommender on the same day, {START + timedelta(days=30)}."
    )
    assert "no model-health alert" in describe(None, drop)
    assert describe(None, None) == "No sustained KPI drop detected."


def _warehouse(conversion: np.ndarray, alert_days: list[int]) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute("CREATE SCHEMA marts")
    kpis = pd.DataFrame(
        {
            "date": [START + timedelta(days=i) for i in range(len(conversion))],
            "conversion_rate": conversion,
            # many: a conversion rate's day-to-day noise (0.002) at least its binomial's (sqrt(0.07 x 0.93 / n))
            "sessions": 100_000,
        }
    )
    alerts = pd.DataFrame(
        {
            "date": [START + timedelta(days=d) for d in alert_days],
            "model_id": "recommender",
            "metric": "psi",
            "subject": "feature_device",
        }
    )
    conn.execute("CREATE TABLE marts.kpi_daily AS SELECT * FROM kpis")
    conn.execute("CREATE TABLE marts.alerts AS SELECT * FROM alerts")
    return conn


def test_kpi_drop_leads_reads_the_warehouse_up_to_the_as_of_day():
    values = _noisy(40)
    values[30:] -= 0.02
    with _warehouse(values, alert_days=[26, 35]) as conn:
        (drop, lead), (flat, none) = kpi_drop_leads(conn, START + timedelta(days=39), ["conversion_rate", "sessions"])
        assert (drop.start_date, lead.alert_date, lead.lead_days) == (
            START + timedelta(days=30),
            START + timedelta(days=26),
            4,
        )
        assert flat is None and none is None  # a constant KPI never drops
        ((before, _),) = kpi_drop_leads(conn, START + timedelta(days=31), ["conversion_rate"])
        assert before is None  # two days below the limit do not yet confirm a drop
        assert kpi_drop_leads(conn, START + timedelta(days=39), []) == []


def test_kpi_drop_leads_names_an_unknown_kpi():
    with _warehouse(_noisy(20), alert_days=[]) as conn, pytest.raises(ValueError, match=r"\['revenu'\].*kpi_daily"):
        kpi_drop_leads(conn, START + timedelta(days=19), ["conversion_rate", "revenu"])


def test_a_rare_events_share_needs_a_binomial_rise_not_a_run_of_nonzero_days():
    # a trial's constant 3% refund rate on ~25 orders a day: most days 0, so the baseline's median and its
    # day-to-day noise were 0 and three days with a refund "rose from a baseline of 0 to 0.0538"
    rng = np.random.default_rng(11)

    def refunds(after: float) -> tuple[pd.Series, pd.Series]:
        orders = rng.poisson(25, 120).clip(1)
        shares = rng.binomial(orders, np.where(np.arange(120) >= 60, after, 0.03)) / orders
        return _series(shares), _series(orders.astype(float))

    plain = binomial = 0
    for _ in range(100):
        shares, orders = refunds(0.03)
        plain += first_sustained_drop(shares, "refund_rate", rising=True, units=orders) is not None
        binomial += first_sustained_drop(shares, "refund_rate", rising=True, units=orders, proportion=True) is not None
    # by hand: with p = 3% a day of 25 orders has a refund with P = 1 - 0.97^25 = 0.53, three in a row 0.15 (the
    # plain rule's limit is then 0); k binomial sds, 3 x sqrt(0.03 x 0.97 / 25) = 0.10, need 3 of 25 three days
    # in a row (P = 0.04^3)
    assert plain >= 15 and binomial <= 4, (plain, binomial)
    # a real rise, to 30%, is found from its first days
    found = 0
    for _ in range(30):
        shares, orders = refunds(0.30)
        drop = first_sustained_drop(shares, "refund_rate", rising=True, units=orders, proportion=True)
        found += drop is not None and START + timedelta(days=60) <= drop.start_date <= START + timedelta(days=63)
    assert found >= 24, found


def test_a_year_of_noise_rarely_drops():
    # a constant per-session conversion (1,600 sessions a day, 4.5%): with the 7-day baseline's own standard
    # deviation (by hand below) 9% of such years showed a sustained drop, and the summary named the alert that
    # "led" it; with the noise of the day-to-day changes under 3%
    rng = np.random.default_rng(0)
    days = [START + timedelta(days=i) for i in range(365)]
    years = [rng.binomial(1600, 0.045, 365) / 1600 for _ in range(150)]

    def old_rule(v) -> bool:
        return any(
            (v[i : i + 3] < v[i - 7 : i].mean() - 3 * v[i - 7 : i].std(ddof=1)).all() for i in range(7, len(v) - 2)
        )

    assert sum(first_sustained_drop(pd.Series(v, index=days), "kpi") is not None for v in years) <= 0.03 * len(years)
    assert sum(old_rule(v) for v in years) > 0.05 * len(years)


def test_a_lower_is_better_kpi_worsens_by_rising_and_its_fall_is_no_drop():
    # a trial's refund rate went from 0.12-0.22 to 0 for three days: the summary said it "fell 100%" as a KPI drop
    values = _noisy(40)
    risen, fallen = values.copy(), values.copy()
    risen[30:] += 0.02  # ten standard deviations up
    fallen[30:] -= 0.02
    drop = first_sustained_drop(_series(risen), "refund_rate", baseline_days=14, rising=True)
    assert drop is not None and drop.rising and drop.start_date == START + timedelta(days=30)
    baseline = risen[16:30]
    noise = 1.4826 * np.median(np.abs(np.diff(risen[2:30]))) / np.sqrt(2)  # by hand, as for a fall
    assert drop.baseline_level == pytest.approx(np.median(baseline), abs=1e-12)
    assert drop.limit == pytest.approx(np.median(baseline) + 3 * noise, abs=1e-12)
    assert drop.drop_mean == pytest.approx(risen[30:33].mean(), abs=1e-12)
    said = describe(None, drop)
    assert said.startswith(f"refund_rate rose {risen[30:33].mean() / np.median(baseline) - 1:.0%} above its baseline")
    assert first_sustained_drop(_series(fallen), "refund_rate", baseline_days=14, rising=True) is None
    assert first_sustained_drop(_series(risen), "refund_rate", baseline_days=14) is None  # higher-is-better: no drop


def test_a_rise_from_a_baseline_of_zero_is_said_in_levels_not_as_nan_percent():
    # a trial's refund rate was 0 until the first purchases were refunded: "refund_rate rose nan% above its baseline"
    values = np.zeros(40)
    values[30:] = [0.05, 0.04, 0.06, 0.05, 0.05, 0.04, 0.06, 0.05, 0.05, 0.04]
    orders = _series(np.full(40, 25))  # a share of 25 orders a day: judged by its binomial floor (no noise before)
    drop = first_sustained_drop(
        _series(values), "refund_rate", baseline_days=14, rising=True, units=orders, proportion=True
    )
    assert drop is not None and drop.baseline_level == 0 and math.isnan(drop.relative_change)
    said = describe(None, drop)
    assert said.startswith(
        f"refund_rate rose from a baseline of 0 to {np.mean(values[30:33]):.3g} from {START + timedelta(days=30)}"
    )
    assert "nan" not in said


def test_a_lower_is_better_name_outside_the_kpis_is_a_clear_error():
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts; CREATE TABLE marts.kpi_daily (date DATE, refund_rate DOUBLE)")
        with pytest.raises(ValueError, match=r"lower_is_better \['refunds'\] are not among its kpis"):
            kpi_drop_leads(conn, START, ["refund_rate"], lower_is_better=["refunds"])


def test_a_kpi_that_repeats_itself_exactly_has_no_noise_to_judge_a_dip_by():
    # a trial's enrolment value: the same 21,600 on six days of 1-6 enrolments, then 19,800, 15,000 and 20,100: the
    # median change 0 made the limit the baseline itself, and "average_order_value fell 15%" led every summary
    values = [21_600.0] * 12 + [19_800.0, 15_000.0, 20_100.0, 21_600.0]
    units = _series([1, 3, 2, 6, 1, 4, 2, 1, 3, 5, 2, 1, 1, 3, 6, 2])
    assert np.median(np.abs(np.diff(values[:12]))) == 0  # by hand: no noise to read
    assert first_sustained_drop(_series(values), "average_order_value", units=units) is None
    # where the days do vary, the same fall is judged as before
    varied = np.array(values) + np.tile([0.0, 150.0, -120.0, 90.0], 4)
    drop = first_sustained_drop(_series(varied), "average_order_value")
    assert drop is not None and drop.start_date == START + timedelta(days=12)
    # a count that sat exactly flat and stops has changed: a re-trial's 7 active users a day, then none
    flat = _series([7.0] * 12 + [0.0] * 4)
    drop = first_sustained_drop(flat, "active_users")
    assert drop is not None and drop.start_date == START + timedelta(days=12) and drop.drop_mean == 0
