"""Per-model Dagster checks come from the project file's declared models, plus one catch-all for the rest;
the catch-all selects exactly the models in the data that no declared check covers (DuckDB on a hand-made table)."""

import ast
import subprocess
import sys
from pathlib import Path

import duckdb

from orchestration.lib.alerts import check_targets, scope_sql

ROOT = Path(__file__).resolve().parents[2]

LIST_CHECKS = """
from orchestration.definitions import defs
keys = defs.resolve_asset_graph().asset_check_keys
print(sorted(k.name for k in keys if k.name.startswith(("bias_", "model_health_"))))
"""


def checks_with(config: Path | None, tmp_path: Path) -> list[str]:
    """The per-model check names of the definitions loaded in a fresh process with ``config`` (None: no file)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "IMPACT_LEDGER_START_DATE": "2026-01-01",
        "DAGSTER_HOME": str(tmp_path),
        "IMPACT_LEDGER_DB": str(tmp_path / "never.duckdb"),
    }
    if config is not None:
        env["IMPACT_LEDGER_CONFIG"] = str(config)
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", LIST_CHECKS],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (tmp_path / "never.duckdb").exists()  # definitions never open the warehouse
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_checks_follow_the_declared_models_and_a_run_without_a_file_still_gets_checks(tmp_path):
    config = tmp_path / "project.yml"
    config.write_text("models:\n  fraud-score: {positive_decision: harmful}\n  ranker: {}\n")
    assert checks_with(config, tmp_path) == [
        "bias_fraud_score",
        "bias_other_models",
        "bias_ranker",
        "model_health_fraud_score",
        "model_health_other_models",
        "model_health_ranker",
    ]
    assert checks_with(None, tmp_path) == ["bias_other_models", "model_health_other_models"]


def test_the_catch_all_check_reads_exactly_the_undeclared_models():
    declared = [suffix for suffix, m in check_targets(["a", "b"]) if m is not None]
    assert declared == ["a", "b"]
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE alerts AS SELECT * FROM (VALUES ('a'), ('b'), ('c'), ('d'), ('c')) t(model_id)")
        for model_id, expected in (("a", ["a"]), (None, ["c", "d"])):
            condition, params = scope_sql(model_id, ["a", "b"])
            rows = conn.execute(f"SELECT DISTINCT model_id FROM alerts WHERE {condition} ORDER BY 1", params).fetchall()
            assert [r[0] for r in rows] == expected
        condition, params = scope_sql(None, [])
        assert conn.execute(f"SELECT count(*) FROM alerts WHERE {condition}", params).fetchone()[0] == 5
