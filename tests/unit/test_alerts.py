"""Alert rules on hand-made mart rows: each rule just over and just under its threshold, values checked by hand;
the precision / recall drop rules against scipy's Fisher exact test, on noise and on a real drop."""

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import dagster as dg
from scipy.stats import chi2, chi2_contingency, fisher_exact, poisson
from statsmodels.stats.proportion import proportions_ztest

from orchestration.lib.alerts import (
    DRIFT_SQL,
    drift_pvalue,
    AlertConfig,
    calibration_pvalue,
    check_targets,
    daily_volume,
    evaluate_alerts,
    load_alert_config,
    one_sided_drop_pvalue,
    summarise_breaches,
    unjudged_drift,
)
from orchestration.lib.project_config import parse_config

D0 = date(2026, 3, 1)


def config(min_labelled: int = 100, **models) -> AlertConfig:
    """The alert settings of a project file declaring model m (models: m -> its alert overrides)."""
    declared = {"m": {}} | {m: {"alerts": rules} for m, rules in models.items()}
    return load_alert_config(parse_config({"alerts": {"min_labelled": min_labelled}, "models": declared}))


def day(i: int) -> pd.Timestamp:
    return pd.Timestamp(D0 + timedelta(days=i))


def health(*rows: dict, model_id: str = "m") -> pd.DataFrame:
    """One healthy row per dict (keys override the defaults; `day` is the day index)."""
    out = []
    for row in rows:
        i = row.pop("day")
        # 500 labelled: 150 TP, 150 FP, 50 FN (precision 0.5, recall 0.75), exactly the reference's rates
        out.append(
            {
                "date": day(i),
                "model_id": model_id,
                "model_version": "v1",
                "predictions": 1000,
                "labelled": 500,
                "true_positives": 150,
                "false_positives": 150,
                "false_negatives": 50,
                "expected_calibration_error": 0.05,
                # far beyond chance on 500 labels: a day over the ECE limit is judged miscalibrated
                "calibration_chi2": 100.0,
                "calibration_bins": 10,
                "precision": 0.5,
                "label_coverage": 0.9,
                "labels_as_of": day(i + 10),
                **row,
            }
        )
    return pd.DataFrame(out)


NO_DRIFT = pd.DataFrame(
    columns=[
        "date",
        "model_id",
        "model_version",
        "feature",
        "psi",
        "current_values",
        "reference_values",
        "drift_chi2",
        "drift_bins",
    ]
)
# bins far beyond sampling noise (chi-square 1,000 on 9 degrees of freedom): the PSI threshold decides
BEYOND_NOISE = {"drift_chi2": 1000.0, "drift_bins": 10}
# beyond the rule's alpha (0.01), not a tenth of it (chi-square 23 on 9 degrees: p 0.0062): a day under min_count is
# not judged alone
NEAR_NOISE = {"drift_chi2": 23.0, "drift_bins": 10}
# the reference window's summed counts: precision 0.5, recall 0.75
REFERENCE = pd.DataFrame(
    {
        "model_id": ["m"],
        "model_version": ["v1"],
        "reference_true_positives": [1050],
        "reference_false_positives": [1050],
        "reference_false_negatives": [350],
        # its labels had landed long before the days judged (a label horizon of 30 days)
        "reference_end_date": [day(-31)],
    }
)
VERSIONS = pd.DataFrame({"model_id": ["m"], "model_version": ["v1"], "first_date": [day(0)]})


def alerts(
    rows: pd.DataFrame,
    first: int,
    last: int,
    cfg: AlertConfig | None = None,
    drift=NO_DRIFT,
    versions=VERSIONS,
    reference=REFERENCE,
) -> pd.DataFrame:
    return evaluate_alerts(rows, drift, reference, versions, cfg or config(), day(first), day(last))


def by_metric(found: pd.DataFrame, metric: str) -> list[tuple]:
    rows = found[found["metric"] == metric]
    return [(r.date, r.subject, round(r.value, 12), r.threshold) for r in rows.itertuples()]


def steady(days: range, **changes) -> pd.DataFrame:
    """A row per day; changes maps a day index to overrides for that day."""
    return health(*({"day": i, **changes.get(f"d{i}", {})} for i in days))


def test_calibration_alert_just_over_the_threshold_and_only_with_enough_labels():
    rows = steady(
        range(3),
        d0={"expected_calibration_error": 0.0801},
        d1={"expected_calibration_error": 0.0799},
        d2={"expected_calibration_error": 0.5, "labelled": 99},
    )
    found = alerts(rows, 0, 2)
    assert by_metric(found, "expected_calibration_error") == [(day(0), "", 0.0801, 0.08)]
    assert found.loc[0, "rule"] == "> 0.08 and Hosmer-Lemeshow p < 0.01" and found.loc[0, "model_version"] == "v1"


def coverage(labelled: int, predictions: int = 1000) -> dict:
    return {"labelled": labelled, "predictions": predictions, "label_coverage": labelled / predictions}


def test_label_coverage_is_judged_only_once_the_day_is_old_enough():
    rows = steady(
        range(3),
        d0={**coverage(400), "labels_as_of": day(7)},
        d1={**coverage(510), "labels_as_of": day(8)},
        d2={**coverage(100), "labels_as_of": day(8)},
    )  # six days of labels: not judged yet
    assert by_metric(alerts(rows, 0, 2), "label_coverage") == [(day(0), "", 0.4, 0.5)]


def test_label_coverage_below_the_limit_alerts_only_beyond_chance():
    """A day of one prediction whose label never came is 0% coverage and no outage (a real trial: 12 such alerts
    at ~3 predictions a day): a day is judged below the limit when a one-sided exact binomial test of its labelled
    count against the limit rejects at alpha (scipy's binomtest as the oracle)."""
    from scipy.stats import binomtest

    days = [(0, 1), (1, 4), (0, 7), (3, 10), (1, 10), (470, 1000), (460, 1000), (900, 1000)]
    rows = steady(range(len(days)), **{f"d{i}": coverage(k, n) for i, (k, n) in enumerate(days)})
    expected = [
        (day(i), "", k / n, 0.5)
        for i, (k, n) in enumerate(days)
        if k / n < 0.5 and binomtest(k, n, 0.5, alternative="less").pvalue < 0.01
    ]
    found = alerts(rows, 0, len(days) - 1)
    assert by_metric(found, "label_coverage") == expected
    # 0 of 7 (p = 0.0078), 1 of 10 (0.0107: not), 460 of 1000 (0.0062), not 470 of 1000 (0.033)
    assert [d for d, *_ in expected] == [day(2), day(6)]
    assert set(found.loc[found["metric"] == "label_coverage", "rule"]) == {
        "< 0.5 after 7 days and one-sided binomial p < 0.01"
    }
    # a model's own limit: the test is against it (0 of 4 is p = 0.0016 against 0.8)
    cfg = config(m={"label_coverage": {"below": 0.8}})
    assert [d for d, *_ in by_metric(alerts(rows, 0, len(days) - 1, cfg), "label_coverage")] == [
        day(i) for i, (k, n) in enumerate(days) if binomtest(k, n, 0.8, alternative="less").pvalue < 0.01
    ]


