"""Great Expectations reads an expectation's kwargs without rebuilding its configuration for every key.

In GX 1.24.1, ``Expectation.configuration`` is a property that builds a new ExpectationConfiguration
(pydantic ``dict()``, a regex on the class name, a new object) on each access, and the kwargs readers
``_get_domain_kwargs``, ``_get_success_kwargs``, ``_get_success_kwarg`` and ``_get_runtime_kwargs`` access
it once per key they read. Building the metric graph reads them for every metric of every expectation: the
ten suites of one small day built 18,095 configurations, 40% of their time under cProfile; without the
profiler the ten suites take about a quarter less time with the replacements (tests/benchmarks/PERFORMANCE.md).

The replacements below are GX's own methods with the configuration built once per call: the same values,
the same errors (the configuration is a function of the expectation's fields, which a call does not
change). They are installed only on the GX release they were written against (pyproject pins it); on any
other, GX's methods stay as they are. tests/unit/test_gx_kwargs.py compares them with GX's
originals on every expectation of the project's suites.
"""

from __future__ import annotations

import logging
from typing import Any

from orchestration.lib.gx_import import GX_RELEASE

logger = logging.getLogger("great_expectations.expectations.expectation")  # GX's own logger for its warning

_ORIGINALS: dict[str, Any] = {}


def _domain(self, kwargs: dict) -> dict[str, str | None]:
    from great_expectations.exceptions import InvalidExpectationKwargsError

    domain_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.domain_keys}
    missing_kwargs = set(self.domain_keys) - set(domain_kwargs.keys())
    if missing_kwargs:
        raise InvalidExpectationKwargsError(f"Missing domain kwargs: {list(missing_kwargs)}")
    return domain_kwargs


def _success(self, kwargs: dict) -> dict[str, Any]:
    success_kwargs = {key: kwargs.get(key, self._get_default_value(key)) for key in self.success_keys}
    success_kwargs.update(_domain(self, kwargs))
    return success_kwargs


def _success_kwarg(self, kwargs: dict, key: str, default: Any = None) -> Any:
    if key in kwargs:
        return kwargs[key]
    field = self.__fields__.get(key)  # GX's fallback: the field's default
    if field is not None:
        return field.default if not field.required else default
    logger.warning(f'_get_success_kwarg called with key "{key}", but it is not a known field of {type(self).__name__}')
    return default


# GX's four kwargs readers, each with the configuration's kwargs built once


def _get_domain_kwargs(self) -> dict[str, str | None]:
    return _domain(self, self.configuration.kwargs)


def _get_success_kwargs(self) -> dict[str, Any]:
    return _success(self, self.configuration.kwargs)


def _get_success_kwarg(self, key: str, default: Any = None) -> Any:
    return _success_kwarg(self, self.configuration.kwargs, key, default)


def _get_runtime_kwargs(self, runtime_configuration: dict | None = None) -> dict:
    from great_expectations.expectations.expectation_configuration import parse_result_format

    runtime_configuration = runtime_configuration or {}
    kwargs = self.configuration.kwargs
    success_kwargs = _success(self, kwargs)
    runtime_kwargs = {
        key: runtime_configuration.get(key, _success_kwarg(self, kwargs, key)) for key in self.runtime_keys
    }
    runtime_kwargs.update(success_kwargs)
    runtime_kwargs["result_format"] = parse_result_format(runtime_kwargs["result_format"])
    return runtime_kwargs


REPLACEMENTS = {
    f.__name__: f for f in (_get_domain_kwargs, _get_success_kwargs, _get_success_kwarg, _get_runtime_kwargs)
}


def install() -> bool:
    """Install the replacements on GX's Expectation (once); False when GX is not the release they fit."""
    import great_expectations
    from great_expectations.expectations.expectation import Expectation

    if great_expectations.__version__ != GX_RELEASE:
        return False
    for name, method in REPLACEMENTS.items():
        if getattr(Expectation, name) is not method:
            _ORIGINALS.setdefault(name, getattr(Expectation, name))
            setattr(Expectation, name, method)
    return True


def original(name: str):
    """GX's own method ``name`` (the tests' oracle), whether or not the replacement is installed."""
    from great_expectations.expectations.expectation import Expectation

    return _ORIGINALS.get(name, getattr(Expectation, name))
