"""Drift of models scoring 30 a day, fewer than the PSI rule's min_count (200): each day is judged on the
version's last pool_days (7) calendar days pooled, once they hold 200 values. The mart's pooled figures
against numpy and scipy over hand-pooled counts, and the alerts they raise: a model whose feature shifts after
its reference is alerted, one that stays the same is not.

One small world, built by dbt in two runs (the second reads the first's stored bins for its pools): ~8 s.
"""

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy.stats import chi2_contingency

from orchestration.lib.alerts import (
    DRIFT_SQL,
    drift_not_judged,
    drift_not_judged_text,
    evaluate_alerts,
    load_alert_config,
    unjudged_drift,
)
from orchestration.lib.project_config import config_dbt_vars, parse_config
from tests.dbt_in_process import run_dbt
from tests.drift_worlds import load_days, prediction_day
from tests.e2e.oracles import PSI_FLOOR

REFERENCE_DAYS = 7
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(REFERENCE_DAYS + 14)]
FIRST_RUN = 16  # days 0-15, then 16-20: the second run's pools reach back into the first's days
PER_DAY = 30
# a day without predictions of the drifting model: the pool spans calendar days, not the model's days
GAP = DAYS[REFERENCE_DAYS + 9]
PROJECT = {"models": {m: {"drift_reference": {"first_days": REFERENCE_DAYS}} for m in ("drifting", "steady")}}


def _day(model_id: str, i: int, day: date, rng) -> pd.DataFrame:
    shift = 0.8 if model_id == "drifting" and i >= REFERENCE_DAYS else 0.0  # 0.8 sd after the reference
    return prediction_day(model_id, i, day, PER_DAY, rng, shift)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("drift_pooled")


@pytest.fixture(scope="module")
def world(root):
    source, db = root / "landing", root / "warehouse.duckdb"
    rng = np.random.default_rng(11)
    frames = []
    (source / "predictions").mkdir(parents=True)
    for i, day in enumerate(DAYS):
        models = ["steady"] + ([] if day == GAP else ["drifting"])
        table = pd.concat([_day(m, i, day, rng) for m in models], ignore_index=True)
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), source / "predictions" / f"p_{day}.parquet")
        frames.append(table.assign(date=pd.Timestamp(day)))
    users = pd.DataFrame({"user_id": [f"u{k}" for k in range(PER_DAY)], "signup_at": pd.Timestamp("2026-01-01")})
    (source / "users").mkdir()
    users.to_parquet(source / "users" / "users.parquet", index=False)
    load_days(db, source, DAYS)
    variables = config_dbt_vars(parse_config(PROJECT))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_TEMP_DIR", str(root / "tmp"))
        for first, last in ((DAYS[0], DAYS[FIRST_RUN - 1]), (DAYS[FIRST_RUN], DAYS[-1])):
            # the run's dates as the pipeline gives them (environment variables): dbt's partial parse is kept
            mp.setenv("IMPACT_LEDGER_MIN_DATE", first.isoformat())
            mp.setenv("IMPACT_LEDGER_MAX_DATE", last.isoformat())
            result = run_dbt("run", ["+feature_drift_daily"], str(root / "target"), variables)
            assert result.success, result.exception
    with duckdb.connect(str(db)) as conn:
        marts = conn.execute("SELECT * FROM marts.feature_drift_daily ORDER BY model_id, feature, date").df()
        drift = conn.execute(DRIFT_SQL, [DAYS[0], DAYS[-1]]).df()
    return pd.concat(frames, ignore_index=True), marts, drift


def _pooled_oracle(predictions: pd.DataFrame, model_id: str, feature: str, day: pd.Timestamp) -> dict:
    """PSI and the chi-square test of homogeneity of the bin counts of the model's post-reference days in the 7
    calendar days to ``day`` against the reference's, binned at the reference deciles (numpy, scipy)."""
    rows = predictions[predictions["model_id"] == model_id]
    reference_end = rows["date"].min() + pd.Timedelta(days=REFERENCE_DAYS - 1)
    reference = rows.loc[rows["date"] <= reference_end, feature].to_numpy(float)
    window = (rows["date"] > max(reference_end, day - pd.Timedelta(days=7))) & (rows["date"] <= day)
    pool = rows.loc[window, feature].to_numpy(float)
    edges = np.quantile(reference, np.arange(1, 10) / 10)
    counts = np.array([np.bincount(np.searchsorted(edges, v, side="left"), minlength=10) for v in (pool, reference)])
    shares = np.where(counts == 0, PSI_FLOOR, counts / counts.sum(axis=1, keepdims=True))
    statistic, p, dof, _ = chi2_contingency(counts[:, counts.sum(axis=0) > 0], correction=False)
    psi = float(np.sum((shares[0] - shares[1]) * np.log(shares[0] / shares[1])))
    return {"values": len(pool), "psi": psi, "chi2": statistic, "bins": dof + 1, "p": p}