def test_a_label_outage_of_a_model_too_small_to_test_a_day_alone_is_judged_on_its_last_seven_days_pooled():
    """A trial's 78-day label outage at ~2 predictions a day raised nothing: 0 of 6 is p 0.016 against 0.5, no
    day could reject. A day whose 0 labelled could not reject alone is judged on its model's mature days of the
    last pool_days (7) pooled; scipy's binomtest on hand sums is the oracle."""
    from scipy.stats import binomtest

    # 20 days of 2 predictions, both labelled, then labels stop from day 8; day 15 has 9 predictions (alone)
    days = [(2, 2)] * 8 + [(0, 2)] * 7 + [(0, 9)] + [(0, 2)] * 4
    rows = steady(range(len(days)), **{f"d{i}": coverage(k, n) for i, (k, n) in enumerate(days)})
    found = alerts(rows, 0, len(days) - 1)
    expected = []
    for i, (k, n) in enumerate(days):
        if 0.5**n >= 0.01:  # too small alone: the last 7 calendar days, the day's included
            k, n = (sum(x) for x in zip(*days[max(0, i - 6) : i + 1], strict=True))
        if k / n < 0.5 and binomtest(k, n, 0.5, alternative="less").pvalue < 0.01:
            expected.append((day(i), "", round(k / n, 12), 0.5))
    assert by_metric(found, "label_coverage") == expected
    # by hand: day 12 pools days 6-12 (4 of 14 labelled, p 0.029: not), day 13 days 7-13 (2 of 14, p 0.0065)
    assert [d for d, *_ in expected] == [day(i) for i in range(13, 20)]
    rules = found.loc[found["metric"] == "label_coverage"].set_index("date")["rule"]
    assert rules[day(13)] == (
        "< 0.5 after 7 days and one-sided binomial p < 0.01 on the model's last 7 days pooled "
        "(2 of 14 labelled: a day alone is too small to test)"
    )
    assert rules[day(15)] == "< 0.5 after 7 days and one-sided binomial p < 0.01"  # 9 predictions: alone
    # pool_days 1: a small day is judged alone, as before (never, here, but day 15)
    one = config(m={"label_coverage": {"pool_days": 1}})
    assert [d for d, *_ in by_metric(alerts(rows, 0, len(days) - 1, one), "label_coverage")] == [day(15)]

    # at the boundary in floating point: 0 of 2 against 0.9 is p = 0.1 ** 2 = alpha exactly, never below it, so such
    # a day is pooled (a re-trial's 2-prediction days were judged alone on 0.0999... ** 2 and never alerted)
    near = config(m={"label_coverage": {"below": 0.9}})
    pooled = {d for d, *_ in by_metric(alerts(rows, 0, len(days) - 1, near), "label_coverage")}
    for i, (k, n) in enumerate(days):
        if n == 2 and i >= 13:  # by hand: its 7 days hold 0 (or 0 of 9 more) labelled: far below 0.9, pooled
            window = days[max(0, i - 6) : i + 1]
            k, n = (sum(x) for x in zip(*window, strict=True))
            assert binomtest(k, n, 0.9, alternative="less").pvalue < 0.01 and day(i) in pooled


def test_psi_alert_names_the_feature():
    drift = pd.DataFrame(
        {
            "date": [day(0), day(0), day(1), day(1)],
            "model_id": "m",
            "model_version": "v1",
            "feature": ["score", "feature_a", "score", "feature_a"],
            "psi": [0.2001, 0.2, 0.1999, np.nan],
            "current_values": 2000,
            "reference_values": 14000,
            **BEYOND_NOISE,
        }
    )
    assert by_metric(alerts(steady(range(2)), 0, 1, drift=drift), "psi") == [(day(0), "score", 0.2001, 0.2)]


def _null_psi(rng, n: int, m: int, sims: int, bins: int = 10, floor: float = 1e-4) -> np.ndarray:
    """PSI of ``n`` current against ``m`` reference values drawn from one distribution, binned as the project
    bins a numeric feature (between the reference's deciles, right-closed; an empty bin's share is 1e-4)."""
    out = np.empty(sims)
    for i in range(sims):
        reference, current = rng.normal(size=m), rng.normal(size=n)
        edges = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
        ref = np.bincount(np.searchsorted(edges, reference), minlength=bins) / m
        cur = np.bincount(np.searchsorted(edges, current), minlength=bins) / n
        ref, cur = np.where(ref == 0, floor, ref), np.where(cur == 0, floor, cur)
        out[i] = np.sum((cur - ref) * np.log(cur / ref))
    return out


def test_psi_is_judged_only_with_min_count_values_on_both_sides_where_noise_stays_below_the_threshold():
    # the default min_count from the null distribution: 10 values a day against a 7-day reference of 70 give
    # an unchanged model a PSI of ~3 (a real data set alerted every day); at 200 on both sides the 0.2
    # threshold is rarely crossed by chance, and more so with a reference 7 days long
    rule = config().rule("psi", "m")
    rng = np.random.default_rng(7)
    assert np.median(_null_psi(rng, 10, 70, 2000)) > 2 and (_null_psi(rng, 10, 70, 2000) > rule["above"]).mean() > 0.99
    n = rule["min_count"]
    assert (_null_psi(rng, n, n, 2000) > rule["above"]).mean() < 0.05
    assert (_null_psi(rng, n, 7 * n, 2000) > rule["above"]).mean() < 0.005

    drift = pd.DataFrame(
        {
            "date": [day(0), day(0), day(1), day(1)],
            "model_id": "m",
            "model_version": "v1",
            "feature": ["score", "feature_a", "score", "feature_a"],
            "psi": 3.0,
            "current_values": [10, n, n - 1, 5 * n],
            "reference_values": [70, n, 7 * n, n - 1],
            **NEAR_NOISE,
        }
    )
    assert by_metric(alerts(steady(range(2)), 0, 1, drift=drift), "psi") == [(day(0), "feature_a", 3.0, 0.2)]
    judged_all = config(m={"psi": {"min_count": 0}})  # a model judged on any count
    assert len(by_metric(alerts(steady(range(2)), 0, 1, drift=drift, cfg=judged_all), "psi")) == 4


def test_drift_chi2_is_scipys_homogeneity_test_of_the_days_and_the_references_bin_counts():
    import duckdb

    # bins (current, reference): an empty one on either side, one empty on both (no degree of freedom), a
    # version-less model, a categorical feature with a category only today
    cases = {
        (day(0), "m", "v1", "score"): [(30, 700), (0, 690), (45, 710), (0, 0), (125, 700)],
        (day(1), "m", "v1", "score"): [(50, 700), (50, 690), (55, 710), (45, 700)],
        (day(1), "n", None, "feature_kind"): [(12, 0), (80, 400), (108, 610), (0, 2)],
    }
    bins = pd.DataFrame(
        [
            {
                "date": d,
                "model_id": m,
                "model_version": v,
                "feature": f,
                "bin": str(i),
                "current_count": c,
                "reference_count": r,
            }
            for (d, m, v, f), counts in cases.items()
            for i, (c, r) in enumerate(counts)
        ]
    )
    daily = bins[["date", "model_id", "model_version", "feature"]].drop_duplicates().assign(psi=0.5)
    daily = daily.assign(
        pooled_values=None,
        pooled_psi=None,
        pooled_chi2=None,
        pooled_bins=None,
        reference_end_date=day(0) - pd.Timedelta(days=1),
    )
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute("CREATE TABLE marts.feature_drift_bins AS SELECT * FROM bins")
        conn.execute("CREATE TABLE marts.feature_drift_daily AS SELECT * FROM daily")
        got = conn.execute(DRIFT_SQL, [day(0), day(1)]).df()
    assert len(got) == len(cases)
    for (d, m, v, f), counts in cases.items():
        row = got[(got["date"] == pd.Timestamp(d)) & (got["model_id"] == m) & (got["feature"] == f)].iloc[0]
        table = np.array([pair for pair in counts if sum(pair)]).T  # 2 x the bins either side holds
        statistic, p, dof, _ = chi2_contingency(table, correction=False)
        assert row["drift_chi2"] == pytest.approx(statistic, rel=1e-12) and row["drift_bins"] - 1 == dof
        assert drift_pvalue(row["drift_chi2"], row["drift_bins"]) == pytest.approx(p, rel=1e-9)
        assert (row["current_values"], row["reference_values"]) == tuple(table.sum(axis=1))
    assert np.isnan(drift_pvalue(0.0, 1)) and np.isnan(drift_pvalue(np.nan, 0))


