"""
Graceful shutdown: every active track ends as a Lost event that
reaches the connected clients and the journal before the server is gone;
clients that do not read cannot hold the shutdown past its grace period.
"""

from __future__ import annotations

import json
import signal
import socket
import time

import pytest
import pytest_twisted

from numberok import wire
from conftest import bounded, connectTo as connect, subscribedCollectors, waitFor
from helpers import Silent, closedFor, makeEvent

PLATES = ["A123BC77", "K777KK99", "M001OP50"]


def reads(plates, channel=0):
    return b"".join(json.dumps({"plate": p, "channel": channel}).encode()
                    + b"\n" for p in plates)


@pytest_twisted.inlineCallbacks
def test_stop_sends_every_active_track_as_lost_to_clients_and_journal(
        server, tmp_path):
    s = server(journalPath=tmp_path / "journal",
               **{"Analytics.SkipFirstResults": "0"})
    [reader] = yield subscribedCollectors(s, 1)
    stalled = Silent(subscribe=True, stall=True)
    yield connect(s.port, stalled)
    recognizer = Silent(stall=False)
    yield connect(s.ingestPort, recognizer)
    for i, plate in enumerate(PLATES):
        recognizer.transport.write(reads([plate], channel=i))
    yield waitFor(lambda: len(reader.ids) == len(PLATES))  # Detected
    assert len(s.analytics.activeTracks()) == len(PLATES)
    active = sorted(t.runtimeId for t in s.analytics.activeTracks())

    yield s.stop()
    # What the server wrote before closing reaches the client a turn later.
    yield bounded(reader.closed, 5)

    lost = sorted(i for i, state in reader.states if state == "Lost")
    assert lost == active
    # A client that does not read does not see its close either: judge
    # from the server's side.
    assert s.factory.connections() == []
    # The ingest port aborted the recognizer (the client side hears of it
    # a reactor turn later).
    yield bounded(recognizer.closed, 5)
    # Only the client that never reads may be aborted.
    assert closedFor(s.factory, "shutdown_aborted") <= 1
    # The journal drained before it closed: read the file back.
    from numberok.journal import Journal
    again = Journal(str(tmp_path / "journal"))
    again.startService()
    try:
        page = yield bounded(again.since(0, 100))
    finally:
        yield bounded(again.stopService())
    assert sorted(e.runtimeId for e in page.entries) == active
    assert {e.state for e in page.entries} == {"Lost"}


@pytest_twisted.inlineCallbacks
def test_shutdown_of_a_client_that_never_reads_ends_within_the_grace(server):
    s = server()
    s.root.shutdownGrace = 0.5
    stalled = Silent(subscribe=True, stall=True)
    yield connect(s.port, stalled)
    yield waitFor(lambda: s.publisher.subscriptions())
    # Fill its socket, the kernel's buffers and the server's: tens of MB
    # (long texts), more than the kernel takes on its behalf.
    from numberok.events import EventState
    for i in range(3000):
        s.publisher.publish(makeEvent(EventState.LOST, runtimeId=i,
                                      plate="A%07d" % i + "B" * 4000))
    s.publisher.flushAll()
    yield s.stop()
    assert s.factory.connections() == []
    assert closedFor(s.factory, "shutdown_aborted") == 1


# -- a real twistd process --------------------------------------------------

def _tapWiresTheJournal() -> bool:
    from numberok import tap
    return any(o[0] == "journal" for o in tap.Options.optParameters)


class _Reader:
    """A blocking NumberOk client on a plain socket, reading in a thread."""

    def __init__(self, port: int) -> None:
        import threading
        self.sock = socket.create_connection(("127.0.0.1", port), 5)
        self.sock.sendall(wire.subscribePacket())
        self.events: list[dict] = []
        self.closed = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        decoder = wire.PacketDecoder(allowedTypes=[wire.PT_EVENT])
        self.sock.settimeout(30)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for packet in decoder.feed(data):
                    pairs, _ = wire.decodeEventData(packet.data)
                    self.events.append(dict(pairs))
        except OSError:
            pass
        finally:
            self.closed.set()

    def waitFor(self, predicate, timeout=15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.events):
            assert time.monotonic() < deadline, self.events
            time.sleep(0.05)


def test_sigterm_to_twistd_sends_active_tracks_as_lost_first(
        twistdServer, tmp_path):
    journal = tmp_path / "journal"
    args = ["--journal", str(journal)] if _tapWiresTheJournal() else []
    server = twistdServer(
        settings="[Analytics]\nSkipFirstResults = 0\n", args=args)
    server.waitForPort(server.eventPort)
    reader = _Reader(server.eventPort)
    server.waitForLog("subscribed")
    answer = server.sendReads([json.dumps({"plate": p, "channel": i}).encode()
                               for i, p in enumerate(PLATES)])
    assert not answer  # no line refused
    reader.waitFor(lambda ev: len(ev) == len(PLATES))
    detected = sorted(e["RuntimeID"] for e in reader.events)

    # A graceful stop by a signal ends by re-raising that signal, so that
    # the exit status still says "terminated" (Twisted's runner does so).
    assert server.stop(signal.SIGTERM) in (0, -signal.SIGTERM)
    server.waitForLog("sent as Lost")
    assert reader.closed.wait(5)
    lost = sorted(e["RuntimeID"] for e in reader.events
                  if e["State"] == "Lost")
    assert lost == detected
    if not args:
        pytest.skip("tap.py does not wire the journal; "
                    "client part passed")
    import sqlite3
    db = sqlite3.connect(str(journal / "events.sqlite"))
    rows = sorted(str(r[0]) for r in db.execute(
        "SELECT runtime_id FROM events WHERE state = 'Lost'"))
    assert rows == detected
