"""Late labels refresh earlier days (as sklearn computes them from the labels known then);
the planted incident raises alerts in time, and only then; the drift reference is stored once."""

import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.e2e.oracles import PSI_FLOOR, clean_predictions, known_predictions, label_metrics

pytestmark = pytest.mark.slow


def health_on(p, day):
    return p.query("SELECT * FROM marts.model_health_daily WHERE date = ? ORDER BY model_id", [day]).set_index(
        "model_id"
    )


LABEL_METRICS = ["labelled", "label_coverage", "precision", "recall", "f1"]


def land_late_labels(source: Path, day: date, landing_day: date) -> int:
    """A new labels file dated `landing_day` with labels for `day`'s predictions, as a late feed delivers them.

    Predictions still unlabelled by then get the wrong label (so precision and recall
    must move), and some labelled ones a human review that flips them (it overrides).
    """
    preds = known_predictions(source, landing_day)
    preds = preds[preds["date"] == pd.Timestamp(day)].sort_values("prediction_id")
    unlabelled = preds[preds["label"].isna()].groupby("model_id").head(150)
    reviewed = preds[preds["label"].notna() & (preds["label_source"] == "implicit")].groupby("model_id").head(50)
    late = pd.concat(
        [
            pd.DataFrame(
                {
                    "prediction_id": unlabelled["prediction_id"],
                    "label": 1 - unlabelled["decision"].astype("int64"),
                    "label_source": "implicit",
                }
            ),
            pd.DataFrame(
                {
                    "prediction_id": reviewed["prediction_id"],
                    "label": 1 - reviewed["label"].astype("int64"),
                    "label_source": "human_review",
                }
            ),
        ],
        ignore_index=True,
    )
    # inside the landing day, so the raw loader puts them in that day's partition
    late["labeled_at"] = pd.Timestamp(landing_day) + pd.Timedelta(hours=12) + pd.to_timedelta(late.index, unit="s")
    late[["prediction_id", "label", "labeled_at", "label_source"]].to_parquet(
        source / "labels" / f"labels_{landing_day.isoformat()}_late.parquet", index=False
    )
    return len(unlabelled)  # predictions labelled for the first time


def oracle_on(source: Path, day: date, known_by: date) -> pd.DataFrame:
    preds = known_predictions(source, known_by)
    preds = preds[preds["date"] == pd.Timestamp(day)]
    return pd.DataFrame({m: label_metrics(g) for m, g in preds.groupby("model_id")}).T[LABEL_METRICS]


def assert_equal_to_oracle(ours: pd.DataFrame, oracle: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        ours[LABEL_METRICS].astype(float),
        oracle.loc[ours.index].astype(float),
        check_exact=False,
        rtol=1e-9,
        atol=1e-12,
        check_names=False,
    )


def test_labels_landing_three_days_late_update_that_days_metrics(pipeline, tmp_path, monkeypatch):
    # `pipeline` has run every day but the last two: day D's last refresh knew the labels of D + 2.
    # D + 3 is the next day to run, so one daily run lands the late labels (runs go day after day:
    # running D + 3 over a gap would miss the labels of the skipped day).
    day = pipeline.last - timedelta(days=4)
    landing = day + timedelta(days=3)
    source = tmp_path / "world"  # a private copy: the session's world is shared
    shutil.copytree(pipeline.source, source)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))
    p = replace(pipeline, source=source)
    before = health_on(p, day)
    assert (before["labels_as_of"] == pd.Timestamp(day + timedelta(days=2))).all()
    assert_equal_to_oracle(before, oracle_on(source, day, day + timedelta(days=2)))

    newly_labelled = land_late_labels(source, day, landing)
    assert p.run(landing).success
    after = health_on(p, day)
    assert (after["labels_as_of"] == pd.Timestamp(landing)).all()
    assert_equal_to_oracle(after, oracle_on(source, day, landing))
    assert (after["label_coverage"] > before["label_coverage"]).all()
    assert (after["precision"] != before["precision"]).all() and (after["recall"] != before["recall"]).all()
    # the landed file counts: without it D + 3 knew fewer labels by exactly its first-time ones
    (source / "labels" / f"labels_{landing.isoformat()}_late.parquet").unlink()
    assert after["labelled"].sum() - oracle_on(source, day, landing)["labelled"].sum() == newly_labelled > 0
    assert (after["predictions"] == before["predictions"]).all()  # volume does not depend on labels


