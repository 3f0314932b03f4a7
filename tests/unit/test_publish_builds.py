"""A snapshot build killed mid-write leaves its temp file and WAL: the next publication removes them."""

import os
import subprocess
import sys

from orchestration.lib.publish import remove_dead_builds


def test_builds_of_dead_processes_are_removed_and_live_ones_kept(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)  # that process has exited
    snapshot = tmp_path / "analytics.duckdb"
    leftovers = [tmp_path / f".analytics.duckdb.{dead}.tmp", tmp_path / f".analytics.duckdb.{dead}.tmp.wal"]
    live = tmp_path / f".analytics.duckdb.{os.getpid()}.tmp"  # a build in progress (this process)
    other = tmp_path / ".other.duckdb.1.tmp"
    for path in [*leftovers, live, other, snapshot]:
        path.write_bytes(b"x")
    assert sorted(remove_dead_builds(snapshot)) == sorted(leftovers)
    assert not any(p.exists() for p in leftovers)
    assert live.exists() and other.exists() and snapshot.exists()