def _category_days(rng, reference: np.ndarray, current: np.ndarray, n: int, m: int, days: int) -> pd.DataFrame:
    """``days`` drift rows of a categorical feature: ``n`` values a day drawn with shares ``current`` against a
    reference of ``m`` drawn with ``reference``, PSI as feature_drift_daily computes it (a category empty on a
    side counts as 1e-4) and the chi-square of the two sides' counts by scipy."""
    out = []
    for i in range(days):
        ref, cur = rng.multinomial(m, reference), rng.multinomial(n, current)
        seen = (ref + cur) > 0
        p, q = np.where(cur == 0, 1e-4, cur / n)[seen], np.where(ref == 0, 1e-4, ref / m)[seen]
        statistic = chi2_contingency(np.array([cur[seen], ref[seen]]), correction=False)[0]
        out.append(
            {
                "date": day(i),
                "model_id": "m",
                "model_version": "v1",
                "feature": "feature_kind",
                "psi": float(np.sum((p - q) * np.log(p / q))),
                "current_values": n,
                "reference_values": m,
                "drift_chi2": statistic,
                "drift_bins": int(seen.sum()),
            }
        )
    return pd.DataFrame(out)


def test_psi_of_many_categories_alerts_beyond_sampling_noise_not_on_it():
    # a trial's 40-category feature at ~200 values a day against a 7-day reference: PSI crossed 0.2 on every
    # unchanged day (noise ~ (categories - 1) (1/n + 1/m)) and raised a retraining request
    rng = np.random.default_rng(11)
    shares = rng.dirichlet(np.full(40, 0.8))
    days = 400
    unchanged = _category_days(rng, shares, shares, 200, 1400, days)
    moved = shares.copy()
    top = np.argsort(shares)[-4:]  # a real shift: the four largest categories lose three quarters of their share
    moved[top] /= 4
    moved /= moved.sum()
    drifted = _category_days(rng, shares, moved, 200, 1400, days)
    psi = config().rule("psi", "m")
    assert (unchanged["psi"] > psi["above"]).mean() > 0.5  # noise alone crosses the threshold on most days
    noise = by_metric(alerts(steady(range(days)), 0, days - 1, drift=unchanged), "psi")
    shift = by_metric(alerts(steady(range(days)), 0, days - 1, drift=drifted), "psi")
    # at alpha 0.01: 1-2% of unchanged days (the chi-square approximation on sparse categories; binomial sd of 400
    # days 0.5-0.7%), and nearly every shifted one
    assert len(noise) / days < 0.03 and len(shift) / days > 0.95
    assert (drifted["psi"] > psi["above"]).mean() > 0.8


def test_per_model_override_replaces_the_threshold():
    rows = steady(range(1), d0={"expected_calibration_error": 0.09})
    assert len(by_metric(alerts(rows, 0, 0), "expected_calibration_error")) == 1
    cfg = config(m={"expected_calibration_error": {"above": 0.1}})
    assert not by_metric(alerts(rows, 0, 0, cfg=cfg), "expected_calibration_error")
    assert cfg.rule("expected_calibration_error", "other") == {"above": 0.08, "alpha": 0.01}  # only m's changed


def test_volume_change_against_the_trailing_seven_day_median():
    # trailing median of days 0..6 is 100 (one 400 outlier does not move a median)
    base = {f"d{i}": {"predictions": 100} for i in range(7)} | {"d3": {"predictions": 400}}
    over = alerts(steady(range(8), **base, d7={"predictions": 151}), 7, 7)
    under = alerts(steady(range(8), **base, d7={"predictions": 149}), 7, 7)
    low = alerts(steady(range(8), **base, d7={"predictions": 49}), 7, 7)
    assert by_metric(over, "volume_change") == [(day(7), "", 0.51, 0.5)]
    assert by_metric(under, "volume_change") == []
    assert by_metric(low, "volume_change") == [(day(7), "", -0.51, 0.5)]


def test_a_day_without_predictions_is_an_outage_alert():
    # day 7 has no health row at all (no predictions): it counts as 0, a -100% change
    rows = steady([i for i in range(10) if i != 7])
    found = alerts(rows, 7, 9)
    assert by_metric(found, "volume_change") == [(day(7), "", -1.0, 0.5)]
    assert found.loc[0, "model_version"] == "v1"


def test_a_retired_models_days_after_its_retirement_raise_no_volume_alert():
    # a trial's planned end of a model raised 10 volume alerts; a drop before the date still alerts
    rows = steady([i for i in range(15) if i not in (10, 12, 13, 14)])
    retired = load_alert_config(parse_config({"models": {"m": {"retired_after": str(day(11).date())}}}))
    # by hand: each empty day's trailing 7-day median is 1000 (at most three empty days among the seven)
    assert [d for d, *_ in by_metric(alerts(rows, 10, 14), "volume_change")] == [day(10), day(12), day(13), day(14)]
    assert by_metric(alerts(rows, 10, 14, retired), "volume_change") == [(day(10), "", -1.0, 0.5)]


def test_a_day_whose_predictions_a_gate_held_back_is_no_outage():
    # a day the predictions gate held back (a 10x spike did, before a rise only warned) read as 0 predictions,
    # and volume_change said -100% (an outage) for the busiest day of the year
    rows = steady([i for i in range(10) if i != 7])
    held = evaluate_alerts(rows, NO_DRIFT, REFERENCE, VERSIONS, config(), day(7), day(9), held_back=[day(7)])
    assert by_metric(held, "volume_change") == []  # neither the held day nor the days after it
    # the day after a held-back day is judged against the days before (a real drop still alerts)
    dropped = steady([i for i in range(10) if i != 7], d8={"predictions": 100})
    found = evaluate_alerts(dropped, NO_DRIFT, REFERENCE, VERSIONS, config(), day(7), day(9), held_back=[day(7)])
    assert by_metric(found, "volume_change") == [(day(8), "", -0.9, 0.5)]


def test_a_day_never_loaded_is_as_unknown_as_a_held_back_one():
    # a trial: a truncated predictions file stopped a day's run; the next day's run notified "volume_change = -1.0"
    # for the day it had never loaded (no gate judged it), while its closing note said the day never loaded
    import duckdb

    from orchestration.defs.model_health.alerts import UNKNOWN_VOLUME_SQL

    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA quality")
        conn.execute("CREATE TABLE quality.gate_results (date DATE, table_name VARCHAR, passed BOOLEAN)")
        rows = [(2, "predictions", True), (3, "predictions", True), (3, "orders", False), (5, "predictions", False)]
        rows += [(5, "predictions", True), (6, "predictions", True), (4, "orders", True)]  # day 4: orders alone
        conn.executemany("INSERT INTO quality.gate_results VALUES (?, ?, ?)", [(day(d), t, p) for d, t, p in rows])
        unknown = [d for (d,) in conn.execute(UNKNOWN_VOLUME_SQL, [day(0), day(7)]).fetchall()]
    # days 0-1 came before the first gate (no history), 4 never loaded, 5 held back, 7 not run yet
    assert sorted(unknown) == [day(4).date(), day(5).date(), day(7).date()]


