"""`impact-ledger init`: a lake folder's dated files, protected names cut short, the late labels a horizon drops and
the bias settings it cannot scale, checked against pandas / numpy / hand computation."""

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import yaml

from orchestration.lib.project_config import parse_config
from orchestration.lib.project_init import infer, render, review

KOLKATA = ZoneInfo("Asia/Kolkata")


def _csv(source: Path, name: str, frame: pd.DataFrame) -> None:
    (source / name).mkdir(parents=True, exist_ok=True)
    frame.to_csv(source / name / f"{name}.csv", index=False)


def _lake_day(lake: Path, table: str, day: date, frame: pd.DataFrame) -> None:
    folder = lake / table / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "part.parquet", index=False)


def _project_file(path: Path, lake: Path, timezone: str | None) -> Path:
    sources = {"predictions": {"path": str(lake)}, "labels": {"path": str(lake)}}
    path.write_text(yaml.safe_dump({**({"timezone": timezone} if timezone else {}), "sources": sources}))
    return path


def test_a_lake_folders_rows_off_their_date_folders_day_are_named_as_the_landing_zones_are(tmp_path, monkeypatch):
    # a trial's predictions and labels came from date=YYYY-MM-DD/ lake folders dated by the Kolkata day, times in
    # UTC: in a UTC project init named the assignments' off-day rows but not theirs (107 of 409 predictions, 105
    # labels), which the loader then quarantined
    source = tmp_path / "landing"
    _csv(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(60)], "signup_at": "2025-01-01"}))
    lake = tmp_path / "export_2024-12-31"  # a date in the lake's own path: the loader dates files under it
    predictions, labels = [], []
    for d in range(5):
        day = date(2025, 3, 3) + timedelta(days=d)
        made = [datetime(day.year, day.month, day.day, 2 * h, 15, tzinfo=KOLKATA) for h in range(12)]
        preds = pd.DataFrame(
            {
                "prediction_id": [f"p{d}-{h}" for h in range(12)],
                "model_id": "risk",
                "user_id": [f"u{d * 12 + h}" for h in range(12)],
                "predicted_at": pd.to_datetime(made).tz_convert("UTC"),  # stored in UTC, filed by the Kolkata day
                "score": 0.5,
            }
        )
        _lake_day(lake, "predictions", day, preds)
        predictions.append(preds.assign(file_day=day))
        # each labelled at the same local time 3 days later, filed by that Kolkata day
        labelled = preds[["prediction_id"]].assign(label=1, labeled_at=preds["predicted_at"] + timedelta(days=3))
        _lake_day(lake, "labels", day + timedelta(days=3), labelled)
        labels.append(labelled.assign(file_day=day + timedelta(days=3)))
    predictions, labels = pd.concat(predictions), pd.concat(labels)
    # by hand: a row off its folder's day in UTC is one whose UTC date is not the folder's (local 00:15-04:15)
    off_predictions = int((predictions["predicted_at"].dt.date != predictions["file_day"]).sum())
    off_labels = int((labels["labeled_at"].dt.date != labels["file_day"]).sum())
    assert off_predictions == off_labels == 5 * 3

    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(_project_file(tmp_path / "utc.yml", lake, None)))
    inf = infer(source)
    assert inf.tables["predictions"].off_day[:2] == (off_predictions, len(predictions))
    assert inf.tables["labels"].off_day[:2] == (off_labels, len(labels))
    said = [line for line in review(inf) if "fall on another day than their file's" in line]
    assert [line.split(":")[0] for line in said] == ["predictions", "labels"]
    assert f"predictions: {off_predictions} of {len(predictions)} rows of its dated files" in said[0]
    assert " in predictions/date=2025-03-0" in said[0]  # the file as the loader dates it, under the lake's root

    # set to the zone the folders are dated in: nothing is off its day
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(_project_file(tmp_path / "kolkata.yml", lake, "Asia/Kolkata")))
    inf = infer(source)
    assert inf.tables["predictions"].off_day is None and inf.tables["labels"].off_day is None


def test_a_table_with_an_undated_file_among_dated_ones_has_no_rows_off_a_files_day(tmp_path):
    # the loader dates a table's files only when every one carries a date (raw_loader.files_for_day); else it reads
    # them all and places each row by its time: nothing is quarantined as off its file's day, so nothing to say
    source = tmp_path / "zone"
    (source / "orders").mkdir(parents=True)
    order = {"user_id": "u", "session_id": None, "revenue": 1.0, "status": "completed"}
    # 23:30 at -02:00 is 01:30 UTC on the 2nd: off the file's day 2025-03-01 in UTC
    pd.DataFrame([{"order_id": "o1", "ordered_at": "2025-03-01T23:30:00-02:00", **order}]).to_csv(
        source / "orders" / "orders_2025-03-01.csv", index=False
    )
    assert infer(source).tables["orders"].off_day[:2] == (1, 1)
    pd.DataFrame([{"order_id": "o2", "ordered_at": "2025-03-02T10:00:00+00:00", **order}]).to_csv(
        source / "orders" / "orders_late.csv", index=False
    )
    assert infer(source).tables["orders"].off_day is None


