"""One writer per warehouse: a second `materialize` refuses at once instead of taking turns on DuckDB's lock.

An advisory lock (flock) on ``<warehouse>.lock``, released by the kernel when the holder exits, even
after kill -9, so a crashed run never blocks the next one. The file says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path


class WarehouseBusy(RuntimeError):
    """Another process is writing the warehouse."""


def lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(warehouse.name + ".lock")


@contextmanager
def exclusive_writer(warehouse: Path, what: str):
    """Hold the warehouse's writer lock for the block, or raise WarehouseBusy naming the holder."""
    path = lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except json.JSONDecodeError:
                holder = {}
            since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder["since"])) if "since" in holder else "?"
            raise WarehouseBusy(
                f"{warehouse} is being written by another run: {holder.get('what', 'unknown')} "
                f"(pid {holder.get('pid', '?')}, since {since}); wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": time.time(), "what": what}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
