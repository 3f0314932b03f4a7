"""Per-model Dagster checks come from the project file's declared models, plus one catch-all for the rest;
the catch-all selects exactly the models in the data that no declared check covers (a hand-made table)."""

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd

from orchestration.lib.alerts import check_targets, in_scope

ROOT = Path(__file__).resolve().parents[2]

LIST_CHECKS = """
from dagster._core.execution.api import create_execution_plan
from orchestration.definitions import defs
from orchestration.defs.schedules.daily import daily_job
keys = defs.resolve_asset_graph().asset_check_keys
checks = sorted(f"{k.asset_key.to_user_string()}:{k.name}" for k in keys if k.name.startswith(("bias_", "model_health_")))
steps = create_execution_plan(defs.resolve_job_def(daily_job.name)).step_keys_to_execute
print((checks, len(steps)))
"""


def checks_with(config: Path | None, tmp_path: Path) -> tuple[list[str], int]:
    """The per-model checks (asset:name) of the definitions loaded in a fresh process with ``config`` (None: no
    file), and the number of steps of the daily job's plan."""
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
    declared, declared_steps = checks_with(config, tmp_path)
    assert declared == [
        "marts/alerts:model_health_fraud_score",
        "marts/alerts:model_health_other_models",
        "marts/alerts:model_health_ranker",
        "marts/bias_verdicts:bias_fraud_score",
        "marts/bias_verdicts:bias_other_models",
        "marts/bias_verdicts:bias_ranker",
    ]
    undeclared, undeclared_steps = checks_with(None, tmp_path)
    assert undeclared == ["marts/alerts:model_health_other_models", "marts/bias_verdicts:bias_other_models"]
    # the per-model checks are results of the steps that write marts.alerts and marts.bias_verdicts: a run has
    # as many steps with two declared models as without any
    assert declared_steps == undeclared_steps


def test_the_catch_all_check_reads_exactly_the_undeclared_models():
    declared = [suffix for suffix, m in check_targets(["a", "b"]) if m is not None]
    assert declared == ["a", "b"]
    alerts = pd.DataFrame({"model_id": ["a", "b", "c", "d", "c"], "value": range(5)})
    for model_id, expected in (("a", [0]), (None, [2, 3, 4])):
        assert in_scope(alerts, model_id, ["a", "b"])["value"].tolist() == expected
    assert in_scope(alerts, None, [])["value"].tolist() == [0, 1, 2, 3, 4]
