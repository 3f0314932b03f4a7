"""dbt's caches (orchestration/lib/dbt_caches.py): templates render and schemas read exactly as dbt builds them."""

import json

import jinja2
import pytest
from dbt_common.clients import jinja as dbt_jinja
from dbt_common.exceptions import CompilationError

from orchestration.lib import dbt_caches

SOURCES = [
    "select {{ column | upper }} as a{% for i in range(3) %}, {{ i }} as c{{ i }}{% endfor %}",
    "{% if column %}{{ 21 * 2 }}{% else %}none{% endif %} {{ 'x' ~ column }}",
    "{{ number }}",
    "{% set rows = [] %}{% do rows.append(column) %}{{ rows | length }} {{ '\u00e9t\u00e9' | upper }}",
]


@pytest.fixture
def generated(monkeypatch):
    """Counts Jinja's Python code generation (what a cache hit skips)."""
    calls = []
    original = jinja2.Environment._generate

    def counting(self, *args, **kwargs):
        calls.append(args[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "_generate", counting)
    return calls


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """The caches are installed once per process (the first call's folder stays in use): a folder that outlives
    each test (pytest removes a passed test's tmp_path)."""
    return tmp_path_factory.mktemp("dbt_caches")


def _uncached(source: str, native: bool, ctx: dict):
    """The oracle: jinja's own compile in dbt's environment, no cache."""
    env = dbt_jinja.get_environment(native=native)
    code = jinja2.Environment.compile(env, source)
    return env.template_class.from_code(env, code, env.make_globals(ctx), None).render(ctx)


@pytest.mark.parametrize("native", [False, True], ids=["text", "native"])
def test_a_template_renders_as_compiled_from_source_and_is_compiled_once(cache, generated, native):
    folder = dbt_caches.install(cache) / "jinja"
    ctx = {"column": "amount", "number": 42}
    first = [dbt_jinja.get_template(s, ctx, native=native).render(ctx) for s in SOURCES]
    compiled = len(generated)
    again = [dbt_jinja.get_template(s, ctx, native=native).render(ctx) for s in SOURCES]
    assert first == again == [_uncached(s, native, ctx) for s in SOURCES]
    assert len(generated) == compiled + len(SOURCES)  # only the oracle compiled again
    assert len(list(folder.glob("dbt_*.cache"))) >= len(SOURCES)


def test_the_text_and_native_environments_never_share_code(cache):
    dbt_caches.install(cache)
    source, ctx = "{{ value }}", {"value": 42}
    text = dbt_jinja.get_template(source, ctx).render(ctx)
    native = dbt_jinja.get_template(source, ctx, native=True).render(ctx)
    assert (text, native) == ("42", 42)  # the same source, two code generators
    assert dbt_jinja.get_template(source, ctx).render(ctx) == "42"


def test_a_filter_called_another_way_is_another_key():
    env = dbt_jinja.get_environment()
    before = dbt_caches.environment_key(env)
    env.filters["upper"] = jinja2.pass_context(lambda context, value: value.upper())
    assert dbt_caches.environment_key(env) != before
    assert dbt_caches.environment_key(dbt_jinja.get_environment()) == before  # a new environment: as before


def test_a_syntax_error_is_still_dbts_compilation_error_and_not_cached(cache, generated):
    dbt_caches.install(cache)
    for _ in range(2):
        with pytest.raises(CompilationError, match="unexpected end of template"):
            dbt_jinja.get_template("select {{ column ", {})
    assert len(generated) == 0  # parsing failed both times: nothing to generate, nothing stored


def _canonical(schema):
    """A JSON schema with each anyOf's alternatives in one order: typing hands out a Union's arguments in the
    order the process first wrote that Union (Union[str, List[str]] == Union[List[str], str]), so dbt's own
    schema lists them in an order that depends on what was imported before; the meaning is the same."""
    if isinstance(schema, dict):
        return {
            k: sorted((_canonical(v) for v in value), key=json.dumps) if k == "anyOf" else _canonical(value)
            for k, value in schema.items()
        }
    if isinstance(schema, list):
        return [_canonical(v) for v in schema]
    return schema


def test_a_config_class_schema_is_dbts_own_and_is_read_back_from_its_file(cache, monkeypatch):
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.contracts.project import Project
    from dbt_common import dataclass_schema

    folder = dbt_caches.install(cache) / "schemas"
    cached = dataclass_schema.dbtClassMixin.json_schema.__func__.__wrapped__  # without dbt's per-process memo
    real, built = dataclass_schema.build_json_schema, []

    def counting(cls, *args, **kwargs):
        built.append(cls)
        return real(cls, *args, **kwargs)

    monkeypatch.setattr(dataclass_schema, "build_json_schema", counting)
    for cls in (Project, DuckDBCredentials):
        assert _canonical(cached(cls)) == _canonical(real(cls).to_dict())  # the oracle: mashumaro, as dbt calls it
        assert (folder / f"{cls.__module__}.{cls.__qualname__}.json").exists()
    before = len(built)
    assert _canonical(cached(Project)) == _canonical(real(Project).to_dict())
    assert len(built) == before  # read back, not built


def test_a_schema_stored_by_other_releases_is_built_again(cache):
    from dbt.contracts.project import Project
    from dbt_common import dataclass_schema

    folder = dbt_caches.install(cache) / "schemas"
    cached = dataclass_schema.dbtClassMixin.json_schema.__func__.__wrapped__
    path = folder / f"{Project.__module__}.{Project.__qualname__}.json"
    path.write_text('{"key": "dbt-core 0.0", "schema": {"type": "null"}}')
    oracle = _canonical(dataclass_schema.build_json_schema(Project).to_dict())
    assert _canonical(cached(Project)) == oracle
    stored = json.loads(path.read_text())
    assert _canonical(stored["schema"]) == oracle and stored["key"] == dbt_caches.schema_key(Project)
    assert dbt_caches.schema_key(type("Elsewhere", (), {})) is None  # not dbt's: never cached