def _judged(marts: pd.DataFrame) -> pd.DataFrame:
    return marts[marts["psi"].notna()]


def test_pooled_figures_are_numpy_and_scipy_over_the_hand_pooled_days(world):
    predictions, marts, _ = world
    rows = _judged(marts)
    # 14 days after the reference, both features; the gap day has no row of the drifting model
    assert len(rows) == 2 * (14 + 13)
    for r in rows.itertuples():
        oracle = _pooled_oracle(predictions, r.model_id, r.feature, r.date)
        assert r.pooled_values == oracle["values"], (r.model_id, r.feature, r.date)
        assert r.pooled_psi == pytest.approx(oracle["psi"], rel=1e-9)
        assert r.pooled_chi2 == pytest.approx(oracle["chi2"], rel=1e-9) and r.pooled_bins == oracle["bins"]
    # by hand: a week after the reference both pools hold 7 days (210 values); the 7 days to the day after the
    # gap, or to the last day, hold 6 of the drifting model's (180) and 7 of the steady one's
    for offset, drifting in ((7, 7), (11, 6), (14, 6)):
        pools = rows[rows["date"] == pd.Timestamp(DAYS[REFERENCE_DAYS - 1] + timedelta(days=offset))]
        got = pools.groupby("model_id")["pooled_values"].agg(set).to_dict()
        assert got == {"drifting": {drifting * PER_DAY}, "steady": {7 * PER_DAY}}, offset


def test_a_small_model_that_drifts_is_alerted_on_its_pool_and_one_that_does_not_is_not(world):
    predictions, _, drift = world
    config = load_alert_config(parse_config(PROJECT))
    health = pd.DataFrame(columns=["date", "model_id", "model_version", "labels_as_of"])
    versions = pd.DataFrame(columns=["model_id", "model_version", "first_date"])
    reference = pd.DataFrame(columns=["model_id", "model_version"])
    found = evaluate_alerts(health, drift, reference, versions, config, DAYS[0], DAYS[-1])
    # by hand: a day alone has 30 values, so a day is judged where its pool holds 200 and the reference 210:
    # alerted where the pooled PSI > 0.2 and the chi-square p < 0.01 (numpy, scipy)
    expected = {}
    for r in drift[drift["psi"].notna()].itertuples():
        oracle = _pooled_oracle(predictions, r.model_id, r.feature, r.date)
        if oracle["values"] >= 200 and oracle["psi"] > 0.2 and oracle["p"] < 0.01:
            expected[(r.date, r.model_id, r.feature)] = oracle["psi"]
    got = {(a.date, a.model_id, a.subject): a.value for a in found.itertuples()}
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(v, rel=1e-9) for k, v in expected.items())
    assert {m for _, m, _ in got} == {"drifting"}  # the steady model: no alert
    assert {(m, f) for _, m, f in got} == {("drifting", "feature_x")}  # its score did not drift
    # by hand: the drifting model's pool holds 200 on the 7th-9th days after its reference (210 values); from the
    # gap on (the 10th) its 7 days hold 6 of its days, 180 values: not judged
    reference_end = pd.Timestamp(DAYS[REFERENCE_DAYS - 1])
    assert sorted(d for d, _, _ in got) == [reference_end + pd.Timedelta(days=k) for k in (7, 8, 9)]
    assert set(found["rule"]) == {
        "> 0.2 and chi-square p < 0.01, pooled over the version's last 7 days (too few values on the day)"
    }
    # without pooling (pool_days 1) the same days are too small to judge: no alert, as before
    alone = load_alert_config(parse_config({**PROJECT, "alerts": {"rules": {"psi": {"pool_days": 1}}}}))
    no_pool = drift.assign(pooled_values=drift["current_values"], pooled_psi=drift["psi"])
    assert evaluate_alerts(health, no_pool, reference, versions, alone, DAYS[0], DAYS[-1]).empty


