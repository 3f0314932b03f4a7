"""Acceptance runs: a real data set laid out as a user would, then ONLY the console script.

Each run is a fresh folder with its own landing zone, warehouse, exports, reports and DAGSTER_HOME (with the
project's .dagster_home/dagster.yaml, as `impact-ledger` uses by default);
`impact-ledger init` writes the project file into it (its default ./impact_ledger.yml), the test applies the
README's review edits to that file, and `impact-ledger materialize` runs once over the whole landing zone
with IMPACT_LEDGER_CONFIG pointing at it. The tests then read the warehouse read-only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import yaml

CLI = Path(sys.executable).parent / "impact-ledger"
# the instance settings a user gets from the project's default DAGSTER_HOME (event log, telemetry off)
DAGSTER_YAML = Path(__file__).resolve().parents[2] / ".dagster_home" / "dagster.yaml"
MATERIALIZE_TIMEOUT = 1800


@dataclass
class Run:
    home: Path
    source: Path
    tables: dict[str, pd.DataFrame]
    config_path: Path
    init_output: str
    materialize: subprocess.CompletedProcess | None = None
    init_config: dict | None = None  # as init wrote it

    @property
    def db(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text())

    def query(self, sql: str, params=None) -> pd.DataFrame:
        with duckdb.connect(str(self.db), read_only=True) as conn:
            return conn.execute(sql, params or []).df()

    def require_success(self) -> None:
        """The one materialize of this data set succeeded; else its own words, verbatim."""
        done = self.materialize
        assert done is not None and done.returncode == 0, (
            f"`impact-ledger materialize` exited {done.returncode}:\n--- stderr (tail)\n{done.stderr[-4000:]}"
            f"\n--- stdout (tail)\n{done.stdout[-3000:]}"
        )


def environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPACT_LEDGER_")}
    env.update(
        {
            "IMPACT_LEDGER_DB": str(home / "warehouse.duckdb"),
            "IMPACT_LEDGER_EXPORTS": str(home / "exports"),
            "IMPACT_LEDGER_ANALYTICS_DB": str(home / "analytics.duckdb"),
            "IMPACT_LEDGER_REPORTS": str(home / "reports"),
            "IMPACT_LEDGER_ALERTS": str(home / "alerts"),
            "IMPACT_LEDGER_GX_DOCS": "0",
            "DAGSTER_HOME": str(home / "dagster_home"),
            "GX_ANALYTICS_ENABLED": "false",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
    )
    (home / "dagster_home").mkdir(parents=True, exist_ok=True)
    shutil.copy(DAGSTER_YAML, home / "dagster_home" / "dagster.yaml")
    return env


def init(home: Path, source: Path, tables: dict[str, pd.DataFrame]) -> Run:
    """`impact-ledger init --source DIR` in the run's folder (writes ./impact_ledger.yml)."""
    done = subprocess.run(
        [str(CLI), "init", "--source", str(source)],
        cwd=home,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"init exited {done.returncode}: {done.stderr}"
    return Run(home, source, tables, home / "impact_ledger.yml", done.stdout)


def edit(run: Run, pattern: str, replacement: str) -> None:
    """Change one line of the init-written file as the README tells a reviewer to (comments stay)."""
    text = run.config_path.read_text()
    new, n = re.subn(pattern, replacement, text, count=1, flags=re.MULTILINE)
    assert n == 1, f"no line matching {pattern!r} in {run.config_path}:\n{text}"
    run.config_path.write_text(new)


def materialize(run: Run, extra_env: dict[str, str] | None = None, days: tuple[date, date] | None = None) -> Run:
    """One `impact-ledger materialize` of the whole landing zone, or of ``days`` (first, last);
    ``extra_env``: more settings (e.g. the engine)."""
    env = environment(run.home) | {"IMPACT_LEDGER_CONFIG": str(run.config_path)} | (extra_env or {})
    span = ["--start", days[0].isoformat(), "--end", days[1].isoformat()] if days else []
    run.materialize = subprocess.run(
        [str(CLI), "materialize", "--source", str(run.source), *span],
        cwd=run.home,
        env=env,
        capture_output=True,
        text=True,
        timeout=MATERIALIZE_TIMEOUT,
    )
    (run.home / "materialize.log").write_text(run.materialize.stdout + "\n--- stderr\n" + run.materialize.stderr)
    return run
