"""Every mart metric against an independent computation on the raw Parquet files."""

import shutil
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from orchestration.lib.project_config import load_config
from orchestration.lib.settings import dbt_var
from tests.dbt_in_process import run_dbt
from tests.e2e.oracles import (
    COHORT_KEYS,
    cbpe,
    clean_predictions,
    cohort_members,
    ece,
    known_predictions,
    kpis,
    label_metrics,
    hosmer_lemeshow,
    psi_categorical,
    psi_numeric,
    retention,
    score_calibration,
    users,
)

pytestmark = pytest.mark.slow
EXACT = dict(rel=1e-9, abs=1e-12)


@pytest.fixture
def materialized(latest):
    return latest


def nan_or_approx(ours, oracle, **tolerance) -> bool:
    if pd.isna(oracle):
        return pd.isna(ours)
    return ours == pytest.approx(oracle, **tolerance)


def health_oracle(day: pd.DataFrame, calibration: dict | None) -> dict:
    """Every metric of a marts.model_health_daily row from the day's known predictions, independently."""
    labelled = day[day["label"].notna()]
    y, s, d = labelled["label"].astype(int).to_numpy(), labelled["score"].to_numpy(), labelled["decision"].to_numpy()
    delay_h = (labelled["first_labeled_at"] - labelled["predicted_at"]).dt.total_seconds() / 3600
    events = day["feedback_events"].fillna(0)
    estimated_precision, estimated_recall, calibrated = cbpe(day["score"], day["decision"], calibration)
    return label_metrics(day) | {
        "mean_score": np.mean(day["score"].to_numpy()),
        # quantile_cont is numpy's default linear interpolation
        "p50_score": np.quantile(day["score"], 0.5, method="linear"),
        "p90_score": np.quantile(day["score"], 0.9, method="linear"),
        "positive_rate": day["decision"].mean(),
        "median_label_delay_hours": delay_h.median(),
        "true_positives": int((d & (y == 1)).sum()),
        "false_positives": int((d & (y == 0)).sum()),
        "false_negatives": int((~d & (y == 1)).sum()),
        "true_negatives": int((~d & (y == 0)).sum()),
        "brier_score": brier_score_loss(y, s) if len(y) else np.nan,
        "expected_calibration_error": ece(y.astype(float), s) if len(y) else np.nan,
        "calibration_chi2": hosmer_lemeshow(y.astype(float), s)[0] if len(y) else np.nan,
        "calibration_bins": hosmer_lemeshow(y.astype(float), s)[1] if len(y) else 0,
        "estimated_precision": estimated_precision,
        "estimated_recall": estimated_recall,
        "cbpe_calibrated": calibrated,
        "feedback_rate": (events > 0).mean(),
        "feedback_up_share": day["up_events"].sum() / events.sum() if events.sum() else np.nan,
    }


def assert_health_matches(health: pd.DataFrame, source, calibration: dict, maturity_days: int) -> None:
    """Each row against the oracle on the labels, reviews and feedback known by its `labels_as_of`."""
    keys = {"date", "model_id", "model_version", "labels_as_of"}
    for as_of, rows in health.groupby("labels_as_of"):
        preds = known_predictions(source, as_of.date())
        for _, row in rows.iterrows():
            day = preds[
                (preds["model_id"] == row["model_id"])
                & (preds["model_version"] == row["model_version"])
                & (preds["date"] == pd.Timestamp(row["date"]))
            ]
            reference_end, bins = calibration[(row["model_id"], row["model_version"])]
            # the calibration exists once its reference window's labels have matured (label horizon) by the run's last day
            learnt = bins if reference_end + pd.Timedelta(days=maturity_days) <= as_of else None
            oracle = health_oracle(day, learnt)
            assert set(oracle) == set(health.columns) - keys  # a new health column needs an oracle here
            for column, expected in oracle.items():
                # median of an even count averages two float delays: exact to rounding only
                tolerance = dict(rel=1e-9) if column == "median_label_delay_hours" else EXACT
                assert nan_or_approx(row[column], expected, **tolerance), (
                    row["date"],
                    row["model_id"],
                    column,
                    row[column],
                    expected,
                )