def test_trailing_median_runs_over_calendar_days_not_rows():
    # 1000 a day on days 0..6, nothing on days 7..10, 1000 again on day 11
    rows = steady([i for i in range(12) if not 7 <= i <= 10])
    volume = alerts(rows, 7, 11)
    volume = volume[volume["metric"] == "volume_change"]
    # days 7..10: the trailing calendar week holds at least four 1000s -> median 1000, change -1;
    # day 11: days 4..10 are 1000 x3 and 0 x4 -> median 0, below the rule's min_count (50): not judged.
    # Over the last seven *rows* day 11 would look normal and days 7..10 would not exist.
    assert list(volume["date"]) == [day(i) for i in range(7, 11)]
    assert list(volume["value"]) == [-1.0] * 4


def test_days_before_the_model_started_are_not_an_outage():
    rows = steady(range(5, 14))  # the model was born on day 5
    versions = VERSIONS.assign(first_date=[day(5)])
    assert by_metric(alerts(rows, 0, 13, versions=versions), "volume_change") == []
    with pytest.raises(ValueError, match="'m'.*int_model_versions"):
        alerts(rows, 0, 13, versions=VERSIONS.iloc[:0])


def test_daily_volume_fills_missing_days_with_zero_and_keeps_the_serving_version():
    rows = pd.concat([steady([0, 2]), steady([2], d2={"model_version": "v2", "predictions": 3000})])
    volume = daily_volume(rows, day(0), day(-5), day(3))
    assert list(volume["date"]) == [day(i) for i in range(4)]
    assert list(volume["predictions"]) == [1000, 0, 4000, 0]
    assert list(volume["model_version"]) == ["v1", "v1", "v2", "v2"]


def test_one_evaluation_over_a_range_equals_one_per_day():
    """A backfill judges each day from the same calendar days as that day's own daily run."""
    cfg = config()
    rows = steady([i for i in range(24) if i not in (12, 20, 21)], d15={"predictions": 1700}, d23={"predictions": 300})
    whole = alerts(rows[rows["date"] >= day(10 - cfg.lookback_days)], 10, 23, cfg)
    each = [
        alerts(rows[(rows["date"] >= day(d - cfg.lookback_days)) & (rows["date"] <= day(d))], d, d, cfg)
        for d in range(10, 24)
    ]
    daily = pd.concat([f for f in each if len(f)], ignore_index=True)
    assert set(whole["metric"]) == {"volume_change"}
    assert list(whole["date"]) == [day(i) for i in (12, 15, 20, 21, 23)]
    pd.testing.assert_frame_equal(whole, daily)


def test_health_check_verdict_reports_the_worst_value_of_each_metric():
    # a drop's worst is its lowest precision (recall): the highest was reported, the mildest of the breaches
    rows = pd.DataFrame(
        {
            "metric": ["psi", "psi", "volume_change", "volume_change", "label_coverage", "label_coverage"]
            + ["recall_drop", "recall_drop"],
            "value": [0.3, 0.5, 0.6, -1.0, 0.4, 0.1, 0.3103, 0.1867],
            "date": [day(3), day(5), day(3), day(4), day(5), day(3), day(4), day(5)],
        }
    )
    verdict = summarise_breaches(rows, "m", day(0).date(), day(6).date())
    assert verdict == {
        "passed": False,  # the breaches' days, not the window's (which begins a label lookback before the run)
        "description": "8 breach(es) for m on 2026-03-04 .. 2026-03-06 (days 2026-03-01 .. 2026-03-07 re-evaluated)",
        "breaches": 8,
        "worst_value_by_metric": {"label_coverage": 0.1, "psi": 0.5, "recall_drop": 0.1867, "volume_change": -1.0},
    }
    assert summarise_breaches(rows.iloc[:1], "m", day(0).date(), day(6).date())["description"].startswith(
        "1 breach(es) for m on 2026-03-04 (days"
    )
    healthy = summarise_breaches(rows.iloc[:0], "m", day(0).date(), day(2).date())
    assert healthy["passed"] and healthy["description"] == "healthy" and healthy["worst_value_by_metric"] == {}


def test_small_days_are_not_judged_by_the_volume_rule():
    # a model serving ~40 predictions a day: its trailing median is below min_count (50), so a day of 10 is no outage
    small = alerts(steady(range(8), **{f"d{i}": {"predictions": 40} for i in range(7)}, d7={"predictions": 10}), 7, 7)
    assert by_metric(small, "volume_change") == []
    judged = alerts(
        steady(range(8), **{f"d{i}": {"predictions": 40} for i in range(7)}, d7={"predictions": 10}),
        7,
        7,
        cfg=config(m={"volume_change": {"min_count": 40}}),
    )
    assert by_metric(judged, "volume_change") == [(day(7), "", -0.75, 0.5)]


# ---------------------------------------------------------------- precision / recall drop: a test, not a percentage


def exact_p(x, n, x_ref, n_ref) -> float:
    """The oracle: scipy's Fisher exact test, H1 the day's proportion is smaller."""
    return float(fisher_exact([[x, n - x], [x_ref, n_ref - x_ref]], alternative="less")[1])


@pytest.mark.parametrize(
    "x, n, x_ref, n_ref",
    [(30, 150, 1050, 2100), (70, 150, 330, 1000), (0, 5, 3, 9), (12, 40, 400, 1000), (2, 10, 12, 18)]
    + [(40_000, 100_000, 410_000, 1_000_000)],  # a big day: the sum of 40,001 terms
)
def test_drop_pvalue_is_scipys_one_sided_fisher_exact_test(x, n, x_ref, n_ref):
    assert one_sided_drop_pvalue(x, n, x_ref, n_ref) == pytest.approx(exact_p(x, n, x_ref, n_ref), rel=1e-8)
    assert np.isnan(one_sided_drop_pvalue(0, 0, 5, 10)) and np.isnan(one_sided_drop_pvalue(0, 10, 0, 10))


def test_a_drop_on_few_decisions_alerts_at_the_rate_its_alpha_promises():
    # 2 of 10 declines against 12 of 18 in the reference: the z-test said p 0.009 < 0.01 (an alert), the exact
    # test 0.023; over many days of an unchanged model with ~10 labelled declines a day, at most alpha alert
    assert proportions_ztest([2, 12], [10, 18], alternative="smaller")[1] < 0.01 < one_sided_drop_pvalue(2, 10, 12, 18)
    rng = np.random.default_rng(4)
    n, n_ref, rate = 10, 18, 0.6
    x, x_ref = rng.binomial(n, rate, 20_000), rng.binomial(n_ref, rate, 20_000)
    exact = one_sided_drop_pvalue(x, np.full(x.shape, n), x_ref, np.full(x.shape, n_ref))
    z = np.array(
        [proportions_ztest([a, b], [n, n_ref], alternative="smaller")[1] for a, b in zip(x[:4000], x_ref[:4000])]
    )
    assert np.nanmean(exact < 0.01) <= 0.01 < np.nanmean(z < 0.01)