def test_incident_raises_drift_and_calibration_alerts_within_two_days(daily_runs):
    p = daily_runs  # the incident's days run one at a time, as the schedule does them
    incident = p.incident
    model = p.truth["incident"]["model_id"]
    alerts = p.query("SELECT * FROM marts.alerts")
    before = alerts[alerts["date"] < pd.Timestamp(incident)]
    assert before[before["metric"] == "psi"].empty, before
    incident_alerts = alerts[(alerts["model_id"] == model) & (alerts["date"] == pd.Timestamp(incident))]
    drift = incident_alerts[incident_alerts["metric"] == "psi"]
    assert set(p.truth["incident"]["drifted_features"]) <= set(drift["subject"])
    assert (drift["first_detected_on"] == pd.Timestamp(incident)).all()
    calibration = incident_alerts[incident_alerts["metric"] == "expected_calibration_error"]
    assert len(calibration) == 1
    assert calibration["first_detected_on"].iloc[0] <= pd.Timestamp(incident + timedelta(days=2))
    other = alerts[alerts["model_id"] != model]
    assert other[other["metric"] == "psi"].empty


# ---------------------------------------------------------------- drift reference stored once

DECILES = np.arange(1, 10) / 10


def profiles(p) -> pd.DataFrame:
    return p.query("SELECT * FROM intermediate.int_reference_profiles ORDER BY model_id, model_version, feature, bin")


def assert_profiles_are_numpys(stored: pd.DataFrame, preds: pd.DataFrame) -> None:
    """Each stored profile against numpy over the predictions of its reference window, from the raw files."""
    assert not stored.empty
    for (model_id, version, feature), rows in stored.groupby(["model_id", "model_version", "feature"]):
        start, end = rows["reference_start_date"].iloc[0], rows["reference_end_date"].iloc[0]
        window = preds[
            (preds["model_id"] == model_id)
            & (preds["model_version"] == version)
            & (preds["date"] >= start)
            & (preds["date"] <= end)
        ]
        values = window[feature].dropna()
        assert (rows["reference_rows"] == len(values)).all(), (model_id, feature)
        if rows["feature_type"].iloc[0] == "numeric":
            rows = rows.assign(index=rows["bin"].astype(int)).sort_values("index")
            assert list(rows["index"]) == list(range(10))
            edges = np.quantile(values.to_numpy(float), DECILES, method="linear")
            np.testing.assert_allclose(rows["lower_edge"].iloc[1:].to_numpy(float), edges, rtol=1e-12)
            np.testing.assert_allclose(rows["upper_edge"].iloc[:-1].to_numpy(float), edges, rtol=1e-12)
            counts = np.bincount(np.searchsorted(edges, values.to_numpy(float), side="left"), minlength=10)
            assert list(rows["reference_count"]) == list(counts), (model_id, feature)
        else:
            assert rows.set_index("bin")["reference_count"].to_dict() == values.value_counts().to_dict()


