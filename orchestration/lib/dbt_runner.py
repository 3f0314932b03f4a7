"""dbt invoked inside this process (dbt's programmatic ``dbtRunner``) instead of as a ``dbt`` subprocess.

A subprocess pays for an interpreter start and dbt's imports on every run: about 2 s of a 4 s build of a
small day, more when the machine is busy. In-process, dbt still partial-parses from its target folder, so
a project or vars change is still picked up (a new warehouse location is no reason to re-parse: below).
dbt-duckdb keeps its database handle open for the process (and DuckDB refuses a second handle with another
configuration), so the handle is closed after each invocation and the caller may open the warehouse again.
"""

import gc
import os
import pprint
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.lib import dbt_caches
from orchestration.lib.long_lived import collection_paused
from orchestration.lib.settings import DBT_PROJECT_DIR

# the events that carry a node's outcome (what dagster-dbt turns into materialisations and check results)
RESULT_EVENTS = frozenset({"LogSeedResult", "LogModelResult", "LogSnapshotResult", "LogTestResult"})
# dbt's own console levels (debug lines go to its log file only)
CONSOLE_LEVELS = frozenset({"info", "warn", "error"})
# dbt re-parses the whole project when any connection setting of its profile changes, and for DuckDB those include
# where the warehouse lives: its file (`path`) and spill folder (`config_options`: temp_directory). Each new
# warehouse (a test's, a second deployment's) cost a full parse, ~2 s. No model or macro reads them while parsing
# (only the connection does), so they are left out of dbt's fingerprint of the profile; any other change counts.
LOCATION_KEYS = frozenset({"path", "config_options"})
# dbt re-parses the whole project too when the run's --vars change: the project file's settings (attributes, metrics,
# horizons), so every edit of it, and every test world's, cost a full parse. The models read vars only in the SQL
# dbt renders when a node runs, never in a ref, source or config a parse records (test_dbt_runner parses under two
# var sets and compares the manifests), so the vars are left out of that check too; profile and target still count.
# what dbt would derive afresh in each process, shared by every target folder (orchestration/lib/dbt_caches.py)
DBT_CACHES = DBT_PROJECT_DIR / "target" / "dbt_caches"


def caches_dir() -> Path:
    """DBT_CACHES, or beside an absolute IMPACT_LEDGER_DBT_TARGET's files (a re-trial's runs with their target
    outside the checkout still rewrote the checkout's caches)."""
    target = os.environ.get("IMPACT_LEDGER_DBT_TARGET", "")
    return Path(target) / "dbt_caches" if os.path.isabs(target) else DBT_CACHES


@dataclass
class DbtOutcome:
    success: bool
    results: list[dict] = field(default_factory=list)  # RESULT_EVENTS as dbt's structured log lines
    errors: list[str] = field(default_factory=list)  # what dbt logged at level error
    tail: list[str] = field(default_factory=list)  # dbt's last console lines (why it failed)
    exception: BaseException | None = None  # dbt's own crash (bad arguments, unreadable project), if any


