"""One generated world materialised on both engines (issue 17): DuckDB and Apache Spark (local session).

The oracle is the DuckDB engine itself, run from the same landing zone through the same Dagster job: every
dbt-built table (marts and intermediate), every Python-written table after it (attribution results and
verdicts, alerts, bias verdicts, OKRs, scorecard) and the analysts' snapshot must agree, counts and
strings exactly, floats within 1e-9 relative. Each engine runs a backfill and then one more day alone, so
the incremental path (DuckDB's delete+insert, Spark's partition-scoped replacement) is compared too.
"""

import math
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from orchestration.lib.synthetic_world import DEFAULT_MODELS, WorldConfig, generate_world

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
]

# a small world with both experiments running a week after a short pre-period (CUPED's covariate) and the
# planted incident in its last days: seconds on DuckDB, a few minutes on local Spark (mostly per-query cost:
# the loader's is per table and day, so the world is as short as a week-long experiment allows)
WORLD = WorldConfig(
    days=10,
    users=2_000,
    seed=5,
    predictions_per_day=300,
    incident_day=6,
    models=tuple(replace(model, start_day=day) for model, day in zip(DEFAULT_MODELS, (2, 3), strict=True)),
)
SCHEMAS = ("marts", "intermediate", "attribution")
# a feature named as exports name them (a slash, a space, a percent sign, a quote): quoted on both engines
ODD_FEATURE = ("feature_device", "feature_device/type (%) it's")


def _materialize(monkeypatch, source: Path, out: Path, engine: str, first: date, last: date) -> tuple[Path, list]:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "warehouse.duckdb"
    for var, value in (
        ("IMPACT_LEDGER_ENGINE", engine),
        ("IMPACT_LEDGER_DB", db),
        ("IMPACT_LEDGER_SPARK_DIR", out / "spark"),
        ("IMPACT_LEDGER_EXPORTS", out / "exports"),
        ("IMPACT_LEDGER_ANALYTICS_DB", out / "analytics.duckdb"),
        ("IMPACT_LEDGER_ALERTS", out / "alerts"),
        ("IMPACT_LEDGER_SOURCE", source),
    ):
        monkeypatch.setenv(var, str(value))
    from orchestration.runs import materialize_days

    # a backfill, then the last day alone: the second run replaces days in place (incremental)
    outcomes = []
    for a, b in ((first, last - timedelta(days=1)), (last, last)):
        outcome = materialize_days(a, b)
        # a failed check (e.g. the planted incident's alerts) is a result to compare, a failed step is not
        assert all(f.startswith("check ") for f in outcome.failures), (engine, outcome.failures)
        outcomes.append({"failures": sorted(outcome.failures), "materialized": outcome.materialized})
    return db, outcomes


# the manifest the definitions load (make manifest): no run may rewrite it, another process may be reading it
DEFINITIONS_MANIFEST = Path(__file__).parents[2] / "dbt_project" / "target" / "manifest.json"


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@pytest.fixture(scope="module")
def manifest_before_runs() -> tuple[int, int]:
    return _stamp(DEFINITIONS_MANIFEST)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, manifest_before_runs):
    base = tmp_path_factory.mktemp("engines")
    truth = generate_world(base / "world", WORLD, progress=None)
    for path in (base / "world" / "predictions").glob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(
            table.rename_columns([ODD_FEATURE[1] if c == ODD_FEATURE[0] else c for c in table.column_names]), path
        )
    first, last = date.fromisoformat(truth["start_date"]), date.fromisoformat(truth["end_date"])
    with pytest.MonkeyPatch.context() as mp:
        duck = _materialize(mp, base / "world", base / "duckdb", "duckdb", first, last)
    with pytest.MonkeyPatch.context() as mp:
        spark = _materialize(mp, base / "world", base / "spark", "spark", first, last)
    return duck, spark


@pytest.fixture
def warehouses(runs):
    (duck, _), (spark, _) = runs
    return duck, spark


def test_the_same_checks_fail_on_both_engines(runs):
    (_, duck), (_, spark) = runs
    assert [r["failures"] for r in spark] == [r["failures"] for r in duck]


def test_the_runs_leave_the_manifest_of_the_definitions_alone(runs, manifest_before_runs):
    # the Spark engine's dbt run that creates the DuckDB shells of the marts once wrote dbt's default target
    assert _stamp(DEFINITIONS_MANIFEST) == manifest_before_runs


def test_hives_session_folder_stays_beside_the_spark_tables(runs):
    # left behind by every dbt Spark session (dbt never closes it): under /tmp it was one more folder per run
    (spark_db, _) = runs[1]
    assert (spark_db.parent / "spark" / "hive_resources").is_dir()


