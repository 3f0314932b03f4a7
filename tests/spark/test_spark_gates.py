"""Gates on Spark (issue 17, item 4): every suite gives the same SuiteResult, verdicts, gate_results rows and
Data Docs pages when Spark SQL counts over the raw Parquet as when DuckDB counts over its tables.

The oracle is the DuckDB path on the same raw rows: a small generated world loaded by the DuckDB loader, with
failures planted in its raw tables (a systemic and a tolerated row break, a volume drop, a broken snapshot, a
changed column type), then landed as the Parquet the Spark engine reads (spark_raw.attach_duckdb_views). One Spark
session serves the module.
"""

import re
from datetime import date, timedelta

import duckdb
import pytest

from orchestration.lib.contract import CONTRACTS
from orchestration.lib.project_config import load_config
from orchestration.lib.quality_gate import GxSession, SAMPLE_SIZE, gate_sql, load_suite, run_suite, suite_names
from orchestration.lib.raw_loader import load_days
from orchestration.lib.synthetic_world import WorldConfig, generate_world

pytestmark = [pytest.mark.spark]

WORLD = WorldConfig(days=24, users=400, seed=3, predictions_per_day=80)
RUN_DAYS = 8  # the run: the world's last days (the days before are the volume band's history)


def _plant(conn, last) -> dict:
    """Failures in the raw tables; returns the days they hit."""
    systemic, tolerated, quiet = last - timedelta(days=5), last - timedelta(days=3), last - timedelta(days=2)
    day = "_partition_date = DATE '{}'"
    # a systemic break: 30 scores out of range on one day (above max_share and min_count): that day held back
    conn.execute(
        f"UPDATE raw.predictions SET score = 1.7 WHERE {day.format(systemic)} AND prediction_id IN "
        f"(SELECT prediction_id FROM raw.predictions WHERE {day.format(systemic)} ORDER BY prediction_id LIMIT 30)"
    )
    # three strays on another day: tolerated (below min_count)
    conn.execute(
        f"UPDATE raw.predictions SET score = -0.5 WHERE {day.format(tolerated)} AND prediction_id IN "
        f"(SELECT prediction_id FROM raw.predictions WHERE {day.format(tolerated)} ORDER BY prediction_id LIMIT 3)"
    )
    # a volume drop: a day keeps a tenth of its sessions (outside the Poisson-aware band)
    conn.execute(f"DELETE FROM raw.sessions WHERE {day.format(quiet)} AND hash(session_id) % 10 <> 0")
    # a broken snapshot (every_row): an arm's share out of range fails every day
    conn.execute(
        "UPDATE raw.experiment_variants SET expected_share = 1.5 WHERE variant = "
        "(SELECT min(variant) FROM raw.experiment_variants)"
    )
    # a changed column type: model_costs.serving_cost arrives as text (schema fails; its range cannot be judged)
    for schema in ("raw", "raw_quarantine"):
        conn.execute(f"ALTER TABLE {schema}.model_costs ALTER serving_cost TYPE VARCHAR")
    return {"systemic": systemic, "tolerated": tolerated, "quiet": quiet}


def _outcome(o) -> tuple:
    # GX names up to SAMPLE_SIZE of the unexpected values, in no particular order
    sample = sorted(map(str, o.sample_unexpected)) if (o.unexpected_count or 0) <= SAMPLE_SIZE else None
    percent = None if o.unexpected_percent is None else round(o.unexpected_percent, 9)
    return (o.name, o.level, o.blocking, o.success, o.unexpected_count, percent, sample, o.observed_value, o.detail)


def _gate(counted, conn, suites, first, last, config, docs) -> dict:
    from orchestration.defs.quality.checks import _check_result, gate_rows  # the asset check's verdict and record

    session = GxSession(docs)
    out = {}
    for name, suite in suites.items():
        result = run_suite(counted, suite, first, last, config=config, session=session)
        check = _check_result(result, suite["table"])
        out[name] = {
            "result": (result.rows, result.days, result.rows_by_day, result.note, result.failed_days),
            "outcomes": [(*_outcome(o), o.failed_days, o.unexpected_by_day) for o in result.outcomes],
            # the description less its sample values (in no particular order)
            "check": (check.passed, check.severity, re.sub(r"e\.g\. \[[^\]]*\]", "e.g. [...]", check.description)),
            "gate_results": gate_rows(counted, suite, result).to_dict("records"),
        }
    session.build_docs()
    return out


