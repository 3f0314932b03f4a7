"""The project's time zone (`timezone:`): files dated by a local day, times with an offset, in UTC or naive.

The oracle is Python's zoneinfo: each written time converted to the zone's wall-clock time by hand.
"""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import pytest

from orchestration.lib.project_config import ConfigError, parse_config
from orchestration.lib.raw_loader import load_partition

BERLIN = "Europe/Berlin"
DAY = date(2026, 9, 2)
# one Berlin day's predictions as exports write them: with the local offset, in UTC (Z), without an offset
WRITTEN = [
    "2026-09-02T00:30:00+02:00",  # 22:30 UTC the day before
    "2026-09-01T22:45:00Z",  # 00:45 in Berlin
    "2026-09-02 12:00:00",  # no offset: Berlin time as written
    "2026-09-02T21:59:00Z",  # 23:59 in Berlin
]


def wall(written: str, zone: str) -> datetime:
    """The time's wall clock in ``zone``: a time without an offset is in it already."""
    parsed = datetime.fromisoformat(written.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is None else parsed.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


def project(tmp_path, monkeypatch, zone: str | None):
    path = tmp_path / "impact_ledger.yml"
    path.write_text(f"timezone: {zone}\n" if zone else "{}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))


def landing(tmp_path, written=WRITTEN, day=DAY):
    folder = tmp_path / "landing" / "predictions"
    folder.mkdir(parents=True)
    frame = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(len(written))],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": written,
            "score": 0.4,
            "threshold": 0.5,
        }
    )
    frame.to_csv(folder / f"predictions_{day}.csv", index=False)
    return tmp_path / "landing"


def loaded(source) -> tuple[list, dict]:
    with duckdb.connect() as conn:
        report = load_partition(conn, "predictions", source, DAY)
        rows = conn.execute("SELECT predicted_at FROM raw.predictions ORDER BY prediction_id").fetchall()
        zone = conn.execute("SELECT current_setting('TimeZone')").fetchone()[0]
    assert zone == "UTC"  # the connection's other users keep the loader's default
    return [r[0] for r in rows], report.quarantine_reasons


def test_a_file_dated_by_a_berlin_day_loads_whole_as_berlin_wall_clock_times(tmp_path, monkeypatch):
    # a Berlin shop's export of a local day: its rows of 00:00-02:00 are the day before in UTC, and were
    # quarantined as "outside partition day": 2 of 4 rows, the day held back by the gate
    source = landing(tmp_path)
    project(tmp_path, monkeypatch, BERLIN)
    times, reasons = loaded(source)
    assert reasons == {}
    assert times == [wall(w, BERLIN) for w in WRITTEN]
    assert all(t.date() == DAY for t in times)


def test_in_utc_the_same_file_has_its_first_hours_on_the_day_before(tmp_path, monkeypatch):
    source = landing(tmp_path)
    project(tmp_path, monkeypatch, None)  # the default: UTC
    times, reasons = loaded(source)
    before = [w for w in WRITTEN if wall(w, "UTC").date() != DAY]
    assert len(before) == 2 and reasons == {f"predicted_at outside partition day {DAY}": len(before)}
    assert times == [wall(w, "UTC") for w in WRITTEN if w not in before]


def test_a_parquet_time_with_a_zone_is_read_as_the_projects_wall_clock(tmp_path, monkeypatch):
    # pandas writes a tz-aware column as UTC instants: read in the project's zone, its day is the Berlin day
    instants = [datetime(2026, 9, 1, 22, 30, tzinfo=timezone.utc), datetime(2026, 9, 2, 21, 0, tzinfo=timezone.utc)]
    folder = tmp_path / "landing" / "predictions"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "prediction_id": ["a", "b"],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": pd.to_datetime(instants),
            "score": 0.4,
            "threshold": 0.5,
        }
    ).to_parquet(folder / f"predictions_{DAY}.parquet", index=False)
    project(tmp_path, monkeypatch, BERLIN)
    times, reasons = loaded(tmp_path / "landing")
    assert reasons == {}
    assert times == [t.astimezone(ZoneInfo(BERLIN)).replace(tzinfo=None) for t in instants]


def test_the_day_the_clocks_go_back_lands_whole_and_its_repeated_hour_reads_alike(tmp_path, monkeypatch):
    # 2026-10-25 in Berlin: 02:00-03:00 twice. Wall-clock times keep every row on its day; the two 02:30s, an hour
    # apart, read the same (a label delay across them is an hour short: the price of local days, README)
    day = date(2026, 10, 25)
    written = ["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-24T22:15:00Z"]
    source = landing(tmp_path, written, day)
    project(tmp_path, monkeypatch, BERLIN)
    with duckdb.connect() as conn:
        report = load_partition(conn, "predictions", source, day)
        times = [
            r[0] for r in conn.execute("SELECT predicted_at FROM raw.predictions ORDER BY prediction_id").fetchall()
        ]
    assert report.quarantine_reasons == {}
    assert times == [wall(w, BERLIN) for w in written]
    assert times[0] == times[1] == datetime(2026, 10, 25, 2, 30) and times[2] == datetime(2026, 10, 25, 0, 15)


