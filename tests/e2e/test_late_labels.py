"""Labels that arrive months late reach precision/recall, and a run's cost follows the labels that arrived
(dbt-level: a generated world with one day's labels moved 95 days later, built with the dbt vars the
project file gives); a fixed drift reference gives PSI against exactly its dates.

The raw tables are loaded straight from the world's Parquet files (the contract's dedup and score range
applied in SQL, as tests/e2e/oracles.clean_predictions does): the gates are tested elsewhere; this is about
which days the marts recompute, and with which labels.
"""

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score

from orchestration.lib.quality_gate import ensure_gate_results
from orchestration.lib.synthetic_world import WorldConfig, generate_world
from tests.e2e.oracles import (
    clean_predictions,
    end_of,
    hosmer_lemeshow,
    known_predictions,
    label_metrics,
    psi_categorical,
    psi_numeric,
    read,
)
from tests.dbt_in_process import run_dbt

pytestmark = pytest.mark.slow

WORLD = WorldConfig(days=30, users=3_000, seed=11, predictions_per_day=400)
LATE_DAYS, HORIZON = 95, 120
MODELS = [
    "stg_predictions",
    "stg_labels",
    "stg_feedback",
    "int_label_refresh_days",
    "int_model_versions",
    "int_score_calibration",
    "int_label_counts",
    "model_health_daily",
    "int_reference_profiles",
    "feature_drift_bins",
    "feature_drift_daily",
]
LABEL_COLUMNS = [
    "labelled",
    "label_coverage",
    "precision",
    "recall",
    "f1",
    "human_labelled",
    "human_precision",
    "human_recall",
]


