"""
The one place that builds a numberok server: L{buildServer} makes the parts
registered in L{PARTS} for C{twistd numberok-tcp} (L{numberok.tap}), the
.tac file and the tests, so a wiring mistake cannot hide behind a test's own
copy of the wiring.

Each part is a L{numberok.parts.Part}: a name (the server's attribute,
C{server.journal}), a L{Role}, a L{Phase} in which it stops, and a maker
that receives one L{BuildContext} (settings store, reactor, metrics,
endpoints, paths, the event fan-out and the parts made before it) and
returns the part, or L{None} where the settings switch it off.  L{buildServer} is a loop over
the registrations; L{NumberOkServer.stopService} a loop over the phases.

What the loop does with a part, from its registration alone:

 - it becomes C{server.<name>} and, when it is an L{IService}, a child;
 - a part that provides L{IEventSink} receives every event the analytics
   emit (it joins the fan-out, C{context.events.fanout}); a part that
   must see the events before every sink (the lists' access decision)
   puts a stage in front with C{context.events.addStage};
 - start: every listening port binds in C{privilegedStartService} (a port
   that cannot be bound ends the start before any thread or source runs);
   then children start by role -- L{Role.CORE}, L{Role.STORE},
   L{Role.OUTPUT}, L{Role.PORT}, L{Role.SOURCE} -- and in registration
   order within a role, so no read arrives before its consumers run;
 - stop: phase by phase in L{Phase} order, each phase's parts together,
   each phase waiting for the one before: sources -> ingest -> analytics
   (every active track becomes Lost) -> outputs (MQTT; later webhooks)
   -> journal drains -> event port stops listening -> publisher drains ->
   connections close -> the rest (every child not stopped yet, in reverse
   start order).  A part's C{stop} is its C{stopService} unless the
   registration names another step (the publisher drains, the factory
   closes its connections); such a service still stops with the rest.
   docs/architecture.rst.

Adding a part is one registration, appended to L{PARTS}: choose its role
and the phase it stops in, write its maker (in the part's own package),
and nothing else here changes.  For instance::

    Part("webhooks", Role.OUTPUT, Phase.OUTPUTS, makeWebhooks)

with C{def makeWebhooks(context: BuildContext) -> Optional[IService]}
(importing L{numberok.parts}, not this module) reading C{context.store}, C{context.part("journal")}, C{context.reactor}
and C{context.metrics}.  An HTTP push path is declared by the part that
serves it (L{numberok.web.common.Push}) and mounted with
C{context.part("admin").putPush}.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from twisted.application.service import IService, MultiService, Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from numberok.analytics import Analytics
from numberok.interfaces import IEventSink
from numberok.journal import Journal
from numberok.journalids import JournalIds
from numberok.listening import ListeningService
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.parts import (BuildContext, Endpoints, Maker, Part, Phase,
                            Role, stopRunning)

__all__ = ["BuildContext", "Endpoints", "Maker", "NumberOkServer", "PARTS",
           "Part", "Phase", "Role", "buildServer"]
from numberok.publisher import EventPublisher
from numberok.memory import MemoryTrimmer
from numberok.reactors import globalReactor
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


class NumberOkServer(MultiService):
    """
    The whole server.  Each registered part is an attribute by its name
    (C{server.publisher}, C{server.journal}, ...; L{None} where switched
    off), and every part of L{Role.SOURCE} is in C{server.sources}.
    """

    log = Logger()

    def __init__(self, store: SettingsStore, metrics: Metrics,
                 reactor: IReactorTime) -> None:
        super().__init__()
        self.store = store
        self.metrics = metrics
        self.reactor = reactor
        self.shutdownGrace = SHUTDOWN_GRACE
        self.parts: dict[str, Any] = {}
        self.registered: list[tuple[Part, Any]] = []
        self.sources: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        # Only called for names that are not ordinary attributes.
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError("%s has no part or attribute %r"
                             % (type(self).__name__, name))

    def register(self, registration: Part, part: Any) -> None:
        """Record a made part under its name and role (children are added
        in start order by L{buildServer})."""
        if registration.name is not None:
            self.parts[registration.name] = part
        if part is None:
            return
        self.registered.append((registration, part))
        if registration.role is Role.SOURCE:
            self.sources.append(part)

    def stopService(self) -> defer.Deferred:
        """
        The shutdown: one step per L{Phase}, each waiting for the one
        before.  A part whose stop fails is logged and the sequence goes
        on, so the connections are always closed in the end.
        """
        Service.stopService(self)
        start = self.reactor.seconds()
        stopped: set[int] = set()

        def left() -> float:
            return max(0.25, self.shutdownGrace
                       - (self.reactor.seconds() - start))

        def runPhase(phase: Phase) -> defer.Deferred:
            if phase is Phase.REST:
                steps = [(child, stopRunning)
                         for child in reversed(list(self))]
            else:
                steps = [(part, registration.stop)
                         for registration, part in self.registered
                         if registration.phase is phase]
            waits = []
            for part, stop in steps:
                if id(part) in stopped:
                    continue
                if stop is stopRunning:
                    stopped.add(id(part))
                wait = defer.maybeDeferred(stop, part, left())
                wait.addErrback(lambda f, part=part: self.log.failure(
                    "shutdown: stopping {part!r} in phase {phase} failed",
                    f, part=part, phase=phase.name.lower()))
                waits.append(wait)
            return defer.gatherResults(waits)

        d: defer.Deferred = defer.succeed(None)
        for phase in Phase:
            d.addCallback(lambda _, phase=phase: runPhase(phase))
        return d


# -- the makers of the parts ------------------------------------------------

def makeMemoryTrimmer(context: BuildContext) -> MemoryTrimmer:
    """Freed picture memory back to the system after bursts
    (docs/operations.rst, "Memory")."""
    return MemoryTrimmer(context.reactor, metrics=context.metrics)


def makeScreenshots(context: BuildContext) -> ScreenshotService:
    return ScreenshotService(context.reactor,
                             threads=context.screenshotThreads,
                             metrics=context.metrics)


def makePublisher(context: BuildContext) -> EventPublisher:
    return EventPublisher(context.store, context.part("screenshots"),
                          reactor=context.reactor, metrics=context.metrics)


def makeFactory(context: BuildContext) -> NumberOkFactory:
    return NumberOkFactory(context.store, context.part("publisher"),
                           reactor=context.reactor, metrics=context.metrics)


def makeEventPort(context: BuildContext) -> ListeningService:
    return ListeningService(
        context.endpoints.events, context.part("factory"),
        reactor=context.reactor, enabled=context.settings[NETSERVER_ENABLE])


def makeJournal(context: BuildContext) -> Optional[Journal]:
    if context.journalPath is None:
        return None
    return Journal(
        context.journalPath, keepDays=context.settings[JOURNAL_KEEP_DAYS],
        maxMegabytes=context.settings[JOURNAL_MAX_MEGABYTES],
        reactor=context.reactor, metrics=context.metrics)


def makeJournalIds(context: BuildContext) -> Optional[JournalIds]:
    """Lost events reach the NumberOk clients with their C{JournalId} (a
    few ms later at most; docs/protocol.rst): the publisher's turn in the
    fan-out goes to L{JournalIds}, which hands each event on to it."""
    journal = context.part("journal")
    if journal is None:
        return None
    publisher = context.part("publisher")
    journalIds = JournalIds(publisher, journal, context.reactor)
    context.events.replaceSink(publisher, journalIds)
    return journalIds


def makeRecent(context: BuildContext) -> RecentEvents:
    return RecentEvents(reactor=context.reactor,
                        journal=context.part("journal"),
                        metrics=context.metrics)


def makeMqttPublisher(context: BuildContext) -> Optional[IService]:
    if not context.settings[MQTT_BROKER]:
        return None
    from numberok.mqtt import MqttPublisher
    # Lost events from the journal's outbox, live Detected/Updated as a
    # sink.
    return MqttPublisher(context.store, context.part("journal"),
                         metrics=context.metrics, reactor=context.reactor)


def makeWebhooks(context: BuildContext) -> IService:
    """C{[Webhook:<name>]} targets: Lost from the journal's outbox (one
    cursor each), live Detected/Updated as a sink.  Always there: targets
    may be added while running.  Their status is C{/api/webhooks} on the
    admin server."""
    from numberok.webhooks import WebhookService
    from numberok.webhooks.body import pictureBaseOf
    from numberok.webhooks.resource import WebhooksEndpoint
    webhooks = WebhookService(
        context.store, context.part("journal"), metrics=context.metrics,
        reactor=context.reactor,
        pictureBase=pictureBaseOf(context.endpoints.admin))
    admin = context.part("admin")
    if admin is not None:
        admin.resource.putAPI(b"webhooks", WebhooksEndpoint(
            admin.resource.gate, webhooks))
    return webhooks


def makeAnalytics(context: BuildContext) -> Analytics:
    return Analytics(context.store, context.events, reactor=context.reactor,
                     metrics=context.metrics)


def makeIngest(context: BuildContext) -> Optional[IngestService]:
    if context.endpoints.ingest is None:
        return None
    return IngestService(
        context.endpoints.ingest,
        IngestFactory(context.reads, reactor=context.reactor,
                      metrics=context.metrics),
        reactor=context.reactor)


def makeAdmin(context: BuildContext) -> Optional[IService]:
    if context.endpoints.admin is None:
        return None
    from numberok.web.service import AdminService
    return AdminService(
        context.store, context.part("factory"), context.part("eventPort"),
        context.reads, context.part("recent"), context.endpoints.admin,
        context.reactor, journal=context.part("journal"),
        metrics=context.metrics)


def makeCameras(context: BuildContext) -> Optional[IService]:
    admin = context.part("admin")
    if admin is None:
        return None
    from numberok.web.cameras import CamerasService
    cameras = CamerasService(context.store, admin.passwords, context.reads,
                             metrics=context.metrics, reactor=context.reactor)
    admin.putPush(cameras.push)
    return cameras


def makeLists(context: BuildContext) -> IService:
    """
    Known plates (docs/lists.rst): the analytics' events get their access
    decision on the way to every sink (a stage of the event path; events
    collected from other sites keep their site's decision).  The API, the
    access log and the Lists page are mounted on the admin server.
    """
    from numberok.lists import ListsService, PassageDecider
    lists = ListsService(context.journalPath, reactor=context.reactor,
                         metrics=context.metrics)
    context.events.addStage(lambda down: PassageDecider(lists, down))
    admin = context.part("admin")
    if admin is not None:
        from numberok.lists.accesslog import AccessLogEndpoint
        from numberok.lists.api import ListsEndpoint
        from numberok.lists.page import ListsPage
        resource = admin.resource
        resource.putAPI(b"lists", ListsEndpoint(resource.gate, lists))
        resource.putAPI(b"access-log",
                        AccessLogEndpoint(resource.gate, lists))
        resource.putChild(b"lists", ListsPage(resource.gate, lists))
    return lists


def makeGates(context: BuildContext) -> IService:
    """Gates: an output that acts on the decision the lists put on
    events (C{[Gate:<channel>:<zone>]})."""
    from numberok.gates import GateService
    return GateService(context.store, context.part("lists"),
                       reactor=context.reactor, metrics=context.metrics)


def makeListsShare(context: BuildContext) -> Optional[IService]:
    """The central office's lists to and from the broker
    (C{[Lists] Share})."""
    if not context.settings[MQTT_BROKER]:
        return None
    from numberok.lists.share import ListsShare
    return ListsShare(context.store, context.part("lists"),
                      metrics=context.metrics, reactor=context.reactor)


def makeMqttCollector(context: BuildContext) -> Optional[IService]:
    if not context.settings[MQTT_BROKER]:
        return None
    from numberok.mqtt import MqttCollector
    # Other sites' events (handed on like our own) and raw reads from a
    # topic.
    return MqttCollector(
        context.store, sink=context.events.fanout, readSink=context.reads,
        statePath=context.journalPath, metrics=context.metrics,
        reactor=context.reactor,
        clients=lambda: len(context.part("publisher").subscriptions()))


PARTS: tuple[Part, ...] = (
    Part("memory", Role.CORE, Phase.REST, makeMemoryTrimmer),
    Part("screenshots", Role.CORE, Phase.REST, makeScreenshots),
    Part("publisher", Role.CORE, Phase.PUBLISHER_DRAIN, makePublisher,
         stop=lambda publisher, grace: publisher.drain(grace)),
    Part("factory", Role.CORE, Phase.CONNECTIONS, makeFactory,
         stop=lambda factory, grace: factory.closeAll(grace)),
    Part("eventPort", Role.PORT, Phase.EVENT_PORT, makeEventPort),
    Part("journal", Role.STORE, Phase.JOURNAL, makeJournal),
    Part("journalIds", Role.CORE, Phase.REST, makeJournalIds),
    Part("recent", Role.STORE, Phase.REST, makeRecent),
    Part("mqttPublisher", Role.OUTPUT, Phase.OUTPUTS, makeMqttPublisher),
    Part("analytics", Role.CORE, Phase.ANALYTICS, makeAnalytics),
    Part("ingest", Role.PORT, Phase.INGEST, makeIngest),
    Part("admin", Role.PORT, Phase.SOURCES, makeAdmin),
    Part("cameras", Role.SOURCE, Phase.SOURCES, makeCameras),
    Part("webhooks", Role.OUTPUT, Phase.OUTPUTS, makeWebhooks),
    Part("lists", Role.STORE, Phase.REST, makeLists),
    Part("gates", Role.OUTPUT, Phase.OUTPUTS, makeGates),
    Part("listsShare", Role.SOURCE, Phase.SOURCES, makeListsShare),
    Part("mqttCollector", Role.SOURCE, Phase.SOURCES, makeMqttCollector),
)
"""Every part of the server, in the order they are made (a maker may ask
for the parts above it).  Append new parts at the end."""


def commandLineSource(make: Maker) -> Part:
    """A read source the command line asks for (demo, replay, watch)."""
    return Part(None, Role.SOURCE, Phase.SOURCES, make)


_START_ORDER = list(Role)


def buildServer(settings: Settings, endpoints: Endpoints,
                reactor: Optional[IReactorTime] = None,
                settingsPath: Optional[str] = None,
                journalPath: Optional[str] = None,
                sources: Sequence[Maker] = (),
                metrics: Optional[Metrics] = None,
                screenshotThreads: Optional[int] = None,
                parts: Sequence[Part] = PARTS) -> NumberOkServer:
    """
    Build the whole server, not yet started.

    @param settings: the validated settings.
    @param settingsPath: the file the admin page saves to; L{None} keeps
        changes in memory only (tests).
    @param journalPath: the journal folder; L{None} for no journal.
    @param sources: makers of the command line's read sources (demo,
        replay, watch); they find the analytics in C{context.reads}.
    @param parts: the registrations (L{PARTS}; tests add their own).
    """
    if reactor is None:
        reactor = globalReactor()
    metrics = metricsOrPrivate(metrics)
    store = SettingsStore(settings, settingsPath)
    server = NumberOkServer(store, metrics, reactor)
    context = BuildContext(store, reactor, metrics, endpoints,
                           settingsPath=settingsPath, journalPath=journalPath,
                           screenshotThreads=screenshotThreads,
                           parts=server.parts)
    for registration in [*parts, *map(commandLineSource, sources)]:
        part = registration.make(context)
        server.register(registration, part)
        if IEventSink.providedBy(part) and \
                part not in context.events.fanout.sinks:
            context.events.fanout.sinks.append(part)
    for registration, part in sorted(
            server.registered,
            key=lambda made: _START_ORDER.index(made[0].role)):
        if IService.providedBy(part):
            if registration.name is not None:
                part.setName(registration.name)
            part.setServiceParent(server)
    return server