def test_init_names_a_zone_at_the_offset_the_times_carry(tmp_path, monkeypatch):
    # a trial's labels at +08:00 in files dated by the Taipei day: init said "(e.g. Europe/Berlin)"
    from orchestration.lib.project_init import infer, review

    written = ["2026-09-02T00:30:00+08:00", "2026-09-02T12:00:00+08:00", "2026-09-02T07:59:00+08:00"]
    source = landing(tmp_path, written)
    project(tmp_path, monkeypatch, None)
    [said] = [line for line in review(infer(source)) if "rows of its dated files" in line]
    # 00:30 and 07:59 at +08:00 are the day before in UTC; at noon on that day Asia/Shanghai is UTC+08:00
    assert said.startswith("predictions: 2 of 3 rows of its dated files fall on another day")
    assert datetime(2026, 9, 2, 12, tzinfo=ZoneInfo("Asia/Shanghai")).utcoffset() == timedelta(hours=8)
    assert (
        "set `timezone:` to the zone they are dated in (times with an offset here carry +08:00: e.g. Asia/Shanghai)"
        in said
    )


def test_a_row_re_sent_in_the_next_days_file_is_no_reason_to_set_the_zone(tmp_path, monkeypatch):
    # a trial's one unchanged re-send kept init asking for the zone already set: the loader quarantines such a
    # row as a copy of the earlier day's, whatever the zone
    from orchestration.lib.project_init import infer, review

    source = landing(tmp_path, ["2026-09-02T10:00:00+02:00", "2026-09-02T11:00:00+02:00"])
    resent = pd.read_csv(source / "predictions" / f"predictions_{DAY}.csv").head(1)
    later = pd.DataFrame(
        {**resent.iloc[0].to_dict(), "prediction_id": "p9", "predicted_at": "2026-09-03T09:00:00+02:00"}, index=[0]
    )
    pd.concat([resent, later]).to_csv(source / "predictions" / "predictions_2026-09-03.csv", index=False)
    project(tmp_path, monkeypatch, BERLIN)
    assert not [line for line in review(infer(source)) if "rows of its dated files" in line]
    # a row of that day that its own day's file does not hold is still named
    pd.concat([resent.assign(prediction_id="p8"), later]).to_csv(
        source / "predictions" / "predictions_2026-09-03.csv", index=False
    )
    [said] = [line for line in review(infer(source)) if "rows of its dated files" in line]
    assert said.startswith("predictions: 1 of 4 rows of its dated files fall on another day than their file's")


def test_an_unknown_zone_is_named_with_the_nearest_one():
    with pytest.raises(ConfigError, match=r"unknown time zone 'Europe/Berln'.*did you mean 'Europe/Berlin'"):
        parse_config({"timezone": "Europe/Berln"})
    assert parse_config({}).timezone == "UTC" and parse_config({"timezone": BERLIN}).timezone == BERLIN


def test_init_names_rows_on_another_day_than_their_file_and_writes_the_zone(tmp_path, monkeypatch):
    from orchestration.lib.project_init import infer, render, review

    source = landing(tmp_path)
    users = source / "users"
    users.mkdir()
    pd.DataFrame({"user_id": ["u1"], "signup_at": ["2026-01-01 00:00:00"]}).to_csv(users / "users.csv", index=False)
    project(tmp_path, monkeypatch, None)
    said = [line for line in review(infer(source)) if "rows of its dated files" in line]
    # (the line on times without an offset, said first, tells to run init again once the zone is set)
    assert said == [
        "predictions: 2 of 4 rows of its dated files fall on another day than their file's in UTC time (e.g. "
        f"{WRITTEN[1]} in predictions_{DAY}.csv): the loader quarantines them, and holds the day back when they are "
        "more than gates.rows allows; files dated by a local day with times in UTC or with an offset? set "
        "`timezone:` to the zone they are dated in (e.g. Europe/Berlin)"
    ], said
    # with the zone set (init --config reads it), no row is off its day, and the file init writes keeps the zone
    project(tmp_path, monkeypatch, BERLIN)
    inferred = infer(source)
    assert not [line for line in review(inferred) if "rows of its dated files" in line]
    assert f"\ntimezone: {BERLIN}  #" in render(inferred)


def test_the_hours_a_zone_lives_twice_are_its_set_back_nights():
    # by hand from the zones' published rules: the US leaves daylight time at 02:00 EDT on 2025-11-02 (01:00-02:00
    # twice), the EU at 03:00 CEST on 2026-10-25 (02:00-03:00 twice), Lord Howe Island by half an hour at 02:00 on
    # 2025-04-06; the spring changes repeat nothing, and a zone without daylight time never does
    from datetime import date, datetime

    from orchestration.lib.clock_changes import repeated_hours

    assert repeated_hours("America/New_York", date(2025, 3, 1), date(2025, 12, 31)) == [
        (datetime(2025, 11, 2, 1), datetime(2025, 11, 2, 2))
    ]
    assert repeated_hours("Europe/Berlin", date(2026, 1, 1), date(2026, 12, 31)) == [
        (datetime(2026, 10, 25, 2), datetime(2026, 10, 25, 3))
    ]
    assert repeated_hours("Australia/Lord_Howe", date(2025, 1, 1), date(2025, 12, 31)) == [
        (datetime(2025, 4, 6, 1, 30), datetime(2025, 4, 6, 2))
    ]
    assert repeated_hours("Asia/Kolkata", date(2025, 1, 1), date(2025, 12, 31)) == []
