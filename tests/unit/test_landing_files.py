"""A landing file that arrives or changes after its day ran is named (orchestration/lib/landing_files.py)."""

import os
from datetime import date

import duckdb

from orchestration.lib.landing_files import changed_since_loaded, record
from orchestration.lib.raw_loader import LoadReport

D1, D2, D3 = date(2026, 5, 10), date(2026, 5, 11), date(2026, 5, 12)


def _file(root, day, text="a,b\n1,2\n"):
    path = root / "labels" / f"labels_{day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_file_new_or_changed_after_its_day_ran_is_named_and_days_never_run_are_not(tmp_path):
    root = tmp_path / "landing"
    first = _file(root, D1)
    with duckdb.connect() as conn:
        # D1 read one file, D2 none (its export had not come); D3 never ran
        record(conn, "labels", root, [LoadReport("labels", D1, [str(first)]), LoadReport("labels", D2, [])])
        assert changed_since_loaded(conn, {"labels": root}, D3, D3) == []
        late_d2 = _file(root, D2)  # the day's labels, delivered after it ran
        _file(root, D3)  # a day no run has loaded yet: the next run reads it anyway
        first.write_text("a,b\n1,2\n3,4\n")  # re-delivered with more rows
        os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
        late = changed_since_loaded(conn, {"labels": root}, D3, D3)
        assert [(f.table, f.day, f.path) for f in late] == [("labels", D1, first), ("labels", D2, late_d2)]
        # the days a run loads itself are not late to it
        assert [f.day for f in changed_since_loaded(conn, {"labels": root}, D1, D1)] == [D2]
        # once they ran again, nothing is late
        record(conn, "labels", root, [LoadReport("labels", D1, [str(first)]), LoadReport("labels", D2, [str(late_d2)])])
        assert changed_since_loaded(conn, {"labels": root}, D3, D3) == []


def test_undated_files_are_not_tracked(tmp_path):
    root = tmp_path / "landing"
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "all_labels.csv").write_text("a\n1\n")
    with duckdb.connect() as conn:
        record(conn, "labels", root, [LoadReport("labels", D1, [str(root / "labels" / "all_labels.csv")])])
        (root / "labels" / "all_labels.csv").write_text("a\n1\n2\n")
        assert changed_since_loaded(conn, {"labels": root}, D3, D3) == []


def test_the_same_bytes_delivered_again_are_no_change_and_a_same_size_edit_is(tmp_path):
    # a trial re-sent a day's file unchanged: every later run said "arrived or changed ... run it again"
    root = tmp_path / "landing"
    first = _file(root, D1)
    with duckdb.connect() as conn:
        record(conn, "labels", root, [LoadReport("labels", D1, [str(first)])])
        first.write_text("a,b\n1,2\n")  # copied over again: new time, same bytes
        os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 10**9))
        assert changed_since_loaded(conn, {"labels": root}, D3, D3) == []
        first.write_text("a,b\n1,3\n")  # the same size, another value
        os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 2 * 10**9))
        assert [f.path for f in changed_since_loaded(conn, {"labels": root}, D3, D3)] == [first]


