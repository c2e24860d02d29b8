"""
The one wiring (numberok.build): what C{twistd numberok-tcp} starts, in which
order it binds and starts, and the written shutdown sequence.
"""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest
import pytest_twisted
from twisted.application.service import Service
from twisted.web.resource import getChildForRequest
from zope.interface import implementer

from conftest import LOOPBACK_ANY_PORT, bounded, getReactor
from helpers import makeEvent
from numberok.build import PARTS, Endpoints, buildServer
from numberok.interfaces import IEventSink
from numberok.listening import CannotListen
from numberok.parts import Part, Phase, Role
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
        sources=[lambda context:
                 made.append(RecordingSource(context.reads, [])) or made[-1]])
    assert made[0].sink is server.analytics
    assert server.sources == made


def test_children_start_by_role_so_a_late_output_still_starts_before_sources(
        tmp_path):
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT,
                              ingest=LOOPBACK_ANY_PORT,
                              admin=LOOPBACK_ANY_PORT),
        journalPath=str(tmp_path / "journal"),
        sources=[lambda context: RecordingSource(context.reads, [])],
        parts=(*PARTS, Part("added", Role.OUTPUT, Phase.OUTPUTS,
                            lambda context: RecordingPart("added", []))))
    assert [child.name for child in server] == [
        "memory", "screenshots", "publisher", "analytics", "journal",
        "recent", "lists", "webhooks", "gates", "added", "eventPort",
        "ingest", "admin", "cameras", None]


def test_a_port_that_cannot_be_bound_stops_the_start_before_any_thread():
    journal: list = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = "tcp:%d:interface=127.0.0.1" % (taken.getsockname()[1],)
        server = buildServer(
            Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                                  admin=busy),
            sources=[lambda context:
                     RecordingSource(context.reads, journal)])
        with pytest.raises(CannotListen) as raised:
            server.privilegedStartService()
    assert str(raised.value).startswith("numberok: cannot listen on %s: "
                                        % (busy,))
    assert not server.screenshots.running
    assert journal == []
    # The port bound before the failing one is not left open.
    server.eventPort.stopService()


class RecordingPart(Service):
    """A part registered by a test: writes down when it stops."""

    def __init__(self, name: str, journal: list) -> None:
        self.label = name
        self.journal = journal

    def stopService(self):
        Service.stopService(self)
        self.journal.append(self.label)


@implementer(IEventSink)
class EventList(Service):
    """An output registered by a test: keeps the events it is handed."""

    def __init__(self) -> None:
        self.events: list = []

    def publish(self, event) -> None:
        self.events.append(event)


RECORDED_PHASES = {
    "admin": Phase.SOURCES, "source stopped": Phase.SOURCES,
    "ingest": Phase.INGEST, "analytics": Phase.ANALYTICS,
    "journal": Phase.JOURNAL, "eventPort": Phase.EVENT_PORT,
    "publisher drain": Phase.PUBLISHER_DRAIN,
    "publisher": Phase.REST, "screenshots": Phase.REST}
"""The parts whose stop the tests write down, with the phase each stops
in (the publisher drains in its phase and stops with the rest)."""


def startRecorded(tmp_path, order: list, parts=PARTS):
    """The real server with every port, a journal and one source, started,
    its parts' stops written to C{order}."""
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT,
                              ingest=LOOPBACK_ANY_PORT,
                              admin=LOOPBACK_ANY_PORT),
        reactor=getReactor(), journalPath=str(tmp_path / "journal"),
        sources=[lambda context:
                 RecordingSource(context.reads, order)],
        parts=parts)
    server.privilegedStartService()
    server.startService()

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
    return server


@pytest_twisted.inlineCallbacks
def test_shutdown_follows_the_written_sequence(tmp_path):
    order: list[str] = []
    server = startRecorded(tmp_path, order)
    assert order == ["source started"]

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