def test_days_too_small_alone_and_pooled_are_listed_on_their_pools_figures(world):
    # a trial's 25 a day: pools of 180 under 200, PSI 1.2, while the days' own 16-29 values fell below the cutoff
    predictions, _, drift = world
    listed = unjudged_drift(drift, load_alert_config(parse_config(PROJECT)))
    few = listed[listed["why"] == "few values"]
    # by hand: a day's 30 values are listed on its pool when the pool holds more (the 2nd day after the reference
    # on), under 200 (not judged), at least 50 (a quarter of min_count) and its PSI above 0.2 (numpy, scipy)
    expected = {}
    for r in drift[drift["psi"].notna()].itertuples():
        oracle = _pooled_oracle(predictions, r.model_id, r.feature, r.date)
        if PER_DAY < oracle["values"] < 200 and oracle["values"] >= 50 and oracle["psi"] > 0.2:
            expected[(r.date, r.model_id, r.feature)] = (oracle["psi"], oracle["values"])
    got = {(r.date, r.model_id, r.feature): (r.psi, r.current_values) for r in few.itertuples()}
    assert got.keys() == expected.keys() and few["pooled"].all()
    assert all(got[k] == (pytest.approx(v[0], rel=1e-9), v[1]) for k, v in expected.items())
    # the drifting model's 180-value pools after its gap day are among them
    gap = pd.Timestamp(GAP)
    assert {(d, v) for (d, m, f), (_, v) in got.items() if m == "drifting" and f == "feature_x" and d > gap} == {
        (gap + pd.Timedelta(days=k), 6 * PER_DAY) for k in range(1, 5)
    }


def test_a_model_whose_reference_and_pools_stay_under_min_count_is_said_not_judged(world):
    # a trial's model of 25 a day: reference 177 and pools 177-180 under 200, and no line said drift was not judged
    _, _, drift = world
    assert drift_not_judged(drift, load_alert_config(parse_config(PROJECT))).empty  # judged on 210-value pools
    strict = load_alert_config(parse_config({**PROJECT, "alerts": {"rules": {"psi": {"min_count": 250}}}}))
    found = drift_not_judged(drift, strict)
    # by hand: a reference of 7 days x 30 = 210 values, the largest pool 7 x 30 = 210, both under 250
    assert found[["model_id", "model_version", "reference", "values"]].values.tolist() == [
        ["drifting", "v1", 7 * PER_DAY, 7 * PER_DAY],
        ["steady", "v1", 7 * PER_DAY, 7 * PER_DAY],
    ]
    assert drift_not_judged_text(next(found.itertuples())) == (
        "drifting v1: drift (PSI) alerts not judged, even pooled: the reference and the pool need "
        "alerts.rules.psi.min_count (250) values each; lengthen models.drifting.drift_reference.first_days (its "
        "reference holds at most 210 values of a feature) and models.drifting.alerts.psi.pool_days (its 7-day "
        "pools hold at most 210): about 9 days hold 250 at its rate"
    )  # by hand: 20 days of 30 values in 21 calendar days (GAP), 28.6 a day: 250 / 28.6 = 8.75 days


def test_pools_spanning_every_day_after_the_reference_are_not_told_to_lengthen(world):
    # a trial's version of 353 predictions was told to lengthen a 140-day pool that already held all 135 values
    # after its reference: no pool_days could add one, nor first_days make 200 + 200 of 353
    _, _, drift = world
    reference_end = pd.Timestamp(DAYS[REFERENCE_DAYS - 1])

    def said(days_after: int, min_count: int) -> dict[str, str]:
        """The lines on the drift rows up to ``days_after`` days after the reference (7-day pools span them all)."""
        rows = drift[pd.to_datetime(drift["date"]) <= reference_end + pd.Timedelta(days=days_after)]
        config = load_alert_config(parse_config({**PROJECT, "alerts": {"rules": {"psi": {"min_count": min_count}}}}))
        return {r.model_id: drift_not_judged_text(r) for r in drift_not_judged(rows, config).itertuples()}

    # by hand: 7 days after the reference each model holds 7 x 30 = 210 there and 210 in its reference (GAP comes
    # later): 420 of the 2 x 250 = 500 both need; 80 more take 80 / 30 = 2.7 days
    head = "v1: drift (PSI) alerts not judged, even pooled: the reference and the pool need alerts.rules.psi.min_count"
    for model in ("drifting", "steady"):
        assert said(7, 250)[model] == (
            f"{model} {head} (250) values each; its 7-day pools span all 7 days after its reference window, so "
            "first_days alone splits its 420 values between the two (reference 210, pool 210): fewer than the 500 "
            f"both need, so no setting judges it yet: about 3 more days at its rate, with models.{model}."
            "drift_reference.first_days holding 250 (or lower alerts.rules.psi.min_count: a noisier verdict)"
        )
    # 6 days after: 210 + 180 = 390, and 2 x 195 = 390: the pool is short, a shorter reference fills it
    assert said(6, 195)["drifting"] == (
        f"drifting {head} (195) values each; its 7-day pools span all 6 days after its reference window, so "
        "first_days alone splits its 390 values between the two (reference 210, pool 180): set "
        "models.drifting.drift_reference.first_days so its reference holds about 195 (about 7 days at its rate), "
        "the pool the rest"
    )  # 195 / 30 = 6.5 days


