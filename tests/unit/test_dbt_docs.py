"""Every metric of the marts is documented in its schema.yml: description, unit and formula (issue 4).

The rules are checked on the parsed dbt manifest (built by `make` before the
tests). That the documented columns are exactly the columns the marts have is
checked against a built warehouse in tests/e2e/test_dbt_docs_cover_marts.py.

Rules for every model under models/marts:
- the model has a description and a grain (its unique_in_partition_range test);
- every documented column has a description stating "Unit: ...";
- every column outside the grain (a computed value) also states "Formula: ...";
- the grain's columns are documented, and a documented column name occurs in
  the model's SQL or its macros (no documentation of a column that is gone).

The tables Python writes (attribution.*, the Python marts, quality.gate_results)
are documented as dbt sources in models/published/_python_tables.yml under the
same rules, with their grain in meta.grain; their documented columns must be
exactly the *_SCHEMA dict the writing code creates them with, and every
*_SCHEMA dict in orchestration/ must be one of them (a new Python table needs docs).
"""

import ast
import importlib
import json
import re
from functools import cache
from pathlib import Path

import pytest

from orchestration.lib.settings import DBT_PROJECT_DIR, dbt_var

ORCHESTRATION = Path(__file__).resolve().parents[2] / "orchestration"
PUBLISHED_YML = Path("models") / "published" / "_python_tables.yml"
# schema.table -> (module, *_SCHEMA dict) the writing code creates it with
PYTHON_TABLES = {
    "attribution.experiment_results": ("orchestration.lib.attribution", "RESULT_SCHEMA"),
    "attribution.model_impact": ("orchestration.lib.attribution", "IMPACT_SCHEMA"),
    "marts.alerts": ("orchestration.defs.model_health.alerts", "ALERTS_SCHEMA"),
    "marts.bias_group_rates": ("orchestration.lib.bias", "GROUP_RATES_SCHEMA"),
    "marts.bias_verdicts": ("orchestration.lib.bias", "VERDICTS_SCHEMA"),
    "marts.okr_progress": ("orchestration.lib.okrs", "PROGRESS_SCHEMA"),
    "marts.metric_scorecard": ("orchestration.lib.scorecard", "SCORECARD_SCHEMA"),
    "marts.retraining_requests": ("orchestration.lib.retraining", "REQUEST_SCHEMA"),
    "quality.gate_results": ("orchestration.lib.quality_gate", "GATE_RESULTS_SCHEMA"),
}

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


@cache
def manifest() -> dict:
    if not MANIFEST.exists():
        pytest.fail(f"{MANIFEST} is missing: run `make manifest` (dbt parse) first")
    sources = [*(DBT_PROJECT_DIR / "models").rglob("*.yml"), DBT_PROJECT_DIR / "dbt_project.yml"]
    newest = max(sources, key=lambda p: p.stat().st_mtime)
    if newest.stat().st_mtime > MANIFEST.stat().st_mtime:
        pytest.fail(f"{MANIFEST} is older than {newest}: run `make manifest` (dbt parse) first")
    return json.loads(MANIFEST.read_text())


def mart_models(m: dict) -> list[dict]:
    return sorted(
        (
            n
            for n in m["nodes"].values()
            if n["resource_type"] == "model" and Path(n["original_file_path"]).parts[:2] == ("models", "marts")
        ),
        key=lambda n: n["name"],
    )


def grain(m: dict, model: dict) -> set[str]:
    """The columns of the model's unique_in_partition_range test (its key) plus that test's date column."""
    columns: set[str] = set()
    for node in m["nodes"].values():
        meta = node.get("test_metadata") or {}
        if meta.get("name") == "unique_in_partition_range" and node.get("attached_node") == model["unique_id"]:
            columns |= set(meta["kwargs"]["columns"]) | {meta["kwargs"]["date_column"]}
    return columns


def documentation_gaps(columns: dict, key: set[str]) -> list[str]:
    """What a model's column docs lack: a unit everywhere, a formula outside the grain."""
    gaps = [f"{name}: not documented (part of the grain)" for name in sorted(key - set(columns))]
    for name, column in columns.items():
        text = column.get("description") or ""
        if "Unit:" not in text:
            gaps.append(f"{name}: description states no 'Unit:'")
        if name not in key and "Formula:" not in text:
            gaps.append(f"{name}: computed column states no 'Formula:'")
    return gaps


def sql_of(m: dict, model: dict) -> str:
    """The model's SQL and that of the project macros it calls (kpi_select holds the KPI columns)."""
    macros = [m["macros"][uid]["macro_sql"] for uid in model["depends_on"]["macros"] if uid in m["macros"]]
    return "\n".join([model["raw_code"], *macros])


def test_the_rules_flag_a_missing_unit_formula_or_grain_column():
    columns = {
        "date": {"description": "Day. Unit: date."},
        "n": {"description": "Units. Unit: users."},
        "share": {"description": "Formula: share = a / n."},
        "ok": {"description": "Good. Unit: share (0..1). Formula: ok = a / b."},
    }
    assert documentation_gaps(columns, {"date", "model_id"}) == [
        "model_id: not documented (part of the grain)",
        "n: computed column states no 'Formula:'",
        "share: description states no 'Unit:'",
    ]


