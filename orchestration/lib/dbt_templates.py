"""dbt's Jinja compiled once, not on every run.

dbt compiles every node's SQL and every macro it calls from source on each invocation (jinja2's
``Environment.from_string``, which no bytecode cache reaches): lexing, parsing, generating Python and compiling
it took ~0.55 s of a small day's ~3.5 s dbt build (py-spy). Here the compiled code object is kept in a folder
through Jinja's own ``FileSystemBytecodeCache`` (atomic writes; a header naming the Jinja and Python releases),
keyed by everything the generated code depends on: the source, the template's name and file, and the
environment (its class and code generator, extensions, syntax settings, sandboxing, autoescape, and how each
filter and test is called), plus the jinja2 and dbt-common releases (Jinja folds constant filter calls at compile
time). A hit builds the template from the same code object as a compile would. Skipped while dbt's
DBT_MACRO_DEBUGGING is set (dbt then puts the generated source in linecache for tracebacks).

tests/unit/test_dbt_templates.py renders dbt's templates with and without it.
"""

from __future__ import annotations

import hashlib
from importlib.metadata import version
from pathlib import Path


def install(cache_dir: Path) -> Path:
    """dbt's Jinja environments compile through a bytecode cache in ``cache_dir``; returns the folder in use
    (the first call's, for the whole process)."""
    import jinja2
    from dbt_common.clients import jinja as dbt_jinja
    from jinja2 import FileSystemBytecodeCache
    from jinja2.utils import internalcode

    environment_class = dbt_jinja.MacroFuzzEnvironment  # dbt's text and native environments alike
    original = environment_class.compile
    if getattr(original, "bytecode_cache", None) is not None:
        return Path(original.bytecode_cache.directory)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache = FileSystemBytecodeCache(str(cache_dir), "dbt_%s.cache")
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
    return cache_dir


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
