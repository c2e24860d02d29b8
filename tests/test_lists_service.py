"""
L{numberok.lists.ListsService} with its real database (SQLite in its
thread): lists survive a restart, CSV import is all or nothing, export
reads back, and the passage decider counts visits once per passage and
decides once per passage.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from numberok.events import EventState, MovementType, PlateEvent
from numberok.interfaces import IEventSink
from numberok.journal.query import SearchQuery
from numberok.lists import (Entry, ListError, ListsService, PassageDecider,
                            PlateList)
from numberok.lists.accesslog import searchAccessLog
from numberok.lists.store import ListsStore
from numberok.metrics import Metrics

from conftest import bounded, getReactor, waitFor

UTC = ZoneInfo("UTC")


async def started(directory) -> ListsService:
    service = ListsService(None if directory is None else str(directory),
                           reactor=getReactor(), metrics=Metrics(), zone=UTC)
    service.startService()
    await bounded(service.ready)
    return service


async def stopped(service: ListsService) -> None:
    await bounded(service.stopService())


def plates(service: ListsService, name: str) -> list[str]:
    return sorted(k[0] for k in service.matcher.indexes[name].knowns())


@pytest_twisted.ensureDeferred
async def test_lists_and_entries_survive_a_restart(tmp_path):
    service = await started(tmp_path)
    await service.putList(PlateList("staff", "allow", 1, ("0:1",), "#00aa00"))
    await service.upsert("staff", [Entry("A123BC77", "Ivanov"),
                                   Entry("K*99", comment="fleet")])
    await stopped(service)
    assert (tmp_path / "lists.sqlite").exists()

    again = await started(tmp_path)
    try:
        assert again.getList("staff") == (
            PlateList("staff", "allow", 1, ("0:1",), "#00aa00"), 2)
        total, entries = await again.entries("staff")
        assert total == 2 and entries[0] == Entry("A123BC77", "Ivanov")
        assert again.decide("A123BC77", 0, 1).access == "granted"
    finally:
        await stopped(again)


@pytest_twisted.ensureDeferred
async def test_without_a_journal_folder_lists_live_in_memory():
    service = await started(None)
    try:
        await service.putList(PlateList("staff"))
        await service.upsert("staff", [Entry("A123BC77")])
        assert service.store.path == ":memory:"
        assert service.decide("A123BC77", 0, 0).access == "granted"
    finally:
        await stopped(service)


GOOD_CSV = ("\ufeffplate;owner;comment;validUntil;windows;visitsLeft\r\n"
            "\u0410123\u0412\u042177;\u0418\u0432\u0430\u043d\u043e\u0432;"
            "guest;2099-12-31;Mon-Fri 07:00-20:00|Sat 10:00-12:00;5\r\n"
            "B777OP199;;;;;\r\n").encode("utf-8")


@pytest_twisted.ensureDeferred
async def test_csv_with_bom_semicolons_and_cyrillic_imports_and_exports(
        tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("staff"))
        assert await service.importCSV("staff", GOOD_CSV) == 2
        total, entries = await service.entries("staff")
        assert total == 2
        # Sorted by plate: Latin before Cyrillic.
        first = entries[1]
        assert first.plate == "\u0410123\u0412\u042177"
        assert first.owner == "\u0418\u0432\u0430\u043d\u043e\u0432"
        assert [w.text for w in first.windows] == ["Mon-Fri 07:00-20:00",
                                                   "Sat 10:00-12:00"]
        assert first.visitsLeft == 5
        exported = await service.exportCSV("staff")
        assert exported.startswith(b"\xef\xbb\xbfplate;owner;")
        # What is exported imports again, unchanged.
        await service.putList(PlateList("copy"))
        await service.importCSV("copy", exported)
        assert (await service.entries("copy"))[1] == entries
    finally:
        await stopped(service)


@pytest_twisted.ensureDeferred
async def test_comma_separated_csv_without_bom_imports(tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("staff"))
        body = b"plate,owner\nA123BC77,\"Smith, J.\"\n"
        assert await service.importCSV("staff", body) == 1
        assert (await service.entries("staff"))[1] == [
            Entry("A123BC77", "Smith, J.")]
    finally:
        await stopped(service)


BAD_CSV = ("plate;owner;validUntil;visitsLeft\n"
           "X111XX11;ok;;\n"
           "*;everything;;\n"
           "A\x01B;ctl;;\n"
           "Y222YY22;past;2001-01-01;\n"
           "Z333ZZ33;visits;;-1\n"
           "X111XX11;again;;\n"
           "W444WW44;too;many;fields;here\n").encode("utf-8")


@pytest_twisted.ensureDeferred
async def test_bad_csv_reports_every_line_and_changes_nothing(tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("staff"))
        await service.upsert("staff", [Entry("OLD111")])
        with pytest.raises(ListError) as e:
            await service.importCSV("staff", BAD_CSV)
        errors = e.value.errors
        assert set(errors) == {"line 3", "line 4", "line 5", "line 6",
                               "line 7", "line 8"}
        assert "at least 2" in errors["line 3"]
        assert "control characters" in errors["line 4"]
        assert "in the past" in errors["line 5"]
        assert "visitsLeft" in errors["line 6"]
        assert "already on line 2" in errors["line 7"]
        assert "5 fields, the header has 4" in errors["line 8"]
        assert plates(service, "staff") == ["OLD111"]
        assert (await service.entries("staff"))[0] == 1
        assert service.metrics.value("numberok_list_refused_total",
                                     what="csv") == 1
    finally:
        await stopped(service)


@pytest.mark.parametrize("body, where, message", [
    (b"\xff\xfeplate\n", "body", "not UTF-8"),
    (b"", "line 1", "header line is missing"),
    (b"plate;colour\nA123BC77;red\n", "line 1", "header must name"),
    (b"owner\nSmith\n", "line 1", "plate required")])
def test_csv_that_is_not_a_list_file_says_why(body, where, message):
    from numberok.lists.csvfile import parseCSV
    with pytest.raises(ListError) as e:
        parseCSV(body, UTC, 0.0)
    assert message in e.value.errors[where]


def event(state: EventState, plate: str, runtimeId: int = 1,
          movement: MovementType = MovementType.UNDETERMINED) -> PlateEvent:
    return PlateEvent(state=state, runtimeId=runtimeId, channel=0, zone=0,
                      plate=plate, rawPlate=plate, frameTimeMs=0,
                      movement=movement)


class Collect:
    def __init__(self) -> None:
        self.events: list[PlateEvent] = []

    def publish(self, e: PlateEvent) -> None:
        self.events.append(e)


@pytest_twisted.ensureDeferred
async def test_visits_are_counted_down_once_per_in_passage(tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("guests"))
        await service.upsert("guests", [Entry("A123BC77", visitsLeft=2)])
        out = Collect()
        decider = PassageDecider(service, out)
        assert verifyObject(IEventSink, decider)
        for runtimeId in (1, 2, 3):
            decider.publish(event(EventState.DETECTED, "A123BC77", runtimeId))
            for _ in range(3):
                decider.publish(event(EventState.UPDATED, "A123BC77",
                                      runtimeId, MovementType.IN))
            decider.publish(event(EventState.LOST, "A123BC77", runtimeId,
                                  MovementType.IN))
        # Two passages used the two visits; the third found none left.
        assert [e.access for e in out.events if e.runtimeId == 1] == [
            "granted"] * 5
        assert [e.access for e in out.events if e.runtimeId == 2] == [
            "granted"] * 5
        assert {e.access for e in out.events if e.runtimeId == 3} == {
            "unknown"}
        assert decider.passages == {}
        await waitFor(lambda: service.metrics.value(
            "numberok_list_visits_counted_total") == 2)

        def stored(store: ListsStore) -> int:
            return store.entries("guests")[0].visitsLeft
        assert await service._after(stored) == 0
    finally:
        await stopped(service)


@pytest_twisted.ensureDeferred
async def test_decision_is_made_once_per_passage_and_again_for_a_new_entry(
        tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("staff", "allow", 1))
        await service.putList(PlateList("banned", "deny"))
        await service.upsert("staff", [Entry("A123BC77")])
        await service.upsert("banned", [Entry("X555XX55")])
        out = Collect()
        decider = PassageDecider(service, out)
        decider.publish(event(EventState.DETECTED, "A123BC7"))
        decider.publish(event(EventState.UPDATED, "A123BC77"))   # same entry
        decider.publish(event(EventState.UPDATED, "X555XX55"))   # another
        decider.publish(event(EventState.LOST, "X555XX55"))
        assert [(e.listPlate, e.listMatch, e.access) for e in out.events] == [
            ("A123BC77", "fuzzy:1", "granted"),
            ("A123BC77", "fuzzy:1", "granted"),
            ("X555XX55", "exact", "denied"),
            ("X555XX55", "exact", "denied")]
        assert service.metrics.value("numberok_list_decisions_total",
                                     access="granted") == 1
        assert service.metrics.value("numberok_list_decisions_total",
                                     access="denied") == 1
        await waitFor(lambda: not service._pending and not service._flushing,
                      5)
        rows = await searchAccessLog(service, SearchQuery(limit=10))
        assert [(r["plate"], r["decision"], r["action"]) for r in rows] == [
            ("X555XX55", "denied", "decision"),
            ("A123BC7", "granted", "decision")]
    finally:
        await stopped(service)


@pytest_twisted.ensureDeferred
async def test_event_of_a_zone_without_lists_carries_no_decision(tmp_path):
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("gate", scope=("5",)))
        out = Collect()
        PassageDecider(service, out).publish(event(EventState.DETECTED, "A1"))
        assert out.events[0].access is None
    finally:
        await stopped(service)


@pytest_twisted.ensureDeferred
async def test_switching_a_large_lists_distance_on_reindexes_it(
        tmp_path, monkeypatch):
    from numberok.lists import service as serviceModule
    service = await started(tmp_path)
    try:
        await service.putList(PlateList("staff"))
        await service.upsert("staff", [Entry("A%03dBC77" % n)
                                       for n in range(5, 50)])
        monkeypatch.setattr(serviceModule, "SMALL_CHANGE", 10)  # "large"
        assert service.decide("A005BX77", 0, 0).match is None
        await service.putList(PlateList("staff", distance=1))
        assert service.getList("staff")[0].distance == 1
        decision = service.decide("A005BX77", 0, 0)
        assert decision.match.plate == "A005BC77"
        assert decision.match.wire == "fuzzy:1"
        assert service.decide("A005BC77", 0, 0).match.wire == "exact"
    finally:
        await stopped(service)
