"""`impact-ledger`: generate a world, materialise days, print the attribution summary.

Heavy imports (Dagster, GX) happen inside the commands so `--help` is instant.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.lib.contract import CONTRACTS
from orchestration import catch_up as catch_up_plan
from orchestration.lib import gx_worker
from orchestration.lib.long_lived import collection_paused, nothing_to_collect_yet
from orchestration.lib.settings import (
    PROJECT_ROOT,
    alerts_dir,
    analytics_path,
    dbt_threads,
    duckdb_threads,
    gx_docs_dir,
    gx_docs_index_limit,
    reports_dir,
    source_dir,
    warehouse_path,
)


if TYPE_CHECKING:
    from orchestration.lib.db_sources import ChangedDay

DEFAULT_INIT_OUT = "impact_ledger.yml"  # project_config.DEFAULT_CONFIG_NAME (not imported: --help stays quick)


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from err


def _analyst_connection(db: Path):
    """Read-only, no file access, locked configuration (lib/warehouse.py): analysts' SQL reads this file only."""
    import duckdb

    from orchestration.lib.warehouse import analyst_connection

    try:
        return analyst_connection(db)
    except duckdb.Error as err:  # e.g. a file that is not a DuckDB database, or a newer DuckDB's file
        raise CliError(f"cannot open '{db}' as a DuckDB database: {str(err).splitlines()[0]}") from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# ------------------------------------------------------------------- commands


