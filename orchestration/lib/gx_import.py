"""Great Expectations imported without the packages it loads for features the gates never use.

At its own import GX loads:

- **pyspark** (and py4j), in its compatibility shim, to validate Spark DataFrames. The gates hand GX only
  pandas frames (per-day aggregates the engine counted, orchestration/lib/quality_gate.py), on either engine.
  While GX imports, ``pyspark`` is marked missing in ``sys.modules``, so the shim records it as not installed
  (GX's state on any machine without pyspark); then the mark is removed, and the Spark engine imports pyspark
  as before. When pyspark is already imported (a Spark session started first), GX sees it, as before.
- **altair** (and narwhals), for the charts of one expectation's Data Docs
  (``expect_column_kl_divergence_to_be_less_than``), and **scipy.stats**, for that expectation and two
  Kolmogorov-Smirnov metrics. GX's modules use them only inside functions. They are deferred: GX's modules get
  a stand-in, which imports the real module at its first attribute use, so a suite using those expectations
  runs and renders as before. The stand-ins leave ``sys.modules`` once GX is imported: any later import gets
  the real module.

Together they were ~0.8 s of GX's import, in every run process (tests/benchmarks/PERFORMANCE.md).
``importlib.util.LazyLoader`` cannot defer a module on Python 3.11: ``import altair`` itself reads the lazy
module's ``__spec__``, which loads it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

# the GX release the project's replacements of GX methods (gx_kwargs, gx_ids, gx_run_times, gx_templates) were
# written against (pyproject pins it); on any other they are not installed
GX_RELEASE = "1.24.1"
# imported at the top of GX's modules, used only inside their functions
DEFERRED = ("altair", "scipy.stats")
HIDDEN = ("pyspark",)  # probed by GX's compatibility shim; absent to GX when not imported before it


class DeferredModule(types.ModuleType):
    """Stands in for a module until an attribute is read from it; then imports the real module (taking the
    stand-in's place in ``sys.modules`` if it still has it) and reads the attribute from that."""

    def __getattr__(self, attr: str):
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


@contextmanager
def without_unused_dependencies(
    hidden: tuple[str, ...] = HIDDEN, deferred: tuple[str, ...] = DEFERRED
) -> Iterator[None]:
    """Inside the block, imports find the ``hidden`` modules missing and the ``deferred`` ones as stand-ins (each
    only if not imported yet; a deferred one only if installed). At the end both leave ``sys.modules``."""
    hidden = tuple(name for name in hidden if name not in sys.modules)
    stand_ins = {}
    for name in deferred:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            stand_ins[name] = sys.modules[name] = DeferredModule(name)
    for name in hidden:
        sys.modules[name] = None  # the import system's "not found" mark
    try:
        yield
    finally:
        for name, placeholder in [*((n, None) for n in hidden), *stand_ins.items()]:
            if name in sys.modules and sys.modules[name] is placeholder:
                del sys.modules[name]


def import_great_expectations() -> types.ModuleType:
    """``great_expectations``, imported (the first time) without_unused_dependencies."""
    if "great_expectations" not in sys.modules:
        with without_unused_dependencies():
            import great_expectations  # noqa: F401
    return sys.modules["great_expectations"]
