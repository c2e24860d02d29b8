"""
The vocabulary of the server's parts (L{numberok.build} assembles them): a
L{Part} registers one part with its L{Role} and its stop L{Phase}; its
maker receives one L{BuildContext}.  Kept apart from the assembly so a
part's own package can import it without importing every other part.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from twisted.application.service import IService
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from numberok.analytics import EventFanout
from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.metrics import Metrics
from numberok.settings import Settings, SettingsStore


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


class Role(enum.Enum):
    """
    What a part is for.  The role orders the start (in this order) and
    says where the part sits in the data flow (docs/architecture.rst).
    """

    CORE = "core"
    """The middle of the flow: screenshots, publisher, factory, analytics."""
    STORE = "store"
    """Keeps events: the journal, the recent-events list."""
    OUTPUT = "output"
    """Hands events on to another system: MQTT publish, webhooks."""
    PORT = "port"
    """Listens for peers: the event port, the ingest port, the admin web."""
    SOURCE = "source"
    """Brings reads or events in: camera pushes, demo, replay, watch
    folder, the MQTT collector.  Started last, stopped first."""


class Phase(enum.IntEnum):
    """The shutdown phases, in the order they run."""

    SOURCES = 1
    """No more reads or collected events from anywhere."""
    INGEST = 2
    """Recognizers disconnected."""
    ANALYTICS = 3
    """Every active track becomes a Lost event."""
    OUTPUTS = 4
    """Outbox consumers stop; what they had no time for goes out from
    their cursor at the next start (they read the journal: before it)."""
    JOURNAL = 5
    """The journal drains its writes to disk."""
    EVENT_PORT = 6
    """The event port stops listening."""
    PUBLISHER_DRAIN = 7
    """Every queued event is written as fast as the write cap allows."""
    CONNECTIONS = 8
    """Connections close after writing what they hold; those that do not
    read are aborted when the grace ends."""
    REST = 9
    """Every child not stopped yet, in reverse start order."""


@implementer(IEventSink)
class EventPath:
    """
    Where the analytics' events go: through the stages parts put in front
    of the fan-out (L{addStage}: the access decision of the lists, say),
    then to every sink of the fan-out.  The analytics hold this object, so
    a stage added by a part registered after them still sees their events.

    @ivar fanout: the L{EventFanout}; every made part that provides
        L{IEventSink} joins it.  The MQTT collector hands other sites'
        events to it directly: they went through their own site's stages.
    """

    def __init__(self) -> None:
        self.fanout = EventFanout()
        self._head = self.fanout

    @property
    def _head(self) -> IEventSink:
        """The first stage (the fan-out before any).  Setting it binds
        C{publish} to the new head's own, so an event costs no call here,
        wherever the head is changed."""
        return self._first

    @_head.setter
    def _head(self, sink: IEventSink) -> None:
        self._first = sink
        self.publish = sink.publish

    def addStage(self, stage: Callable[[IEventSink], IEventSink]) -> None:
        """
        Put C{stage(downstream)} in front of what is there: it receives
        each event first and hands it (or what it makes of it) to
        C{downstream}.  A stage added later runs before those added
        earlier.
        """
        self._head = stage(self._head)

    def replaceSink(self, old: IEventSink, new: IEventSink) -> None:
        """
        Put C{new} where C{old} is in the fan-out, so that it receives the
        events in C{old}'s turn (before the sinks registered after it) and
        hands them on to C{old} itself: a wrapper such as
        L{numberok.journalids.JournalIds} in front of the publisher.
        """
        sinks = self.fanout.sinks
        sinks[sinks.index(old)] = new

    def publish(self, event: Any) -> None:
        """Hand C{event} to the first stage (an instance's C{publish} is
        its head's own: see L{_head})."""
        self._head.publish(event)


Maker = Callable[["BuildContext"], Any]
"""Makes one part from the L{BuildContext}; L{None} when switched off."""

Stop = Callable[[Any, float], Any]
"""Stops one part in its phase, given the seconds of grace left; may
return a Deferred."""


def stopRunning(part: IService, grace: float) -> Any:
    """The usual stop: the part's C{stopService}, if it is running."""
    if part.running:
        return part.stopService()
    return None


@dataclass(frozen=True, slots=True)
class Part:
    """
    One registration: what to make, what it is for, when it stops.

    @ivar name: the server's attribute and the child service's name;
        L{None} for parts reached only by role (the command line's
        sources, in C{server.sources}).
    @ivar stop: what its phase does with it; L{stopRunning} unless given.
    """

    name: Optional[str]
    role: Role
    phase: Phase
    make: Maker
    stop: Stop = stopRunning


@dataclass(frozen=True, slots=True)
class BuildContext:
    """
    Everything a maker may need, in one object.

    @ivar parts: the parts made so far, by name (L{part}).
    @ivar events: the L{EventPath}, the analytics' sink: stages, then the
        fan-out (C{events.fanout}) that every made part providing
        L{IEventSink} joins.
    """

    store: SettingsStore
    reactor: IReactorTime
    metrics: Metrics
    endpoints: Endpoints
    settingsPath: Optional[str] = None
    journalPath: Optional[str] = None
    screenshotThreads: Optional[int] = None
    parts: dict[str, Any] = field(default_factory=dict)
    events: EventPath = field(default_factory=EventPath)

    @property
    def settings(self) -> Settings:
        """The settings now (parts that follow changes observe C{store})."""
        return self.store.current

    def part(self, name: str) -> Any:
        """The part registered as C{name}, or L{None} (switched off, not
        registered, or registered after the asking part)."""
        return self.parts.get(name)

    @property
    def reads(self) -> IPlateReadSink:
        """Where sources hand their reads: the analytics."""
        return self.part("analytics")