def test_each_run_materialises_the_same_assets_on_both_engines(runs):
    # a dbt node whose result Dagster never saw (a broken event line) would leave its asset, and everything
    # after it, unmaterialised while the tables still compare equal from an earlier run
    (_, duck), (_, spark) = runs
    assert [r["materialized"] for r in spark] == [r["materialized"] for r in duck]
    assert (
        "marts/bias_verdicts" in duck[-1]["materialized"] and "publish/analytics_snapshot" in duck[-1]["materialized"]
    )


# when a row was built (a clock reading), not a result
VOLATILE = {"built_at"}


def _tables(db: Path, schemas=SCHEMAS) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(db), read_only=True) as conn:
        names = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            f"WHERE table_type = 'BASE TABLE' AND table_schema IN ({', '.join(repr(s) for s in schemas)})"
        ).fetchall()
        frames = {n: conn.execute(f"SELECT * FROM {n}").df() for (n,) in names}
    return {n: f.drop(columns=[c for c in f.columns if c in VOLATILE]) for n, f in frames.items()}


def _is_float(series: pd.Series) -> bool:
    return series.dtype.kind == "f"


def assert_same_table(name: str, expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    """Same columns (in order), same rows in any order: non-floats exact, floats within 1e-9 relative."""
    assert list(actual.columns) == list(expected.columns), name
    assert len(actual) == len(expected), name
    keys = [c for c in expected.columns if not _is_float(expected[c])]
    if keys:
        expected = expected.sort_values(keys, na_position="last").reset_index(drop=True)
        actual = actual.sort_values(keys, na_position="last").reset_index(drop=True)
    for col in expected.columns:
        want, got = expected[col], actual[col]
        if _is_float(want):
            for i, (w, g) in enumerate(zip(want.tolist(), got.tolist(), strict=True)):
                same = (pd.isna(w) and pd.isna(g)) or (
                    not pd.isna(w) and not pd.isna(g) and math.isclose(w, g, rel_tol=1e-9, abs_tol=1e-12)
                )
                assert same, f"{name}.{col} row {i}: duckdb {w!r}, spark {g!r}"
        else:
            pd.testing.assert_series_equal(got, want, check_names=False, obj=f"{name}.{col}")


def test_spark_builds_the_same_marts_and_attribution_as_duckdb(warehouses):
    duck, spark = warehouses
    expected, actual = _tables(duck), _tables(spark)
    assert set(actual) == set(expected)
    # the comparison means something: the marts and the attribution results have rows
    for name in ("marts.kpi_daily", "marts.experiment_stats", "marts.model_health_daily", "marts.bias_daily"):
        assert len(expected[name]) > 0, name
    assert ODD_FEATURE[1] in set(expected["marts.feature_drift_daily"]["feature"])
    assert len(expected["attribution.experiment_results"]) > 0
    for name in sorted(expected):
        assert_same_table(name, expected[name], actual[name])


def test_the_analysts_snapshot_is_the_same(warehouses):
    duck, spark = warehouses
    expected = _tables(duck.parent / "analytics.duckdb", ("marts", "attribution"))
    actual = _tables(spark.parent / "analytics.duckdb", ("marts", "attribution"))
    assert set(actual) == set(expected) and expected
    for name in sorted(expected):
        assert_same_table(name, expected[name], actual[name])


def test_spark_read_the_raw_layer_as_date_partitioned_parquet(warehouses):
    _, spark = warehouses
    root = spark.parent / "spark" / "raw"
    with duckdb.connect(str(spark), read_only=True) as conn:
        for table in ("orders", "predictions"):
            loaded = conn.execute(f"SELECT count(*) FROM raw.{table}").fetchone()[0]
            landed = duckdb.sql(
                f"SELECT count(*) FROM read_parquet('{root / table}/*/*.parquet', hive_partitioning = true)"
            ).fetchone()[0]
            assert landed == loaded > 0, table
            assert any(p.name.startswith("_partition_date=") for p in (root / table).iterdir())


def _relation(db: Path, name: str) -> pd.DataFrame:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(f"SELECT * FROM {name}").df()


def test_the_raw_layer_its_quarantine_and_the_gate_verdicts_are_the_same(warehouses):
    # Spark loaded and checked the raw days itself (spark_raw.py): DuckDB reads them through views
    from orchestration.lib.contract import TABLE_ORDER

    duck, spark = warehouses
    names = [f"{schema}.{table}" for schema in ("raw", "raw_quarantine") for table in TABLE_ORDER]
    for name in [*names, "quality.gate_results"]:
        assert_same_table(name, _relation(duck, name), _relation(spark, name))
    assert len(_relation(duck, "raw_quarantine.predictions")) > 0  # the world's planted bad rows


def test_dbt_built_in_the_run_process_session(runs):
    # one JVM a run: the session the loader started holds dbt's tables (no dbt subprocess with a JVM of its own)
    from orchestration.lib import spark_session

    (spark_db, _) = runs[1]
    session = spark_session.spark()
    assert spark_session._catalog_root(session) == spark_db.parent / "spark"
    assert session.catalog.tableExists("marts.kpi_daily") and session.catalog.tableExists("raw.predictions")