def test_every_health_metric_matches_its_oracle(materialized):
    p = materialized
    config = load_config()
    preds = clean_predictions(p.source)
    models = sorted(preds["model_id"].unique())
    # the demo's project file: one label horizon and the first 7 days of each version as the reference
    [horizon] = {config.model(m).label_horizon_days for m in models}
    [reference_days] = {config.model(m).drift_reference.days for m in models}
    health = p.query("SELECT * FROM marts.model_health_daily ORDER BY date, model_id")
    assert len(health) == len(preds.groupby(["date", "model_id", "model_version"])) > 20
    calibration = score_calibration(p.source, preds, reference_days, horizon)
    assert_health_matches(health, p.source, calibration, horizon)
    assert health["human_precision"].notna().sum() > 20 and health["feedback_up_share"].notna().all()
    # the label-free estimate is there before the labels: on the last day few have arrived ...
    newest = health[health["date"] == pd.Timestamp(p.last)]
    assert len(newest) == 2 and (newest["label_coverage"] < 0.05).all() and newest["estimated_precision"].notna().all()
    # ... while a week back the realised values have caught up
    older = health[health["date"] <= pd.Timestamp(p.last - timedelta(days=7))]
    assert (older["label_coverage"] > 0.7).all() and older[["precision", "recall"]].notna().all().all()


def joined_values(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """An intersection's group per row: its columns' values as text ('unknown' when missing) joined with '|'."""
    values = [frame[c].astype(object).where(frame[c].notna(), "unknown").astype(str) for c in columns]
    return values[0].str.cat(values[1:], sep="|") if len(values) > 1 else values[0]


def bias_oracle(preds: pd.DataFrame, people: pd.DataFrame, attributes: dict[str, list[str]]) -> pd.DataFrame:
    """marts.bias_daily's counts per day, model, attribute and group, from the rows in pandas: a user's missing
    attribute value is 'unknown', a prediction whose user is unknown is in group 'unknown' of every attribute.
    A count is of the rows whose condition is true: 0 when none is, also where the condition is NULL on every row
    of the group (SQL's three-valued logic: an unlabelled row's `label = 1` is NULL), which DuckDB's count_if
    published as NULL (a day without labels: 0 true positives beside NULL false negatives)."""
    known_user = preds["user_id"].isin(people["user_id"])
    rows = preds.merge(people, on="user_id", how="left")
    decided = pd.Series(rows["decision"].to_numpy(), dtype="boolean")
    labelled = rows["label"].notna().to_numpy()
    positive = pd.Series(rows["label"].to_numpy() == 1, dtype="boolean").mask(~labelled)
    negative = pd.Series(rows["label"].to_numpy() == 0, dtype="boolean").mask(~labelled)
    cells = pd.DataFrame(
        {
            "date": rows["date"],
            "model_id": rows["model_id"],
            "positives": decided,
            "labelled_positives": positive,
            "true_positives": decided & positive,
            "false_positives": decided & negative,
            "false_negatives": ~decided & positive,
            "true_negatives": ~decided & negative,
            "score_sum": rows["score"].where(labelled),
        }
    )
    counted = [c for c in cells.columns if c not in ("date", "model_id")]
    # a day's population: the users signed up by that day (a backfill's snapshot holds later days' users too)
    signed = pd.to_datetime(people["signup_at"]).dt.normalize()
    parts = []
    for attribute, columns in attributes.items():
        group = joined_values(rows, columns).where(known_user.to_numpy(), "unknown")
        values = joined_values(people, columns)
        by_group = cells.assign(group_value=group.to_numpy()).groupby(["date", "model_id", "group_value"])
        part = by_group[counted].sum().astype(float)
        part["score_sum"] = by_group["score_sum"].sum(min_count=1)  # NaN: no labelled row
        part["predictions"] = by_group.size()
        part["labelled"] = by_group["score_sum"].count()
        part = part.reset_index()
        sizes = {day: values[signed <= day].value_counts() for day in part["date"].unique()}
        part["population_users"] = [int(sizes[d].get(g, 0)) for d, g in zip(part["date"], part["group_value"])]
        part["population_total"] = [int((signed <= d).sum()) for d in part["date"]]
        parts.append(part.assign(attribute=attribute))
    return pd.concat(parts, ignore_index=True)


def test_every_bias_count_matches_pandas(materialized):
    """Each row's counts from the labels known by its labels_as_of, against pandas on the raw files."""
    p = materialized
    attributes = load_config().attribute_columns
    people = users(p.source)[["user_id", "signup_at", *{c for columns in attributes.values() for c in columns}]]
    bias = p.query("SELECT * FROM marts.bias_daily")
    keys = ["date", "model_id", "attribute", "group_value"]
    assert set(bias["attribute"]) == set(attributes) and len(bias) > 100
    for as_of, rows in bias.groupby("labels_as_of"):
        preds = known_predictions(p.source, as_of.date())
        pairs = rows[["date", "model_id"]].drop_duplicates()
        preds = preds.merge(pairs, on=["date", "model_id"])
        expected = bias_oracle(preds, people, attributes).set_index(keys).sort_index()
        ours = rows.set_index(keys).sort_index()
        assert list(ours.index) == list(expected.index), as_of  # every group seen, no other
        for column in expected.columns:
            tolerance = EXACT if column == "score_sum" else dict(rel=0, abs=0)
            assert ours[column].astype(float).to_numpy() == pytest.approx(
                expected[column].astype(float).to_numpy(), nan_ok=True, **tolerance
            ), (as_of, column)
        assert ours["label_sum"].equals(ours["labelled_positives"])


def test_cbpe_with_a_learnt_calibration_matches_numpy(materialized, tmp_path, monkeypatch):
    """The e2e world ends before the label horizon lets a calibration mature, so learn one with a shorter one."""

    p, horizon = materialized, 7
    lookback = dbt_var(
        "label_lookback_days"
    )  # the fixed window every run recomputes (7, the coverage rule's after_days)
    shutil.copy(p.db, tmp_path / "warehouse.duckdb")
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / "warehouse.duckdb"))
    variables = {
        "label_lookback_days": lookback,
        "default_label_horizon_days": horizon,
        "max_label_horizon_days": horizon,
    }
    result = run_dbt(
        "run",
        ["int_label_refresh_days", "int_score_calibration", "int_label_counts", "model_health_daily"],
        str(tmp_path / "target"),
        variables,
        dates=(p.last, p.last),
    )
    assert result.success, result.exception
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as conn:  # dbt-duckdb keeps its in-process handle open
        learnt = conn.execute("SELECT * FROM intermediate.int_score_calibration").df()
        health = conn.execute(
            "SELECT * FROM marts.model_health_daily WHERE date >= ? ORDER BY date, model_id",
            [p.last - timedelta(days=lookback)],
        ).df()
    calibration = score_calibration(p.source, clean_predictions(p.source), dbt_var("default_reference_days"), horizon)
    assert set(zip(learnt["model_id"], learnt["model_version"])) == set(calibration)
    for _, row in learnt.iterrows():
        _, bins = calibration[(row["model_id"], row["model_version"])]
        assert row["calibrated_probability"] == pytest.approx(bins[row["score_bin"]], **EXACT), row.to_dict()
    assert len(health) == 2 * (lookback + 1) and health["cbpe_calibrated"].all()
    assert_health_matches(health, p.source, calibration, horizon)