def test_precision_drop_alerts_exactly_when_the_one_sided_test_rejects():
    # reference: 1050 TP / 2100 decided (0.5). Day 0: 120/300 (0.40), day 1: 140/300 (0.467), day 2: 110/300,
    # day 3: 100/300 with too few labelled predictions (99 < min_labelled 100).
    tp = {0: 120, 1: 140, 2: 110, 3: 100}
    changes = {f"d{i}": {"true_positives": t, "false_positives": 300 - t} for i, t in tp.items()}
    changes["d3"]["labelled"] = 99
    rows = steady(range(4), **changes)
    found = by_metric(alerts(rows, 0, 3), "precision_drop")
    expected = [
        (day(i), "", round(t / 300, 12), 0.5) for i, t in tp.items() if i != 3 and exact_p(t, 300, 1050, 2100) < 0.01
    ]
    assert found == expected and [d for d, *_ in found] == [day(0), day(2)]  # day 1: p ~ 0.13, noise
    rule = alerts(rows, 0, 0)
    assert (
        rule.loc[rule["metric"] == "precision_drop", "rule"].iloc[0]
        == "one-sided exact test p < 0.01 vs reference precision"
    )
    # a stricter alpha from the model's config keeps only the days the oracle rejects at that alpha
    strict = by_metric(alerts(rows, 0, 3, cfg=config(m={"precision_drop": {"alpha": 1e-4}})), "precision_drop")
    assert [d for d, *_ in strict] == [day(i) for i in (0, 2) if exact_p(tp[i], 300, 1050, 2100) < 1e-4]


def test_recall_drop_uses_the_labelled_positives_and_the_reference_recall():
    # reference recall 1050 / 1400 = 0.75; day 0: 150 TP, 100 FN (0.6): p far below 0.01; day 1: 150 / 210 (0.714)
    rows = steady(range(2), d0={"false_negatives": 100}, d1={"false_negatives": 60})
    found = by_metric(alerts(rows, 0, 1), "recall_drop")
    assert found == [(day(0), "", 0.6, 0.75)]
    assert exact_p(150, 250, 1050, 1400) < 0.01 < exact_p(150, 210, 1050, 1400)


def test_no_reference_counts_no_drop_verdict():
    rows = steady(range(1), d0={"true_positives": 10, "false_positives": 290})
    assert by_metric(alerts(rows, 0, 0, reference=REFERENCE.iloc[:0]), "precision_drop") == []


def simulate(rng, days: int, decided: int, precision_of_day) -> pd.DataFrame:
    """Health rows of a model whose labelled positive decisions per day are Poisson(decided), each a TP with the day's precision."""
    n = rng.poisson(decided, days)
    p = np.array([precision_of_day(i) for i in range(days)])
    tp = rng.binomial(n, p)
    return pd.DataFrame(
        {
            "date": [day(i) for i in range(days)],
            "model_id": "m",
            "model_version": "v1",
            "predictions": 5 * n,
            "labelled": 3 * n,
            "true_positives": tp,
            "false_positives": n - tp,
            "false_negatives": rng.binomial(3 * n - n, 0.2),
            "expected_calibration_error": 0.02,
            "calibration_chi2": 10.0,
            "calibration_bins": 10,
            "precision": tp / n,
            "label_coverage": 0.9,
            "labels_as_of": [day(i + 10) for i in range(days)],
        }
    )


def reference_of(rows: pd.DataFrame, first_days: int = 7) -> pd.DataFrame:
    ref = rows.iloc[:first_days]
    return pd.DataFrame(
        {
            "model_id": ["m"],
            "model_version": ["v1"],
            "reference_true_positives": [ref["true_positives"].sum()],
            "reference_false_positives": [ref["false_positives"].sum()],
            "reference_false_negatives": [ref["false_negatives"].sum()],
            "reference_end_date": [ref["date"].max()],
        }
    )


def test_a_healthy_model_at_precision_030_to_033_raises_alerts_at_the_rate_alpha_not_the_old_rules():
    """The issue's case: normal precision 0.30-0.33, ~120 labelled positive decisions a day (360 labelled).

    300 simulated 60-day histories (reference = each history's first 7 days, default alpha 0.01,
    min_labelled 300): the false-alarm rate over days after the reference is consistent with alpha,
    and every alert is one the statsmodels test rejects. The old rule (20% below the reference
    precision) fires on several times as many days of the same noise.
    """
    rng = np.random.default_rng(20261201)
    cfg = load_alert_config(parse_config({}))  # every default: alpha 0.01, min_labelled 300
    # the histories as 300 models of one table, judged in one call (each model against its own reference)
    histories = [
        simulate(rng, 60, 120, lambda i: 0.30 + 0.03 * ((i * 7) % 11) / 10).assign(model_id=f"m{k}")  # 0.30 .. 0.33
        for k in range(300)
    ]
    refs = [reference_of(rows).assign(model_id=f"m{k}") for k, rows in enumerate(histories)]
    versions = pd.DataFrame({"model_id": [f"m{k}" for k in range(300)], "model_version": "v1", "first_date": day(0)})
    found = evaluate_alerts(pd.concat(histories), NO_DRIFT, pd.concat(refs), versions, cfg, day(7), day(59))
    hits_of = dict(tuple(found[found["metric"] == "precision_drop"].groupby("model_id")))
    judged = alarms = old_rule = 0
    for k, (rows, ref) in enumerate(zip(histories, refs, strict=True)):
        hits = hits_of.get(f"m{k}", found.iloc[:0])
        after = rows.iloc[7:]
        enough = after[after["labelled"] >= cfg.min_labelled]
        oracle = [
            d
            for d, x, fp in zip(enough["date"], enough["true_positives"], enough["false_positives"])
            if exact_p(
                x,
                x + fp,
                ref["reference_true_positives"][0],
                ref["reference_true_positives"][0] + ref["reference_false_positives"][0],
            )
            < 0.01
        ]
        assert list(hits["date"]) == oracle
        ref_precision = ref["reference_true_positives"][0] / (
            ref["reference_true_positives"][0] + ref["reference_false_positives"][0]
        )
        old_rule += int(((1 - enough["precision"] / ref_precision) > 0.2).sum())
        judged, alarms = judged + len(enough), alarms + len(hits)
    rate = alarms / judged
    # the binomial bound of alpha over ~15,000 judged days, with room for the reference's own noise
    assert rate < 0.01 + 3 * np.sqrt(0.01 * 0.99 / judged) + 0.005, rate
    assert old_rule > 3 * max(alarms, 1), (old_rule, alarms)


def test_drops_are_judged_only_against_a_reference_whose_labels_have_landed():
    # churn outcomes landed within days, "stayed" ones only after 30: while the reference window's labels were
    # landing its precision read 0.92 (final: 0.64), and every later day "dropped" against it; the alert stayed
    rows = health(*[{"day": i, "true_positives": 64, "false_positives": 36} for i in range(12)])
    early = REFERENCE.assign(
        reference_true_positives=92 * 7, reference_false_positives=8 * 7, reference_end_date=day(6)
    )
    # as of day 11 the reference's last day (6) is 5 days old: a 30-day horizon has not passed it
    assert by_metric(alerts(rows, 7, 11, reference=early), "precision_drop") == []
    # a model whose labels all land within 3 days: its reference is final by day 9, and the drop is real
    quick = load_alert_config(
        parse_config({"alerts": {"min_labelled": 100}, "models": {"m": {"label_horizon_days": 3}}})
    )
    judged = by_metric(alerts(rows, 7, 11, cfg=quick, reference=early), "precision_drop")
    assert [d for d, *_ in judged] == [day(i) for i in range(7, 12)]
    # once the horizon has passed, the same counts are judged for the default horizon too
    later = health(*[{"day": i, "true_positives": 64, "false_positives": 36} for i in range(40)])
    assert by_metric(alerts(later, 36, 39, reference=early), "precision_drop")


