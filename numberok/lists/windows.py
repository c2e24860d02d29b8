"""
Weekly time windows of a list entry (C{Mon-Fri 07:00-20:00}) and the time
zone they are read in.

A window is wall-clock time in the lists' time zone (the server's local
zone unless told otherwise, docs/lists.rst): a decision at a UTC instant
converts it to local time with C{zoneinfo}, so a window follows daylight
saving time as the people at the gate do.  A window whose end is not after
its start crosses midnight (C{Fri 22:00-06:00} is Friday 22:00 to Saturday
06:00).  Windows are kept as intervals of minutes in the week, so a test at
decision time is a few comparisons.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = 7 * 1440

_WINDOW = re.compile(
    r"^\s*(?P<days>[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*)\s+"
    r"(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})\s*$")


class WindowError(ValueError):
    """A window that cannot be read, or windows that overlap."""


@dataclass(frozen=True, slots=True)
class Window:
    """
    One weekly window as written (C{text}) and as intervals of minutes
    since Monday 00:00, half open, none crossing the end of the week.
    """

    text: str
    intervals: tuple[tuple[int, int], ...]

    def contains(self, minute: int) -> bool:
        return any(start <= minute < end for start, end in self.intervals)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in re.split(r"\s*,\s*", text.strip().lower()):
        first, _, last = (p.strip() for p in part.partition("-"))
        if first not in DAYS or (last and last not in DAYS):
            raise WindowError("unknown day in %r (use Mon..Sun)" % (part,))
        a = DAYS.index(first)
        b = DAYS.index(last) if last else a
        day = a
        while True:
            if day not in days:
                days.append(day)
            if day == b:
                break
            day = (day + 1) % 7
    return days


def parseWindow(text: str) -> Window:
    """
    C{"Mon-Fri 07:00-20:00"}, C{"Sat,Sun 00:00-24:00"}, C{"Fri 22:00-06:00"}.

    @raise WindowError: saying what is wrong.
    """
    if not isinstance(text, str):
        raise WindowError("a window is a string like \"Mon-Fri 07:00-20:00\"")
    match = _WINDOW.match(text)
    if match is None:
        raise WindowError("%r is not like \"Mon-Fri 07:00-20:00\"" %
                          (text[:60],))
    h1, m1, h2, m2 = (int(match.group(g)) for g in ("h1", "m1", "h2", "m2"))
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise WindowError("%r: no such time of day" % (text[:60],))
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise WindowError("%r is empty (start equals end)" % (text[:60],))
    length = end - start if end > start else end + 1440 - start
    intervals: list[tuple[int, int]] = []
    for day in _days(match.group("days")):
        first = day * 1440 + start
        last = first + length
        if last <= WEEK:
            intervals.append((first, last))
        else:
            intervals += [(first, WEEK), (0, last - WEEK)]
    return Window(" ".join(text.split()), tuple(sorted(intervals)))


def parseWindows(values: object) -> tuple[Window, ...]:
    """
    A list of window strings (or one string with windows separated by
    C{|}, as in CSV).  Overlapping windows are refused: they are almost
    always a typing mistake, and saying which two overlap helps more than
    silently merging them.
    """
    if values is None or values == "":
        return ()
    if isinstance(values, str):
        values = [v for v in values.split("|") if v.strip()]
    if not isinstance(values, list):
        raise WindowError("windows must be a list of strings")
    windows = tuple(parseWindow(v) for v in values)
    spans = sorted((s, e, w.text) for w in windows for s, e in w.intervals)
    for (s1, e1, t1), (s2, e2, t2) in zip(spans, spans[1:]):
        if s2 < e1:
            raise WindowError("windows %r and %r overlap" % (t1, t2))
    return windows


def weekMinute(when: float, zone: tzinfo) -> int:
    """The minute of the week (Monday 00:00 = 0) at UTC C{when} in
    C{zone}."""
    local = datetime.fromtimestamp(when, zone)
    return local.weekday() * 1440 + local.hour * 60 + local.minute


def localZone() -> tzinfo:
    """
    The server's local time zone as a C{zoneinfo} zone (so daylight saving
    is followed): C{$TZ} when set, else C{/etc/localtime}, else UTC.
    """
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return ZoneInfo("UTC")


def zoneNamed(name: Optional[str]) -> tzinfo:
    """A zone by its IANA name; empty means L{localZone}."""
    if not name:
        return localZone()
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError("unknown time zone %r" % (name,))
