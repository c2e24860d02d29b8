"""
The one wiring (numberok.build): what C{twistd numberok-tcp} starts, in which
order it binds and starts, and the written shutdown sequence.
"""

from __future__ import annotations

import socket

import pytest
import pytest_twisted
from twisted.application.service import Service

from conftest import LOOPBACK_ANY_PORT, bounded, getReactor
from numberok.build import Endpoints, buildServer
from numberok.listening import CannotListen
from numberok.settings import Settings


class RecordingSource(Service):
    """A read source that remembers its sink and when it ran."""

    def __init__(self, sink, journal: list) -> None:
        self.sink = sink
        self.journal = journal

    def startService(self) -> None:
        Service.startService(self)
        self.journal.append("source started")

    def stopService(self):
        Service.stopService(self)
        self.journal.append("source stopped")


def test_sources_get_the_analytics_as_their_sink_when_built():
    made: list = []
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                              admin=None),
        sources=[lambda sink, reactor, metrics:
                 made.append(RecordingSource(sink, [])) or made[-1]])
    assert made[0].sink is server.analytics
    assert server.sources == made


def test_a_port_that_cannot_be_bound_stops_the_start_before_any_thread():
    journal: list = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = "tcp:%d:interface=127.0.0.1" % (taken.getsockname()[1],)
        server = buildServer(
            Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                                  admin=busy),
            sources=[lambda sink, reactor, metrics:
                     RecordingSource(sink, journal)])
        with pytest.raises(CannotListen) as raised:
            server.privilegedStartService()
    assert str(raised.value).startswith("numberok: cannot listen on %s: "
                                        % (busy,))
    assert not server.screenshots.running
    assert journal == []
    # The port bound before the failing one is not left open.
    server.eventPort.stopService()


@pytest_twisted.inlineCallbacks
def test_shutdown_follows_the_written_sequence(tmp_path):
    order: list[str] = []
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT,
                              ingest=LOOPBACK_ANY_PORT,
                              admin=LOOPBACK_ANY_PORT),
        reactor=getReactor(), journalPath=str(tmp_path / "journal"),
        sources=[lambda sink, reactor, metrics:
                 RecordingSource(sink, order)])
    server.privilegedStartService()
    server.startService()
    assert order == ["source started"]

    def recordStop(name: str, part) -> None:
        stop = part.stopService

        def stopping():
            order.append(name)
            return stop()
        part.stopService = stopping

    for name in ("admin", "ingest", "analytics", "journal", "eventPort",
                 "publisher", "screenshots"):
        recordStop(name, getattr(server, name))
    drain = server.publisher.drain

    def draining(timeout):
        order.append("publisher drain")
        return drain(timeout)
    server.publisher.drain = draining

    yield bounded(server.stopService(), 10)
    assert order[1:3] in (["admin", "source stopped"],
                          ["source stopped", "admin"])
    assert order[3:8] == ["ingest", "analytics", "journal", "eventPort",
                          "publisher drain"]
    # Then the rest; the publisher (whose own stop drains again, a no-op
    # by now) before the screenshot threads it may still wait on.
    rest = order[8:]
    assert rest.index("publisher") < rest.index("screenshots")
    assert not any(part.running for part in server)