def invoke_dbt(args: list[str], tail: int = 30) -> DbtOutcome:
    """Run ``dbt <args>`` here."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import msg_to_dict

    outcome = DbtOutcome(success=False)
    last_lines: deque[str] = deque(maxlen=tail)

    def collect(msg) -> None:
        info = msg.info
        if info.level in CONSOLE_LEVELS and info.msg:
            last_lines.append(info.msg)
        if info.level == "error":
            outcome.errors.append(info.msg)
        if info.name in RESULT_EVENTS:
            outcome.results.append(msg_to_dict(msg))

    keep_partial_parse_across_warehouses()
    _find_behavior_flag_sources_cheaply()
    _drop_debug_events_no_logger_writes()
    dbt_caches.install(caches_dir())
    # no collection inside dbt: in dbt's worker threads the collector would close objects bound to another
    # thread (SQLite connections fail so); the garbage of earlier work and of dbt's is collected after it, here
    # (close_duckdb_handles), one full collection a run instead of one before dbt too
    try:
        with collection_paused():
            result = dbtRunner(callbacks=[collect]).invoke(args)
    finally:
        close_duckdb_handles()
    if result.exception is not None and not isinstance(result.exception, Exception):
        raise result.exception  # an interrupt (Ctrl-C, a cancelled run), which dbtRunner returns as a failure
    outcome.success, outcome.exception, outcome.tail = result.success, result.exception, list(last_lines)
    return outcome


def keep_partial_parse_across_warehouses() -> None:
    """Leave LOCATION_KEYS out of the profile's fingerprint in dbt's partial-parse check, and the --vars out of its
    vars fingerprint (once per process)."""
    from dbt.contracts.files import FileHash
    from dbt.parser.manifest import ManifestLoader
    from dbt.version import __version__ as dbt_version

    original = ManifestLoader.build_manifest_state_check
    if getattr(original, "location_free", False):
        return

    def build_manifest_state_check(self):
        check = original(self)
        info = [(k, v) for k, v in self.root_project.credentials.connection_info() if k not in LOCATION_KEYS]
        check.profile_hash = FileHash.from_contents(pprint.pformat(sorted(info)))  # as dbt hashes it, less those
        args = self.root_project.args
        fingerprint = ("", getattr(args, "profile", "") or "", getattr(args, "target", "") or "", dbt_version)
        check.vars_hash = FileHash.from_contents("\x00".join(fingerprint))  # as dbt hashes it, less the vars
        return check

    build_manifest_state_check.location_free = True
    ManifestLoader.build_manifest_state_check = build_manifest_state_check


def _find_behavior_flag_sources_cheaply() -> None:
    """dbt names the module that declared each of the adapter's behaviour flags (for its warnings) from
    ``inspect.stack()``, which reads the source lines of every frame on the stack, once per flag, and
    ``inspect.getmodule`` (which indexes every loaded module's file on first use): ~0.2 s a run under
    Dagster's deep stack. The same module, read from the frames' globals."""
    from dbt_common import behavior_flags

    rendered = behavior_flags.BehaviorFlagRendered
    if getattr(rendered._default_source, "frames_only", False):
        return

    def _default_source() -> str:
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__")
            if module and module != behavior_flags.__name__:
                return module
            frame = frame.f_back
        return "Unknown"

    _default_source.frames_only = True
    rendered._default_source = staticmethod(_default_source)


def _drop_debug_events_no_logger_writes() -> None:
    """dbt turns every event it fires into a protobuf message, then formats a line for each of its loggers and
    scrubs it of secrets (reading the whole environment), and only then does Python's logging drop the line
    below the logger's level. Most of a build's events are debug ones (each SQL statement, connection and
    relation-cache step) that no logger writes at its default levels: ~0.2 s of a small day's build. A debug
    event is dropped at once when every logger's level is above debug; ``invoke_dbt``'s callback reads only
    info and above, and dbt's own callback only warnings."""
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager
    from dbt_common.events.logger import _log_level_map

    original = EventManager.fire_event
    if getattr(original, "drops_unlogged_debug", False):
        return
    debug = _log_level_map[EventLevel.DEBUG]

    def fire_event(self, e, level=None, node=None, force_warn_or_error_handling=False):
        if (
            _log_level_map[level or e.level_tag()] <= debug
            and not force_warn_or_error_handling
            and all(_log_level_map[logger.level] > debug for logger in self.loggers)
        ):
            return
        original(self, e, level, node, force_warn_or_error_handling)

    fire_event.drops_unlogged_debug = True
    EventManager.fire_event = fire_event


def close_duckdb_handles() -> None:
    """Close dbt-duckdb's process-wide database handle (a no-op when it has none).

    dbt-duckdb only drops its reference; cursors still held by a failed node's traceback keep the database
    open until the garbage collector breaks those cycles, so collect now rather than whenever it runs."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()
    gc.collect()
