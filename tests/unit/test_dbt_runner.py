"""dbt inside the process (orchestration.lib.dbt_runner): a failure is reported, and the warehouse is free after."""

import json
import os
from pathlib import Path

import duckdb

from orchestration.defs.transform.dbt_in_process import _failure
from orchestration.lib.dbt_runner import DbtOutcome, invoke_dbt
from orchestration.lib.settings import DBT_PROJECT_DIR


def test_a_failed_build_names_the_model_and_leaves_the_warehouse_free(tmp_path, monkeypatch):
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).close()  # no raw tables: the staging view cannot be created
    monkeypatch.setenv("IMPACT_LEDGER_DB", str(db))
    monkeypatch.setenv("IMPACT_LEDGER_TEMP_DIR", str(tmp_path / "tmp"))
    project = str(DBT_PROJECT_DIR)
    outcome = invoke_dbt(
        ["--no-use-colors", "build", "--select", "stg_orders", "--project-dir", project, "--profiles-dir", project]
        + ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "target")]
    )
    assert not outcome.success
    seen = outcome.results
    assert [e["data"]["node_info"]["unique_id"] for e in seen] == ["model.impact_ledger.stg_orders"]
    assert seen[0]["data"]["node_info"]["node_status"] == "error"
    assert any("stg_orders" in line for line in outcome.errors), outcome.errors
    assert any("orders" in line and "does not exist" in line for line in outcome.errors + outcome.tail), outcome.tail
    # dbt-duckdb's handle is closed: a connection with another configuration than the profile's opens
    with duckdb.connect(str(db), config={"threads": 1, "memory_limit": "123MB"}) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_new_warehouse_keeps_the_partial_parse_and_a_new_var_does_not(tmp_path, monkeypatch):
    project, target = str(DBT_PROJECT_DIR), str(tmp_path / "target")

    def parse(folder: str, variables: str = "{}") -> str:
        """dbt's console lines of a `dbt parse` against the warehouse in ``folder``."""
        monkeypatch.setenv("IMPACT_LEDGER_DB", str(tmp_path / folder / "warehouse.duckdb"))
        monkeypatch.setenv("IMPACT_LEDGER_TEMP_DIR", str(tmp_path / folder / "tmp"))
        args = ["--no-use-colors", "parse", "--project-dir", project, "--profiles-dir", project, "--vars", variables]
        outcome = invoke_dbt([*args, "--target-path", target, "--log-path", target], tail=1000)
        assert outcome.success, outcome.tail
        return "\n".join(outcome.tail)

    parse("first")
    assert "Unable to do partial parsing" not in parse("second")  # another warehouse file and spill folder
    # the project file's settings as vars (another project's, or an edit) keep it too: see the next test
    assert "Unable to do partial parsing" not in parse("second", json.dumps(_project_vars()))


def _project_vars() -> dict:
    """A project file's settings as the pipeline passes them to dbt (the demo's file: models, attributes with an
    intersection, horizons)."""
    from orchestration.lib.project_config import config_dbt_vars, load_config

    return config_dbt_vars(load_config(Path(os.environ["IMPACT_LEDGER_CONFIG"])).config)  # tests/conftest.py


def test_what_a_parse_records_does_not_depend_on_the_vars(tmp_path):
    # why the vars may stay out of dbt's partial-parse check (orchestration/lib/dbt_runner.py): a ref, source, config
    # or test argument read from a var would make a parse under other vars a different project
    from dbt.cli.main import dbtRunner

    def recorded(variables: dict) -> dict:
        project, target = str(DBT_PROJECT_DIR), str(tmp_path / f"target{len(variables)}")
        args = ["parse", "--no-partial-parse", "--project-dir", project, "--profiles-dir", project, "--quiet"]
        result = dbtRunner().invoke([*args, "--target-path", target, "--vars", json.dumps(variables)])
        assert result.success, result.exception
        manifest = result.result
        return {
            # the refs as a set: a model that refs a model again where a var asks for it (an attribute's users
            # columns) lists it twice; dbt's dependencies are the set
            uid: (
                sorted({(r.name, r.package, r.version) for r in getattr(node, "refs", [])}),
                getattr(node, "sources", None),
                node.depends_on.nodes if hasattr(node, "depends_on") else None,
                node.config.to_dict(),
                getattr(node, "test_metadata", None),
            )
            for uid, node in {**manifest.nodes, **manifest.sources}.items()
        } | {"macros": sorted(manifest.macros)}

    rich = _project_vars() | {"kpi_lookback_days": 5, "label_lookback_days": 3, "retention_horizons": [2, 9]}
    assert rich["protected_attributes"] and rich["model_settings"]
    assert recorded({}) == recorded(rich)


