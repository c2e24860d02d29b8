"""
The one place that builds a numberok server: L{buildServer} wires the parts
(sources -> analytics -> publisher, journal, recent events -> connections;
admin web; broker) for C{twistd numberok-tcp} (L{numberok.tap}), the .tac
file and the tests, so a wiring mistake cannot hide behind a test's own
copy of the wiring.

Start and stop are written out here rather than left to the order in which
children were added:

 - start: every listening port binds in C{privilegedStartService} (a port
   that cannot be bound ends the start before any thread or source runs);
   then C{startService} starts the children in order: threads and stores
   first, sources last;
 - stop: L{NumberOkServer.stopService} runs one sequence of Deferreds --
   sources, the admin web and the broker's collector (no more reads or
   events) -> ingest port -> analytics (every active track becomes Lost)
   -> the broker's publisher -> journal drains -> event port stops
   listening, publisher drains, connections close -> the rest.
   docs/architecture.rst.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.logger import Logger

from numberok.analytics import Analytics, EventFanout
from numberok.journal import Journal
from numberok.listening import ListeningService
from numberok.metrics import Metrics
from numberok.publisher import EventPublisher
from numberok.screenshots import ScreenshotService
from numberok.server import NumberOkFactory
from numberok.settings import Settings, SettingsStore
from numberok.settings.keys import (
    JOURNAL_KEEP_DAYS,
    JOURNAL_MAX_MEGABYTES,
    MQTT_BROKER,
    NETSERVER_ENABLE,
)
from numberok.sources.ingest import IngestFactory, IngestService
from numberok.web.recent import RecentEvents

SHUTDOWN_GRACE = 3.0
"""Seconds the whole shutdown may take before clients that do not read are
aborted (docs/operations.rst, "Shutdown")."""


@dataclass(frozen=True)
class Endpoints:
    """
    Where the server listens: strports descriptions; L{None} switches a
    port off.  C{events} is used even when C{[NetServer] Enable} is 0 (the
    admin page can switch it on).
    """

    events: str
    ingest: Optional[str] = "tcp:7701:interface=127.0.0.1"
    admin: Optional[str] = "tcp:8080:interface=127.0.0.1"


SourceMaker = Callable[[Any, Any, Metrics], IService]
"""Makes one read source given C{(sink, reactor, metrics)}: sources get
their sink when they are built."""


class NumberOkServer(MultiService):
    """
    The whole server.  Its parts are attributes (L{None} where switched
    off) so that the admin page, the shutdown sequence and tests reach them
    by name; each is also a child service.
    """

    log = Logger()

    def __init__(self, store: SettingsStore, metrics: Metrics,
                 reactor: Any) -> None:
        super().__init__()
        self.store = store
        self.metrics = metrics
        self.reactor = reactor
        self.shutdownGrace = SHUTDOWN_GRACE
        self.screenshots: Optional[ScreenshotService] = None
        self.publisher: Optional[EventPublisher] = None
        self.factory: Optional[NumberOkFactory] = None
        self.eventPort: Optional[ListeningService] = None
        self.journal: Optional[Journal] = None
        self.recent: Optional[RecentEvents] = None
        self.analytics: Optional[Analytics] = None
        self.ingest: Optional[IngestService] = None
        self.admin: Optional[Service] = None
        self.cameras: Optional[Service] = None
        self.mqttPublisher: Optional[Service] = None
        self.sources: list[IService] = []
        # lists / gates (numberok.lists, numberok.gates)
        self.lists: Optional[Service] = None
        self.gates: Optional[Service] = None

    def add(self, service: Any, name: Optional[str] = None) -> Any:
        """Add a child (in start order) and return it."""
        if name is not None:
            service.setName(name)
        service.setServiceParent(self)
        return service

    def stopService(self) -> defer.Deferred:
        """
        The shutdown sequence.  Each step waits for the one before; a step
        that fails is logged and the sequence goes on, so the connections
        are always closed in the end.
        """
        Service.stopService(self)
        start = self.reactor.seconds()
        stopped: set[int] = set()

        def stop(*services: Optional[IService]) -> defer.Deferred:
            waits = []
            for service in services:
                if service is None or id(service) in stopped:
                    continue
                stopped.add(id(service))
                if service.running:
                    waits.append(defer.maybeDeferred(service.stopService))
            return defer.DeferredList(waits, consumeErrors=True)

        def left() -> float:
            return max(0.25, self.shutdownGrace
                       - (self.reactor.seconds() - start))

        def drainPublisher() -> defer.Deferred:
            if self.publisher is None:
                return defer.succeed(None)
            return self.publisher.drain(left())

        def closeConnections() -> defer.Deferred:
            if self.factory is None:
                return defer.succeed(None)
            return self.factory.closeAll(left())

        steps: list[tuple[str, Callable[[], Any]]] = [
            ("sources", lambda: stop(self.admin, self.cameras,
                                     *self.sources)),
            ("ingest", lambda: stop(self.ingest)),
            ("analytics", lambda: stop(self.analytics)),
            # The broker's outbox reads the journal: it stops first, and a
            # Lost it had no time for goes out from its cursor next start.
            ("mqtt", lambda: stop(self.mqttPublisher)),
            ("journal", lambda: stop(self.journal)),
            ("event port", lambda: stop(self.eventPort)),
            ("publisher drain", drainPublisher),
            ("connections", closeConnections),
            ("the rest", lambda: stop(*reversed(list(self)))),
        ]
        d: defer.Deferred = defer.succeed(None)
        for name, step in steps:
            d.addCallback(lambda _, step=step: step())
            d.addErrback(lambda f, name=name: self.log.failure(
                "shutdown step {step} failed", f, step=name))
        return d


def buildServer(settings: Settings, endpoints: Endpoints,
                reactor: Any = None,
                settingsPath: Optional[str] = None,
                journalPath: Optional[str] = None,
                sources: Sequence[SourceMaker] = (),
                metrics: Optional[Metrics] = None,
                screenshotThreads: Optional[int] = None) -> NumberOkServer:
    """
    Build the whole server, not yet started.

    @param settings: the validated settings.
    @param settingsPath: the file the admin page saves to; L{None} keeps
        changes in memory only (tests).
    @param journalPath: the journal folder; L{None} for no journal.
    @param sources: makers of the read sources (demo, replay, watch), each
        given the analytics as its sink.
    """
    if reactor is None:
        from twisted.internet import reactor
    if metrics is None:
        metrics = Metrics()
    store = SettingsStore(settings, settingsPath)
    server = NumberOkServer(store, metrics, reactor)

    server.screenshots = server.add(ScreenshotService(
        reactor, threads=screenshotThreads, metrics=metrics), "screenshots")
    server.publisher = server.add(
        EventPublisher(store, server.screenshots, reactor=reactor,
                       metrics=metrics),
        "publisher")
    server.factory = NumberOkFactory(store, server.publisher, reactor=reactor,
                                     metrics=metrics)
    server.eventPort = server.add(ListeningService(
        endpoints.events, server.factory, reactor=reactor,
        enabled=settings[NETSERVER_ENABLE]), "events")

    sinks: list[Any] = [server.publisher]
    if journalPath is not None:
        server.journal = server.add(Journal(
            journalPath, keepDays=settings[JOURNAL_KEEP_DAYS],
            maxMegabytes=settings[JOURNAL_MAX_MEGABYTES], reactor=reactor,
            metrics=metrics), "journal")
        sinks.append(server.journal)
    server.recent = server.add(
        RecentEvents(reactor=reactor, journal=server.journal,
                     metrics=metrics), "recent")
    sinks.append(server.recent)
    broker = settings[MQTT_BROKER]
    if broker:
        from numberok.mqtt import MqttPublisher
        # After the journal: it publishes Lost events from the journal's
        # outbox, and live Detected/Updated as a sink.
        server.mqttPublisher = server.add(MqttPublisher(
            store, server.journal, metrics=metrics, reactor=reactor),
            "mqtt-publisher")
        sinks.append(server.mqttPublisher)
    # gates: an output that acts on the decision the lists put on events.
    from numberok.gates import GateService
    from numberok.lists import ListsService, PassageDecider
    server.lists = server.add(ListsService(
        journalPath, reactor=reactor, metrics=metrics), "lists")
    server.gates = server.add(GateService(
        store, server.lists, reactor=reactor, metrics=metrics), "gates")
    sinks.append(server.gates)
    fanout = EventFanout(*sinks)

    # lists: the analytics' events get their access decision on the way
    # to every sink (collected events keep the decision of their site).
    server.analytics = server.add(
        Analytics(store, PassageDecider(server.lists, fanout),
                  reactor=reactor, metrics=metrics),
        "analytics")

    if endpoints.ingest is not None:
        server.ingest = server.add(IngestService(
            endpoints.ingest, IngestFactory(server.analytics, reactor=reactor,
                                            metrics=metrics),
            reactor=reactor), "ingest")

    if endpoints.admin is not None:
        from numberok.web.cameras import CamerasService
        from numberok.web.service import AdminService
        server.admin = server.add(AdminService(
            store, server.factory, server.eventPort, server.analytics,
            server.recent, endpoints.admin, reactor,
            journal=server.journal, metrics=metrics), "admin")
        server.cameras = server.add(CamerasService(
            store, server.admin.passwords, server.analytics, metrics=metrics,
            reactor=reactor), "cameras")
        server.admin.resource.putCameraPush(b"hikvision",
                                            server.cameras.resource)
        # lists: the API, the access log and the Lists page.
        from numberok.lists.api import AccessLogEndpoint, ListsEndpoint
        from numberok.lists.page import ListsPage
        resource = server.admin.resource
        resource.putAPI(b"lists", ListsEndpoint(resource.gate, server.lists))
        resource.putAPI(b"access-log",
                        AccessLogEndpoint(resource.gate, server.lists))
        resource.putChild(b"lists", ListsPage(resource.gate, server.lists))

    for makeSource in sources:
        server.sources.append(
            server.add(makeSource(server.analytics, reactor, metrics)))
    if broker:
        # lists: the central office's lists to and from the broker.
        from numberok.lists.share import ListsShare
        server.add(ListsShare(store, server.lists, metrics=metrics,
                              reactor=reactor), "lists-share")
    if broker:
        from numberok.mqtt import MqttCollector
        # Other sites' events (handed on like our own) and raw reads from a
        # topic: a source, started last and stopped first.
        server.sources.append(server.add(MqttCollector(
            store, sink=fanout, readSink=server.analytics,
            statePath=journalPath, metrics=metrics, reactor=reactor),
            "mqtt-collector"))
    return server