def test_every_mart_is_described_and_has_a_grain():
    m = manifest()
    marts = mart_models(m)
    assert {
        "kpi_daily",
        "kpi_daily_by_segment",
        "retention_cohorts",
        "model_health_daily",
        "feature_drift_daily",
        "leading_lagging",
        "experiment_stats",
    } <= {n["name"] for n in marts}
    problems = [f"{n['name']}: no model description" for n in marts if not n["description"].strip()]
    problems += [f"{n['name']}: no unique_in_partition_range test (grain)" for n in marts if not grain(m, n)]
    assert not problems, "\n".join(problems)


def test_every_mart_column_states_its_unit_and_every_computed_column_its_formula():
    m = manifest()
    problems = [f"{n['name']}.{gap}" for n in mart_models(m) for gap in documentation_gaps(n["columns"], grain(m, n))]
    assert not problems, "schema.yml documentation gaps:\n" + "\n".join(problems)


def test_documented_mart_columns_occur_in_the_model_sql():
    m = manifest()
    problems = [
        f"{n['name']}.{name}"
        for n in mart_models(m)
        for name in n["columns"]
        if not re.search(rf"\b{re.escape(name)}\b", sql_of(m, n))
    ]
    assert not problems, "documented columns no model SQL produces:\n" + "\n".join(problems)


def test_metric_type_documents_every_type_of_the_declared_experiment_metrics():
    # experiment metrics are declared in dbt_project.yml vars; a metric of a new type needs new docs
    types = {spec["type"] for spec in dbt_var("experiment_metrics").values()}
    stats = next(n for n in mart_models(manifest()) if n["name"] == "experiment_stats")
    documented = stats["columns"]["metric_type"]["description"]
    assert types and all(f"'{t}'" in documented for t in types), (types, documented)


# --- the tables Python writes, documented as dbt sources --------------------------------


def python_sources(m: dict) -> dict[str, dict]:
    """schema.table -> source node, for the sources of models/published/_python_tables.yml."""
    return {
        f"{n['schema']}.{n['identifier']}": n
        for n in m["sources"].values()
        if Path(n["original_file_path"]) == PUBLISHED_YML
    }


def schema_dicts_in_code() -> set[tuple[str, str]]:
    """(module, NAME) of every module-level `NAME_SCHEMA = {...}` / dict comprehension under orchestration/."""
    found = set()
    for path in ORCHESTRATION.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict | ast.DictComp):
                module = ".".join(path.relative_to(ORCHESTRATION.parent).with_suffix("").parts)
                found |= {(module, t.id) for t in node.targets if isinstance(t, ast.Name) and t.id.endswith("_SCHEMA")}
    return found


def test_every_python_table_schema_in_the_code_is_a_documented_table():
    missing = schema_dicts_in_code() - set(PYTHON_TABLES.values())
    assert not missing, (
        f"*_SCHEMA dicts with no entry in PYTHON_TABLES (document the table in {PUBLISHED_YML}): {missing}"
    )


def test_python_tables_are_documented_sources_without_tests():
    m = manifest()
    sources = python_sources(m)
    assert set(sources) == set(PYTHON_TABLES), sorted(set(sources) ^ set(PYTHON_TABLES))
    problems = [f"{t}: no table description" for t, n in sources.items() if not n["description"].strip()]
    problems += [f"{t}: no meta.grain" for t, n in sources.items() if not n["meta"].get("grain")]
    # dbt build must not test a table Python may not have written yet (a fresh warehouse)
    problems += [
        f"{n['attached_node'] or n['unique_id']}: a data test on a Python-written table"
        for n in m["nodes"].values()
        if n["resource_type"] == "test" and set(n["depends_on"]["nodes"]) & {s["unique_id"] for s in sources.values()}
    ]
    assert not problems, "\n".join(problems)


def test_documented_python_table_columns_are_exactly_its_schema():
    problems = []
    for table, node in sorted(python_sources(manifest()).items()):
        module, name = PYTHON_TABLES[table]
        schema = getattr(importlib.import_module(module), name)
        if missing := [c for c in schema if c not in node["columns"]]:
            problems.append(f"{table}: columns of {module}.{name} not documented {missing}")
        if stale := sorted(set(node["columns"]) - set(schema)):
            problems.append(f"{table}: documented columns {module}.{name} does not have {stale}")
        if stray := sorted(set(node["meta"].get("grain") or []) - set(schema)):
            problems.append(f"{table}: meta.grain names columns it does not have {stray}")
    assert not problems, "\n".join(problems)


def test_every_python_table_column_states_its_unit_and_every_computed_column_its_formula():
    problems = [
        f"{table}.{gap}"
        for table, node in sorted(python_sources(manifest()).items())
        for gap in documentation_gaps(node["columns"], set(node["meta"].get("grain") or []))
    ]
    assert not problems, f"{PUBLISHED_YML} documentation gaps:\n" + "\n".join(problems)