def test_psi_and_null_rate_match_numpy(materialized):
    p = materialized
    preds = clean_predictions(p.source)
    drift = p.query(
        "SELECT * FROM marts.feature_drift_daily WHERE date >= ? AND psi IS NOT NULL", [p.last - timedelta(days=3)]
    )
    assert set(drift["feature"]) == {
        "score",
        "feature_recency",
        "feature_basket_value",
        "feature_tenure_days",
        "feature_device",
    }
    for _, row in drift.iterrows():
        model = preds[preds["model_id"] == row["model_id"]]
        first_day = model["date"].min()
        reference = model[model["date"] <= first_day + pd.Timedelta(days=6)]
        current = model[model["date"] == pd.Timestamp(row["date"])]
        if row["feature_type"] == "numeric":
            oracle = psi_numeric(reference[row["feature"]].to_numpy(float), current[row["feature"]].to_numpy(float))
        else:
            oracle = psi_categorical(reference[row["feature"]], current[row["feature"]])
        assert row["psi"] == pytest.approx(oracle, rel=1e-9, abs=1e-12), row.to_dict()
        assert row["null_rate"] == pytest.approx(current[row["feature"]].isna().mean(), **EXACT)


KPI_KEYS = {"marts.kpi_daily": ["date"], "marts.kpi_daily_by_segment": ["date", "segment", "country"]}


