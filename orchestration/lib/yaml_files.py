"""YAML files a run reads many times (dbt_project.yml, the dbt schema files, the expectation suites): parsed
once per version of the file (its mtime and size), with libyaml's parser when PyYAML was built with it.

Re-parsing them was ~1 s of a small day's run (pure-Python YAML, a dozen reads of dbt_project.yml alone).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path | str):
    """The file's YAML as yaml.safe_load gives it (a copy of the cached parse: the caller may change it)."""
    stat = Path(path).stat()
    return copy.deepcopy(_parse(str(path), stat.st_mtime_ns, stat.st_size))


@lru_cache(maxsize=64)
def _parse(path: str, _mtime_ns: int, _size: int):
    return yaml.load(Path(path).read_text(), Loader=_LOADER)
