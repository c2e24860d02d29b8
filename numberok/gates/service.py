"""
L{GateService}: opens the gate of a channel and zone when a passage's
decision says so (C{[Gate:<channel>:<zone>]}: C{When}, C{Movement}), at
most once per passage, and writes every attempt to the access log.

A failed open is retried, but only within C{RetryWithinSec} of the first
attempt: a barrier that rises half a minute after the car gave up and
reversed is worse than one that stays shut (docs/lists.rst, "Gates").
Attempts are spaced by L{GateService.retryPauseSec}.  Events of other
sites (collected over MQTT) never open a gate here.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import EventState, MovementType, PlateEvent
from numberok.gates.relay import HttpRelay, RelayError, fill
from numberok.interfaces import IEventSink, IRelay
from numberok.metrics import Metrics
from numberok.reactors import LazyReactor
from numberok.settings.families import SectionSettings
from numberok.settings.keys import (GATE_BODY, GATE_FAMILY, GATE_METHOD,
                                    GATE_MOVEMENT, GATE_RETRY_WITHIN_SEC,
                                    GATE_TIMEOUT_SEC, GATE_URL, GATE_WHEN)

MAX_PASSAGES = 20_000


def wants(section: SectionSettings, event: PlateEvent) -> bool:
    """Whether C{event} opens the gate C{section} describes."""
    when = section[GATE_WHEN]
    if when == "never" or not section[GATE_URL]:
        return False
    if when == "allow" and event.access != "granted":
        return False
    if section[GATE_MOVEMENT] == "in" and event.movement is not MovementType.IN:
        return False
    return True


@implementer(IEventSink)
class GateService(Service):
    """
    An event sink: sees every decorated event after the lists decided.

    @param store: the settings store (gates are read from its current
        settings on each event, so a saved change applies at once).
    @param lists: the L{numberok.lists.ListsService} whose access log is
        written; L{None} logs to the server log only.
    @param relay: an L{IRelay}; by default L{HttpRelay}.
    @ivar status: C{"<channel>:<zone>"} -> the last attempt's row, for the
        API and the page.
    """

    log = Logger()
    retryPauseSec = 0.5

    def __init__(self, store: Any, lists: Any = None, reactor: Any = None,
                 metrics: Optional[Metrics] = None,
                 relay: Optional[IRelay] = None) -> None:
        self._reactor = reactor
        self.store = store
        self.lists = lists
        self.metrics = metrics if metrics is not None else Metrics()
        self._relay = relay
        self.opened: dict[int, float] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self._inFlight: set[defer.Deferred] = set()

    reactor = LazyReactor()

    @property
    def relay(self) -> IRelay:
        if self._relay is None:
            self._relay = HttpRelay(self.reactor)
        return self._relay

    def publish(self, event: PlateEvent) -> None:
        if event.systemId is not None:
            return
        ident = "%d:%d" % (event.channel, event.zone)
        section = self.store.current.section(GATE_FAMILY, ident)
        if (section is not None and event.runtimeId not in self.opened
                and wants(section, event)):
            if len(self.opened) >= MAX_PASSAGES:
                del self.opened[next(iter(self.opened))]
            self.opened[event.runtimeId] = self.reactor.seconds()
            d = defer.ensureDeferred(self._open(event, section))
            self._inFlight.add(d)
            d.addErrback(lambda f: self.log.failure(
                "gate {gate}: open failed unexpectedly", f, gate=ident))
            d.addBoth(lambda _: self._inFlight.discard(d))
        if event.state is EventState.LOST:
            self.opened.pop(event.runtimeId, None)

    async def _open(self, event: PlateEvent,
                    section: SectionSettings) -> None:
        values = {"plate": event.plate, "channel": event.channel,
                  "zone": event.zone, "list": event.listName or "",
                  "access": event.access or "", "runtimeId": event.runtimeId}
        method = section[GATE_METHOD]
        url = fill(section[GATE_URL], values, forUrl=True)
        body = fill(section[GATE_BODY], values, forUrl=False).encode("utf-8")
        timeout = section[GATE_TIMEOUT_SEC]
        deadline = self.reactor.seconds() + section[GATE_RETRY_WITHIN_SEC]
        attempt = 0
        while True:
            attempt += 1
            started = self.reactor.seconds()
            try:
                code = await self.relay.open(method, url, body or None,
                                             timeout)
                result = "ok" if 200 <= code < 300 else "HTTP %d" % (code,)
            except RelayError as e:
                result = str(e)
            latency = (self.reactor.seconds() - started) * 1000
            ok = result == "ok"
            self.metrics.gateOpens.labels(
                result="ok" if ok else "timeout" if result.startswith(
                    "no answer") else "failed").inc()
            again = (not ok and self.running and self.reactor.seconds()
                     + self.retryPauseSec <= deadline)
            self._logged(event, result, latency, "attempt %d, %s %s%s" % (
                attempt, method.upper(), section[GATE_URL],
                "" if ok or again else "; given up (RetryWithinSec)"))
            if ok:
                return
            if not again:
                self.metrics.gateOpens.labels(result="given_up").inc()
                self.log.warn("gate {gate}: not opened for {plate}: "
                              "{result}", gate=section.ident,
                              plate=event.plate, result=result)
                return
            await task.deferLater(self.reactor, self.retryPauseSec,
                                  lambda: None)

    def _logged(self, event: PlateEvent, result: str, latency: float,
                reason: str) -> None:
        nowMs = int(self.reactor.seconds() * 1000)
        row = (nowMs, event.channel, event.zone, event.runtimeId,
               event.plate, event.listName, event.listPlate,
               event.listMatch, event.access, "open", result,
               round(latency, 1), reason)
        self.status["%d:%d" % (event.channel, event.zone)] = {
            "time_ms": nowMs, "plate": event.plate, "result": result,
            "latency_ms": round(latency, 1), "reason": reason}
        if self.lists is not None:
            self.lists.logAccess(row)

    stopWaitSec = 2.0

    def stopService(self) -> defer.Deferred:
        """Let opens in flight end, for at most L{stopWaitSec} (no retry
        starts once stopping)."""
        Service.stopService(self)
        d = defer.DeferredList(list(self._inFlight))
        d.addTimeout(self.stopWaitSec, self.reactor)
        return d.addErrback(lambda _: None)