def test_a_failed_build_says_why_in_dbts_words_whatever_level_dbt_logged_it_at():
    logged = DbtOutcome(success=False, errors=["Database Error in model m: table t does not exist"], tail=["Done."])
    assert "table t does not exist" in str(_failure(logged, Path("target")))
    crashed = DbtOutcome(success=False, exception=RuntimeError("Could not find profile named 'x'"))
    assert "Could not find profile named 'x'" in str(_failure(crashed, Path("target")))
    # no error line, no exception: the console's last lines, not only "see the log"
    quiet = DbtOutcome(success=False, tail=["Running with dbt=1.11", "Encountered an error: vars is not a mapping"])
    message = str(_failure(quiet, Path("target")))
    assert "vars is not a mapping" in message and str(Path("target") / "dbt.log") in message


def _flag_declared_here():
    from dbt_common.behavior_flags import BehaviorFlagRendered

    return BehaviorFlagRendered({"name": "some_flag", "default": False, "docs_url": "https://example.org"}, {})


def test_a_behaviour_flag_is_still_attributed_to_the_module_that_declared_it():
    import inspect

    from orchestration.lib.dbt_runner import _find_behavior_flag_sources_cheaply

    # dbt's own way (inspect.stack), as the oracle: the first frame outside dbt_common.behavior_flags
    expected = next(
        m.__name__
        for f in inspect.stack()
        if (m := inspect.getmodule(f[0])) and m.__name__ != "dbt_common.behavior_flags"
    )
    _find_behavior_flag_sources_cheaply()
    assert _flag_declared_here()._behavior_change_event.flag_source == __name__ == expected


def test_a_debug_event_reaches_loggers_and_callbacks_only_when_a_logger_writes_debug(tmp_path):
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager
    from dbt_common.events.logger import LineFormat, LoggerConfig
    from dbt_common.events.types import Note, SystemExecutingCmd

    from orchestration.lib.dbt_runner import _drop_debug_events_no_logger_writes

    _drop_debug_events_no_logger_writes()

    def fire_both(levels: list[EventLevel]) -> tuple[str, list[str]]:
        """What the file loggers at ``levels`` write and the callback sees of one debug and one info event."""
        manager, seen = EventManager(), []
        for i, level in enumerate(levels):
            manager.add_logger(
                LoggerConfig(
                    name=f"test_{level}_{i}_{tmp_path.name}",
                    level=level,
                    line_format=LineFormat.PlainText,
                    output_file_name=str(tmp_path / f"{level}_{i}.log"),
                )
            )
        manager.add_callback(lambda msg: seen.append(msg.info.name))
        manager.fire_event(SystemExecutingCmd(cmd=["a", "debug", "line"]))
        manager.fire_event(Note(msg="an info line"))
        manager.flush()
        written = "".join(p.read_text() for p in sorted(tmp_path.glob("*.log")))
        for p in tmp_path.glob("*.log"):
            p.unlink()
        return written, seen

    written, seen = fire_both([EventLevel.INFO, EventLevel.WARN])
    assert seen == ["Note"] and "an info line" in written and "a debug line" not in written
    written, seen = fire_both([EventLevel.INFO, EventLevel.DEBUG])  # one logger at debug: it gets it
    assert seen == ["SystemExecutingCmd", "Note"] and "a debug line" in written
