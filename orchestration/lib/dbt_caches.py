"""What dbt derives afresh in every process from code that does not change between runs, kept in a folder.

* **Compiled Jinja.** dbt compiles every node's SQL and every macro it calls from source on each invocation
  (jinja2's ``Environment.from_string``, which no bytecode cache reaches): lexing, parsing, generating Python and
  compiling it took ~0.55 s of a small day's ~3.5 s dbt build (py-spy). The compiled code object is kept through
  Jinja's own ``FileSystemBytecodeCache`` (atomic writes; a header naming the Jinja and Python releases; reads
  and writes that never fail dbt: orchestration/lib/jinja_bytecode.py), keyed by everything the generated code
  depends on: the source, the template's name and file, and the environment (its
  class and code generator, extensions, syntax settings, sandboxing, autoescape, and how each filter and test is
  called), plus the jinja2 and dbt-common releases (Jinja folds constant filter calls at compile time). A hit
  builds the template from the same code object as a compile would. Skipped while dbt's DBT_MACRO_DEBUGGING is
  set (dbt then puts the generated source in linecache for tracebacks).
* **JSON schemas of dbt's config classes** (project, profile, credentials, selectors, ...), which dbt builds with
  mashumaro to validate its YAML files: ~0.25 s a process. Kept as JSON per class, keyed by the class and the
  releases of dbt-core, dbt-common, dbt-adapters, mashumaro and, for an adapter's class, its adapter package.

tests/unit/test_dbt_caches.py checks both against dbt's own results.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from orchestration.lib.jinja_bytecode import best_effort_cache


def install(cache_dir: Path) -> Path:
    """dbt compiles its Jinja and builds its schemas through the caches in ``cache_dir``; returns the folder in
    use (the first call's, for the whole process)."""
    _cache_templates(cache_dir / "jinja")
    return _cache_schemas(cache_dir / "schemas").parent


def _cache_templates(cache_dir: Path) -> None:
    """dbt's Jinja environments compile through a bytecode cache in ``cache_dir``."""
    import jinja2
    from dbt_common.clients import jinja as dbt_jinja
    from jinja2.utils import internalcode

    environment_class = dbt_jinja.MacroFuzzEnvironment  # dbt's text and native environments alike
    original = environment_class.compile
    if getattr(original, "bytecode_cache", None) is not None:
        return
    cache = best_effort_cache(cache_dir, "dbt_%s.cache")
    releases = f"jinja2 {jinja2.__version__}, dbt-common {version('dbt-common')}"

    @internalcode  # hidden from template tracebacks, as jinja's own compile is
    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        if raw or not isinstance(source, str) or dbt_jinja.MACRO_DEBUGGING:
            return original(self, source, name, filename, raw, defer_init)
        key = "\x00".join([releases, environment_key(self), repr((name, filename, defer_init)), _digest(source)])
        bucket = cache.get_bucket(self, key, None, source)
        if bucket.code is None:
            bucket.code = original(self, source, name, filename, raw, defer_init)
            cache.set_bucket(bucket)
        return bucket.code

    compile.bytecode_cache = cache
    environment_class.compile = compile


def _cache_schemas(cache_dir: Path) -> Path:
    """dbt's config classes build their JSON schema through files in ``cache_dir``; returns the folder in use."""
    from dbt_common.dataclass_schema import dbtClassMixin

    built = dbtClassMixin.json_schema.__func__
    if (folder := getattr(built, "schema_cache", None)) is not None:
        return folder
    cache_dir.mkdir(parents=True, exist_ok=True)
    original = built.__wrapped__  # under dbt's per-process lru_cache

    def json_schema(cls) -> dict:
        key = schema_key(cls)
        if key is None:  # not dbt's own class: its releases are unknown
            return original(cls)
        path = cache_dir / f"{cls.__module__}.{cls.__qualname__}.json"
        try:
            stored = json.loads(path.read_text())
            if stored["key"] == key:
                return stored["schema"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        schema = original(cls)
        try:  # only saves time: a full disk or a removed folder (`dbt clean` under a long-lived process)
            cache_dir.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, json.dumps({"key": key, "schema": schema}))
        except OSError:
            pass
        return schema

    json_schema.schema_cache = cache_dir
    dbtClassMixin.json_schema = classmethod(functools.lru_cache(json_schema))
    return cache_dir


def schema_key(cls) -> str | None:
    """The releases a dbt config class's schema depends on; None for a class outside dbt's packages."""
    module = cls.__module__
    if not module.startswith(("dbt.", "dbt_common.")):
        return None
    packages = ["dbt-core", "dbt-common", "dbt-adapters", "mashumaro"]
    if module.startswith("dbt.adapters.") and module.count(".") >= 2:
        packages.append(f"dbt-{module.split('.')[2]}")  # an adapter's own package (dbt-duckdb)
    return repr([module, cls.__qualname__, sys.version_info[:2], [(p, _release(p)) for p in packages]])


def _release(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _write_atomically(path: Path, text: str) -> None:
    """Readers (another test worker, the next run) see the old file or the new one, never half of one."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def environment_key(env) -> str:
    """What of a Jinja environment the code it compiles depends on (not its globals or undefined class, which
    are looked up when a template runs)."""
    from jinja2.utils import _PassArg

    def calling(functions: dict) -> list:
        return sorted((name, str(_PassArg.from_obj(f))) for name, f in functions.items())

    def name(obj) -> str | None:
        return None if obj is None else f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}"

    autoescape = env.autoescape if isinstance(env.autoescape, bool) else name(env.autoescape)
    settings = [
        name(type(env)),
        name(env.code_generator_class),
        sorted((key, name(type(ext)), ext.priority) for key, ext in env.extensions.items()),
        [getattr(env, s) for s in SYNTAX],
        [env.sandboxed, env.optimized, env.is_async, autoescape, name(env.finalize)],
        sorted(getattr(env, "intercepted_binops", ())),
        sorted(getattr(env, "intercepted_unops", ())),
        calling(env.filters),
        calling(env.tests),
    ]
    return repr(settings)


# the Environment settings the lexer reads
SYNTAX = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
