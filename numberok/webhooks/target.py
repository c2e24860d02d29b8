"""
One webhook target: an output on its own L{Outbox} (own persisted cursor),
one request in flight at a time so events arrive in journal order,
retries with exponential backoff and jitter, never disabled
(docs/integrations.rst, "Delivery").

Lost events come from the journal through the outbox: at least once, in
order.  A failed request (no connection, timeout, 5xx, 408, 429, 3xx) is
tried again after C{backoffPolicy}'s delay, for as long as it takes; the
status, the log and C{/metrics} show the target is failing.  A 4xx other
than 408/429 says the receiver refuses this one event: after
C{parkAfter} such answers the event is parked (logged, counted, listed in
the status and kept in a file beside the cursor) and the target moves on.

Detected/Updated (when C{States} names them) are not in the journal: they
are sent live, best effort, through a bounded queue (C{maxLive}) sharing
the one request slot with the Lost events (one live event goes between two
Lost ones, so a catch-up does not starve them).  One try each; a full
queue, a failed try, or a target known to be down drops them, counted in
C{numberok_webhook_dropped_total{target,reason}}.
"""

from __future__ import annotations

import os
import random
from collections import deque
from typing import Any, Callable, Optional

from twisted.application.internet import backoffPolicy
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok.events import PlateEvent
from numberok.interfaces import IOutboxOutput
from numberok.journal.fields import JournalEntry
from numberok.journal.outbox import Outbox
from numberok.metrics import Metrics
from numberok.mqtt.files import loadPictures
from numberok.threads import ServiceThreads
from numberok.webhooks.body import Body, buildBody
from numberok.webhooks.config import TargetConfig
from numberok.webhooks.files import readParked, writeParked
from numberok.webhooks.http import Outcome, deliver


class _Pending:
    """The Lost being delivered: its body, the outbox's Deferred, and how
    often the receiver refused it."""

    __slots__ = ("body", "done", "refusals")

    def __init__(self, body: Body) -> None:
        self.body = body
        self.done: Deferred = Deferred()
        self.refusals = 0