def assert_psi_is_numpys(p, day: date, preds: pd.DataFrame) -> int:
    """PSI of `day` against scipy's symmetric relative entropy of the binned shares (reference window from the
    profile's dates, bins from numpy's quantiles): an oracle apart from tests/e2e/oracles.psi_*."""
    from scipy.special import rel_entr

    drift = p.query("SELECT * FROM marts.feature_drift_daily WHERE date = ? AND psi IS NOT NULL", [day])
    windows = p.query("SELECT * FROM intermediate.int_model_versions").set_index(["model_id", "model_version"])
    for _, row in drift.iterrows():
        window = windows.loc[(row["model_id"], row["model_version"])]
        model = preds[(preds["model_id"] == row["model_id"]) & (preds["model_version"] == row["model_version"])]
        ref = model.loc[
            (model["date"] >= window["reference_start_date"]) & (model["date"] <= window["reference_end_date"])
        ]
        ref, cur = ref[row["feature"]].dropna(), model.loc[model["date"] == pd.Timestamp(day), row["feature"]].dropna()
        if row["feature_type"] == "numeric":
            edges = np.quantile(ref.to_numpy(float), DECILES, method="linear")
            r, c = (np.bincount(np.digitize(v.to_numpy(float), edges, right=True), minlength=10) for v in (ref, cur))
        else:
            categories = sorted(set(ref) | set(cur))
            r, c = (v.value_counts().reindex(categories, fill_value=0).to_numpy() for v in (ref, cur))
        r, c = np.where(r == 0, 1e-4, r / r.sum()), np.where(c == 0, 1e-4, c / c.sum())
        assert row["psi"] == pytest.approx(np.sum(rel_entr(c, r) + rel_entr(r, c)), rel=1e-9, abs=1e-12), row.to_dict()
    return len(drift)


def test_the_drift_reference_is_stored_once_and_rebuilt_only_when_its_days_run_again(pipeline, tmp_path, monkeypatch):
    source = tmp_path / "world"  # a private copy: rows are added to a reference day below
    shutil.copytree(pipeline.source, source)
    monkeypatch.setenv("IMPACT_LEDGER_SOURCE", str(source))
    p = replace(pipeline, source=source)
    before, preds = profiles(p), clean_predictions(source)
    assert_profiles_are_numpys(before, preds)
    assert set(before["feature"]) == {"score"} | {c for c in preds.columns if c.startswith("feature_")}
    assert set(before["model_id"]) == set(preds["model_id"])

    # a later day reads the stored profile: not one row of it is rebuilt (built_at included)
    day = p.last - timedelta(days=1)
    assert p.run(day).success
    pd.testing.assert_frame_equal(profiles(p), before)
    assert assert_psi_is_numpys(p, day, clean_predictions(source)) >= 2 * 5

    # more predictions land for the first reference day of the earliest window: re-running from that day
    # rebuilds that version's profile from the new rows, and a later day's PSI follows it
    windows = p.query("SELECT * FROM intermediate.int_model_versions ORDER BY reference_start_date, model_id")
    first = windows.iloc[0]
    ref_day = first["reference_start_date"].date()
    preds = clean_predictions(source)
    extra = preds[(preds["model_id"] == first["model_id"]) & (preds["date"] == pd.Timestamp(ref_day))].head(200)
    original = pd.read_parquet(source / "predictions" / f"predictions_{ref_day.isoformat()}.parquet")
    extra = extra[original.columns].assign(
        prediction_id="extra-" + extra["prediction_id"], feature_basket_value=extra["feature_basket_value"] * 5
    )
    extra.to_parquet(source / "predictions" / f"predictions_{ref_day.isoformat()}_extra.parquet", index=False)
    assert p.run(ref_day, day).success
    gate = p.query("SELECT passed FROM quality.gate_results WHERE table_name = 'predictions' AND date = ?", [ref_day])
    assert gate["passed"].all()  # the day is not held back: its new rows count
    after = profiles(p)
    preds = clean_predictions(source)
    assert_profiles_are_numpys(after, preds)
    rebuilt = after[after["model_id"] == first["model_id"]]
    assert (rebuilt["built_at"] > before["built_at"].max()).all()
    edges = [
        f.loc[(f["model_id"] == first["model_id"]) & (f["feature"] == "feature_basket_value"), "lower_edge"].dropna()
        for f in (before, after)
    ]
    assert not np.allclose(*edges)  # the new rows moved the reference deciles
    assert assert_psi_is_numpys(p, day, preds) >= 2 * 5


