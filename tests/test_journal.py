"""
The event journal on a real disk, with its real thread: restart keeps the
events, C{since_id} paging is gap-free, retention removes old rows and their
files, and an unusable path does not stop live delivery.  Time comes from a
L{Clock}; the thread hand-over runs on the test's reactor.
"""

from __future__ import annotations

import os

import pytest
import pytest_twisted
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from helpers import makeEvent
from numberok.analytics import EventFanout
from numberok.events import EventState, MovementType
from numberok.interfaces import IEventSink
from numberok.journal import Journal, JournalUnavailable
from numberok.metrics import Metrics
from numberok.publisher import EventPublisher
from numberok.settings import SettingsStore

JPEG = b"\xff\xd8\xff\xe0" + b"x" * 1000 + b"\xff\xd9"
DAY = 86400.0


def timeout(d, seconds=10):
    from twisted.internet import reactor
    return d.addTimeout(seconds, reactor)


def lost(runtimeId, **kwargs):
    return makeEvent(EventState.LOST, runtimeId=runtimeId, **kwargs)


_running: list[Journal] = []


@pytest.fixture(autouse=True)
def stopJournals():
    """
    Stop every journal a test started, also when it failed: a journal's
    thread left running would keep the test process from exiting.
    """
    yield
    while _running:
        journal = _running.pop()
        journal._threads.stop()


def started(path, clock=None, pruneInterval=1e9, **kwargs) -> Journal:
    """A running journal; retention runs only when a test asks for it."""
    journal = Journal(str(path), clock=clock or Clock(), metrics=Metrics(),
                      **kwargs)
    journal.pruneInterval = pruneInterval
    journal.startService()
    _running.append(journal)
    return journal


@pytest_twisted.inlineCallbacks
def test_journal_provides_event_sink(tmp_path):
    journal = started(tmp_path / "j")
    assert verifyObject(IEventSink, journal)
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_lost_event_is_recorded_with_every_field_and_its_frame(tmp_path):
    clock = Clock()
    clock.advance(1_764_000_000)
    journal = started(tmp_path / "j", clock)
    event = lost(42, frame=JPEG, movement=MovementType.IN, checkpoint=3,
                 confidence=0.875, reads=7, processTimeMs=31)
    journal.publish(event)
    yield timeout(journal.whenIdle())
    page = yield timeout(journal.since(0, 10))
    [entry] = page.entries
    assert (entry.state, entry.runtimeId, entry.plate, entry.rawPlate,
            entry.frameTimeMs, entry.movement, entry.checkpoint,
            entry.confidence, entry.reads, entry.processTimeMs,
            entry.channel, entry.zone) == (
        "Lost", 42, "A123BC77", "A123BC77", 1764000000000, "In", 3, 0.875,
        7, 31, 0, 0)
    assert entry.recordedMs == 1_764_000_000_000
    with open(journal.screenshotPath(entry), "rb") as f:
        assert f.read() == JPEG
    assert entry.toJSON("/s/1.jpg")["screenshot"] == "/s/1.jpg"
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_only_lost_events_are_recorded(tmp_path):
    journal = started(tmp_path / "j")
    journal.publish(makeEvent(EventState.DETECTED, runtimeId=1))
    journal.publish(makeEvent(EventState.UPDATED, runtimeId=1))
    journal.publish(lost(1))
    yield timeout(journal.whenIdle())
    assert (yield timeout(journal.count())) == 1
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_frame_that_is_not_jpeg_is_not_stored_and_is_counted(tmp_path):
    journal = started(tmp_path / "j")
    journal.publish(lost(1, frame=b"GIF89a not a jpeg"))
    yield timeout(journal.whenIdle())
    [entry] = (yield timeout(journal.since(0))).entries
    assert not entry.hasScreenshot
    assert entry.toJSON("/x")["screenshot"] is None
    assert journal.metrics.value("numberok_journal_pictures_skipped_total",
                                 reason="not_jpeg") == 1
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_restart_keeps_the_events_and_ids_keep_growing(tmp_path):
    journal = started(tmp_path / "j")
    for i in range(3):
        journal.publish(lost(i, frame=JPEG))
    yield timeout(journal.stopService())

    again = started(tmp_path / "j")
    again.publish(lost(99))
    yield timeout(again.whenIdle())
    recent = yield timeout(again.recent(10))
    assert [e.runtimeId for e in recent] == [99, 2, 1, 0]
    assert [e.id for e in recent] == [4, 3, 2, 1]
    yield timeout(again.stopService())


