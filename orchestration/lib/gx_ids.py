"""Great Expectations names a metric's kwargs without its general-purpose JSON converter when they are plain JSON.

In GX 1.24.1, every MetricConfiguration GX builds (the metric graph of each validation: ~20,000 for the ten
suites of three small days) names its domain and value kwargs with ``IDDict.to_id``: the md5 of the kwargs as
sorted JSON, after ``convert_to_json_serializable`` has walked them. That converter tests each value against
pydantic, numpy and pandas types before it reaches ``None`` (four ``np.issubdtype`` calls per ``None``): a fifth
of the gates' time under cProfile; without the profiler the ten gates of a small day take ~10% less CPU with the
replacement (tests/benchmarks/PERFORMANCE.md).

The kwargs are nearly always plain JSON already: strings, whole numbers, booleans, ``None``, finite floats, and
lists and dicts of them. On such data the converter returns what it was given (a tuple as a list, which
``json.dumps`` writes alike), so the id is the md5 of ``json.dumps`` of the kwargs themselves: that is the fast
path. Anything else (a NaN, which the converter turns into ``null``; a date; a numpy number; a pydantic model; a
dict subclass with its own serialisation; a key that is not a string) takes GX's own method. Installed only on
the GX release it was written against (pyproject pins it). tests/unit/test_gx_ids.py compares it with GX's
original on the kwargs of every metric the project's suites build, and on the values the fast path refuses.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from orchestration.lib.gx_import import GX_RELEASE

_ORIGINAL: dict[str, Any] = {}
_SCALARS = (str, int, bool, type(None))
_DICTS: tuple[type, ...] = (dict,)  # and GX's IDDict, once installed (a nested one is plain dict data to GX)


def _plain(value: Any) -> bool:
    """Whether ``value`` is JSON that GX's converter would return unchanged."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return not math.isnan(value)
    if kind in _DICTS:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list or kind is tuple:
        return all(_plain(item) for item in value)
    return False


def to_id(self, id_keys=None, id_ignore_keys=None):
    """GX's ``IDDict.to_id``, without the converter when the kwargs it names are plain JSON."""
    keys = set(self.keys() if id_keys is None else id_keys) - set(
        self._id_ignore_keys if id_ignore_keys is None else id_ignore_keys
    )
    if len(keys) < 2:  # GX's own answer: () or "key=value", no JSON
        return _ORIGINAL["to_id"](self, id_keys, id_ignore_keys)
    named = {key: self[key] for key in keys}
    if not _plain(named):
        return _ORIGINAL["to_id"](self, id_keys, id_ignore_keys)
    return hashlib.md5(json.dumps(named, sort_keys=True).encode("utf-8"), usedforsecurity=False).hexdigest()


def install() -> bool:
    """Install ``to_id`` on GX's IDDict (once); False when GX is not the release it fits."""
    import great_expectations
    from great_expectations.core.id_dict import IDDict

    if great_expectations.__version__ != GX_RELEASE:
        return False
    if IDDict.to_id is not to_id:
        global _DICTS
        _DICTS = (dict, IDDict)
        _ORIGINAL.setdefault("to_id", IDDict.to_id)
        IDDict.to_id = to_id
    return True


def original():
    """GX's own ``IDDict.to_id`` (the tests' oracle), whether or not the replacement is installed."""
    from great_expectations.core.id_dict import IDDict

    return _ORIGINAL.get("to_id", IDDict.to_id)
