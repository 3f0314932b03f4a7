"""Weekly exports named after the day they were written (a trial's predictions_2025-01-13.csv held 01-06..01-10):
the loader's reason, materialize's line and init's advice name them, not a time zone; the README's recipe (names
without a date, the export's days run) loads every row. Oracles: the days counted by hand from the files written."""

from datetime import date, datetime, timedelta

import duckdb
import pandas as pd
import pytest

from orchestration.lib.raw_loader import load_days, load_partition

MONDAY = date(2026, 9, 14)  # the export of 09-07 .. 09-13, written on the Monday after
NEXT_MONDAY = MONDAY + timedelta(days=7)


def _export(source, day: date, times: list[datetime], first_id: int = 0, name: str | None = None) -> None:
    folder = source / "predictions"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "prediction_id": [f"p{first_id + i}" for i in range(len(times))],
            "model_id": "m1",
            "model_version": "v1",
            "user_id": "u1",
            "predicted_at": [t.isoformat(sep=" ") for t in times],
            "score": 0.4,
            "threshold": 0.5,
        }
    ).to_csv(folder / (name or f"predictions_{day}.csv"), index=False)


def _week(monday_after: date) -> list[datetime]:
    """Weekday predictions of the 7 days before ``monday_after``: Monday, Wednesday and Friday at 09:00."""
    return [
        datetime.combine(monday_after - timedelta(days=d), datetime.min.time()) + timedelta(hours=9) for d in (7, 5, 3)
    ]


@pytest.fixture
def utc_project(tmp_path, monkeypatch):
    path = tmp_path / "impact_ledger.yml"
    path.write_text("{}\n")
    monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))


def _expected(day: date, earliest: int) -> str:
    return (
        f"predicted_at before its file's date {day}, as is every row of that file (the earliest {earliest} days "
        "before it): an export dated after the days it holds? README: Exports dated after their days"
    )


def test_a_weekly_export_dated_after_its_week_is_quarantined_as_one_not_as_a_zones_shift(tmp_path, utc_project):
    _export(tmp_path, MONDAY, _week(MONDAY))
    with duckdb.connect() as conn:
        report = load_partition(conn, "predictions", tmp_path, MONDAY)
    # by hand: 3 rows on 09-07, 09-09, 09-11; none on 09-14; the earliest 7 days before it
    assert (report.rows_read, report.rows_loaded) == (3, 0)
    assert report.quarantine_reasons == {_expected(MONDAY, 7): 3}
    # materialize's line about it: no "set the project file's timezone" (a trial set it and was told again)
    assert not any("outside partition day" in reason for reason in report.quarantine_reasons)


def test_a_ranged_run_of_weekly_exports_names_each_files_own_span(tmp_path, utc_project):
    _export(tmp_path, MONDAY, _week(MONDAY))
    # the next week's file: Wednesday and Friday only (earliest 5 days before its Monday)
    _export(tmp_path, NEXT_MONDAY, _week(NEXT_MONDAY)[1:], first_id=10)
    days = [MONDAY + timedelta(days=d) for d in range(8)]
    with duckdb.connect() as conn:
        reports = load_days(conn, "predictions", tmp_path, days)
        loaded = conn.execute("SELECT count(*) FROM raw.predictions").fetchone()[0]
    said = {r.partition_date: r.quarantine_reasons for r in reports if r.quarantine_reasons}
    assert said == {MONDAY: {_expected(MONDAY, 7): 3}, NEXT_MONDAY: {_expected(NEXT_MONDAY, 5): 2}}
    assert loaded == 0


