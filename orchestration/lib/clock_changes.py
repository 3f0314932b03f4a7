"""The hours a time zone lives twice (clocks set back), where local wall-clock times cannot order events.

The loader keeps each table's times as the project's local wall-clock (`timezone`): within a repeated hour an event
of its second pass reads as before one of its first. summary counts the rows such hours hold.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def repeated_hours(zone: str, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The local wall-clock hours ``zone`` lives twice between the days ``first`` and ``last`` (clocks set back):
    (start, end) naive datetimes, e.g. 01:00 and 02:00 on the night the US leaves daylight time."""
    tz, out = ZoneInfo(zone), []
    day = first
    while day <= last:
        midnight = datetime(day.year, day.month, day.day)
        after = midnight + timedelta(days=1)
        if midnight.replace(tzinfo=tz).utcoffset() > after.replace(tzinfo=tz).utcoffset():  # set back that day
            for quarter in range(96):  # some zones move by half an hour
                t = midnight + timedelta(minutes=15 * quarter)
                early, late = t.replace(tzinfo=tz, fold=0).utcoffset(), t.replace(tzinfo=tz, fold=1).utcoffset()
                if early > late:  # the same wall-clock time twice: the first pass has the larger offset
                    out.append((t, t + (early - late)))
                    break
        day += timedelta(days=1)
    return out