def test_the_report_on_a_day_long_after_the_last_prediction_says_what_summary_says(world, root):
    # a trial's report, drawn months after the last prediction while labels still landed, said "its PSI is judged
    # on its version's last 7 days pooled" where summary said "not judged, even pooled": the report read the 30
    # days to its own day (no drift rows), summary the 30 days to the mart's newest day
    from orchestration import summary
    from orchestration.lib.report import ReportBuilder

    _, _, drift = world
    strict = load_alert_config(parse_config({**PROJECT, "alerts": {"rules": {"psi": {"min_count": 250}}}}))
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        for as_of in (DAYS[-1], DAYS[-1] + timedelta(days=90)):
            found = ReportBuilder(conn, as_of, strict)._drift_not_judged("drifting")
            assert found is not None and found[["model_id", "values"]].values.tolist() == [["drifting", 7 * PER_DAY]]
        # the days before any drift row: nothing to say (not "judged")
        assert ReportBuilder(conn, DAYS[0] - timedelta(days=1), strict)._drift_not_judged("drifting") is None
        assert summary._recent_drift(conn)[["date"]].max().iloc[0] == pd.Timestamp(DAYS[-1])


def test_the_report_says_which_versions_drift_is_judged_pooled(world, root):
    # a trial's report said the model's PSI was "drawn but not judged" where its older version's days were judged
    # pooled and only the newer version's were not
    from orchestration.lib.report import ReportBuilder

    _, _, drift = world
    config = load_alert_config(parse_config(PROJECT))
    assert drift_not_judged(drift, config).empty  # the premise: v1 judged on its pools
    newer = drift[(drift["model_id"] == "drifting") & drift["psi"].notna()].tail(3)
    newer = newer.assign(model_version="v2", current_values=5, pooled_values=5, reference_values=5)
    health = pd.DataFrame({"date": DAYS, "labelled": 0, "predictions": PER_DAY, "model_version": "v1"})
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        builder = ReportBuilder(conn, DAYS[-1], config)
        builder._recent_drift = pd.concat([drift, newer], ignore_index=True)
        builder._batches = {}  # a daily model (the world builds no health mart to tell)
        said = builder._not_judged("drifting", health, 300)
    assert (
        "its PSI is judged on the last 7 days pooled (alerts.rules.psi.pool_days) for v1, drawn but not judged for "
        "v2: a median of 30 predictions a day" in said
    )
    assert "drifting v2: drift (PSI) alerts not judged, even pooled" in said  # the version's own line, as before


def test_a_version_whose_reference_is_still_filling_is_not_said_judged(world, root):
    # a trial's report on a day v2's reference window was filling: "its PSI is judged on the last 7 days pooled"
    # where none of v2's 125 drift rows had a PSI yet (summary later said "not judged, even pooled")
    from orchestration.lib.report import ReportBuilder

    _, _, drift = world
    config = load_alert_config(parse_config(PROJECT))
    filling = drift[drift["model_id"] == "drifting"].tail(3).assign(model_version="v2", psi=float("nan"))
    health = pd.DataFrame({"date": DAYS, "labelled": 0, "predictions": PER_DAY, "model_version": "v1"})
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        builder = ReportBuilder(conn, DAYS[-1], config)
        builder._batches = {}
        builder._recent_drift = pd.concat([drift, filling], ignore_index=True)
        said = builder._not_judged("drifting", health, 300)
        assert (
            "its PSI is judged on the last 7 days pooled (alerts.rules.psi.pool_days) for v1, not computed yet for v2 "
            "(its reference window still filling): a median of 30 predictions a day" in said
        )
        builder._recent_drift = filling  # v2 alone
        said = builder._not_judged("drifting", health, 300)
    assert "its PSI is not computed yet for v2 (its reference window still filling)" in said
