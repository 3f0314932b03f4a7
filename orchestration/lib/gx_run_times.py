"""Great Expectations reads the run times of its stored validation results without dateutil's general parser.

GX names each stored result by its run, whose time is a folder name (``20261202T165754.831996Z``), and
every listing of the results store (six per Data Docs build) turns each name back into a RunIdentifier,
which parses the time with ``dateutil.parser.parse`` (~0.13 ms a time). A store grows by one result per
suite level and run: after a year of daily runs (~9,000 results) a build parsed ~46,000 times, ~6 s of its
~14 s, growing with history (tests/benchmarks/PERFORMANCE.md).

The replacement reads GX's own format with ``strptime`` and gives the time dateutil gives (in UTC); any other
text goes to dateutil as before. Installed only on the GX release it was written against (pyproject
pins it); tests/unit/test_gx_run_times.py compares it with dateutil.
"""

from __future__ import annotations

from datetime import datetime

from orchestration.lib.gx_import import GX_RELEASE

RUN_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # RunIdentifier.to_tuple's


def parse_run_time(text, *args, **kwargs):
    """dateutil's ``parse(text)`` for GX's run-time format, fast; dateutil itself for anything else."""
    from dateutil import parser, tz

    if isinstance(text, str) and not args and not kwargs and len(text) == 23:
        try:
            return datetime.strptime(text, RUN_TIME_FORMAT).replace(tzinfo=tz.tzutc())
        except ValueError:
            pass
    return parser.parse(text, *args, **kwargs)


def install() -> bool:
    """Use parse_run_time in GX's RunIdentifier (once); False when GX is not the release it fits."""
    import great_expectations
    from great_expectations.core import run_identifier

    if great_expectations.__version__ != GX_RELEASE:
        return False
    run_identifier.parse = parse_run_time
    return True
