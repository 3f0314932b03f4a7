"""The warehouse resource holds the database open through a run and lets go of it for dbt and after the run."""

import dagster as dg
import duckdb
from orchestration.defs.resources import WarehouseResource

SETTINGS = {"memory_limit": "500MB"}
DBT_SETTINGS = {"memory_limit": "400MB"}  # dbt-duckdb opens the file with settings of its own


def _refused(db) -> bool:
    """DuckDB refuses a connection with other settings while this process has the file open."""
    try:
        duckdb.connect(str(db), config=DBT_SETTINGS).close()
    except duckdb.ConnectionException as err:
        assert "different configuration" in str(err)
        return True
    return False


def test_the_warehouse_stays_open_between_steps_until_released_and_closes_with_the_run(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    seen = {}

    @dg.asset
    def written(duckdb: WarehouseResource):
        with duckdb.get_connection() as conn:
            conn.execute("CREATE TABLE t AS SELECT 42 AS x")
        seen["open_after_close"] = _refused(db)  # the step's own connection is closed, the run's is not

    @dg.asset(deps=[written])
    def read_again(duckdb: WarehouseResource):
        with duckdb.get_connection() as conn:
            seen["x"] = conn.execute("SELECT x FROM t").fetchone()[0]
        duckdb.release()  # as the dbt step does before dbt starts
        seen["open_after_release"] = _refused(db)
        with duckdb.get_connection() as conn:  # the next connection holds it again
            seen["rows"] = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        seen["open_again"] = _refused(db)
        with duckdb.unheld_connection() as conn:  # where another process opens the file next (Spark's dbt)
            conn.execute("INSERT INTO t VALUES (43)")
        seen["open_after_unheld"] = _refused(db)

    result = dg.materialize(
        [written, read_again], resources={"duckdb": WarehouseResource(database=str(db), connection_config=SETTINGS)}
    )
    assert result.success
    assert seen == {
        "open_after_close": True,
        "x": 42,
        "open_after_release": False,
        "rows": 1,
        "open_again": True,
        "open_after_unheld": False,
    }
    assert not _refused(db)  # closed with the run


def test_outside_a_run_each_connection_opens_and_closes_the_file(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    resource = WarehouseResource(database=str(db), connection_config=SETTINGS)
    with resource.get_connection() as conn:
        conn.execute("CREATE TABLE t AS SELECT 1 AS x")
    assert not _refused(db)


def test_a_failed_step_still_closes_the_warehouse(tmp_path):
    db = tmp_path / "warehouse.duckdb"

    @dg.asset
    def broken(duckdb: WarehouseResource):
        with duckdb.get_connection() as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS x")
        raise RuntimeError("the step fails after writing")

    resource = WarehouseResource(database=str(db), connection_config=SETTINGS)
    result = dg.materialize([broken], resources={"duckdb": resource}, raise_on_error=False)
    assert not result.success
    assert not _refused(db)