def test_a_real_precision_drop_is_caught():
    """Precision 0.315 falls to 0.20 from day 30 on: with ~150 labelled positive decisions a day, most days are caught."""
    rng = np.random.default_rng(7)
    rows = simulate(rng, 40, 150, lambda i: 0.315 if i < 30 else 0.20)
    found = evaluate_alerts(rows, NO_DRIFT, reference_of(rows), VERSIONS, config(min_labelled=300), day(7), day(39))
    hits = found[found["metric"] == "precision_drop"]
    ref = reference_of(rows)
    ref_precision = ref["reference_true_positives"][0] / (
        ref["reference_true_positives"][0] + ref["reference_false_positives"][0]
    )
    assert (hits["date"] >= day(30)).sum() >= 8 and (hits["date"] < day(30)).sum() <= 1, hits
    assert hits["threshold"].to_numpy() == pytest.approx(ref_precision)
    assert (hits["value"] < hits["threshold"]).all()


# ---------------------------------------------------------------- calibration: ECE beyond what the labels explain


def calibration_day(rng, labelled: int, truth=lambda s: s) -> dict:
    """A day's ECE and Hosmer-Lemeshow statistic (by hand, scipy's chi-square) of ``labelled`` risk scores
    whose labels are Bernoulli(truth(score)): truth = identity is a perfectly calibrated model."""
    scores = rng.beta(1.2, 5, labelled)
    labels = rng.random(labelled) < truth(scores)
    bins = np.minimum(np.floor(scores * 10).astype(int), 9)
    ece = chi2 = 0.0
    used = 0
    for b in np.unique(bins):
        m = bins == b
        n, o, e = m.sum(), labels[m].sum(), scores[m].sum()
        ece += abs(o - e) / labelled
        chi2 += (o - e) ** 2 / (e * (1 - e / n))
        used += 1
    return {"expected_calibration_error": ece, "calibration_chi2": chi2, "calibration_bins": used}


def test_calibration_alerts_need_more_than_the_noise_of_few_labels():
    # a well-calibrated risk model with ~45 labels a day breached ECE > 0.08 on 42 of 61 days (and asked for
    # retraining); the Hosmer-Lemeshow test of the same bins fires at its alpha on such days
    rng = np.random.default_rng(45)
    days = 400
    rows = health(*[{"day": i, "labelled": 45, **calibration_day(rng, 45)} for i in range(days)])
    cfg = config(min_labelled=40)
    found = by_metric(alerts(rows, 0, days - 1, cfg=cfg), "expected_calibration_error")
    assert (rows["expected_calibration_error"] > 0.08).sum() > days / 3  # the fixed limit alone: noise
    assert len(found) <= days * 0.01 + 3 * np.sqrt(days * 0.01)
    # the p-value is scipy's chi-square survival function of the statistic
    p = calibration_pvalue(rows["calibration_chi2"], rows["calibration_bins"])
    assert p == pytest.approx(chi2.sf(rows["calibration_chi2"], rows["calibration_bins"]), rel=1e-10)
    # a real miscalibration (outcomes at 40% of the scores) on 500 labels is caught on every day over the limit
    bad = health(*[{"day": i, **calibration_day(rng, 500, lambda s: 0.4 * s)} for i in range(20)])
    over = bad["expected_calibration_error"] > 0.08
    assert over.sum() >= 15
    assert len(by_metric(alerts(bad, 0, 19, cfg=cfg), "expected_calibration_error")) == over.sum()


# ---------------------------------------------------------------- settings from the project file


def test_settings_come_from_the_project_file_not_from_a_demo_list():
    cfg = load_alert_config(
        parse_config(
            {
                "alerts": {"min_labelled": 50, "rules": {"psi": {"above": 0.3}}},
                "models": {
                    "fraud": {
                        "positive_decision": "harmful",
                        "min_recall": 0.4,
                        "alerts": {"precision_drop": {"alpha": 0.001}},
                    },
                    "ranker": {},
                },
                "bias": {"window_days": 28},
                "retraining": {"persist_days": 2},
            }
        )
    )
    assert cfg.models == ["fraud", "ranker"] and cfg.min_labelled == 50
    assert cfg.rule("psi", "ranker") == {
        "above": 0.3,
        "min_count": 200,
        "alpha": 0.01,
        "pool_days": 7,
    }  # the fields left out keep their defaults
    assert cfg.rule("precision_drop", "fraud") == {"alpha": 0.001} and cfg.rule("precision_drop", "ranker") == {
        "alpha": 0.01
    }
    assert cfg.floor("fraud", "min_recall") == 0.4 and cfg.floor("fraud", "min_precision") is None
    assert cfg.floor("ranker", "min_precision") is None and cfg.floor("undeclared", "min_precision") is None
    assert cfg.bias["window_days"] == 28 and cfg.retraining["persist_days"] == 2
    assert cfg.retraining["floor_alpha"] == 0.01  # the retraining fields left out keep their defaults
    assert cfg.lookback_days >= cfg.rule("volume_change", "fraud")["trailing_days"]
    empty = load_alert_config(parse_config({}))
    assert (
        empty.models == []
        and empty.floors == {}
        and set(empty.rules)
        == {
            "psi",
            "expected_calibration_error",
            "precision_drop",
            "recall_drop",
            "label_coverage",
            "volume_change",
            "version_change",
            "null_rate",
        }
    )
    with pytest.raises(KeyError, match="unknown alert rule 'psy'"):
        empty.rule("psy", "m")


def test_one_check_per_declared_model_and_one_for_the_rest():
    assert check_targets(["fraud", "credit-risk v2"]) == [
        ("fraud", "fraud"),
        ("credit_risk_v2", "credit-risk v2"),
        ("other_models", None),
    ]
    assert check_targets([]) == [("other_models", None)]
    with pytest.raises(ValueError, match="'a-b' and 'a_b'"):
        check_targets(["a-b", "a_b"])


def test_a_weekday_only_models_weekends_are_no_volume_outage():
    # 60 predictions each weekday, none at weekends: each weekend was a -100% volume_change alert
    counts = {f"d{i}": {"predictions": 60 if i % 7 < 5 else 0} for i in range(35)}
    counts["d23"] = {"predictions": 0}  # an outage on a weekday: that weekday had 60 a week before
    found = by_metric(alerts(steady(range(35), **counts), 7, 34), "volume_change")
    assert found == [(day(23), "", -1.0, 0.5)]


def test_a_weekly_batch_cut_short_or_missed_is_judged_against_its_weekday():
    # a trial's Monday batch of ~87 cut to 25 went unsaid: the trailing 7-day median of a weekly batch is 0 (six
    # empty days a week), so no day of it was ever judged
    mondays = {0: 90, 7: 80, 14: 95, 21: 87, 28: 25, 42: 84}  # day 35: the batch missed
    counts = {f"d{i}": {"predictions": mondays.get(i, 0)} for i in range(49)}
    found = alerts(steady(range(49), **counts), 7, 48)
    # by hand: day 28 against median(87, 95, 80) = 87: 25 / 87 - 1; day 35 against median(25, 87, 95) = 87: -1;
    # day 42 against median(0, 25, 87) = 25, under the rule's min_count (50): not judged
    assert by_metric(found, "volume_change") == [(day(28), "", round(25 / 87 - 1, 12), 0.5), (day(35), "", -1.0, 0.5)]
    assert set(found.loc[found["metric"] == "volume_change", "rule"]) == {
        "outside ±0.5 of its weekday's median of the 3 weeks before (its trailing 7-day median under min_count)"
    }
    # the batches within noise of their weekday and the six empty days a week: nothing (days 7-27)
    assert by_metric(alerts(steady(range(28), **counts), 7, 27), "volume_change") == []


