"""The columns documented in schema.yml are exactly the columns dbt built into each mart (issue 4).

tests/unit/test_dbt_docs.py checks what each documented column states (unit,
formula); this checks the documentation against the real tables of a
generated world, so a column added to a mart's SQL without docs fails here.
The tables Python writes are documented as dbt sources
(models/published/_python_tables.yml): their documented columns must equal the
columns the pipeline built too.
"""

import json
from pathlib import Path

import duckdb
import pytest

from orchestration.lib.settings import DBT_PROJECT_DIR

pytestmark = pytest.mark.slow


def test_every_column_of_every_dbt_mart_is_documented(latest):
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    marts = [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and Path(n["original_file_path"]).parts[:2] == ("models", "marts")
    ]
    assert len(marts) >= 8, [n["name"] for n in marts]

    problems = []
    with duckdb.connect(str(latest.db), read_only=True) as conn:
        for node in sorted(marts, key=lambda n: n["name"]):
            relation = f"{node['schema']}.{node['alias']}"
            actual = [row[0] for row in conn.execute(f"DESCRIBE {relation}").fetchall()]
            documented = set(node["columns"])
            undocumented = [c for c in actual if c not in documented]
            if undocumented:
                problems.append(f"{relation}: undocumented columns {undocumented}")
            if stale := sorted(documented - set(actual)):
                problems.append(f"{relation}: documented columns the table does not have {stale}")
    assert not problems, "schema.yml vs built marts:\n" + "\n".join(problems)


def test_every_column_of_every_python_written_table_is_documented(latest):
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    published = Path("models") / "published" / "_python_tables.yml"
    sources = [n for n in manifest["sources"].values() if Path(n["original_file_path"]) == published]
    assert len(sources) >= 9, [n["identifier"] for n in sources]

    problems = []
    with duckdb.connect(str(latest.db), read_only=True) as conn:
        for node in sorted(sources, key=lambda n: (n["schema"], n["identifier"])):
            relation = f"{node['schema']}.{node['identifier']}"
            actual = [row[0] for row in conn.execute(f"DESCRIBE {relation}").fetchall()]
            if undocumented := [c for c in actual if c not in node["columns"]]:
                problems.append(f"{relation}: undocumented columns {undocumented}")
            if stale := sorted(set(node["columns"]) - set(actual)):
                problems.append(f"{relation}: documented columns the table does not have {stale}")
    assert not problems, f"{published} vs built tables:\n" + "\n".join(problems)
