"""Jinja's bytecode cache as one that only ever saves time.

The caches of dbt's and GX's compiled templates (orchestration/lib/dbt_caches.py, gx_templates.py) are
installed once per process, in a folder that can go away or fill up while the process lives (`dbt clean`
removes target/ under a long-lived Dagster process; a full disk). Jinja's ``FileSystemBytecodeCache`` then
raises and fails the dbt build or the Data Docs page; here a template it cannot read is compiled as without
the cache, one it cannot store is compiled again next time, and a removed folder is made again.
"""

from __future__ import annotations

import contextlib
from pathlib import Path


def best_effort_cache(folder: Path, pattern: str = "__jinja2_%s.cache"):
    """A ``FileSystemBytecodeCache`` in ``folder`` (Jinja's own file format and atomic writes) whose reads and
    writes never raise."""
    from jinja2 import FileSystemBytecodeCache

    class BestEffortBytecodeCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except OSError:
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    with contextlib.suppress(OSError):  # made on the first store if it cannot be now
        folder.mkdir(parents=True, exist_ok=True)
    return BestEffortBytecodeCache(str(folder), pattern)
