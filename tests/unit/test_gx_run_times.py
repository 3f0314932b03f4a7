"""gx_run_times: the run times of GX's stored results read as dateutil reads them, without its parser."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from dateutil import parser

from orchestration.lib import gx_run_times


def test_gx_run_time_names_give_the_time_dateutil_gives():
    from great_expectations.core.run_identifier import RunIdentifier

    rng = np.random.default_rng(7)
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    times = [start + timedelta(microseconds=int(x)) for x in rng.integers(0, 7 * 365 * 86_400 * 10**6, 500)]
    times += [start, start.replace(microsecond=999_999)]
    for time in times:
        name = RunIdentifier(run_name="r", run_time=time).to_tuple()[1]  # the folder GX stores the result in
        ours, theirs = gx_run_times.parse_run_time(name), parser.parse(name)
        assert ours == theirs == time and ours.utcoffset() == theirs.utcoffset() == timedelta(0), name
    # anything else is dateutil's: other layouts, offsets, errors
    for text in ("2026-12-02T16:57:54Z", "2026-12-02 16:57:54+02:00", "20261202T165754Z", "Dec 2 2026"):
        assert gx_run_times.parse_run_time(text) == parser.parse(text)
    for bad in ("20261302T165754.000000Z", "not a time"):  # month 13: dateutil's error, as before
        errors = []
        for parse in (gx_run_times.parse_run_time, parser.parse):
            with pytest.raises(ValueError) as caught:
                parse(bad)
            errors.append(type(caught.value))
        assert errors[0] is errors[1]


def test_gx_reads_stored_run_times_with_it_once_installed():
    from great_expectations.core import run_identifier
    from great_expectations.core.run_identifier import RunIdentifier

    assert gx_run_times.install()
    assert run_identifier.parse is gx_run_times.parse_run_time
    key = ("nightly", "20261202T165754.831996Z")
    assert RunIdentifier.from_tuple(key).to_tuple() == key
    assert RunIdentifier.from_tuple(key).run_time == datetime(2026, 12, 2, 16, 57, 54, 831996, tzinfo=timezone.utc)
