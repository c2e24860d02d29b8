"""
Weekly time windows and validity dates (numberok.lists.windows, model):
read in the lists' time zone with zoneinfo, so they follow daylight saving
time; a window whose end is before its start crosses midnight.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from numberok.lists.index import ListIndex
from numberok.lists.model import Entry, PlateList, parseEntry
from numberok.lists.windows import WindowError, parseWindow, parseWindows

BERLIN = ZoneInfo("Europe/Berlin")


def at(zone, *fields) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()


class One:
    """One entry in a list of its own, asked whether it is valid."""

    def __init__(self, entry: Entry, zone=BERLIN) -> None:
        self.index = ListIndex(PlateList("w"), zone, [entry])
        [self.known] = self.index.knowns()

    def active(self, when: float, zone) -> bool:
        assert zone is self.index.zone
        return self.index.active(self.known, when)


def known(zone=BERLIN, **members) -> One:
    return One(parseEntry({"plate": "A123BC77", **members}, zone, 0.0), zone)


def test_workday_window_holds_on_weekdays_only():
    k = known(windows=["Mon-Fri 07:00-20:00"])
    assert k.active(at(BERLIN, 2026, 12, 4, 7, 0), BERLIN)       # Fri
    assert not k.active(at(BERLIN, 2026, 12, 4, 20, 0), BERLIN)  # end is out
    assert not k.active(at(BERLIN, 2026, 12, 5, 12, 0), BERLIN)  # Sat


def test_window_across_midnight_runs_into_the_next_day():
    k = known(windows=["Fri 22:00-06:00"])
    assert k.active(at(BERLIN, 2026, 12, 4, 23, 30), BERLIN)     # Fri night
    assert k.active(at(BERLIN, 2026, 12, 5, 5, 59), BERLIN)      # Sat early
    assert not k.active(at(BERLIN, 2026, 12, 5, 6, 0), BERLIN)
    assert not k.active(at(BERLIN, 2026, 12, 4, 5, 0), BERLIN)   # Fri early


def test_sunday_night_window_wraps_around_the_week():
    k = known(windows=["Sun 23:00-01:00"])
    assert k.active(at(BERLIN, 2026, 12, 6, 23, 30), BERLIN)     # Sun
    assert k.active(at(BERLIN, 2026, 12, 7, 0, 30), BERLIN)      # Mon


def test_window_follows_local_time_across_the_dst_change():
    # 29 March 2026: Berlin goes from UTC+1 to UTC+2 at 02:00 local.
    k = known(windows=["Sun 07:00-08:00"])
    before = at(BERLIN, 2026, 3, 22, 7, 30)   # a week before, UTC+1
    after = at(BERLIN, 2026, 3, 29, 7, 30)    # the DST day, UTC+2
    assert k.active(before, BERLIN) and k.active(after, BERLIN)
    # 07:30 local is 06:30 UTC before the change and 05:30 UTC on the day:
    # the window moved with the clocks on the wall, not with UTC.
    assert after - before == 7 * 86400 - 3600
    assert not k.active(before + 7 * 86400, BERLIN)   # 08:30 local


def test_window_in_the_hour_that_does_not_exist_is_simply_never_met():
    k = known(windows=["Sun 02:00-03:00"])
    # On 29 March 2026 local time jumps 01:59:59 -> 03:00:00.
    assert not k.active(at(BERLIN, 2026, 3, 29, 0, 59, 59) + 1,  # 03:00
                        BERLIN)
    assert not k.active(at(ZoneInfo("UTC"), 2026, 3, 29, 0, 30), BERLIN)


def test_window_in_the_repeated_hour_is_met_both_times():
    k = known(windows=["Sun 02:00-03:00"])
    # 25 October 2026: 03:00 CEST -> 02:00 CET; 02:30 happens twice.
    first = at(ZoneInfo("UTC"), 2026, 10, 25, 0, 30)
    second = at(ZoneInfo("UTC"), 2026, 10, 25, 1, 30)
    assert k.active(first, BERLIN) and k.active(second, BERLIN)


def test_validity_dates_are_whole_local_days():
    k = known(validFrom="2026-12-01", validUntil="2026-12-31")
    assert not k.active(at(BERLIN, 2026, 11, 30, 23, 59), BERLIN)
    assert k.active(at(BERLIN, 2026, 12, 1, 0, 0), BERLIN)
    assert k.active(at(BERLIN, 2026, 12, 31, 23, 59, 59), BERLIN)
    assert not k.active(at(BERLIN, 2027, 1, 1, 0, 0), BERLIN)


@pytest.mark.parametrize("text, message", [
    ("Mon-Fri 7-20", "is not like"), ("Xyz 07:00-08:00", "unknown day"),
    ("Mon 25:00-26:00", "no such time"), ("Mon 08:00-08:00", "empty")])
def test_bad_windows_say_what_is_wrong(text, message):
    with pytest.raises(WindowError) as e:
        parseWindow(text)
    assert message in str(e.value)


def test_overlapping_windows_are_refused_naming_both():
    with pytest.raises(WindowError) as e:
        parseWindows(["Fri 22:00-06:00", "Sat 05:00-07:00"])
    assert "Fri 22:00-06:00" in str(e.value)
    assert "Sat 05:00-07:00" in str(e.value)


def test_entry_without_windows_is_always_in_time():
    k = One(Entry("A123BC77"))
    assert k.active(0.0, BERLIN)