def cmd_generate(args: argparse.Namespace) -> int:
    from orchestration.lib.synthetic_world import WorldConfig, generate_world

    try:
        cfg = WorldConfig(
            days=args.days,
            users=args.users,
            seed=args.seed,
            predictions_per_day=args.predictions_per_day,
            start_date=args.start_date,
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    out = Path(args.out)
    print(f"generating {cfg.days} days x {cfg.users} users (seed {cfg.seed}) into {out}")
    truth = generate_world(out, cfg)
    rows = ", ".join(f"{t}={n}" for t, n in truth["rows_written"].items())
    print(f"wrote {rows}\ntruth: {out / 'truth.json'}")
    return 0


def _may_have_predictions(config) -> bool:
    """False only when predictions come from files and there are none (an A/B test without a model)."""
    from orchestration.lib.contract import CONTRACTS
    from orchestration.lib.db_sources import source_of
    from orchestration.lib.raw_loader import table_files

    where = source_of("predictions", config)  # the landing zone as _use_paths exported it, or a lake folder
    return where.kind == "database" or bool(table_files(where.root, CONTRACTS["predictions"]))


def cmd_init(args: argparse.Namespace) -> int:
    """Write a first, commented project file from what the landing zone holds (DuckDB in memory)."""
    from orchestration.lib.project_config import CONFIG_ENV
    from orchestration.lib.project_init import InitError, describe, infer, materialize_command, render, review

    # the project file materialize will read (IMPACT_LEDGER_CONFIG) is where init writes, unless --out says
    named = os.environ.get(CONFIG_ENV)
    out = Path(args.out or named or DEFAULT_INIT_OUT)
    if named and not args.config and not Path(named).expanduser().is_file():
        del os.environ[CONFIG_ENV]  # the file init is about to write: nothing to read yet
    if out.exists() and not args.force:
        raise CliError(f"'{out}' already exists; pass --force to overwrite it or --out to write elsewhere")
    if args.config:  # its `sources:` (databases, lake folders) are inspected too and copied into --out
        _use_config(args)
    from orchestration.lib.project_config import ConfigError

    try:
        inference = infer(Path(args.source))
        text = render(inference)
    except (InitError, ConfigError) as err:  # ConfigError: an inferred value the project file cannot hold
        raise CliError(str(err)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print("\n".join(describe(inference)))
    print(f"\nwrote {out}; review before the first `impact-ledger materialize` (lines marked REVIEW):")
    for line in review(inference):
        print(f"  - {line}")
    print(f"then: {materialize_command(inference, out, args.source)}")
    return 0


def _use_config(args: argparse.Namespace):
    """Export --config for every component and validate the project file before any work starts."""
    from orchestration.lib.project_config import CONFIG_ENV, ConfigError, load_config

    if getattr(args, "config", None):
        path = Path(args.config).expanduser().resolve()
        if not path.is_file():
            raise CliError(f"--config {args.config}: no such file (write one with `impact-ledger init --source DIR`)")
        os.environ[CONFIG_ENV] = str(path)
    try:
        return load_config()
    except ConfigError as err:
        raise CliError(str(err)) from None


def _use_paths(args: argparse.Namespace, sources: dict | None = None) -> Path:
    """Export --source/--db for every component (ingest assets, DuckDB resource, dbt); ``sources``: the project
    file's (then the landing zone may be absent: every table it would hold is optional or comes from them)."""
    if getattr(args, "db", None):
        os.environ["IMPACT_LEDGER_DB"] = str(Path(args.db).resolve())
    os.environ["IMPACT_LEDGER_DB"] = str(warehouse_path())
    if getattr(args, "source", None):
        os.environ["IMPACT_LEDGER_SOURCE"] = str(Path(args.source).resolve())
    source = source_dir()
    if source.exists() and not source.is_dir():
        raise CliError(
            f"source '{source}' is not a directory; point --source / IMPACT_LEDGER_SOURCE at a folder of "
            "<table>/*.parquet|csv|csv.gz files"
        )
    if not source.is_dir() and not sources:
        raise CliError(
            f"source directory '{source}' does not exist; generate one with `impact-ledger generate --out {source}` "
            "or point --source / IMPACT_LEDGER_SOURCE at a folder of <table>/*.parquet|csv|csv.gz files"
        )
    return source  # with the project file's sources, a missing landing zone holds no table


PROJECT_DAGSTER_YAML = PROJECT_ROOT / ".dagster_home" / "dagster.yaml"


def _dagster_home() -> Path:
    """The Dagster instance's folder: DAGSTER_HOME, else the project-local one (so `make dev` shows the runs)."""
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home")


def _dagster_instance():
    import dagster as dg

    home = _dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    _give_project_settings(home)
    return dg.DagsterInstance.get()


def _give_project_settings(home: Path) -> None:
    """A Dagster home without a dagster.yaml gets the project's: without it Dagster's defaults apply, which let
    the daemon launch runs side by side (DuckDB takes one writer) and store each event for more (a small day's
    run took 2.5 s longer)."""
    settings = home / "dagster.yaml"
    if settings.exists() or not PROJECT_DAGSTER_YAML.is_file() or settings.resolve() == PROJECT_DAGSTER_YAML:
        return
    settings.write_text(PROJECT_DAGSTER_YAML.read_text())
    print(f"note: wrote {settings}, the project's Dagster settings (one run at a time, its event log); edit it there")


def _progress_line(line: str) -> None:
    try:
        print(f"    {line}", flush=True)  # flushed: a long range streams its steps while it runs
    except BrokenPipeError:  # the reader went away (`| head`): the run goes on without its lines
        _quiet_stdout()


def _quiet_stdout() -> None:
    """Standard output to /dev/null: what is still printed (and the flush at exit) raises no BrokenPipeError."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _run_range(args: argparse.Namespace, source: Path) -> tuple[date, date, date | None] | None:
    """The days to run (--start/--end, else the days the sources cover, or with a database the days to catch up) and
    the source's first day if known; None: a bare run with nothing to catch up."""
    from orchestration.lib.source_range import SourceRangeError, source_date_range

    covered = None
    if not (args.start and args.end):
        try:
            if catch_up_plan.database_tables():  # a database's days are not files: catch the warehouse up instead
                try:
                    catch_up, stale, zone = catch_up_plan.plan(source, _failed_run_days)
                except catch_up_plan.CatchUpError as err:
                    raise CliError(str(err)) from None
                print(catch_up_plan.said(catch_up, stale, zone), flush=True)
                if catch_up.nothing_to_run and not (args.start or args.end):
                    return None
                covered = (catch_up.first, catch_up.last)
            else:
                covered = source_date_range(source, catch_up_plan.file_roots(source))
        except SourceRangeError as err:
            raise CliError(f"{err}" if "--start" in str(err) else f"{err}; pass --start and --end") from None
    first = args.start or covered[0]
    last = args.end or covered[1]
    if last < first:
        raise CliError(f"--end {last} is before --start {first}")
    return first, last, covered[0] if covered else None


def _failed_run_days() -> tuple[date, date] | None:
    """The days of the Dagster instance's newest pipeline run when it failed (None: it succeeded, or no run)."""
    home = _dagster_home()
    if not (home / "dagster.yaml").is_file() or not (home / "history" / "runs.db").is_file():
        return None
    import dagster as dg

    from orchestration.defs.notify.sensors import RETRAINING_JOB
    from orchestration.defs.partitions import RANGE_END_TAG, RANGE_START_TAG

    with _dagster_home_set(home), dg.DagsterInstance.from_config(str(home)) as instance:
        runs = [r for r in instance.get_runs(limit=20) if r.job_name != RETRAINING_JOB][:1]
    if not runs or runs[0].status != dg.DagsterRunStatus.FAILURE:
        return None
    tags = runs[0].tags
    first, last = tags.get(RANGE_START_TAG) or tags.get("dagster/partition"), tags.get(RANGE_END_TAG)
    if not first:
        return None
    return date.fromisoformat(first), date.fromisoformat(last or first)


def _partitions_cover(config, first: date, data_first: date | None) -> None:
    """Daily partitions must start on or before the first day run: refuse now, not 75 s into the run."""
    declared = os.environ.get("IMPACT_LEDGER_START_DATE")
    if declared:
        start, where = date.fromisoformat(declared), f"IMPACT_LEDGER_START_DATE={declared}"
    elif config.partitions.start != "from_data":
        start, where = config.partitions.start, f"{config.path}: key 'partitions.start' = {config.partitions.start}"
    else:  # from the data: start where the data (or the requested range) starts
        os.environ["IMPACT_LEDGER_START_DATE"] = min(d for d in (first, data_first) if d).isoformat()
        return
    if first < start:
        raise CliError(
            f"{first} is before the first daily partition ({where}); set an earlier start or "
            "`partitions: {start: from_data}` in the project file"
        )


def cmd_materialize(args: argparse.Namespace) -> int:
    # dbt's own lines only with -v: the progress lines say what ran (orchestration/defs/transform/dbt_assets.py)
    os.environ["IMPACT_LEDGER_DBT_OUTPUT"] = "full" if args.verbose else "quiet"
    config = _use_config(args)
    source = _use_paths(args, config.sources)
    try:  # the settings read from the environment, checked before any work (named, without a traceback)
        duckdb_threads()
        dbt_threads()
        gx_docs_index_limit()
        gx_worker.enabled()
    except ValueError as err:
        raise CliError(str(err)) from None
    days = _run_range(args, source)
    if days is None:  # a bare run of a warehouse caught up: nothing to run is no failure (cron runs it daily)
        return 0
    first, last, data_first = days
    _partitions_cover(config, first, data_first)
    for note in config.assumptions(predictions=_may_have_predictions(config)):
        print(f"note: {note}")
    warehouse_path().parent.mkdir(parents=True, exist_ok=True)
    from orchestration.lib.writer_lock import WarehouseBusy, exclusive_writer

    try:
        with exclusive_writer(warehouse_path(), f"impact-ledger materialize {first} .. {last}"):
            gx_worker.start(gx_docs_dir())  # GX imports in its own process meanwhile (orchestration/lib/gx_worker.py)
            try:
                return _materialize_range(first, last, source, args.days_per_run, args.notify)
            finally:
                gx_worker.stop()
    except WarehouseBusy as err:
        raise CliError(str(err)) from None


def _materialize_range(first: date, last: date, source: Path, days_per_run: int | None, notify: bool = False) -> int:
    with _cli_instance(notify) as instance:
        return _materialize_chunks(first, last, source, days_per_run, instance)


@contextmanager
def _cli_instance(notify: bool):
    """The project's Dagster instance for a command's runs; with ``notify``, once they ended, what the
    alert_notifications sensor would send (failed runs and gates too: they are what someone must be told)."""
    nothing_to_collect_yet()  # this process has only imported and read settings (orchestration/lib/long_lived.py)
    with collection_paused():  # Dagster's imports and instance (orchestration/lib/long_lived.py)
        import orchestration.runs  # noqa: F401 (Dagster's and the definitions' imports, collection paused)

        instance = _dagster_instance()
    try:
        yield instance
        if notify:
            from orchestration.defs.notify.sensors import CLI_CURSOR, notify_now

            print(f"notifications: {notify_now(instance, alerts_dir() / CLI_CURSOR)}")
    finally:
        instance.dispose()  # the run's event log files closed (dagster_storage: their WAL folded in)


def _materialize_chunks(first: date, last: date, source: Path, days_per_run: int | None, instance) -> int:
    from orchestration.lib.quality_gate import design_failures_in_words
    from orchestration.runs import materialize_days

    days = (last - first).days + 1
    print(f"materialising {first} .. {last} ({days} day(s)) from {source}{_elsewhere()} into {warehouse_path()}")
    settings_before = _experiment_settings()
    chunk = days_per_run or days
    day = first
    while day <= last:
        end = min(day + timedelta(days=chunk - 1), last)
        print(f"  {day} .. {end}: starting", flush=True)
        outcome = materialize_days(day, end, instance=instance, progress=_progress_line)
        status = "ok" if outcome.success else "FAILED"
        held, design, named = _held_back(day, end) if outcome.success else (0, {}, {})
        print(
            f"  {day} .. {end}: {status} in {outcome.seconds:.1f}s, {len(outcome.materialized)} assets "
            + (f"(run {outcome.run_id[:8]})" if outcome.run_id else "(not started)")
            + (f"; the quality gates held back {held} of its {(end - day).days + 1} day(s)" if held else "")
            + (f"; {design_failures_in_words(design, named)}" if design else "")
            + (" (`impact-ledger summary` says why)" if held or design else "")
        )
        if not outcome.success:
            for failure in outcome.failures:
                print(f"    {failure}", file=sys.stderr)
            if end < last:  # a trial's 60 days after the failed one went unrun without a word
                rest = end + timedelta(days=1)
                print(
                    f"  stopped: {rest} .. {last} ({(last - end).days} day(s)) not run; once the failure above is "
                    f"mended, run --start {day} --end {last}",
                    file=sys.stderr,
                )
            return 1
        day = end + timedelta(days=1)
    if (later := _days_after(last)) is not None:
        print(
            f"note: the warehouse holds days after {last} (up to {later}), built before this run: their cumulative "
            f"experiment results do not include what this run reloaded, and the days this run recomputed read labels "
            f"(label-based metrics, a drift reference it covered) as known on {last} and orders through {last} (the "
            f"KPIs' converting sessions of the kpi_lookback_days to {last} lose later conversions); run --start "
            f"{last + timedelta(days=1)} --end {later} to bring the later days up to date (README: known limits)"
        )
    if late := _late_files(first, last):
        print(_late_files_note(late))
    if changed := _changed_database_days(first, last):
        print(_changed_database_note(changed))
    if unloaded := _unloaded_days(first):
        days = [day for day, _ in unloaded]
        shown = ", ".join(f"{day} ({', '.join(tables)})" for day, tables in unloaded[:NOTE_FILES])
        print(
            f"note: {len(unloaded)} day(s) before this run were never loaded: {shown}"
            f"{' ...' if len(unloaded) > NOTE_FILES else ''} (their runs stopped before loading those tables, or never "
            f"ran); they have no KPIs and the runs after them read them as empty: {_rerun_through_newest([*days, last])}"
        )
    if settings_before is not None and _experiment_settings() != settings_before and (past := _results_before(first)):
        print(
            f"note: the experiments' settings changed (raw.experiments / raw.experiment_variants: dates, expected "
            f"shares, ...): the results as of {past[0]} .. {past[1]} were computed with the old ones (e.g. the sample "
            f"ratio check); run --start {past[0]} --end {past[1]} to compute them again"
        )
    return 0


NOTE_FILES = 5  # late landing files a note names


def _elsewhere() -> str:
    """The tables the project file's sources read from elsewhere than the landing zone, said beside it."""
    from orchestration.lib.project_config import load_config

    sources = load_config().config.sources
    kinds = {
        kind: sorted(t for t, spec in sources.items() if (spec.database is not None) == (kind == "a database"))
        for kind in ("a database", "a lake folder")
    }
    said = [f"{', '.join(tables)} from {kind}" for kind, tables in kinds.items() if tables]
    return f" ({'; '.join(said)}: the project file's sources)" if said else ""


def _rerun_through_newest(days: list[date]) -> str:
    """The run that brings ``days`` up to date: from the first of them through the newest day the warehouse holds,
    in one run (re-run alone, their label-based rows rewind to what was known on them until the later days run)."""
    newest = max(days[-1], _days_after(days[-1]) or days[-1])
    return f"run --start {days[0]} --end {newest} (one run: the later days read those rows too)"


def _held_back(first: date, last: date) -> tuple[int, dict, dict]:
    """How many days of first..last a quality gate held back (rows kept out of the marts), the days each
    experiment design gate failed (their experiment results untrustworthy, the marts built) and the experiments
    they name: quality.gate_results, (0, {}, {}) if unreadable."""
    import duckdb

    from orchestration.lib.quality_gate import NOT_DESIGN_SQL, design_gate_experiments, design_gate_failures

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            held = conn.execute(
                "SELECT count(DISTINCT date) FROM quality.gate_results "
                f"WHERE NOT passed AND {NOT_DESIGN_SQL} AND date BETWEEN ? AND ?",
                [first, last],
            ).fetchone()[0]
            return held, design_gate_failures(conn, first, last), design_gate_experiments(conn, first, last)
    except duckdb.Error:
        return 0, {}, {}


def _unloaded_days(first: date) -> list[tuple]:
    """(day, tables) of the days before ``first`` that a table's gates judged the days around but not that one
    (summary's Days not loaded): a trial's day whose orders extraction failed, read as empty by the next day's run,
    which said nothing."""
    import duckdb

    from orchestration.lib.report_data import unloaded_days

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            return sorted((day, tables) for day, tables in unloaded_days(conn) if day < first)
    except duckdb.Error:
        return []


def _late_files(first: date, last: date) -> list:
    """The landing (and lake) files of days outside first..last new or changed since their day was loaded."""
    import duckdb

    from orchestration.lib.source_changes import late_files

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            return late_files(conn, first, last)
    except duckdb.Error:
        return []


def _late_files_note(late: list) -> str:
    days = sorted({f.day for f in late})
    shown = ", ".join(
        f"{f.table} {f.day} ({f.path.name}{', beside ' + ', '.join(p.name for p in f.beside) if f.beside else ''}"
        f"{' removed' if f.removed else ''})"
        for f in late[:NOTE_FILES]
    )
    note = (
        f"note: {len(late)} landing file(s) of days already run arrived, changed or were removed since those days "
        "were loaded: "
        f"{shown}{' ...' if len(late) > NOTE_FILES else ''}; their rows reach the warehouse when those days run "
        f"again: {_rerun_through_newest(days)}"
    )
    if any(f.beside for f in late):
        # a trial's corrected re-delivery beside the original: the run advised kept the original's amounts
        note += (
            "; a new file beside a loaded one of its day is read with it: a key in both keeps one row (the earlier "
            "by time, then by file name) and quarantines the other (a copy, or a 'duplicate key'). If it corrects "
            "the loaded file, remove the stale one before running the day again"
        )
    return note


def _changed_database_note(changed: list[tuple[str, ChangedDay]]) -> str:
    days = sorted({c.day for _, c in changed})
    shown = ", ".join(f"{t} {c.day} ({c.said()})" for t, c in changed[:NOTE_FILES])
    return (
        f"note: the database rows of {len(changed)} table-day(s) already run changed since they were loaded "
        f"(in number, or a number updated in place): {shown}{' ...' if len(changed) > NOTE_FILES else ''}; "
        f"they reach the warehouse when those days run again: {_rerun_through_newest(days)}; a bare `impact-ledger "
        "materialize` (no --start/--end) runs them again by itself"
    )


def _changed_database_days(first: date, last: date) -> list[tuple[str, ChangedDay]]:
    """(table, day) of database-sourced days already run, outside first..last, whose rows changed since they were
    loaded: their count or a numeric column's sum (source_changes.changed_database_rows)."""
    import duckdb

    from orchestration.lib.source_changes import changed_database_rows

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            changed, errors = changed_database_rows(conn, first, last)
    except duckdb.Error:
        return []
    for err in errors:
        print(f"note: days already run not compared with the database: {err}")
    return changed


# what the attribution reads of each experiment's snapshot tables (the loader's own _columns left out)
SETTINGS_SQL = (
    "SELECT md5(coalesce(string_agg(CAST(s AS VARCHAR), '|' ORDER BY CAST(s AS VARCHAR)), '')) "
    "FROM (SELECT COLUMNS(c -> NOT starts_with(c, '_')) FROM raw.{table}) AS s"
)


def _experiment_settings() -> tuple | None:
    """A digest of raw.experiments and raw.experiment_variants as loaded (None: no such tables yet)."""
    import duckdb

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            return tuple(
                conn.execute(SETTINGS_SQL.format(table=t)).fetchone()[0] for t in ("experiments", "experiment_variants")
            )
    except duckdb.Error:  # no warehouse or no experiments yet
        return None


def _results_before(first: date) -> tuple[date, date] | None:
    """The as-of days of experiment results before ``first`` (built by earlier runs), if any."""
    import duckdb

    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            days = conn.execute(
                "SELECT min(as_of_date), max(as_of_date) FROM attribution.experiment_results WHERE as_of_date < ?",
                [first],
            ).fetchone()
    except duckdb.Error:
        return None
    return days if days[0] is not None else None


# the days a later run built: raw days loaded, and the days experiment results are cumulative up to
LATER_DAYS_SQL = [f"SELECT max(_partition_date) FROM raw.{t}" for t, c in CONTRACTS.items() if c.time_column] + [
    "SELECT max(as_of_date) FROM marts.experiment_stats"
]


def _days_after(last: date) -> date | None:
    """The newest day the warehouse built after ``last`` (a re-run of the past), if any."""
    import duckdb

    newest = []
    try:
        with duckdb.connect(str(warehouse_path()), read_only=True) as conn:
            for sql in LATER_DAYS_SQL:
                try:
                    newest.append(conn.execute(sql).fetchone()[0])
                except duckdb.CatalogException:  # a table this project never loaded (or not built yet)
                    continue
    except duckdb.Error:  # no warehouse, or not readable: nothing to say
        return None
    newest = max((d for d in newest if d is not None), default=None)
    return newest if newest is not None and newest > last else None


def cmd_retrain(args: argparse.Namespace) -> int:
    """The retraining job for each day with pending requests up to --date, as the sensor starts it under
    `make dev` (for cron, where no Dagster daemon runs the sensor)."""
    config = _use_config(args)
    if args.db:
        os.environ["IMPACT_LEDGER_DB"] = str(Path(args.db).resolve())
    db = warehouse_path()
    if not db.is_file():
        raise CliError(f"warehouse '{db}' does not exist yet; run `impact-ledger materialize` first")
    from orchestration.lib.writer_lock import WarehouseBusy, exclusive_writer

    upto = f" up to {args.date}" if args.date else ""
    try:
        with exclusive_writer(db, f"impact-ledger retrain{upto}"):
            pending = _pending_requests(db, args.date)
            if not pending:
                print(f"no pending retraining request{upto} in {db}")
                return 0
            _partitions_cover(config, date.fromisoformat(min(pending)), None)
            with _cli_instance(args.notify) as instance:
                return _retrain_days(pending, instance)
    except WarehouseBusy as err:
        raise CliError(str(err)) from None


def _pending_requests(db: Path, until: date | None) -> dict[str, list[str]]:
    """marts.retraining_requests still 'requested' (up to ``until``): ISO day -> models."""
    import duckdb

    from orchestration.lib.retraining import pending_by_day

    with duckdb.connect(str(db), read_only=True) as conn:
        try:
            rows = conn.execute(
                "SELECT date, model_id, status FROM marts.retraining_requests WHERE date <= coalesce(?, date)", [until]
            ).df()
        except duckdb.CatalogException:  # no request was ever raised
            return {}
    return pending_by_day(rows)


def _retrain_days(pending: dict[str, list[str]], instance) -> int:
    from orchestration.runs import run_retraining

    print(f"retraining {sum(map(len, pending.values()))} request(s) of {len(pending)} day(s) in {warehouse_path()}")
    failed = 0
    for day, models in pending.items():
        print(f"  {day} ({', '.join(models)}): starting", flush=True)
        outcome = run_retraining(date.fromisoformat(day), instance=instance, progress=_progress_line)
        print(
            f"  {day} ({', '.join(models)}): {'ok' if outcome.success else 'FAILED'} in {outcome.seconds:.1f}s, "
            f"{len(outcome.materialized)} assets (run {outcome.run_id[:8]})"
        )
        for failure in outcome.failures:  # a blocked snapshot: marts.retraining_requests.status_reason says it too
            print(f"    {failure}", file=sys.stderr)
        failed += not outcome.success
    return 1 if failed else 0


def cmd_summary(args: argparse.Namespace) -> int:
    import duckdb

    from orchestration.summary import read_and_print

    _use_config(args)  # its bias limits, leading-indicator and report settings
    db = Path(args.db).resolve() if args.db else warehouse_path()
    if not db.is_file():
        raise CliError(f"warehouse '{db}' does not exist yet; run `impact-ledger materialize` first")
    with _summary_connection(db) as conn:
        try:
            read_and_print(conn, reports_dir())
        except duckdb.CatalogException as err:
            if failed := _latest_run_failed():  # a first run that stopped at a step: say which, not "run it"
                raise CliError(f"no attribution tables in '{db}' yet: the latest run FAILED: {failed}") from err
            raise CliError(f"no attribution tables in '{db}' yet; run `impact-ledger materialize` first") from err
        except duckdb.BinderException as err:  # written before a column existed; the next run adds it
            raise CliError(
                f"the attribution tables in '{db}' predate this version ({err}); run `impact-ledger materialize` again"
            ) from err
    if failed := _latest_run_failed():
        print(f"\nThe latest run FAILED: {failed}")
    return 0


def _summary_connection(db: Path):
    """The warehouse read-only. summary runs only its own SQL, and on engine: spark the staging views read the
    Spark Parquet files, which the analysts' locked-down connection may not (a trial's summary on Spark dropped
    its model costs silently)."""
    import duckdb

    from orchestration.lib.engine import engine

    if engine() != "spark":
        return _analyst_connection(db)
    try:
        return duckdb.connect(str(db), read_only=True)
    except duckdb.Error as err:
        raise CliError(f"cannot open '{db}' as a DuckDB database: {str(err).splitlines()[0]}") from None


@contextmanager
def _dagster_home_set(home: Path):
    """DAGSTER_HOME = ``home`` meanwhile: the event log's default folder is read from it (a shell without it, after
    runs in the project-local instance, stopped `summary` with a KeyError)."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before


def _latest_run_failed() -> str:
    """The newest run of the Dagster instance, when it failed at a step (a file the loader refused): what the
    warehouse above does not show, it being as of the run before. '' without an instance or a failed run."""
    home = _dagster_home()
    if not (home / "dagster.yaml").is_file() or not (home / "history" / "runs.db").is_file():
        return ""
    import dagster as dg

    from orchestration.defs.notify.sensors import RETRAINING_JOB, run_failure

    with _dagster_home_set(home), dg.DagsterInstance.from_config(str(home)) as instance:
        # a retraining run stopped by its blocked request fails too: that is the request's status (summary's
        # retraining lines), not a failed run of the pipeline (a trial's summary ended "The latest run FAILED")
        runs = [r for r in instance.get_runs(limit=20) if r.job_name != RETRAINING_JOB][:1]
        if not runs or runs[0].status != dg.DagsterRunStatus.FAILURE:
            return ""
        failure = run_failure(instance, runs[0])
    return failure[0].message if failure else f"run {runs[0].run_id[:8]} (a gate held its days back: see above)"


def cmd_query(args: argparse.Namespace) -> int:
    import duckdb

    db = Path(args.db).resolve() if args.db else analytics_path()
    if not db.is_file():
        raise CliError(
            f"analytics snapshot '{db}' does not exist yet; it is published after each successful run "
            "(`impact-ledger materialize`)"
        )
    with _analyst_connection(db) as conn:
        try:
            result = conn.execute(args.sql)
            frame = _whole_numbers(result.df(), result.description)
        except duckdb.CatalogException as err:
            raise CliError(f"query failed: {err}{_snapshot_hint(conn, db, args.db)}") from err
        except duckdb.PermissionException as err:  # a view over files: the Spark engine's raw and staging
            raise CliError(
                f"query failed: {err}\n  query reads the database file only; on engine: spark the warehouse's raw "
                "and staging schemas are views over the Spark engine's Parquet files (IMPACT_LEDGER_SPARK_DIR): read "
                "them with DuckDB's read_parquet or Spark; the marts are tables here"
            ) from err
        except duckdb.Error as err:
            raise CliError(f"query failed: {err}") from err
    with __import__("pandas").option_context("display.max_rows", args.max_rows, "display.width", 200):
        frame = _nulls_as_null(frame)
        print(frame.to_string(index=False, max_rows=args.max_rows, na_rep="NULL") if len(frame) else "(no rows)")
    if len(frame) > args.max_rows:  # pandas' "..." row alone hid how many were left out (a trial's 90 rows)
        print(f"({len(frame):,} rows, {args.max_rows:,} shown: --max-rows N for more)")
    return 0


def _nulls_as_null(frame):
    """Missing values as DuckDB prints them, NULL: pandas' NaN and <NA> read as a failed computation (a trial's
    "not tested" rows). Floats take to_string's na_rep; a nullable integer or boolean column prints <NA> and a text
    column None whatever na_rep says, so their values become objects, NULL written in."""
    import pandas as pd

    for column, dtype in frame.dtypes.items():
        text_or_nullable = dtype.kind == "O" or isinstance(dtype, pd.api.extensions.ExtensionDtype)
        if text_or_nullable and frame[column].isna().any():  # text's None printed "None", like the text 'None'
            frame[column] = frame[column].astype(object).where(frame[column].notna(), "NULL")
    return frame


def _whole_numbers(frame, description):
    """A query's 128-bit integer columns (DuckDB's sum of integers: the marts' order counts) as whole numbers, as
    DuckDB prints them: pandas gets them as floats ('49.0'). Left as floats beyond 2^53, where a float is no longer
    exact."""
    import pandas as pd

    for (_, kind, *_), column in zip(description or [], frame.columns):
        values = frame[column]
        if str(kind) in ("HUGEINT", "UHUGEINT") and values.dtype.kind == "f" and not (values.abs() >= 2**53).any():
            frame[column] = values.astype(pd.Int64Dtype())
    return frame


def _snapshot_hint(conn, db: Path, given: str | None) -> str:
    """What the analytics snapshot holds, and where the rest is: a user sent to intermediate.int_score_calibration
    by the README read only "schema intermediate does not exist"."""
    if given:
        return ""
    schemas = [
        s
        for (s,) in conn.execute(
            "SELECT DISTINCT schema_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1"
        ).fetchall()
    ]
    # the warehouse's schemas the snapshot does not publish, or publishes in part (quality: gate results, not the
    # suites' working tables; staging and intermediate: the report's inputs, publish.REPORT_INPUTS)
    from orchestration.lib.publish import REPORT_INPUTS

    partial = {t.split(".")[0] for t in REPORT_INPUTS}
    published = [s for s in schemas if s not in partial]
    inputs = [t for t in REPORT_INPUTS if t.split(".")[0] in schemas]
    also = f" and the report's inputs {', '.join(inputs)}" if inputs else ""
    return (
        f"\n  the analytics snapshot ({db}) holds the published schemas {', '.join(published)}{also}; the "
        f"warehouse's other tables (staging, intermediate, raw and the rest) are read with --db {warehouse_path()} "
        "(read-only, when no run is writing)"
    )


def cmd_report(args: argparse.Namespace) -> int:
    from orchestration.lib.report import ReportDataError, latest_report_date, write_report

    _use_config(args)
    db = Path(args.db).resolve() if args.db else analytics_path()
    if not db.is_file():
        raise CliError(
            f"database '{db}' does not exist; the analytics snapshot is published after each successful run "
            "(`impact-ledger materialize`), or pass --db"
        )
    out = Path(args.out).resolve() if args.out else reports_dir()
    if out.suffix.lower() in (".html", ".htm") and not out.is_dir():  # a trial's X.html became a folder
        raise CliError(
            f"--out names the folder the report is written to (as impact_ledger_<date>.html): '{out}' reads as a "
            f"file name; give its folder (--out {out.parent})"
        )
    with _analyst_connection(db) as conn:
        day = args.date or latest_report_date(conn)
        if day is None:
            raise CliError(
                f"'{db}' has no attribution, model-health or KPI rows to report on; "
                "run `impact-ledger materialize` first"
            )
        try:
            path = write_report(conn, day, out)
        except ReportDataError as err:
            raise CliError(f"{db}: {err}") from err
    print(path)
    return 0


# ---------------------------------------------------------------------- parser


EXAMPLES = {
    "generate": ["impact-ledger generate --out data/raw --days 60 --users 20000 --seed 8"],
    "init": ["impact-ledger init --source landing/", "impact-ledger init --source landing/ --out prod.yml --force"],
    "materialize": [
        "impact-ledger materialize --config impact_ledger.yml --source landing/",
        "impact-ledger materialize --start 2026-09-01 --end 2026-09-30 --days-per-run 7",
    ],
    "retrain": ["impact-ledger retrain", "impact-ledger retrain --date 2026-10-30 --notify"],
    "summary": ["impact-ledger summary", "impact-ledger summary --db data/warehouse.duckdb"],
    "query": ['impact-ledger query "SELECT * FROM marts.alerts ORDER BY date DESC" --max-rows 20'],
    "report": ["impact-ledger report --date 2026-10-30 --out data/reports"],
}


def _command(sub, name: str, summary: str, **kwargs) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does, with examples (dates are YYYY-MM-DD, the project's days)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES[name])
    epilog += "\n\ndates are YYYY-MM-DD (days of the project file's timezone, UTC by default)"
    return sub.add_parser(
        name,
        help=summary,
        description=summary,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


CONFIG_HELP = "project file (default: IMPACT_LEDGER_CONFIG, else ./impact_ledger.yml, else defaults)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="impact-ledger",
        description="What is each ML model worth, is it healthy, and is the data fit to act on?",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    gen = _command(sub, "generate", "write a synthetic world (every raw table + truth.json)")
    gen.add_argument("--out", default="data/raw", help="output folder (default: data/raw)")
    gen.add_argument("--days", type=_positive_int, default=60, help="days of history (default: 60)")
    gen.add_argument("--users", type=_positive_int, default=20_000, help="users (default: 20000)")
    gen.add_argument("--seed", type=int, default=7, help="random seed; same seed, same world (default: 7)")
    gen.add_argument(
        "--predictions-per-day", type=_positive_int, default=2_000, help="per model and day (default: 2000)"
    )
    gen.add_argument("--start-date", type=_date, default=date(2026, 9, 1), help="first day (default: 2026-09-01)")
    gen.set_defaults(func=cmd_generate)

    ini = _command(sub, "init", "write a first project file (impact_ledger.yml) inferred from a landing zone")
    ini.add_argument("--source", required=True, help="landing zone: one folder or file per table, CSV or Parquet")
    ini.add_argument(
        "--out", help=f"project file to write (default: IMPACT_LEDGER_CONFIG if set, else ./{DEFAULT_INIT_OUT})"
    )
    ini.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    ini.add_argument(
        "--config",
        help="a project file whose `sources:` (databases, lake folders) init also inspects, and whose `timezone:` "
        "it reads times in (both copied into the file it writes)",
    )
    ini.set_defaults(func=cmd_init)

    mat = _command(sub, "materialize", "load, transform, gate and attribute a range of days", aliases=["materialise"])
    mat.add_argument("--config", help=CONFIG_HELP)
    mat.add_argument("--source", help="landing zone (default: IMPACT_LEDGER_SOURCE or data/raw)")
    mat.add_argument("--db", help="DuckDB warehouse file (default: IMPACT_LEDGER_DB or data/warehouse.duckdb)")
    mat.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default: the source's first day)")
    mat.add_argument("--end", type=_date, help="last day, YYYY-MM-DD (default: the source's last day)")
    mat.add_argument("-v", "--verbose", action="store_true", help="also print dbt's own log lines")
    mat.add_argument(
        "--days-per-run", type=_positive_int, help="split the range into runs of this many days (default: one run)"
    )
    mat.add_argument(
        "--notify",
        action="store_true",
        help="then send what the alert_notifications sensor would (new alerts, failed gates and runs, fairness "
        "verdicts that start failing, each once; "
        "for cron, where no Dagster daemon runs the sensor)",
    )
    mat.set_defaults(func=cmd_materialize)

    ret = _command(
        sub, "retrain", "run the retraining job (clean, fair training snapshot) for the pending retraining requests"
    )
    ret.add_argument("--date", type=_date, help="only the requests of this day and before (default: every one)")
    ret.add_argument("--config", help=CONFIG_HELP)
    ret.add_argument("--db", help="DuckDB warehouse file (default: IMPACT_LEDGER_DB or data/warehouse.duckdb)")
    ret.add_argument(
        "--notify", action="store_true", help="then send what the alert_notifications sensor would (as materialize)"
    )
    ret.set_defaults(func=cmd_retrain)

    summ = _command(sub, "summary", "print the latest attribution results, model value, alerts and leading indicators")
    summ.add_argument("--db", help="DuckDB warehouse file (default: IMPACT_LEDGER_DB or data/warehouse.duckdb)")
    summ.add_argument("--config", help=CONFIG_HELP)
    summ.set_defaults(func=cmd_summary)

    query = _command(sub, "query", "run read-only SQL against the analytics snapshot and print a table")
    query.add_argument("sql", help='e.g. "SELECT * FROM attribution.model_impact ORDER BY as_of_date DESC LIMIT 5"')
    query.add_argument("--db", help="snapshot database (default: IMPACT_LEDGER_ANALYTICS_DB or data/analytics.duckdb)")
    query.add_argument("--max-rows", type=_positive_int, default=50, help="rows to print (default: 50)")
    query.set_defaults(func=cmd_query)

    rep = _command(sub, "report", "write the self-contained HTML report of a day (plots, alerts, fairness, quality)")
    rep.add_argument("--date", type=_date, help="as-of day (default: the latest day with data)")
    rep.add_argument("--db", help="database to read (default: the analytics snapshot, IMPACT_LEDGER_ANALYTICS_DB)")
    rep.add_argument("--out", help="output folder (default: IMPACT_LEDGER_REPORTS or data/reports)")
    rep.add_argument("--config", help=CONFIG_HELP)
    rep.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CliError as err:
        print(f"impact-ledger: error: {err}", file=sys.stderr)
        return 2


def console_main() -> None:
    """The `impact-ledger` command: main(), the exit handlers (atexit, weakref finalizers: temporary folders,
    logging), then the process ends without tearing down the ~4,600 modules a run imports (Dagster, dbt, GX,
    pandas, DuckDB), which took 1-2 s of a small day's run. Everything a command writes is committed or closed
    before main() returns."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `impact-ledger summary | head`: the reader has what it wanted
        _quiet_stdout()
        code = 0
    atexit._run_exitfuncs()  # what interpreter shutdown would run first (CPython's own hook)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    console_main()
