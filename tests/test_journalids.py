"""
C{JournalId} on Lost events (docs/protocol.rst): the journal id reaches a
NumberOk client with the Lost, a few milliseconds late at most, and events
keep their order around a Lost that waits.
"""

from __future__ import annotations

import pytest_twisted
from twisted.internet.task import Clock
from zope.interface import implementer
from zope.interface.verify import verifyObject

from conftest import FieldsClient, connectTo, waitFor
from helpers import makeEvent
from numberok.events import EventState, PlateRead, eventPairs
from numberok.interfaces import IEventSink
from numberok.journal import Journal
from numberok.journalids import JournalIds


@implementer(IEventSink)
class EventList:
    def __init__(self) -> None:
        self.events = []

    def publish(self, event) -> None:
        self.events.append(event)


def test_journal_ids_is_an_event_sink(tmp_path):
    assert verifyObject(IEventSink, JournalIds(EventList(), Journal(
        str(tmp_path)), Clock()))


def test_journal_id_is_the_last_pair_and_only_when_known():
    event = makeEvent(EventState.LOST, journalId=4711)
    assert eventPairs(event, 1)[-1] == ("JournalId", "4711")
    assert "JournalId" not in dict(eventPairs(makeEvent(EventState.LOST), 1))


def test_a_lost_the_journal_is_slow_for_goes_on_without_its_id_in_order(
        tmp_path):
    clock = Clock()
    sink = EventList()
    # A journal that never records (not started): the wait must end.
    ids = JournalIds(sink, Journal(str(tmp_path)), clock)
    ids.publish(makeEvent(EventState.DETECTED, 1))
    ids.publish(makeEvent(EventState.LOST, 1))
    ids.publish(makeEvent(EventState.DETECTED, 2))    # waits behind it
    assert [(e.state, e.runtimeId) for e in sink.events] == [
        (EventState.DETECTED, 1)]
    clock.advance(JournalIds.maxWait)
    assert [(e.state, e.runtimeId, e.journalId) for e in sink.events] == [
        (EventState.DETECTED, 1, None), (EventState.LOST, 1, None),
        (EventState.DETECTED, 2, None)]
    assert ids.held() == 0 and clock.getDelayedCalls() == []


@pytest_twisted.inlineCallbacks
def test_a_lost_reaches_the_client_with_its_journal_id(server, tmp_path):
    from twisted.internet import reactor
    s = server(journalPath=tmp_path / "journal", **{
        "Analytics.SkipFirstResults": "0",
        "Zone:0:0.LossIntervalSec": "0.5"})
    client = FieldsClient()
    yield connectTo(s.port, client)
    yield waitFor(lambda: s.publisher.subscriptions(), 5)
    for n, plate in enumerate(("A123BC77", "B456CE77")):
        s.analytics.addRead(PlateRead(
            plate=plate, timeMs=int(reactor.seconds() * 1000)))
        yield waitFor(lambda: len([e for e in client.events
                                   if e["State"] == "Lost"]) == n + 1, 15)
    page = yield s.journal.since(0, 10)
    byPlate = {e.plate: e.id for e in page.entries}
    for fields in client.events:
        if fields["State"] == "Lost":
            assert fields["JournalId"] == str(byPlate[fields["PlateNumber"]])
        else:
            assert "JournalId" not in fields