def test_days_recorded_before_digests_still_name_a_touched_file(tmp_path):
    root = tmp_path / "landing"
    first = _file(root, D1)
    with duckdb.connect() as conn:
        conn.execute("CREATE SCHEMA quality")
        conn.execute(
            "CREATE TABLE quality.landing_files (table_name VARCHAR, day DATE, file VARCHAR, bytes BIGINT, "
            "mtime_ns BIGINT)"
        )
        stat = first.stat()
        conn.execute(
            "INSERT INTO quality.landing_files VALUES ('labels', ?, ?, ?, ?)",
            [D1, str(first.resolve()), stat.st_size, stat.st_mtime_ns],
        )
        assert changed_since_loaded(conn, {"labels": root}, D3, D3) == []
        os.utime(first, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        assert [f.path for f in changed_since_loaded(conn, {"labels": root}, D3, D3)] == [first]
        # the next record adds the column and digests
        second = _file(root, D2)
        record(conn, "labels", root, [LoadReport("labels", D2, [str(second)])])
        second.write_text("a,b\n1,2\n")
        os.utime(second, ns=(second.stat().st_atime_ns, second.stat().st_mtime_ns + 10**9))
        assert [f.day for f in changed_since_loaded(conn, {"labels": root}, D3, D3)] == [D1]


def test_a_landing_zone_moved_elsewhere_holds_the_same_files(tmp_path):
    # a trial moved its landing zone (and warehouse) to another folder: all 191 files were named as changed
    import shutil

    root = tmp_path / "landing"
    files = [_file(root, D1), _file(root, D2, "a,b\n5,6\n")]
    with duckdb.connect() as conn:
        record(conn, "labels", root, [LoadReport("labels", d, [str(f)]) for d, f in zip((D1, D2), files)])
        moved = tmp_path / "elsewhere" / "landing"
        shutil.copytree(root, moved)  # copied: new modification times, the same bytes
        os.utime(moved / "labels" / f"labels_{D1}.csv", ns=(0, 10**18))
        assert changed_since_loaded(conn, {"labels": moved}, D3, D3) == []
        edited = _file(moved, D2, "a,b\n5,7\n")  # one file of the moved zone edited after its day ran
        assert [(f.day, f.path) for f in changed_since_loaded(conn, {"labels": moved}, D3, D3)] == [(D2, edited)]


def test_a_new_file_beside_a_loaded_one_of_its_day_names_it_and_the_note_says_to_remove_a_stale_one(tmp_path):
    # a trial's corrected orders file landed beside the original: the note's advice (run the day again) read both,
    # kept the original's amounts and quarantined the corrections as duplicate keys, and the run said ok
    from orchestration.cli import _late_files_note

    root = tmp_path / "landing"
    original = _file(root, D1)
    with duckdb.connect() as conn:
        record(conn, "labels", root, [LoadReport("labels", D1, [str(original)])])
        corrected = root / "labels" / f"labels_{D1}_corrected.csv"
        corrected.write_text("a,b\n1,3\n")
        changed = _file(root, D2)  # a day never loaded: not judged
        [late] = changed_since_loaded(conn, {"labels": root}, D3, D3)
        assert (late.path, late.beside) == (corrected, (original,))
        record(conn, "labels", root, [LoadReport("labels", D2, [str(changed)])])
        changed.write_text("a,b\n1,2\n5,6\n")  # a loaded file changed: nothing beside it is new
        os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
        late = changed_since_loaded(conn, {"labels": root}, D3, D3)
    assert [(f.path, f.beside) for f in late] == [(corrected, (original,)), (changed, ())]
    note = _late_files_note(late)
    assert f"labels {D1} ({corrected.name}, beside {original.name})" in note and f"labels {D2} ({changed.name})" in note
    assert "If it corrects the loaded file, remove the stale one before running the day again" in note
    assert "remove the stale one" not in _late_files_note(late[1:])


def test_a_loaded_file_removed_after_its_day_ran_is_named(tmp_path):
    # a re-trial removed a day's sessions file: its rows stayed in the warehouse and nothing said so
    from orchestration.cli import _late_files_note

    root = tmp_path / "landing"
    first, second = _file(root, D1), _file(root, D2)
    with duckdb.connect() as conn:
        record(conn, "labels", root, [LoadReport("labels", D1, [str(first)]), LoadReport("labels", D2, [str(second)])])
        first.unlink()
        late = changed_since_loaded(conn, {"labels": root}, D3, D3)
        assert [(f.day, f.path, f.removed) for f in late] == [(D1, first, True)]
        assert f"labels {D1} ({first.name} removed)" in _late_files_note(late)
        assert changed_since_loaded(conn, {"labels": root}, D1, D1) == []  # the run's own day: loaded as it is now