# ---------------------------------------------------------------- drift bins (the distributions behind PSI)


def test_drift_bins_are_numpys_histograms_at_the_stored_deciles_and_give_the_published_psi(latest):
    """marts.feature_drift_bins per day, model, version and feature: both sides' shares sum to 1, the current
    shares are numpy's histogram of the day's values (raw files) cut at the stored reference deciles, the
    reference side is the stored profile, and PSI from the bins with the 1e-4 floor is feature_drift_daily.psi."""
    bins = latest.query(
        "SELECT * FROM marts.feature_drift_bins ORDER BY date, model_id, model_version, feature, bin_order"
    )
    drift = latest.query("SELECT * FROM marts.feature_drift_daily WHERE psi IS NOT NULL")
    stored = profiles(latest)
    preds = clean_predictions(latest.source)
    keys = ["date", "model_id", "model_version", "feature"]
    assert not bins.empty
    # bins exist exactly for the (day, model, version, feature) rows with a PSI
    assert set(map(tuple, bins[keys].drop_duplicates().to_numpy())) == set(map(tuple, drift[keys].to_numpy()))
    psi = drift.set_index(keys)["psi"]
    numeric_checked = categorical_checked = 0
    for (day, model_id, version, feature), rows in bins.groupby(keys):
        profile = stored[
            (stored["model_id"] == model_id) & (stored["model_version"] == version) & (stored["feature"] == feature)
        ]
        values = preds.loc[
            (preds["model_id"] == model_id) & (preds["model_version"] == version) & (preds["date"] == day), feature
        ].dropna()
        assert list(rows["bin_order"]) == list(range(len(rows)))
        assert rows["reference_share"].sum() == pytest.approx(1, abs=1e-12)
        assert rows["current_share"].sum() == pytest.approx(1, abs=1e-12)
        assert rows["current_count"].sum() == len(values)
        if rows["feature_type"].iloc[0] == "numeric":
            assert list(rows["bin"]) == [str(i) for i in range(10)]
            edges = profile.assign(i=profile["bin"].astype(int)).sort_values("i")["lower_edge"].iloc[1:]
            edges = edges.to_numpy(float)
            # bin k holds edge_k < value <= edge_k+1: digitize with right=True counts the edges below a value
            counts = np.bincount(np.digitize(values.to_numpy(float), edges, right=True), minlength=10)
            np.testing.assert_allclose(rows["current_share"].to_numpy(float), counts / counts.sum(), rtol=1e-12)
            assert rows["bin_label"].iloc[0] == f"(-inf, {round(edges[0], 4)}]"
            assert rows["bin_label"].iloc[-1] == f"({round(edges[-1], 4)}, inf)"
            numeric_checked += 1
        else:
            counts = values.value_counts()
            shares = rows.set_index("bin")["current_share"]
            assert {b: s for b, s in shares.items() if s > 0} == pytest.approx((counts / counts.sum()).to_dict())
            assert (rows["bin_label"] == rows["bin"]).all()
            # categories by reference share, most common first
            assert list(rows["reference_count"]) == sorted(rows["reference_count"], reverse=True)
            categorical_checked += 1
        reference = profile.set_index("bin")["reference_share"].reindex(rows["bin"], fill_value=0.0)
        np.testing.assert_allclose(rows["reference_share"].to_numpy(float), reference.to_numpy(float), rtol=1e-12)
        ref = np.where(rows["reference_count"] == 0, PSI_FLOOR, rows["reference_share"])
        cur = np.where(rows["current_count"] == 0, PSI_FLOOR, rows["current_share"])
        expected = float(np.sum((cur - ref) * np.log(cur / ref)))
        assert psi[(day, model_id, version, feature)] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert numeric_checked > 0 and categorical_checked > 0