@pytest_twisted.inlineCallbacks
def test_since_id_paging_sees_every_row_exactly_once(tmp_path):
    journal = started(tmp_path / "j")
    seen = []
    sinceId = 0
    published = 0
    # Rows arrive between pages; paging must neither skip nor repeat.
    for batch in range(6):
        for _ in range(7):
            journal.publish(lost(published))
            published += 1
        page = yield timeout(journal.since(sinceId, 5))
        seen += [e.runtimeId for e in page.entries]
        if page.entries:
            sinceId = page.entries[-1].id
    while True:
        page = yield timeout(journal.since(sinceId, 5))
        if not page.entries:
            break
        seen += [e.runtimeId for e in page.entries]
        sinceId = page.entries[-1].id
    assert seen == list(range(published))
    assert page.lastId == published
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_retention_by_age_removes_old_rows_and_their_files(tmp_path):
    clock = Clock()
    journal = started(tmp_path / "j", clock, keepDays=2)
    journal.publish(lost(1, frame=JPEG))
    yield timeout(journal.whenIdle())
    clock.advance(1.5 * DAY)
    journal.publish(lost(2, frame=JPEG))
    yield timeout(journal.whenIdle())
    first, second = (yield timeout(journal.since(0))).entries
    old = journal.screenshotPath(first)
    assert os.path.exists(old)

    clock.advance(0.75 * DAY)  # row 1 is 2.25 days old, row 2 0.75
    removed = yield timeout(journal.prune())
    assert removed == 1
    assert not os.path.exists(old)
    assert os.path.exists(journal.screenshotPath(second))
    page = yield timeout(journal.since(0))
    assert [e.runtimeId for e in page.entries] == [2]
    assert page.oldestId == 2  # a client at since_id=0 can tell it missed one
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_retention_by_size_removes_the_oldest_rows_first(tmp_path):
    big = b"\xff\xd8" + os.urandom(100_000)
    journal = started(tmp_path / "j", maxMegabytes=0.5)
    for i in range(10):  # about 1 MB of screenshots
        journal.publish(lost(i, frame=big))
    yield timeout(journal.whenIdle())
    yield timeout(journal.prune())
    total = yield timeout(journal.totalBytes())
    assert total <= 0.5 * 1024 * 1024
    page = yield timeout(journal.since(0))
    kept = [e.runtimeId for e in page.entries]
    assert kept and kept == list(range(10 - len(kept), 10))
    files = os.listdir(tmp_path / "j" / "screenshots")
    assert sorted(files) == sorted(e.screenshotFile for e in page.entries)
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_retention_runs_on_its_own_every_interval(tmp_path):
    clock = Clock()
    journal = started(tmp_path / "j", clock, keepDays=1,
                      pruneInterval=3600.0)
    journal.publish(lost(1))
    yield timeout(journal.whenIdle())
    clock.advance(DAY)
    clock.advance(3600.0)
    yield timeout(journal.whenIdle())
    assert journal.metrics.value("numberok_journal_pruned_total") == 1
    yield timeout(journal.stopService())


def failures(journal) -> float:
    """Events (and starts) the journal could not record, any reason."""
    return sum(journal.metrics.value("numberok_journal_failures_total",
                                     reason=reason)
               for reason in ("disk_full", "read_only", "overflow", "closed",
                              "other"))


def _unusableDirectory(tmp_path):
    """
    A journal path that cannot be created even as root: its parent is a
    regular file.
    """
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    return blocker / "journal"


