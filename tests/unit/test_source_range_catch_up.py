"""What a bare `materialize` runs when tables come from a database (the days to catch up) or a lake folder."""

from datetime import date

import pytest

from orchestration.lib.source_range import SourceRangeError, catch_up_range, source_date_range

NOV = {d: date(2026, 11, d) for d in range(1, 31)}


def test_a_daily_run_catches_up_the_days_after_the_newest_loaded_through_yesterday():
    # loaded through 11-20; on 11-23 (the project's zone) the days over are 11-21 and 11-22
    up = catch_up_range(NOV[23], NOV[20], NOV[20], [], None, None)
    assert (up.first, up.last, up.yesterday, up.nothing_to_run) == (NOV[21], NOV[22], NOV[22], False)
    # run again the same day: nothing; today itself is never run by default (its rows are still coming)
    assert catch_up_range(NOV[23], NOV[22], NOV[22], [], None, None).nothing_to_run


def test_a_cost_feed_a_day_late_is_run_again_by_the_next_mornings_run():
    # each morning a one-day run left yesterday's cost out (it landed after): the day before is run again with it
    up = catch_up_range(NOV[23], NOV[21], NOV[21], [NOV[21]], None, None)
    assert (up.first, up.last, up.stale) == (NOV[21], NOV[22], (NOV[21],))


def test_a_changed_day_far_back_runs_through_the_newest_day_held():
    # a late label of 11-02 with the warehouse holding through 11-25 (a day run ahead): one run 11-02 .. 11-25
    up = catch_up_range(NOV[23], NOV[22], NOV[25], [NOV[2], NOV[10]], None, None)
    assert (up.first, up.last) == (NOV[2], NOV[25])
    # nothing stale and the newest day held not reached: through yesterday only
    assert (catch_up_range(NOV[23], NOV[20], NOV[21], [], None, None).last) == NOV[22]


def test_a_first_run_starts_at_the_sources_first_day_not_before_the_partitions():
    assert (catch_up_range(NOV[23], None, None, [], NOV[5], None).first) == NOV[5]
    assert (catch_up_range(NOV[23], None, None, [], NOV[5], NOV[9]).first) == NOV[9]
    assert (catch_up_range(NOV[23], None, None, [], NOV[9], NOV[5]).first) == NOV[9]
    assert catch_up_range(NOV[23], None, None, [], NOV[23], None).nothing_to_run  # its only day is today
    with pytest.raises(SourceRangeError, match="pass --start and --end"):
        catch_up_range(NOV[23], None, None, [], None, NOV[5])  # no rows anywhere


def test_lake_folders_count_and_the_landing_zone_may_be_absent(tmp_path):
    # predictions from a lake folder, labels in the landing zone; a database table (users) in no folder
    lake, landing = tmp_path / "lake", tmp_path / "landing"
    for root, table, days in (
        (lake, "predictions", ("2026-03-02", "2026-03-04")),
        (landing, "labels", ("2026-03-09",)),
    ):
        (root / table).mkdir(parents=True)
        for day in days:
            (root / table / f"{table}_{day}.csv").write_text("x\n")
    assert source_date_range(landing, {"predictions": lake, "labels": landing}) == (date(2026, 3, 2), date(2026, 3, 9))
    missing = tmp_path / "no_landing"
    assert source_date_range(missing, {"predictions": lake}) == (date(2026, 3, 2), date(2026, 3, 4))
    with pytest.raises(SourceRangeError, match="does not exist"):
        source_date_range(missing)  # without roots, as before
    with pytest.raises(SourceRangeError, match="pass --start and --end"):
        source_date_range(missing, {})  # every dated table from a database: no folder says its days