def build(db, first: date, last: date, horizons: dict[str, int], reference: dict[str, dict], target) -> None:
    """One dbt run over first..last, as the daily job runs it (model_settings as config_dbt_vars writes them)."""

    settings = {
        m: {
            "label_horizon_days": h,
            "reference_days": None,
            "reference_start": None,
            "reference_end": None,
            **reference.get(m, {}),
        }
        for m, h in horizons.items()
    }
    variables = {
        "model_settings": settings,
        "max_label_horizon_days": max(horizons.values()),
        "label_lookback_days": 7,
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IMPACT_LEDGER_DB", str(db))
        mp.setenv("IMPACT_LEDGER_TEMP_DIR", spill_dir(db))
        result = run_dbt("run", MODELS, str(target), variables, dates=(first, last))
    assert result.success, result.exception


def private_copy(w, tmp_path):
    """The history warehouse, copied once its writes are in the file (dbt-duckdb's in-process handle keeps a WAL)."""
    query(w["db"], "CHECKPOINT")
    db = tmp_path / "warehouse.duckdb"
    shutil.copy(w["db"], db)
    return db


def spill_dir(db) -> str:
    """dbt's profile opens the file with this temp_directory; DuckDB refuses a second in-process handle that differs."""
    return str(Path(db).parent / "tmp")


def query(db, sql: str, params=None) -> pd.DataFrame:
    # dbt-duckdb keeps its in-process handle: no read_only here, and the same configuration
    with duckdb.connect(str(db), config={"temp_directory": spill_dir(db)}) as conn:
        result = conn.execute(sql, params or [])
        return result.df() if result.description else None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The world with every label of day D's predictions moved to one file stamped D + 95, loaded into raw.*."""
    root = tmp_path_factory.mktemp("late_labels")
    source = root / "world"
    truth = generate_world(source, WORLD, progress=None)
    preds = clean_predictions(source)
    # D: a day both models predict on, a few days after the later one started
    day = max(preds.groupby("model_id")["date"].min()) + pd.Timedelta(days=3)
    ids = set(preds.loc[preds["date"] == day, "prediction_id"])
    arrival = (day + pd.Timedelta(days=LATE_DAYS)).date()
    moved = []
    for path in sorted((source / "labels").glob("*.parquet")):
        labels = pd.read_parquet(path)
        late = labels["prediction_id"].isin(ids)
        moved.append(labels[late])
        labels[~late].to_parquet(path, index=False)
    moved = pd.concat(moved, ignore_index=True).sort_values("labeled_at", kind="stable", ignore_index=True)
    # same order (the latest label wins within a source), all on the arrival day
    moved["labeled_at"] = pd.Timestamp(arrival) + pd.Timedelta(hours=1) + pd.to_timedelta(moved.index, unit="s")
    moved.to_parquet(source / "labels" / f"labels_{arrival.isoformat()}.parquet", index=False)
    db = root / "warehouse.duckdb"
    with duckdb.connect(str(db), config={"temp_directory": spill_dir(db)}) as conn:
        ensure_gate_results(conn)  # no day held back by a gate
        conn.execute("CREATE SCHEMA raw")
        for table, stamp in (("predictions", "predicted_at"), ("labels", "labeled_at"), ("feedback", "created_at")):
            conn.register("frame", read(source, table))
            # the raw loader's partition day (the staging views hold back a day a gate failed: none here)
            conn.execute(f"CREATE TABLE raw.{table} AS SELECT *, CAST({stamp} AS DATE) AS _partition_date FROM frame")
            conn.unregister("frame")
        conn.execute(
            "CREATE OR REPLACE TABLE raw.predictions AS SELECT * FROM raw.predictions WHERE score BETWEEN 0 AND 1 "
            "QUALIFY row_number() OVER (PARTITION BY prediction_id) = 1"
        )
    first_days = preds.groupby("model_id")["date"].min()
    return dict(
        root=root,
        source=source,
        db=db,
        day=day.date(),
        arrival=arrival,
        moved=moved,
        preds=preds,
        start=date.fromisoformat(truth["start_date"]),
        end=date.fromisoformat(truth["end_date"]),
        first_days={m: d.date() for m, d in first_days.items()},
    )


def reference_settings(w) -> dict[str, dict]:
    rec = w["first_days"]["recommender"]
    # recommender: fixed dates that are not its first days; churn_offer: its first 5 days
    return {
        "recommender": {
            "reference_start": (rec + timedelta(days=3)).isoformat(),
            "reference_end": (rec + timedelta(days=6)).isoformat(),
        },
        "churn_offer": {"reference_days": 5},
    }


@pytest.fixture(scope="module")
def built(world):
    """The world's days in one run (the history), with a 120-day label horizon."""
    build(
        world["db"],
        world["start"],
        world["end"],
        {"recommender": HORIZON, "churn_offer": HORIZON},
        reference_settings(world),
        world["root"] / "target",
    )
    return world


def test_labels_95_days_late_update_that_days_precision_and_recall_and_only_that_day(built, tmp_path):
    w = built
    db = private_copy(w, tmp_path)
    before = query(db, "SELECT * FROM marts.model_health_daily ORDER BY ALL")
    assert (before.loc[before["date"] == pd.Timestamp(w["day"]), "labelled"] == 0).all()  # nothing known yet

    build(
        db,
        w["arrival"],
        w["arrival"],
        {"recommender": HORIZON, "churn_offer": HORIZON},
        reference_settings(w),
        tmp_path / "t",
    )

    # the run refreshed exactly the prediction day whose labels arrived (no predictions in its own window),
    # not the 95 days in between
    refreshed = query(db, "SELECT * FROM intermediate.int_label_refresh_days ORDER BY model_id")
    moved = w["moved"].merge(w["preds"][["prediction_id", "model_id"]], on="prediction_id")
    assert set(zip(refreshed["model_id"], refreshed["date"].dt.date, refreshed["reason"])) == {
        (m, w["day"], "late_labels") for m in moved["model_id"].unique()
    }
    assert refreshed.set_index("model_id")["events_arrived"].to_dict() == moved.groupby("model_id").size().to_dict()

    after = query(db, "SELECT * FROM marts.model_health_daily ORDER BY ALL")
    day = after[after["date"] == pd.Timestamp(w["day"])].set_index("model_id")
    assert len(day) == 2 and (day["labels_as_of"] == pd.Timestamp(w["arrival"])).all()
    known = known_predictions(w["source"], w["arrival"])
    for model_id, row in day.iterrows():
        preds = known[(known["model_id"] == model_id) & (known["date"] == pd.Timestamp(w["day"]))]
        labelled = preds[preds["label"].notna()]
        assert row["labelled"] == len(labelled) > 300
        assert row["precision"] == pytest.approx(
            precision_score(labelled["label"].astype(int), labelled["decision"]), rel=1e-12
        )
        assert row["recall"] == pytest.approx(
            recall_score(labelled["label"].astype(int), labelled["decision"]), rel=1e-12
        )
        oracle = label_metrics(preds)
        for column in LABEL_COLUMNS:
            assert row[column] == pytest.approx(oracle[column], rel=1e-9, nan_ok=True), (model_id, column)
    # every other row is as the history left it
    others = lambda frame: frame[frame["date"] != pd.Timestamp(w["day"])].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(others(after), others(before))


def test_scores_of_exactly_0_and_1_are_scored_and_left_out_of_the_calibration_test(built, tmp_path):
    # a trial's risk score scaled to [0, 1] had 66 scores of exactly 0: the Hosmer-Lemeshow sum divided by
    # mean_score (1 - mean_score) = 0 in that bin and the whole run failed ("Could not cast value inf"), though
    # the bin was filtered out of the sum
    w = built
    db = private_copy(w, tmp_path)
    day = w["day"] - timedelta(days=2)  # labels known on time
    query(
        db,
        "UPDATE raw.predictions SET score = CASE WHEN score < 0.1 THEN 0.0 WHEN score >= 0.9 THEN 1.0 ELSE score END "
        "WHERE CAST(predicted_at AS DATE) = ?",
        [day],
    )
    later = day + timedelta(days=7)  # a run a week on: the day's labels have landed
    build(db, day, later, {"recommender": HORIZON, "churn_offer": HORIZON}, reference_settings(w), tmp_path / "t")
    rows = query(db, "SELECT * FROM marts.model_health_daily WHERE date = ?", [day]).set_index("model_id")
    extremes = 0
    for model_id, row in rows.iterrows():
        known = known_predictions(w["source"], row["labels_as_of"].date())  # the labels the run knew
        labelled = known[
            (known["date"] == pd.Timestamp(day)) & known["label"].notna() & (known["model_id"] == model_id)
        ]
        assert len(labelled) == row["labelled"] > 0
        scores = labelled["score"].to_numpy()
        scores = np.where(scores < 0.1, 0.0, np.where(scores >= 0.9, 1.0, scores))
        extremes += int((scores == 0).sum() + (scores == 1).sum())
        chi2, bins = hosmer_lemeshow(labelled["label"].to_numpy(float), scores)
        assert row["calibration_bins"] == bins and row["calibration_chi2"] == pytest.approx(chi2, rel=1e-9)
    assert extremes > 20  # labelled scores of exactly 0 or 1 were there to break it


def test_labels_beyond_the_models_horizon_do_not_count(built, tmp_path):
    w = built
    db = private_copy(w, tmp_path)
    before = query(db, "SELECT * FROM marts.model_health_daily ORDER BY ALL")
    # churn_offer's labels may arrive 60 days late only; the recommender's 120
    build(
        db,
        w["arrival"],
        w["arrival"],
        {"recommender": HORIZON, "churn_offer": 60},
        reference_settings(w),
        tmp_path / "t",
    )
    refreshed = query(db, "SELECT model_id, date FROM intermediate.int_label_refresh_days")
    assert list(refreshed["model_id"]) == ["recommender"]
    after = query(db, "SELECT * FROM marts.model_health_daily ORDER BY ALL")
    churn = lambda frame: frame[frame["model_id"] == "churn_offer"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(churn(after), churn(before))
    assert (churn(after).loc[churn(after)["date"] == pd.Timestamp(w["day"]), "labelled"] == 0).all()


def test_a_daily_runs_refreshed_days_count_their_arrivals_and_last_event_as_pandas(built, tmp_path):
    """A one-day run three days after day D (whose labels were moved 95 days later): every refreshed (model,
    day) pair's events stamped that day and last event known by then, within the horizon, match pandas. Day D
    is a recent day that got nothing that day: its last event (feedback) came before the run's range."""
    w = built
    db = private_copy(w, tmp_path)
    run_day = w["day"] + timedelta(days=3)
    build(db, run_day, run_day, {"recommender": HORIZON, "churn_offer": HORIZON}, reference_settings(w), tmp_path / "t")
    refreshed = query(db, "SELECT * FROM intermediate.int_label_refresh_days").set_index(["model_id", "date"])

    # pandas: the events known by the end of the run's day, within each prediction's horizon
    preds = w["preds"][["prediction_id", "model_id", "date"]]
    events = pd.concat(
        [
            read(w["source"], "labels")[["prediction_id", "labeled_at"]].rename(columns={"labeled_at": "at"}),
            read(w["source"], "feedback")[["prediction_id", "created_at"]].rename(columns={"created_at": "at"}),
        ]
    ).merge(preds, on="prediction_id")
    events = events[(events["at"] < end_of(run_day)) & (events["at"] < events["date"] + pd.Timedelta(days=HORIZON + 1))]
    per_day = events.groupby(["model_id", "date"])["at"]
    arrived = events[events["at"] >= pd.Timestamp(run_day)].groupby(["model_id", "date"]).size()
    recent = preds[
        (preds["date"] >= pd.Timestamp(run_day - timedelta(days=7))) & (preds["date"] <= pd.Timestamp(run_day))
    ]
    expected = set(map(tuple, recent[["model_id", "date"]].drop_duplicates().to_numpy())) | set(arrived.index)
    assert set(refreshed.index) == expected

    last = per_day.max().dt.normalize()
    for (model_id, day), row in refreshed.iterrows():
        assert row["events_arrived"] == arrived.get((model_id, day), 0), (model_id, day)
        assert row["last_event_date"] == last.get((model_id, day), pd.NaT) or (
            pd.isna(row["last_event_date"]) and pd.isna(last.get((model_id, day)))
        ), (model_id, day)
        as_of = max(day + pd.Timedelta(days=7), last.get((model_id, day), day))
        assert row["labels_as_of"] == min(pd.Timestamp(run_day), as_of), (model_id, day)
    # day D: in the window, nothing arrived on the run's day, and its last event came earlier
    for model_id in ("recommender", "churn_offer"):
        d = refreshed.loc[(model_id, pd.Timestamp(w["day"]))]
        assert d["events_arrived"] == 0 and pd.Timestamp(w["day"]) <= d["last_event_date"] < pd.Timestamp(run_day)


def known_within_horizons(w, last: date, horizons: dict[str, int]) -> pd.DataFrame:
    """The clean predictions with their label, human-review label, first label time and feedback, from the events
    known by the end of `last` and stamped before the end of the prediction day + the model's horizon (pandas)."""
    preds = w["preds"].copy()
    limit = preds["date"] + pd.to_timedelta(preds["model_id"].map(horizons) + 1, unit="D")
    cut = pd.Series(limit.clip(upper=end_of(last)).to_numpy(), index=preds["prediction_id"])
    labels = read(w["source"], "labels")
    labels = labels[labels["labeled_at"] < labels["prediction_id"].map(cut)]
    labels = labels.assign(priority=(labels["label_source"] == "human_review").astype(int))
    best = labels.sort_values(["priority", "labeled_at"], kind="stable").groupby("prediction_id").tail(1)
    human = labels[labels["label_source"] == "human_review"].sort_values("labeled_at", kind="stable")
    feedback = read(w["source"], "feedback").drop_duplicates("feedback_id")
    feedback = feedback[feedback["created_at"] < feedback["prediction_id"].map(cut)]
    per_prediction = pd.DataFrame(
        {
            "label": best.set_index("prediction_id")["label"],
            "first_labeled_at": labels.groupby("prediction_id")["labeled_at"].min(),
            "human_label": human.groupby("prediction_id")["label"].last(),
            "feedback_events": feedback.groupby("prediction_id").size(),
            "up_events": (feedback["value"] == "up").groupby(feedback["prediction_id"]).sum(),
        }
    )
    return preds.join(per_prediction, on="prediction_id")


def test_a_ranged_run_counts_labels_and_feedback_within_each_models_horizon(built, tmp_path):
    """One run over the whole history with short horizons. Most predictions' horizons closed before the run's
    last day: they meet their events in a join (macros/labels.sql, prediction_outcomes); the last days' events
    are aggregated without one. Every label- and feedback-based value matches pandas on the events within the
    model's horizon."""
    w = built
    db = private_copy(w, tmp_path)
    horizons = {"recommender": 2, "churn_offer": 5}
    build(db, w["start"], w["end"], horizons, reference_settings(w), tmp_path / "t")
    known = known_within_horizons(w, w["end"], horizons)
    unbounded = known_within_horizons(w, w["end"], {m: 10_000 for m in horizons})
    # the horizons cut labels (feedback comes within a day here)
    assert known["label"].notna().sum() < unbounded["label"].notna().sum() - 1000

    health = query(db, "SELECT * FROM marts.model_health_daily")
    assert len(health) == len(known.groupby(["date", "model_id", "model_version"])) > 20
    horizon_open = health["date"] + pd.to_timedelta(health["model_id"].map(horizons), unit="D") >= pd.Timestamp(
        w["end"]
    )
    assert 0 < horizon_open.sum() < len(health) / 2  # both kinds of prediction
    for _, row in health.iterrows():
        day = known[
            (known["model_id"] == row["model_id"])
            & (known["model_version"] == row["model_version"])
            & (known["date"] == row["date"])
        ]
        labelled = day[day["label"].notna()]
        events = day["feedback_events"].fillna(0)
        oracle = label_metrics(day) | {
            "median_label_delay_hours": (
                (labelled["first_labeled_at"] - labelled["predicted_at"]).dt.total_seconds() / 3600
            ).median(),
            "feedback_rate": (events > 0).mean(),
            "feedback_up_share": day["up_events"].sum() / events.sum() if events.sum() else np.nan,
        }
        for column, expected in oracle.items():
            assert row[column] == pytest.approx(expected, rel=1e-9, nan_ok=True), (row["date"], row["model_id"], column)


def test_a_fixed_drift_reference_gives_psi_against_exactly_those_dates(built):
    w = built
    versions = query(w["db"], "SELECT * FROM intermediate.int_model_versions").set_index("model_id")
    rec, churn = w["first_days"]["recommender"], w["first_days"]["churn_offer"]
    windows = {
        "recommender": (rec + timedelta(days=3), rec + timedelta(days=6)),
        "churn_offer": (churn, churn + timedelta(days=4)),
    }
    for model_id, (start, end) in windows.items():
        assert (
            versions.loc[model_id, "reference_start_date"].date(),
            versions.loc[model_id, "reference_end_date"].date(),
        ) == (start, end)
    drift = query(w["db"], "SELECT * FROM marts.feature_drift_daily ORDER BY ALL")
    preds = w["preds"]
    checked = 0
    for model_id, (start, end) in windows.items():
        rows = drift[drift["model_id"] == model_id]
        assert rows.loc[rows["date"] <= pd.Timestamp(end), "psi"].isna().all()  # the reference is not complete yet
        model = preds[preds["model_id"] == model_id]
        reference = model[(model["date"] >= pd.Timestamp(start)) & (model["date"] <= pd.Timestamp(end))]
        for _, row in rows[rows["date"] > pd.Timestamp(end)].iterrows():
            assert (row["reference_start_date"].date(), row["reference_end_date"].date()) == (start, end)
            current = model[model["date"] == row["date"]]
            if row["feature_type"] == "numeric":
                oracle = psi_numeric(reference[row["feature"]].to_numpy(float), current[row["feature"]].to_numpy(float))
            else:
                oracle = psi_categorical(reference[row["feature"]], current[row["feature"]])
            assert row["psi"] == pytest.approx(oracle, rel=1e-9, abs=1e-12), row.to_dict()
            checked += 1
    assert checked > 50
    # not the default window: the recommender's first 7 days give another PSI
    rec_rows = drift[(drift["model_id"] == "recommender") & (drift["feature"] == "score") & drift["psi"].notna()]
    first7 = preds[(preds["model_id"] == "recommender") & (preds["date"] <= pd.Timestamp(rec + timedelta(days=6)))]
    some = rec_rows.iloc[-1]
    default = psi_numeric(
        first7["score"].to_numpy(float),
        preds[(preds["model_id"] == "recommender") & (preds["date"] == some["date"])]["score"].to_numpy(float),
    )
    assert not np.isclose(some["psi"], default, rtol=1e-6)


def test_a_calibration_learnt_without_late_labels_is_learnt_again_when_their_days_run(world, tmp_path):
    # labels of the reference window delivered late: the CBPE calibration was learnt without them and kept
    # forever, even after every day the re-run notes named had run again
    horizons = {"recommender": 3, "churn_offer": 3}
    ref = reference_settings(world)
    calibration = "SELECT * FROM intermediate.int_score_calibration ORDER BY ALL"

    def copy(name: str) -> Path:
        query(world["db"], "CHECKPOINT")
        (tmp_path / name).mkdir()
        db = tmp_path / name / "warehouse.duckdb"
        shutil.copy(world["db"], db)
        return db

    whole = copy("whole")
    build(whole, world["start"], world["end"], horizons, ref, tmp_path / "t1")
    learnt = query(whole, calibration)
    window = query(whole, "SELECT * FROM intermediate.int_model_versions WHERE model_id = 'churn_offer'").iloc[0]
    matured = window["reference_end_date"].date() + timedelta(days=3)
    # the labels of the window's predictions stamped the day before it matured: withheld from the first run
    late = query(
        whole,
        "SELECT l.prediction_id FROM raw.labels l JOIN raw.predictions p USING (prediction_id) "
        "WHERE p.model_id = 'churn_offer' AND CAST(p.predicted_at AS DATE) BETWEEN ? AND ? "
        "AND CAST(l.labeled_at AS DATE) = ?",
        [window["reference_start_date"], window["reference_end_date"], matured - timedelta(days=1)],
    )
    assert len(late) >= 20

    db = copy("late")
    ids = late["prediction_id"].tolist()
    query(db, "CREATE TABLE withheld AS SELECT * FROM raw.labels WHERE list_contains(?, prediction_id)", [ids])
    query(db, "DELETE FROM raw.labels WHERE prediction_id IN (SELECT prediction_id FROM withheld)")
    build(db, world["start"], world["end"], horizons, ref, tmp_path / "t2")
    without = query(db, calibration)
    assert not without.equals(learnt)  # the withheld labels mattered
    # they land; the operator re-runs their day, then the later days as materialize's note says
    query(db, "INSERT INTO raw.labels SELECT * FROM withheld")
    build(db, matured - timedelta(days=1), matured - timedelta(days=1), horizons, ref, tmp_path / "t2")
    pd.testing.assert_frame_equal(query(db, calibration), without)  # not matured by that run's last day
    build(db, matured, world["end"], horizons, ref, tmp_path / "t2")
    pd.testing.assert_frame_equal(query(db, calibration), learnt)  # learnt again, as with every label at once
