"""A benchmark scenario's Dagster instance, configured as the project's own (.dagster_home/dagster.yaml)."""

import shutil
from pathlib import Path

PROJECT_DAGSTER_YAML = Path(__file__).resolve().parents[2] / ".dagster_home" / "dagster.yaml"


def scenario_dagster_home(home: Path) -> Path:
    """``home`` with the project's dagster.yaml: its event log storage and run limit, as `impact-ledger` runs
    get by default (an empty dagster.yaml would time Dagster's default SQLite event log instead)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    return home