@pytest_twisted.inlineCallbacks
def test_unusable_journal_path_does_not_stop_live_delivery(tmp_path):
    from twisted.internet import reactor
    from twisted.internet.testing import StringTransport

    from helpers import connect
    from numberok.server import NumberOkFactory
    from numberok import wire

    journal = started(_unusableDirectory(tmp_path))
    yield timeout(journal.whenIdle())
    assert not journal.isOpen
    assert failures(journal) == 1
    store = SettingsStore()
    publisher = EventPublisher(store, reactor=reactor)
    factory = NumberOkFactory(store, publisher, reactor=reactor)
    protocol, transport = connect(factory)
    protocol.dataReceived(wire.subscribePacket())
    sink = EventFanout(journal, publisher)
    sink.publish(lost(7))
    assert isinstance(transport, StringTransport)
    assert b"RuntimeID=7" in transport.value()
    assert failures(journal) == 2
    with pytest.raises(JournalUnavailable):
        yield timeout(journal.since(0))
    protocol.setTimeout(None)
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_write_failure_after_open_is_counted_and_the_next_write_works(tmp_path):
    journal = started(tmp_path / "j")
    yield timeout(journal.whenIdle())
    shots = tmp_path / "j" / "screenshots"
    # A file where the screenshot folder should be: the picture write fails
    # even as root; the row is kept without its picture.
    journal.publish(lost(1))
    yield timeout(journal.whenIdle())
    os.rmdir(shots)
    shots.write_bytes(b"")
    journal.publish(lost(2, frame=JPEG))
    yield timeout(journal.whenIdle())
    assert journal.metrics.value("numberok_journal_pictures_skipped_total",
                                 reason="other") == 1
    os.remove(shots)
    os.mkdir(shots)
    journal.publish(lost(3, frame=JPEG))
    yield timeout(journal.whenIdle())
    page = yield timeout(journal.since(0))
    assert [(e.runtimeId, e.hasScreenshot) for e in page.entries] == [
        (1, False), (2, False), (3, True)]
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_journal_that_opens_later_records_again(tmp_path):
    path = _unusableDirectory(tmp_path)
    journal = started(path)
    yield timeout(journal.whenIdle())
    assert not journal.isOpen
    os.remove(path.parent)  # the operator fixes the path
    yield timeout(journal.prune())
    assert journal.isOpen
    journal.publish(lost(5))
    yield timeout(journal.whenIdle())
    assert journal.metrics.value("numberok_journal_recorded_total") == 1
    yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_api_pages_events_with_screenshot_urls_and_serves_the_file(tmp_path):
    import json

    from twisted.internet import reactor
    from twisted.web.client import Agent, readBody
    from twisted.web.resource import Resource
    from twisted.web.server import Site

    from conftest import openGate

    from numberok.journal.resource import JournalResource

    journal = started(tmp_path / "j")
    for i in range(5):
        journal.publish(lost(i, frame=JPEG if i == 3 else None))
    yield timeout(journal.whenIdle())
    root, api = Resource(), Resource()
    root.putChild(b"api", api)
    api.putChild(b"events", JournalResource(journal, openGate(),
                                            "/api/events"))
    port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
    base = "http://127.0.0.1:%d" % (port.getHost().port,)
    agent = Agent(reactor)

    def get(path):
        d = agent.request(b"GET", (base + path).encode())
        d.addCallback(lambda r: readBody(r).addCallback(
            lambda body: (r.code, body)))
        return timeout(d)
    try:
        code, body = yield get("/api/events?since_id=2&limit=2")
        doc = json.loads(body)
        assert code == 200
        assert [e["runtime_id"] for e in doc["events"]] == [2, 3]
        assert (doc["oldest_id"], doc["last_id"]) == (1, 5)
        assert doc["first_id"] == 1 and len(doc["epoch"]) == 32
        assert doc["events"][0]["screenshot"] is None
        shot = doc["events"][1]["screenshot"]
        assert shot == "/api/events/4/screenshot.jpg"
        code, body = yield get(shot)
        assert (code, body) == (200, JPEG)
        code, body = yield get("/api/events/1/screenshot.jpg")
        assert code == 404
        assert json.loads(body) == {"errors": {"id": "event 1 has no screenshot"}}
        code, body = yield get("/api/events/4/plate.jpg")
        assert code == 404 and "id" in json.loads(body)["errors"]
        code, body = yield get("/api/events/4/nothing")
        assert code == 404 and "path" in json.loads(body)["errors"]
        code, body = yield get("/api/events?since_id=x")
        assert code == 400 and "since_id" in json.loads(body)["errors"]
        code, body = yield get("/api/events?since_id=" + "9" * 5000)
        assert code == 400 and "since_id" in json.loads(body)["errors"]
        code, body = yield get("/api/events?limit=0")
        assert code == 400 and "limit" in json.loads(body)["errors"]
    finally:
        yield port.stopListening()
        yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_channel_name_is_recorded_and_an_older_journal_gains_the_column(
        tmp_path):
    import sqlite3
    path = tmp_path / "j"
    journal = started(path)
    journal.publish(lost(1))
    yield timeout(journal.whenIdle())
    yield timeout(journal.stopService())
    # The journal as the release before channel names wrote it.
    db = sqlite3.connect(str(path / "events.sqlite"))
    db.execute("ALTER TABLE events DROP COLUMN channel_name")
    db.commit()
    db.close()
    journal = started(path)
    journal.publish(lost(2, channelName="Gate north"))
    yield timeout(journal.whenIdle())
    page = yield timeout(journal.since(0, 10))
    assert [(e.runtimeId, e.channelName) for e in page.entries] == [
        (1, None), (2, "Gate north")]
    assert page.entries[1].toJSON()["channel_name"] == "Gate north"
    assert page.entries[1].toEvent().channelName == "Gate north"
    yield timeout(journal.stopService())
