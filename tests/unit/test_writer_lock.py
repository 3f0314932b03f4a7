"""A second writer is refused at once, naming the first; a killed holder releases the lock."""

import subprocess
import sys
import time

import pytest

from orchestration.lib.writer_lock import WarehouseBusy, exclusive_writer

HOLD = """
import sys, time
from pathlib import Path
from orchestration.lib.writer_lock import exclusive_writer
with exclusive_writer(Path(sys.argv[1]), "materialize 2026-01-01 .. 2026-01-31"):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_writer_is_refused_and_a_killed_holder_frees_the_lock(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(warehouse)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(
            WarehouseBusy,
            match=rf"being written by another run: materialize 2026-01-01 .. 2026-01-31 \(pid {holder.pid}",
        ):
            with exclusive_writer(warehouse, "second"):
                pass
    finally:
        holder.kill()  # kill -9: no cleanup code runs
        holder.wait()
    deadline = time.time() + 5
    while True:  # the kernel drops the dead process's lock
        try:
            with exclusive_writer(warehouse, "third"):
                break
        except WarehouseBusy:
            assert time.time() < deadline
            time.sleep(0.05)