def test_protected_names_cut_short_or_run_together_are_proposed_and_words_merely_starting_so_are_not(tmp_path):
    # a trial's raceth (ACTG 320's race/ethnicity, 5 codes) was listed as an ordinary candidate, not proposed
    source = tmp_path / "zone"
    n = 200
    protected = ["raceth", "RACETH2", "race_eth", "ethnic_grp", "ethn", "EthnGroup", "agegrp", "sexcat", "gndr"]
    unrelated = ["racetrack_visits", "racer_level", "tracer", "ethernet_port", "agent", "usage_band", "courage"]
    users = pd.DataFrame(
        {"user_id": [f"u{i}" for i in range(n)], "signup_at": "2025-01-01"}
        | {c: [i % 3 + 1 for i in range(n)] for c in protected + unrelated}
    )
    _csv(source, "users", users)
    inf = infer(source)
    assert sorted(inf.proposed_attributes) == sorted(protected)
    assert {a.column for a in inf.attributes} >= set(unrelated)  # still listed, as candidates


def test_the_late_labels_said_are_those_the_p99_rounded_up_drops_in_calendar_days(tmp_path):
    # a trial read "the 4 labels later than the p99 (348 days)" where numpy counted 5 past the p99 of 347.99 days:
    # the fifth landed on the 348th calendar day, which a horizon of 348 keeps
    source = tmp_path / "zone"
    made = pd.Timestamp("2025-03-03 10:00")
    n = 400
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "model_id": "risk",
            "user_id": [f"u{i}" for i in range(n)],
            "predicted_at": made,
            "score": 0.5,
        }
    )
    # 396 at 9.5 days (mixed), one at 9.9 days (a 1, on the 10th calendar day), three at 12-14 days (all 0)
    delays = [9.5] * 396 + [9.9, 12, 13, 14]
    classes = [i % 2 for i in range(396)] + [1, 0, 0, 0]
    labels = pd.DataFrame(
        {
            "prediction_id": preds["prediction_id"],
            "label": classes,
            "labeled_at": [made + pd.Timedelta(days=d) for d in delays],
        }
    )
    _csv(source, "predictions", preds)
    _csv(source, "labels", labels)
    p99 = float(np.percentile(delays, 99))  # numpy's linear p99: 9.5 + 0.01 x 0.4
    horizon = int(np.ceil(p99))
    calendar = (labels["labeled_at"].dt.normalize() - made.normalize()).dt.days
    assert abs(p99 - 9.504) < 1e-9 and horizon == 10
    assert sum(d > p99 for d in delays) == 4  # past the p99 itself, of both classes ...
    dropped = labels[calendar > horizon]
    assert len(dropped) == 3 and set(dropped["label"]) == {0}  # ... but a horizon of 10 drops three 0s only
    text = render(infer(source))
    assert (
        f"# the 3 labels more than {horizon} calendar days after their prediction's day, which a horizon of "
        f"{horizon} (the p99, {p99:.2f} days, rounded up) would drop, are all 0" in text
    )
    assert f"label_horizon_days: {calendar.max()}  # the latest label's calendar days" in text


def _scored(source: Path, shares: dict[str, float], per_model: int = 400) -> None:
    """Users, and for each model ``per_model`` predictions over 20 days, each labelled 1 a day later at the share."""
    rng = np.random.default_rng(3)
    _csv(source, "users", pd.DataFrame({"user_id": [f"u{i}" for i in range(100)], "signup_at": "2025-01-01"}))
    preds, labels = [], []
    for model, share in shares.items():
        for i in range(per_model):
            at = datetime(2025, 1, 6) + timedelta(days=i % 20, minutes=i)
            preds.append((f"{model}-{i}", model, f"u{i % 100}", at, float(rng.random()), 0.5))
            labels.append((f"{model}-{i}", int(rng.random() < share) if 0 < share < 1 else int(share), at))
    _csv(
        source,
        "predictions",
        pd.DataFrame(preds, columns=["prediction_id", "model_id", "user_id", "predicted_at", "score", "threshold"]),
    )
    frame = pd.DataFrame(labels, columns=["prediction_id", "label", "labeled_at"])
    _csv(source, "labels", frame.assign(labeled_at=frame["labeled_at"] + timedelta(days=1)))


def test_labels_of_one_class_so_far_leave_the_calibration_gap_unscaled_and_say_why(tmp_path):
    # a trial's early deaths (every label a 1, its survivors months away) left calibration_gap_max at 0.1, unsaid
    source = tmp_path / "deaths"
    _scored(source, {"palliative": 1})
    inf = infer(source)
    text = render(inf)
    config = parse_config(yaml.safe_load(text))
    assert config.bias.calibration_gap_max == 0.1
    assert (
        "  # the default 0.1, unscaled: palliative's labels so far are all 1, so there is no rarer outcome to scale "
        "it by yet" in text
    )
    assert any(
        line.startswith("bias.calibration_gap_max: the default 0.1, unscaled: palliative's labels so far are all 1")
        for line in review(inf)
    )
    # another model's labels scale it: the one-class model is named beside it
    source = tmp_path / "two"
    _scored(source, {"palliative": 1, "screen": 0.1})
    text = render(infer(source))
    assert parse_config(yaml.safe_load(text)).bias.calibration_gap_max < 0.1
    assert "(palliative's labels so far are all 1: no rarer outcome to scale by yet, so screen's sets it" in text


def test_every_bias_threshold_is_written_min_predictions_too(tmp_path):
    # a trial's project file had no bias.min_predictions line, where README says init writes every bias threshold
    source = tmp_path / "zone"
    _scored(source, {"screen": 0.5})
    text = render(infer(source))
    written = yaml.safe_load(text)["bias"]
    # README's bias.* defaults: window_days, min_labelled, min_predictions, disparate_impact_min, the two max
    # differences and calibration_gap_max
    assert set(written) == {
        "window_days",
        "min_labelled",
        "min_predictions",
        "disparate_impact_min",
        "equal_opportunity_max_difference",
        "equalized_odds_max_difference",
        "calibration_gap_max",
    }
    assert written["min_predictions"] == 100