@implementer(IOutboxOutput)
class WebhookTarget:
    """
    @ivar parkAfter: answers 4xx (but 408/429) for one event before it is
        parked.
    @ivar initialDelay: seconds before the first retry; each next one is
        C{factor} times longer, at most C{maxDelay}, plus a random
        0..C{maxJitter} s (many sites restarting together do not knock on
        the receiver in step).
    @ivar maxLive: live Detected/Updated events waiting, at most.
    @ivar maxParkedListed: parked events listed (and kept in the file).
    @ivar pageSize: journal rows read ahead (prepared) at once.
    @ivar saveInterval: seconds between two cursor writes at most: after
        a crash at most that much is delivered again (same idempotency
        keys).
    """

    log = Logger()
    parkAfter = 3
    initialDelay = 1.0
    factor = 2.0
    maxDelay = 120.0
    maxJitter = 1.0
    maxLive = 100
    maxParkedListed = 100
    pageSize = 50
    pollInterval = 1.0
    saveInterval = 0.5
    ready = True

    def __init__(self, config: TargetConfig, agent: Any,
                 reactor: IReactorTime,
                 threads: ServiceThreads, metrics: Metrics,
                 journal: Any = None, systemId: int = 0,
                 testMode: bool = False,
                 pictureBase: Optional[str] = None) -> None:
        self.config = config
        self.agent = agent
        self.reactor = reactor
        self.metrics = metrics
        self.journal = journal
        self.systemId = systemId
        self.testMode = testMode
        self.pictureBase = pictureBase
        self._threads = threads
        self._policy: Callable[[int], float] = backoffPolicy(
            self.initialDelay, self.maxDelay, self.factor,
            jitter=lambda: random.random() * self.maxJitter)
        name = config.name
        self.outbox: Optional[Outbox] = None
        if journal is not None:
            self.outbox = Outbox(
                "webhook:" + name, journal, self,
                os.path.join(journal.path, "webhook-%s.cursor" % (name,)),
                threads, metrics, reactor,
                backlog=metrics.webhookLag.labels(target=name), window=1,
                pageSize=self.pageSize, pollInterval=self.pollInterval,
                saveInterval=self.saveInterval)
        self.parkedPath = (
            os.path.join(journal.path, "webhook-%s.parked" % (name,))
            if journal is not None else None)
        self.running = False
        self.delivered = 0
        self.lastSuccess: Optional[float] = None
        self.lastError: Optional[str] = None
        self.lastErrorAt: Optional[float] = None
        self.parked: deque = deque(maxlen=self.maxParkedListed)
        self._lost: Optional[_Pending] = None
        self._live: deque[Body] = deque()
        self._liveLoading = 0
        self._request: Optional[Deferred] = None
        self._timer: Any = None
        self._failures = 0
        self._downUntil = 0.0
        self._preferLive = False

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        self.running = True
        if self.parkedPath is not None:
            d = self._threads.run(readParked, self.parkedPath)
            d.addCallback(self.parked.extend)
            d.addErrback(lambda f: self.log.warn(
                "webhook {target}: parked list unreadable: {error}",
                target=self.config.name, error=f.getErrorMessage()))
        if self.outbox is not None:
            self.outbox.start()

    def stop(self) -> Deferred:
        """Cancel what is in flight (a Lost cut off goes again from the
        cursor next start) and save the cursor."""
        self.running = False
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if self._request is not None:
            self._request.cancel()
        self._live.clear()
        if self.outbox is None:
            return succeed(None)
        return self.outbox.stop()

    # -- what comes in -----------------------------------------------------

    def wake(self) -> None:
        """A Lost was recorded (the outbox reads it)."""
        if self.outbox is not None:
            self.outbox.wake()

    def publishLive(self, event: PlateEvent) -> None:
        """A live event this target wants: queue it, best effort."""
        reason = None
        if len(self._live) + self._liveLoading >= self.maxLive:
            reason = "busy"
        elif self.reactor.seconds() < self._downUntil:
            reason = "down"
        if reason is not None:
            self.metrics.webhookDropped.labels(
                target=self.config.name, reason=reason).inc()
            return
        self._liveLoading += 1
        d = self._pictures(event.frame, None, event)
        d.addCallback(lambda pictures: buildBody(
            self.config, event, self.systemId, None, pictures,
            testMode=self.testMode))

        def queued(body: Body) -> None:
            self._liveLoading -= 1
            if self.running:
                self._live.append(body)
                self._kick()
        d.addCallback(queued)
        d.addErrback(self._unexpected)

    def _pictures(self, frame: Optional[bytes], path: Optional[str],
                  event: PlateEvent) -> Deferred:
        if self.config.pictures != "inline" or (frame is None
                                                and path is None):
            return succeed((None, None))
        return self._threads.run(loadPictures, frame, path, event.bbox)

    # -- IOutboxOutput -----------------------------------------------------

    def prepare(self, entry: JournalEntry) -> Deferred:
        """The row's body, or L{None} when the filters leave it out."""
        event = entry.toEvent()
        if not self.config.wants(event):
            return succeed(None)
        path = (self.journal.screenshotPath(entry)
                if entry.hasScreenshot else None)
        d = self._pictures(None, path, event)
        return d.addCallback(lambda pictures: buildBody(
            self.config, event, self.systemId, entry.id, pictures,
            self.pictureBase, (entry.hasScreenshot, entry.hasPlatePicture),
            self.testMode))

    def send(self, entry: JournalEntry, prepared: Optional[Body]
             ) -> Optional[Deferred]:
        if prepared is None:
            return None
        pending = _Pending(prepared)
        self._lost = pending
        self._kick()
        return pending.done

    # -- the one request slot ----------------------------------------------

    def _kick(self) -> None:
        if (not self.running or self._request is not None
                or (self._timer is not None and self._timer.active())):
            return
        if self._live and (self._preferLive or self._lost is None):
            self._preferLive = False
            self._attempt(self._live.popleft(), False)
        elif self._lost is not None:
            self._attempt(self._lost.body, True)

    def _attempt(self, body: Body, isLost: bool) -> None:
        d = deliver(self.agent, self.reactor, self.config, body)
        self._request = d
        d.addCallback(self._answered, body, isLost)
        d.addErrback(self._unexpected)

    def _answered(self, outcome: Outcome, body: Body, isLost: bool) -> None:
        self._request = None
        if not self.running:
            return
        name = self.config.name
        if outcome.kind == "ok":
            self._succeeded(body, isLost)
        else:
            self.metrics.webhookAttempts.labels(
                target=name, outcome=outcome.label).inc()
            self.lastError = outcome.error
            self.lastErrorAt = self.reactor.seconds()
            if not isLost:
                self.metrics.webhookDropped.labels(
                    target=name, reason="failed").inc()
                if outcome.kind == "retry":
                    self._downUntil = (self.reactor.seconds()
                                       + self._policy(self._failures))
            elif outcome.kind == "refused":
                self._refused(outcome)
            else:
                self._retryLater(outcome)
        self._kick()

    def _succeeded(self, body: Body, isLost: bool) -> None:
        self.delivered += 1
        self._failures = 0
        self._downUntil = 0.0
        self.lastSuccess = self.reactor.seconds()
        name = self.config.name
        self.metrics.webhookDelivered.labels(target=name,
                                             state=body.state).inc()
        self.metrics.webhookLastSuccess.labels(target=name).set(
            self.lastSuccess)
        if isLost and self._lost is not None:
            pending, self._lost = self._lost, None
            self._preferLive = True
            pending.done.callback(None)

    def _retryLater(self, outcome: Outcome) -> None:
        delay = (outcome.retryAfter if outcome.retryAfter is not None
                 else self._policy(self._failures))
        self._failures += 1
        self._downUntil = self.reactor.seconds() + delay
        self.log.warn(
            "webhook {target}: journal id {id} not delivered ({error}); "
            "try {tries} again in {delay:.1f} s", target=self.config.name,
            id=self._lost.body.journalId if self._lost else None,
            error=outcome.error, tries=self._failures + 1, delay=delay)
        self._timer = self.reactor.callLater(delay, self._kick)

    def _refused(self, outcome: Outcome) -> None:
        pending = self._lost
        if pending is None:
            return
        pending.refusals += 1
        if pending.refusals < self.parkAfter:
            self._retryLater(outcome)
            return
        self._lost = None
        entryId = pending.body.journalId
        self.parked.append({"id": entryId, "error": outcome.error,
                            "at": self.reactor.seconds()})
        self.metrics.webhookParked.labels(target=self.config.name).inc()
        self.log.error(
            "webhook {target}: journal id {id} PARKED after {tries} refusals "
            "({error}); the target moves on (GET /api/webhooks lists it)",
            target=self.config.name, id=entryId, tries=pending.refusals,
            error=outcome.error)
        self._saveParked()
        pending.done.callback(None)

    def _saveParked(self) -> None:
        if self.parkedPath is None or not self._threads.running:
            return
        d = self._threads.run(writeParked, self.parkedPath,
                              list(self.parked))
        d.addErrback(lambda f: self.log.error(
            "webhook {target}: parked list not saved: {error}",
            target=self.config.name, error=f.getErrorMessage()))

    def _unexpected(self, failure: Failure) -> None:
        self.log.failure("webhook {target}: unexpected error", failure,
                         target=self.config.name)

    # -- status ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For C{GET /api/webhooks} and the admin page."""
        state = self.outbox.state() if self.outbox is not None else {}
        retrying = self._timer is not None and self._timer.active()
        return {
            "name": self.config.name,
            "url": self.config.safeUrl,
            "states": sorted(self.config.states),
            "lag": state.get("backlog"),
            "cursor": state.get("acknowledged"),
            "delivered": self.delivered,
            "last_success": self.lastSuccess,
            "last_error": self.lastError,
            "last_error_at": self.lastErrorAt,
            "retrying": retrying,
            "next_try_in": (max(0.0, self._timer.getTime()
                                - self.reactor.seconds())
                            if retrying else None),
            "parked_ids": [p["id"] for p in self.parked],
            "parked": list(self.parked),
            "skipped": state.get("skipped", 0),
            "live_queued": len(self._live),
        }