def test_a_file_straddling_its_day_or_holding_only_the_day_before_stays_the_zones_case(tmp_path, utc_project):
    day_before = datetime.combine(MONDAY - timedelta(days=1), datetime.min.time())
    # a zone's shift: rows on the file's day and the day before
    _export(tmp_path, MONDAY, [day_before + timedelta(hours=23), day_before + timedelta(hours=30)])
    # the day before only: a zone's shift too (at most a day), as init says
    _export(tmp_path, NEXT_MONDAY, [datetime.combine(NEXT_MONDAY, datetime.min.time()) - timedelta(hours=2)], 10)
    # and rows 40 days before: beyond a periodic export's reach
    third = NEXT_MONDAY + timedelta(days=7)
    _export(tmp_path, third, [datetime.combine(third, datetime.min.time()) - timedelta(days=40)], 20)
    with duckdb.connect() as conn:
        reports = [load_partition(conn, "predictions", tmp_path, d) for d in (MONDAY, NEXT_MONDAY, third)]
    assert [r.quarantine_reasons for r in reports] == [
        {f"predicted_at outside partition day {MONDAY}": 1},
        {f"predicted_at outside partition day {NEXT_MONDAY}": 1},
        {f"predicted_at outside partition day {third}": 1},
    ]
    assert reports[0].rows_loaded == 1


def test_materialize_names_the_export_not_the_time_zone(tmp_path, utc_project):
    from orchestration.lib.raw_loader import quarantine_by_reason
    from orchestration.runs import StepProgress

    _export(tmp_path, MONDAY, _week(MONDAY))
    with duckdb.connect() as conn:
        reports = load_days(conn, "predictions", tmp_path, [MONDAY])
    progress = StepProgress(lambda line: None, "D")
    progress._note_quarantine("raw__predictions", "predictions", quarantine_by_reason(reports))
    # a trial set the zone init asked for and was told "set the project file's timezone" again, every Monday
    assert progress.notes["raw__predictions"] == [
        f"3 row(s) quarantined ({_expected(MONDAY, 7)}) on {MONDAY} in raw_quarantine.predictions, with _reason"
    ]


def test_init_names_weekly_exports_instead_of_the_time_zone_even_with_the_zone_set(tmp_path, monkeypatch):
    from orchestration.lib.project_init import infer, review

    source = tmp_path / "landing"
    for week in range(3):
        monday = MONDAY + timedelta(days=7 * week)
        _export(source, monday, _week(monday), first_id=10 * week)
    users = source / "users"
    users.mkdir()
    pd.DataFrame({"user_id": ["u1"], "signup_at": ["2026-01-01 00:00:00"]}).to_csv(users / "users.csv", index=False)
    for zone in (None, "Europe/Lisbon"):  # the trial's zone, set as init had asked: the same advice
        path = tmp_path / "impact_ledger.yml"
        path.write_text(f"timezone: {zone}\n" if zone else "{}\n")
        monkeypatch.setenv("IMPACT_LEDGER_CONFIG", str(path))
        said = [line for line in review(infer(source)) if "dated files" in line]  # the zone's line is gone
        # by hand: 3 files of 3 rows each, every row 3-7 days before its file's date; the first holds 09-07 .. 09-11
        assert said == [
            "predictions: every row of 3 of its 3 dated files with rows (9 rows) falls 2-31 days before the date in "
            f"the file's name, none on it (e.g. predictions_{MONDAY}.csv holds 2026-09-07 .. 2026-09-11): exports "
            "dated after the days they hold (a weekly export?), not a time zone; the loader reads a dated file as "
            "that day's rows and would quarantine them all: name the files without a YYYY-MM-DD date (e.g. "
            "predictions_20250113.csv) so each row is placed by its predicted_at, and run materialize over the days "
            "each export holds (README: Exports dated after their days)"
        ], said


def test_the_readmes_recipe_names_without_a_date_load_every_row_of_the_exports_week(tmp_path, utc_project):
    # the README's recipe: the files renamed without '-' (predictions_20260914.csv), the export's week run
    _export(tmp_path, MONDAY, _week(MONDAY), name=f"predictions_{MONDAY:%Y%m%d}.csv")
    week = [MONDAY - timedelta(days=d) for d in range(7, 0, -1)]
    with duckdb.connect() as conn:
        reports = load_days(conn, "predictions", tmp_path, week)
        days = conn.execute(
            "SELECT CAST(predicted_at AS DATE), _partition_date FROM raw.predictions ORDER BY 1"
        ).fetchall()
    assert sum(r.rows_quarantined for r in reports) == 0
    # each row on its own day: 09-07, 09-09, 09-11
    assert days == [(d, d) for d in (date(2026, 9, 7), date(2026, 9, 9), date(2026, 9, 11))]