def test_quiet_weekends_like_the_last_ones_are_no_volume_alert():
    # two real data sets (resumes, an inbox) with weekends at 40% of weekdays: volume_change fired every weekend
    weekday, weekend = 100, 40
    counts = {f"d{i}": {"predictions": weekday if i % 7 < 5 else weekend} for i in range(35)}
    counts["d23"] = {"predictions": 30}  # a weekday at 30: its weekday had 100 a week before, the median is 100
    counts["d26"] = {"predictions": 5}  # a weekend day at 5: 88% below the weekend before (40)
    found = by_metric(alerts(steady(range(35), **counts), 7, 34), "volume_change")
    # by hand: trailing 7-day median 100 (five weekdays of 7); 40 / 100 - 1 = -0.6 is beyond ±0.5, but 40 is the
    # weekends before's level (median of the same weekday 1-3 weeks back) exactly; day 23: 30 / 100 - 1 = -0.7,
    # its weekday's level 100: alert; day 26: 5 / 100 - 1 = -0.95, its weekday's level 40: alert; day 33, a
    # weekend day at 40 a week after day 26's 5: the level is median(5, 40, 40) = 40, no alert
    assert found == [(day(23), "", -0.7, 0.5), (day(26), "", -0.95, 0.5)]


def test_a_held_back_day_does_not_shift_the_weekdays_a_later_day_is_compared_with():
    # a re-trial's oracle: the held-back day's row was dropped before the weekday's level was read 7, 14 and 21 rows
    # back, so for three weeks every later day read another weekday's level (a Saturday of 40 against weekdays'
    # 100: an alert). By hand: a weekend day's level is its weekends before (40), a held-back weekday left out
    counts = {f"d{i}": {"predictions": 100 if i % 7 < 5 else 40} for i in range(42)}
    rows = steady([i for i in range(42) if i != 16], **counts)
    found = evaluate_alerts(rows, NO_DRIFT, REFERENCE, VERSIONS, config(), day(17), day(41), held_back=[day(16)])
    assert by_metric(found, "volume_change") == []
    # a real weekend outage after it is still one: 0 against its weekends' level of 40
    counts["d27"] = {"predictions": 0}
    rows = steady([i for i in range(42) if i != 16], **counts)
    found = evaluate_alerts(rows, NO_DRIFT, REFERENCE, VERSIONS, config(), day(17), day(41), held_back=[day(16)])
    assert by_metric(found, "volume_change") == [(day(27), "", -1.0, 0.5)]


# a trial's weekly shape: ~95 predictions each weekday, ~10 on weekend days (Poisson-like), one weekend outage
SMALL_WEEKENDS = [12, 10, 14, 10, 10, 16, 7, 13, 11, 12, 0, 15, 8, 13]


def small_weekends() -> pd.DataFrame:
    weekend = iter(SMALL_WEEKENDS)
    return steady(range(49), **{f"d{i}": {"predictions": 95 if i % 7 < 5 else next(weekend)} for i in range(49)})


def test_a_weekend_day_within_poisson_noise_of_its_weekdays_level_is_no_volume_alert():
    # the trial: a Sunday at 16 against Sundays of 14, 10 and 10 (level 10) is +60%, beyond ±0.5, yet within
    # Poisson noise (two-sided exact p ~0.1 >= alpha 0.001): it was judged against the weekdays' ~95 instead (-83%)
    assert 2 * poisson.sf(16 - 1, 10) > 0.001 and 16 / 10 - 1 > 0.5
    rows = small_weekends()
    assert rows.loc[rows["date"] == day(20), "predictions"].item() == 16  # its weekday's level: median(10, 10)
    # a weekend outage stays one: 0 against a level of median(11, 7, 10) = 10, P(X = 0) = 4.5e-5
    outage = day(40)
    levels = [rows.loc[rows["date"] == outage - timedelta(days=7 * k), "predictions"].item() for k in (1, 2, 3)]
    assert rows.loc[rows["date"] == outage, "predictions"].item() == 0 and np.median(levels) == 10
    assert 2 * poisson.cdf(0, 10) < 0.001
    assert by_metric(alerts(rows, 7, 48), "volume_change") == [(outage, "", -1.0, 0.5)]


def test_a_daily_run_judges_volume_as_a_backfill_does():
    # a daily run read lookback_days (7) before it, a backfill every day before: the weekday's level (3 weeks
    # back) differed, and a daily run alerted on a Sunday the backfill had judged its rhythm (and vice versa)
    cfg = config()
    rows = small_weekends()
    backfill = by_metric(alerts(rows, 21, 48, cfg), "volume_change")
    daily = [
        found
        for d in range(21, 49)
        for found in by_metric(
            alerts(rows[rows["date"] >= day(d) - timedelta(days=cfg.lookback_days)], d, d, cfg), "volume_change"
        )
    ]
    assert daily == backfill and len(backfill) == 1


def _drift_row(rng, reference: np.ndarray, current: np.ndarray) -> dict:
    """A drift row binned as the project bins a numeric feature (_null_psi's), its chi-square by scipy."""
    from scipy.stats import chi2_contingency

    edges = np.quantile(reference, np.linspace(0, 1, 11)[1:-1])
    ref = np.bincount(np.searchsorted(edges, reference), minlength=10)
    cur = np.bincount(np.searchsorted(edges, current), minlength=10)
    held = (ref + cur) > 0
    r, c = np.where(ref == 0, 1e-4, ref / ref.sum()), np.where(cur == 0, 1e-4, cur / cur.sum())
    chi2 = chi2_contingency(np.vstack([ref[held], cur[held]]), correction=False)[0]
    return {
        "psi": float(np.sum((c - r) * np.log(c / r))),
        "current_values": len(current),
        "reference_values": len(reference),
        "drift_chi2": chi2,
        "drift_bins": int(held.sum()),
    }


