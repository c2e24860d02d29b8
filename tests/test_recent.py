"""
The admin page's last events through the real C{/api/events} resource tree:
one id scheme per path (journal ids for recorded rows, live ids for the
others), the plate crop as the thumbnail with the frame on click, and no
picture URL for what is no longer kept.
"""

from __future__ import annotations

import io
import json

import pytest_twisted
from PIL import Image
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Site

from helpers import makeEvent
from numberok.analytics import EventFanout
from numberok.events import EventState
from numberok.journal import Journal
from numberok.metrics import Metrics
from numberok.settings import Settings, SettingsStore
from numberok.web.auth import Sessions
from numberok.web.gate import Gate
from numberok.web.recent import RecentEvents, eventsResource


def timeout(d, seconds=10):
    from twisted.internet import reactor
    return d.addTimeout(seconds, reactor)


def jpeg(size=(1280, 720)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (90, 90, 90)).save(out, "JPEG")
    return out.getvalue()


class Served:
    """The events tree on a loopback port, and a GET helper."""

    def __init__(self, journal, recent) -> None:
        from twisted.internet import reactor
        from twisted.web.client import Agent
        root, api = Resource(), Resource()
        root.putChild(b"api", api)
        # No password set: the gate lets loopback requests in.
        gate = Gate(SettingsStore(Settings()), Sessions(reactor), None)
        api.putChild(b"events", eventsResource(journal, recent, gate))
        self.port = reactor.listenTCP(0, Site(root), interface="127.0.0.1")
        self.base = "http://127.0.0.1:%d" % (self.port.getHost().port,)
        self.agent = Agent(reactor)

    def get(self, path):
        from twisted.web.client import readBody
        d = self.agent.request(b"GET", (self.base + path).encode())
        d.addCallback(lambda r: readBody(r).addCallback(
            lambda body: (r.code, body)))
        return timeout(d)


@pytest_twisted.inlineCallbacks
def test_recent_rows_use_journal_ids_once_recorded_and_live_ids_before(
        tmp_path):
    from twisted.internet import reactor
    metrics = Metrics()
    journal = Journal(str(tmp_path / "j"), clock=Clock(), metrics=metrics)
    recent = RecentEvents(reactor=reactor, journal=journal, metrics=metrics)
    journal.startService()
    recent.startService()
    served = Served(journal, recent)
    sink = EventFanout(journal, recent)
    frame = jpeg()
    try:
        sink.publish(makeEvent(EventState.DETECTED, runtimeId=1, frame=frame,
                               bbox=(600, 400, 100, 25)))
        sink.publish(makeEvent(EventState.LOST, runtimeId=1, frame=frame,
                               bbox=(600, 400, 100, 25), eventTimeMs=1_764_000_009_000))
        yield timeout(journal.whenIdle())
        yield timeout(recent.threads.run(lambda: None))
        code, body = yield served.get("/api/events/recent")
        lostRow, detectedRow = json.loads(body)["events"]

        assert (lostRow["id"], lostRow["state"]) == (1, "Lost")
        assert lostRow["time_ms"] == 1_764_000_009_000
        assert lostRow["frame_time_ms"] == 1_764_000_000_000
        assert lostRow["thumbnail"] == "/api/events/1/plate.jpg"
        assert lostRow["picture"] == "/api/events/1/screenshot.jpg"
        code, crop = yield served.get(lostRow["thumbnail"])
        assert code == 200 and Image.open(io.BytesIO(crop)).size[0] >= 160
        code, data = yield served.get(lostRow["picture"])
        assert (code, data) == (200, frame)

        live = detectedRow["live_id"]
        assert detectedRow["id"] is None
        assert detectedRow["thumbnail"] == (
            "/api/events/live/%d/thumbnail" % (live,))
        code, crop = yield served.get(detectedRow["thumbnail"])
        assert code == 200 and Image.open(io.BytesIO(crop)).size[0] >= 160
        code, picture = yield served.get(detectedRow["picture"])
        assert code == 200
        assert max(Image.open(io.BytesIO(picture)).size) <= 960
    finally:
        yield served.port.stopListening()
        yield timeout(recent.stopService())
        yield timeout(journal.stopService())


@pytest_twisted.inlineCallbacks
def test_rows_dropped_from_the_ring_get_no_url_and_their_paths_answer_404():
    from twisted.internet import reactor
    recent = RecentEvents(size=2, reactor=reactor)
    recent.startService()
    served = Served(None, recent)
    try:
        for i in range(3):
            recent.publish(makeEvent(runtimeId=i, frame=jpeg((320, 240))))
        yield timeout(recent.threads.run(lambda: None))
        rows = recent.document()["events"]
        assert [r["live_id"] for r in rows] == [3, 2]
        assert all(r["thumbnail"] for r in rows)
        code, body = yield served.get("/api/events/live/1/thumbnail")
        assert code == 404 and "live_id" in json.loads(body)["errors"]
        code, body = yield served.get("/api/events?since_id=0")
        assert code == 404 and "journal" in json.loads(body)["errors"]
        code, body = yield served.get("/api/events/live/x/thumbnail")
        assert code == 404 and "path" in json.loads(body)["errors"]
    finally:
        yield served.port.stopListening()
        yield timeout(recent.stopService())


def test_thumbnails_beyond_the_queue_are_skipped_and_counted():
    from twisted.internet import reactor
    recent = RecentEvents(reactor=reactor)
    recent.maxPending = 0
    recent.startService()
    try:
        recent.publish(makeEvent(runtimeId=1, frame=jpeg((64, 48))))
        assert recent.metrics.value(
            "numberok_recent_thumbnails_skipped_total") == 1
        assert recent.document()["events"][0]["thumbnail"] is None
    finally:
        recent.threads.stop()