@pytest.mark.parametrize("mart", KPI_KEYS)
def test_every_kpi_column_of_every_day_matches_pandas(materialized, mart):
    p = materialized
    keys = KPI_KEYS[mart]
    ours = p.query(f"SELECT * FROM {mart} ORDER BY ALL")
    # every day's last (re)computation ran with max_date >= the next day (kpi_lookback_days),
    # so its conversions are the orders known by the world's end
    oracle = kpis(p.source, p.last, tuple(keys[1:])).sort_values(keys, ignore_index=True)
    assert len(ours) > 0 and sorted(ours["date"].unique()) == sorted(oracle["date"].unique())
    assert len(ours["date"].unique()) == (p.last - p.first).days + 1
    assert list(ours.columns) == list(oracle.columns)  # a new KPI column needs an oracle here
    if len(keys) > 1:
        assert ours["segment"].nunique() > 1 and ours["country"].nunique() > 1
    ours["date"] = pd.to_datetime(ours["date"])
    ints = ["active_users", "sessions", "converting_sessions", "orders", "refunded_orders"]
    ours[ints] = ours[ints].astype("int64")
    pd.testing.assert_frame_equal(ours, oracle, check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-12)


def test_retention_matches_pandas_and_only_matured_cohorts_appear(materialized):
    p = materialized
    horizons = dbt_var("retention_horizons")
    ours = p.query("SELECT * FROM marts.retention_cohorts")
    oracle = retention(p.source, p.first, p.last, horizons)
    # both kinds of cohort, with every horizon that matured in the world (experiments start late:
    # no assignment cohort of this world reaches D28), for every experiment and variant
    for cohort_type, n_groups in (("signup", 1), ("assignment", 4)):
        rows = ours[ours["cohort_type"] == cohort_type]
        reached = set(oracle.loc[oracle["cohort_type"] == cohort_type, "horizon_days"])
        assert len(rows) > 0 and len(reached) >= 2 and set(rows["horizon_days"]) == reached, cohort_type
        assert len(rows.groupby(["experiment_id", "variant"], dropna=False)) == n_groups, cohort_type
    # maturity: a cohort appears for horizon k exactly when cohort_date + k <= the as-of day
    assert (ours["matured_date"] <= pd.Timestamp(p.last)).all()
    assert (ours["matured_date"] == ours["cohort_date"] + pd.to_timedelta(ours["horizon_days"], unit="D")).all()
    members = cohort_members(p.source).fillna({"experiment_id": "", "variant": ""})
    has_members = set(zip(members["cohort_type"], members["experiment_id"], members["variant"], members["cohort_date"]))
    present = set(
        zip(
            ours["cohort_type"],
            ours["experiment_id"].fillna(""),
            ours["variant"].fillna(""),
            pd.to_datetime(ours["cohort_date"]),
            ours["horizon_days"],
        )
    )
    checked = {}
    for group in set(zip(members["cohort_type"], members["experiment_id"], members["variant"])):
        for k in horizons:
            # the last cohort that has matured for k days is there; the next one (one day short) is not
            matured, immature = pd.Timestamp(p.last - timedelta(days=k)), pd.Timestamp(p.last - timedelta(days=k - 1))
            if (*group, matured) in has_members:
                assert (*group, matured, k) in present, (group, matured, k)
            if (*group, immature) in has_members:
                assert (*group, immature, k) not in present, (group, immature, k)
                checked[group] = checked.get(group, 0) + 1
    assert len(checked) == 5 and min(checked.values()) >= 2  # signup and all four variants, near the end
    # and every matured cohort's numbers
    key = [*COHORT_KEYS, "matured_date"]
    ours = ours.sort_values(key, ignore_index=True)
    oracle = oracle.sort_values(key, ignore_index=True)
    for frame in (ours, oracle):
        frame[["experiment_id", "variant"]] = frame[["experiment_id", "variant"]].fillna("")
        frame[["cohort_date", "matured_date"]] = frame[["cohort_date", "matured_date"]].apply(pd.to_datetime)
    pd.testing.assert_frame_equal(
        ours, oracle[ours.columns], check_dtype=False, check_exact=False, rtol=1e-9, atol=1e-12
    )