@pytest.mark.parametrize("phase", list(Phase), ids=lambda p: p.name)
@pytest_twisted.inlineCallbacks
def test_a_part_registered_with_a_phase_stops_in_that_phase(tmp_path,
                                                             phase):
    order: list[str] = []
    added = Part("added", Role.OUTPUT, phase,
                 lambda context: RecordingPart("added", order))
    server = startRecorded(tmp_path, order, parts=(*PARTS, added))
    assert server.added.running

    yield bounded(server.stopService(), 10)
    # The publisher's own stop drains again, with the rest: only first
    # stops count.
    firstStops = list(dict.fromkeys(order[1:]))
    phases = [phase if name == "added" else RECORDED_PHASES[name]
              for name in firstStops]
    assert order.count("added") == 1
    assert phases == sorted(phases), " ".join(order)
    assert not server.added.running


class FailingPart(Service):
    """A part registered by a test whose stop fails."""

    def stopService(self):
        Service.stopService(self)
        raise RuntimeError("stuck")


@pytest_twisted.inlineCallbacks
def test_a_part_whose_stop_fails_is_logged_and_the_shutdown_goes_on(
        tmp_path):
    from twisted.logger import globalLogPublisher
    order: list[str] = []
    failing = Part("failing", Role.OUTPUT, Phase.INGEST,
                   lambda context: FailingPart())
    server = startRecorded(tmp_path, order, parts=(*PARTS, failing))
    logged: list = []
    globalLogPublisher.addObserver(logged.append)
    try:
        yield bounded(server.stopService(), 10)
    finally:
        globalLogPublisher.removeObserver(logged.append)
    [failure] = [e["log_failure"] for e in logged if "log_failure" in e]
    assert failure.check(RuntimeError)
    assert order[-1] == "screenshots" and "publisher drain" in order
    assert not any(part.running for part in server)


def test_a_part_that_takes_events_receives_every_event_of_the_analytics():
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                              admin=None),
        parts=(*PARTS, Part("tap", Role.OUTPUT, Phase.OUTPUTS,
                            lambda context: EventList())))
    event = makeEvent()
    server.analytics.sink.publish(event)
    assert server.tap.events == [event]
    assert server.tap.parent is server


@implementer(IEventSink)
class Marking:
    """A stage registered by a test: hands on each event with its plate
    marked."""

    def __init__(self, downstream) -> None:
        self.downstream = downstream

    def publish(self, event) -> None:
        self.downstream.publish(replace(event, plate=event.plate + "*"))


def addMarking(context) -> None:
    context.events.addStage(Marking)


def test_a_stage_added_by_a_later_part_sees_the_analytics_events_first():
    # Registered after the analytics (and after the sink): the analytics
    # hold the event path, not a copy of its head.
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                              admin=None),
        parts=(*PARTS, Part("tap", Role.OUTPUT, Phase.OUTPUTS,
                            lambda context: EventList()),
               Part(None, Role.CORE, Phase.REST, addMarking)))
    server.analytics.sink.publish(makeEvent(plate="A123BC77"))
    assert [e.plate for e in server.tap.events] == ["A123BC77*"]
    # Other sites' events go to the fan-out itself.
    server.analytics.sink.fanout.publish(makeEvent(plate="B456CD77"))
    assert [e.plate for e in server.tap.events][1:] == ["B456CD77"]


def test_a_switched_off_part_is_none_and_a_missing_one_is_an_error():
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                              admin=None))
    assert (server.ingest, server.admin, server.cameras,
            server.mqttPublisher) == (None, None, None, None)
    with pytest.raises(AttributeError):
        server.noSuchPart


def test_the_camera_push_is_served_at_the_path_its_resource_declares():
    from twisted.web.test.requesthelper import DummyRequest

    from numberok.web.cameras import HikvisionResource
    server = buildServer(
        Settings(), Endpoints(events=LOOPBACK_ANY_PORT, ingest=None,
                              admin=LOOPBACK_ANY_PORT))
    path = HikvisionResource.path
    request = DummyRequest(path.strip(b"/").split(b"/"))
    served = getChildForRequest(server.admin.resource, request)
    assert served is server.cameras.resource
    site = server.admin.site
    assert site.bodyLimits[path] == HikvisionResource.maxBody
    assert path in site.tokenPaths