def test_a_small_days_overwhelming_shift_is_alerted_on_its_day_and_an_unchanged_small_day_rarely_is():
    # a trial's sample year jumped by 5 on a day of 96 values (PSI 9.4, every value above the reference's top
    # decile): its 7-day pool, diluted by six unchanged days, read 0.11 and the alert came a day late
    from scipy.stats import chi2

    from orchestration.lib.alerts import ALONE_ALPHA_SHARE

    rule = config().rule("psi", "m")
    rng = np.random.default_rng(11)
    reference = rng.normal(size=700)
    days = [_drift_row(rng, reference, rng.normal(size=96)) for _ in range(1500)]  # unchanged days
    days += [_drift_row(rng, reference, rng.normal(3, 1, size=96)), _drift_row(rng, reference, rng.normal(size=40))]
    days.append(_drift_row(rng, reference, rng.normal(3, 1, size=40)))  # under a quarter of min_count (50)
    drift = pd.DataFrame(
        [{"date": day(i), "model_id": "m", "model_version": "v1", "feature": "x", **r} for i, r in enumerate(days)]
    )
    # the pools (the mart's) hold enough and read nothing: the day alone decides
    drift = drift.assign(pooled_values=700, pooled_psi=0.05, pooled_chi2=5.0, pooled_bins=10)
    found = alerts(steady(range(len(days))), 0, len(days) - 1, drift=drift)
    got = {r.date: r.value for r in found[found["metric"] == "psi"].itertuples()}
    # by hand (scipy's chi-square p): a day of >= 50 values, PSI above 0.2 and p < a tenth of alpha
    level = rule["alpha"] * ALONE_ALPHA_SHARE
    p = chi2.sf(drift["drift_chi2"], drift["drift_bins"] - 1)
    expected = drift[(drift["current_values"] >= 50) & (drift["psi"] > rule["above"]) & (p < level)]
    assert got == dict(zip(expected["date"], expected["psi"]))
    assert day(1500) in got and got[day(1500)] > 3 and day(1502) not in got  # the jump; 40 values: not judged
    # unchanged days of 96 values: alerted at about the tenth of alpha (1 in 1,000), not more
    assert sum(d < day(1500) for d in got) <= 4
    [said] = set(found["rule"])
    assert said == (
        "> 0.2 and chi-square p < 0.001 on the day's values alone (fewer than min_count 200: a shift beyond a tenth "
        "of alpha)"
    )


def test_a_features_missing_share_rising_beyond_chance_and_the_margin_is_alerted():
    # a trial's lab feed lost creatinine on 90% of rows (29% in the reference days): PSI read the few values left,
    # and the only line came a day later, under "drift not measured" at its fixed 90%
    from scipy.stats import fisher_exact

    rule = config().rule("null_rate", "m")
    days = {  # day -> (rows, rows without a value): the reference days 290 of 1,000
        1: (100, 85),  # the incident: 85% missing
        2: (100, 100),  # wholly missing: no PSI at all
        3: (20000, 7000),  # 6 points up: beyond chance at these counts, within the margin
        4: (20, 9),  # 16 points up on 20 rows: within chance
        5: (5000, 2000),  # 11 points up on 5,000 rows
    }
    drift = pd.DataFrame(
        [
            {
                "date": day(d),
                "model_id": "m",
                "model_version": "v1",
                "feature": "feature_creatinine",
                "psi": None if nulls == rows else 0.01,
                "current_values": rows - nulls,
                "reference_values": 710,
                "rows_total": rows,
                "null_rate": nulls / rows,
                "reference_rows": 1000,
                "reference_nulls": 290,
                "reference_end_date": day(0),
                **BEYOND_NOISE,
            }
            for d, (rows, nulls) in days.items()
        ]
    )
    nulls = drift[drift["date"] > drift["reference_end_date"]]  # NULL_RATE_SQL's rows: the days after it
    found = evaluate_alerts(steady(range(-1, 6)), drift, REFERENCE, VERSIONS, config(), day(-1), day(5), (), nulls)
    assert by_metric(alerts(steady(range(-1, 6)), -1, 5, drift=drift), "null_rate") == []  # without them: none
    got = by_metric(found, "null_rate")
    # the oracle: scipy's one-sided Fisher test of the day's empty rows against the reference's, and the margin
    expected = []
    for d, (rows, nulls) in sorted(days.items()):
        p = fisher_exact([[nulls, rows - nulls], [290, 710]], alternative="greater").pvalue
        if d > 0 and nulls / rows - 0.29 > rule["above"] and p < rule["alpha"]:
            expected.append((day(d), "feature_creatinine", round(nulls / rows, 12), 0.29))
    assert got == expected and [g[0] for g in got] == [day(1), day(2), day(5)]
    assert set(found.loc[found["metric"] == "null_rate", "rule"]) == {
        "missing share more than 10 percentage points above the reference days' and one-sided exact p < 0.01"
    }
    assert by_metric(found, "psi") == []  # the values left did not drift


def test_drift_above_its_threshold_on_a_day_too_small_to_judge_is_listed_and_raises_no_alert():
    # a trial's drifted week: PSI 0.85-0.94 on 169-201 values a day, below min_count 200: no alert and nothing said
    cfg = load_alert_config(parse_config({"models": {"small": {"alerts": {"psi": {"min_count": 100}}}}}))
    psi = cfg.rule("psi", "big")
    assert psi["min_count"] > 150 > 100
    drift = pd.DataFrame(
        {
            "date": [day(d) for d in (1, 2, 3, 4, 5)],
            "model_id": ["big", "big", "big", "big", "small"],
            "model_version": "v1",
            "feature": "feature_x",
            "psi": [0.9, 0.9, psi["above"] / 2, 0.9, 0.9],
            "current_values": [150, 5000, 150, 5000, 150],
            "reference_values": [5000, 5000, 5000, 150, 5000],
            **NEAR_NOISE,
        }
    )
    unjudged = unjudged_drift(drift, cfg)
    # by hand: above the threshold with the fewer side under the model's min_count (200 default, 100 for small)
    assert unjudged["date"].tolist() == [day(1), day(4)]
    # a day of one value (a trial's tiny model: PSI 8.9, listed every day) is below a quarter of min_count: unlisted
    tiny = drift.assign(psi=8.9, current_values=[1, 49, 50, 5000, 24], reference_values=5000)
    # by hand: the fewer side >= 200 / 4 = 50 (big) or 100 / 4 = 25 (small), and under min_count
    assert unjudged_drift(tiny, cfg)["date"].tolist() == [day(3)]
    models = ["big", "small"]
    rows = pd.concat([health(*[{"day": i} for i in range(1, 6)], model_id=m) for m in models])
    versions = pd.DataFrame({"model_id": models, "model_version": "v1", "first_date": day(0)})
    reference = pd.concat([REFERENCE.assign(model_id=m) for m in models])
    found = evaluate_alerts(rows, drift, reference, versions, cfg, day(1), day(5))
    assert sorted(found.loc[found["metric"] == "psi", "date"]) == [day(2), day(5)]  # the judged ones only


def test_a_daily_runs_health_check_warns_of_new_breaches_not_again_of_those_earlier_runs_detected():
    # a trial's daily runs, weeks after its models stopped, each warned of the same four breaches of May: late labels
    # re-evaluate the window from its first day
    from orchestration.defs.model_health.alerts import BREACH_COLUMNS, HEALTH_CHECKS, health_check_results

    [(name, model)] = [(n, m) for n, m in HEALTH_CHECKS.items() if m == "recommender"]

    def breach(on: int, detected: int) -> dict:
        return dict(zip(BREACH_COLUMNS, [day(on), model, "psi", "feature_x", 0.5, 0.2, "psi", day(detected)]))

    def check(rows) -> dg.AssetCheckResult:
        merged = pd.DataFrame(rows, columns=BREACH_COLUMNS)
        return {r.check_name: r for r in health_check_results(merged, day(0).date(), day(10).date(), day(9).date())}[
            name
        ]

    old, new = breach(2, 3), breach(9, 10)  # the run covers days 9-10
    both = check([old, new])
    assert not both.passed
    assert both.description.startswith(f"1 breach(es) for {model} on {day(9).date()} (days")
    assert both.description.endswith(f"; 1 breach(es) of {day(2).date()} detected by earlier runs, not warned again")
    only_old = check([old])
    assert only_old.passed
    assert only_old.description == (
        f"no new breach for {model}; 1 breach(es) of {day(2).date()} detected by earlier runs, not warned again"
    )
    # an older day's breach this run found first (its labels came today) is news: warned
    assert not check([breach(2, 10)]).passed
