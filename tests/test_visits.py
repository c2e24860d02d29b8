"""
Visits: pairing by the zones' roles on a real journal (missing exit, two
entries, an exit without entry, look-alike plates, a two-way lane), the
range rules, and the API's answers.
"""

from __future__ import annotations

import json

import pytest
import pytest_twisted

from numberok.events import EventState, MovementType, PlateEvent
from numberok.journal import JournalStore
from numberok.journal.fields import eventRow
from numberok.journal.visits import HOUR_MS, visitReport

T0 = 1_764_000_000_000
MIN = 60_000
GATES = {(0, 0): "entry", (0, 1): "exit", (1, 0): "both", (2, 0): "none"}


def passage(store, plate: str, minute: int, channel: int = 0, zone: int = 0,
            movement: MovementType = MovementType.IN) -> int:
    e = PlateEvent(state=EventState.LOST, runtimeId=minute, channel=channel,
                   zone=zone, plate=plate, rawPlate=plate,
                   frameTimeMs=T0 + minute * MIN, movement=movement)
    return store.record(eventRow(e), e.frameTimeMs, None, None).id


@pytest.fixture
def store(tmp_path):
    s = JournalStore(str(tmp_path / "j"))
    yield s
    s.close()


def visits(store, fromMin=-10_000, toMin=10_000, **kwargs):
    report = visitReport(store.db, GATES, T0 + fromMin * MIN,
                         T0 + toMin * MIN, **kwargs)
    return [(v.plate, v.entry and v.entry.id, v.exit and v.exit.id, v.status)
            for v in report.visits]


def test_entry_is_paired_with_the_next_exit_of_the_same_vehicle(store):
    a_in = passage(store, "A123BC77", 0)
    b_in = passage(store, "E777KX199", 1)
    a_out = passage(store, "A123BC77", 30, zone=1)
    assert visits(store) == [("E777KX199", b_in, None, "inside"),
                             ("A123BC77", a_in, a_out, "left")]


def test_lookalike_misread_at_the_exit_still_closes_the_visit(store):
    a_in = passage(store, "A123BC77", 0)
    a_out = passage(store, "\u0410123\u0412\u042177", 5, zone=1)
    o_out = passage(store, "4I23BC77", 6, zone=1)  # I/1 and A/4 look alike
    assert visits(store) == [
        ("4I23BC77", None, o_out, "entry_missed"),
        ("A123BC77", a_in, a_out, "left")]


def test_second_entry_closes_the_first_visit_as_exit_missed(store):
    first = passage(store, "A123BC77", 0)
    second = passage(store, "A123BC77", 60)
    out = passage(store, "A123BC77", 90, zone=1)
    assert visits(store) == [("A123BC77", second, out, "left"),
                             ("A123BC77", first, None, "exit_missed")]


def test_two_way_lane_counts_in_as_entry_out_as_exit(store):
    a_in = passage(store, "A123BC77", 0, channel=1)
    passage(store, "A123BC77", 1, channel=1, movement=MovementType.TRY_OUT)
    passage(store, "A123BC77", 2, channel=2, movement=MovementType.OUT)
    a_out = passage(store, "A123BC77", 3, channel=1,
                    movement=MovementType.OUT)
    assert visits(store) == [("A123BC77", a_in, a_out, "left")]


def test_exit_in_range_is_paired_with_the_entry_before_it(store):
    a_in = passage(store, "A123BC77", 0)
    a_out = passage(store, "A123BC77", 120, zone=1)
    b_in = passage(store, "E777KX199", 100)
    b_out = passage(store, "E777KX199", 200, zone=1)
    assert visits(store, 110, 130) == [("A123BC77", a_in, a_out, "left")]
    assert visits(store, 90, 110) == [("E777KX199", b_in, b_out, "left")]
    assert visits(store, 90, 110, lookAhead=False) == [
        ("E777KX199", b_in, None, "inside")]


def test_entries_per_hour_count_entries_only(store):
    for minute in (0, 10, 70, 75, 80):
        passage(store, "P%dX" % minute, minute)
    passage(store, "P0X", 20, zone=1)
    report = visitReport(store.db, GATES, T0, T0 + 2 * HOUR_MS - 1)
    hour0 = T0 - T0 % HOUR_MS
    counts = dict(report.entriesPerHour)
    assert counts[hour0 + HOUR_MS] + counts[hour0] == 5
    assert sum(counts.values()) == 5


def test_no_zone_with_a_role_means_no_visits(store):
    passage(store, "A123BC77", 0)
    assert visitReport(store.db, {(0, 0): "none"}, T0 - MIN,
                       T0 + MIN).visits == []


@pytest_twisted.inlineCallbacks
def test_api_answers_visits_inside_and_long_stays(journalSite):
    journal, get = journalSite
    settings = journalSite.settings
    settings.replace(settings.current.withChanges(
        {"Zone:0:0.Role": "entry", "Zone:0:1.Role": "exit"}))
    journal.clock.advance((T0 + 600 * MIN) / 1000)
    for plate, minute, zone in (("A123BC77", 0, 0), ("E777KX199", 10, 0),
                                ("A123BC77", 20, 1), ("K001OO50", 590, 0)):
        journal.publish(PlateEvent(
            state=EventState.LOST, runtimeId=minute, channel=0, zone=zone,
            plate=plate, rawPlate=plate, frameTimeMs=T0 + minute * MIN))
    yield journal.whenIdle()
    code, _, body = yield get("/api/visits/inside")
    doc = json.loads(body)
    assert code == 200 and doc["count"] == 2
    assert [(v["plate"], v["left"], v["durationSec"])
            for v in doc["visits"]] == [("K001OO50", None, 600),
                                        ("E777KX199", None, 590 * 60)]
    code, _, body = yield get("/api/visits/inside?longer_than=3600")
    assert [v["plate"] for v in json.loads(body)["visits"]] == ["E777KX199"]
    code, _, body = yield get("/api/visits?plate=a123bc77")
    doc = json.loads(body)
    assert doc["count"] == 1
    visit = doc["visits"][0]
    assert (visit["entered"], visit["left"], visit["durationSec"],
            visit["status"]) == (T0, T0 + 20 * MIN, 1200, "left")
    assert visit["entryId"] == 1 and visit["exitId"] == 3
    assert sum(h["entries"] for h in doc["entriesPerHour"]) == 1
    code, _, body = yield get("/api/visits?open=1")
    assert json.loads(body)["count"] == 2
    code, _, body = yield get("/api/visits?from=2026-01-02T00:00:00Z"
                              "&to=2026-01-01T00:00:00Z")
    assert code == 400 and "wrong way" in json.loads(body)["errors"]["to"]
    code, _, body = yield get("/api/visits?from=0&to=" + str(40 * 86400000))
    assert code == 400 and "31 days" in json.loads(body)["errors"]["to"]