@pytest.fixture(scope="module")
def gates(tmp_path_factory):
    from orchestration.lib.spark_session import spark

    base = tmp_path_factory.mktemp("gates")
    truth = generate_world(base / "world", WORLD, progress=None)
    last = date.fromisoformat(truth["end_date"])
    first_world, first = WORLD.start_date, last - timedelta(days=RUN_DAYS - 1)
    config = load_config()
    suites = {name: load_suite(name) for name in suite_names()}
    with pytest.MonkeyPatch.context() as mp, duckdb.connect(str(base / "warehouse.duckdb")) as conn:
        mp.setenv("IMPACT_LEDGER_SPARK_DIR", str(base / "spark"))
        mp.setenv("IMPACT_LEDGER_ENGINE", "duckdb")
        world_days = [first_world + timedelta(days=i) for i in range((last - first_world).days + 1)]
        for table, contract in CONTRACTS.items():
            load_days(conn, table, base / "world", world_days if contract.time_column else [last])
        planted = _plant(conn, last)
        duck = _gate(conn, conn, suites, first, last, config, base / "duckdb" / "docs")

        mp.setenv("IMPACT_LEDGER_ENGINE", "spark")
        from orchestration.lib.spark_raw import attach_duckdb_views

        attach_duckdb_views(conn, sorted(CONTRACTS))  # the raw tables land as the Parquet Spark reads
        session = spark()
        partitions = session.conf.get("spark.sql.shuffle.partitions")
        session.conf.set("spark.sql.shuffle.partitions", "2")  # small data: fewer tasks per query
        try:
            counted = gate_sql(conn)
            assert type(counted).__name__ == "SparkSql"
            on_spark = _gate(counted, conn, suites, first, last, config, base / "on_spark" / "docs")
        finally:
            session.conf.set("spark.sql.shuffle.partitions", partitions)
    return {
        "duckdb": duck,
        "spark": on_spark,
        "planted": planted,
        "docs": (base / "duckdb" / "docs", base / "on_spark" / "docs"),
    }


@pytest.mark.parametrize("name", suite_names())
def test_every_suite_gives_the_same_results_on_both_engines(gates, name):
    duck, spark = gates["duckdb"][name], gates["spark"][name]
    assert spark["result"] == duck["result"]
    assert spark["outcomes"] == duck["outcomes"]
    assert spark["check"] == duck["check"]
    assert spark["gate_results"] == duck["gate_results"]


def test_the_planted_failures_give_the_same_verdicts_on_both_engines(gates):
    import dagster as dg

    planted = gates["planted"]
    for engine in ("duckdb", "spark"):
        results = gates[engine]
        # a systemic row break holds its day back (WARN naming it), the strays are tolerated
        passed, severity, description = results["raw_predictions"]["check"]
        assert not passed and severity == dg.AssetCheckSeverity.WARN, engine
        assert f"held back 1 of {RUN_DAYS} days ({planted['systemic']})" in description
        assert "expect_column_values_to_be_between on score" in description
        score = {o[0]: o for o in results["raw_predictions"]["outcomes"]}["expect_column_values_to_be_between(score)"]
        assert score[-2] == (planted["systemic"],) and score[-1][planted["tolerated"]] >= 3
        # the volume drop fails its day on the Poisson-aware band
        sessions = {o[0]: o for o in results["raw_sessions"]["outcomes"]}
        assert sessions["expect_column_values_to_be_between(volume_deviation)"][-2] == (planted["quiet"],)
        # a changed type fails every day: ERROR; a broken experiment design too, but it warns (only the
        # experiments' attribution reads it, and marks those days untrustworthy)
        passed, severity, _ = results["raw_model_costs"]["check"]
        assert not passed and severity == dg.AssetCheckSeverity.ERROR, engine
        passed, severity, description = results["raw_experiment_variants"]["check"]
        assert not passed and severity == dg.AssetCheckSeverity.WARN, engine
        assert f"failed on {RUN_DAYS} of {RUN_DAYS} days" in description and "experiment design" in description
        costs = {o[0]: o for o in results["raw_model_costs"]["outcomes"]}
        assert not costs["expect_column_values_to_be_in_set(serving_cost)"][3]  # the schema level names it
        # the other suites pass
        assert all(results[n]["check"][0] for n in ("raw_users", "raw_orders", "raw_labels", "raw_assignments"))


def test_the_same_data_docs_pages_on_both_engines(gates):
    duck, spark = gates["docs"]

    def pages(root):
        return sorted(str(p.relative_to(root / "expectations")) for p in (root / "expectations").rglob("*.html"))

    assert pages(spark) == pages(duck) and pages(duck)
    for root in (duck, spark):
        assert len(list((root / "validations").rglob("*.html"))) == len(pages(duck))
