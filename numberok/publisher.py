"""
Fan-out of vehicle events to subscribers, at most twice per second each.

Events wait in each subscriber's queue as objects (L{numberok.queues}) and
are encoded when a write is due: once per event, the packet shared (as the
same L{bytes} object) by every subscriber that takes it, and never for an
event every queue dropped first.  Its screenshot is re-encoded once, and
only when some subscriber wants it.  Events leave in the order they were
published even though screenshots are encoded in threads: a small reorder
buffer holds later events until the earlier screenshot is ready.

Rate: a subscriber not written to for 0.5 s gets an event written at once;
otherwise one timer of that subscriber fires 0.5 s after its last write and
writes everything queued meanwhile in one write.  So two writes to one
client are always at least 0.5 s apart, sparse events are not delayed, and
an idle server runs no timers.  (A L{LoopingCall} keeps a fixed grid, so a
tick the reactor runs late is followed by one less than 0.5 s later, which
the protocol forbids.  A timer counted from the last write cannot do that.)

Overflow: each subscriber queues at most C{queueLimit} events and
C{queueBytes} bytes; the drop order is in L{numberok.queues}.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from numberok import wire
from numberok.events import EventState, PlateEvent
from numberok.interfaces import (IEventPublisher, IEventSubscriber,
                                 IScreenshotEncoder)
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.queues import (DROP_ORDER, UPDATED_DROPPED, Outgoing,
                             Subscription)
from numberok.pictures import PictureAttacher
from numberok.reactors import LazyReactor
from numberok.settings import SettingsStore
from numberok.settings.keys import (
    NETSERVER_ATTACHED_SCREENSHOTS_QUALITY, SYSTEM_SYSTEM_ID,
    SYSTEM_TEST_MODE)
from numberok.threads import ServiceThreads

__all__ = ["EventPublisher", "Subscription"]


@implementer(IEventPublisher)
class EventPublisher(Service):
    """
    The one L{IEventPublisher} of a server.

    @ivar minInterval: seconds between two writes to one subscriber.
    @ivar queueLimit: events queued per subscriber before dropping.  1024 is
        two full writes of a raw-results flood: more would only be dropped
        later.
    @ivar queueBytes: bytes queued per subscriber before dropping (32 MiB):
        each event counts its picture plus 1 KiB.  At least 32 pictures of
        the largest size a packet allows, about 300 typical ones; four
        clients that stop reading hold at most 128 MiB, where the count cap
        alone let one client pin a gigabyte of pictures.
    @ivar shutdownGrace: seconds L{drain} waits at most when not told.
    @ivar metrics: where dropped, unencodable and sent events are counted.
    """

    minInterval = 0.5
    queueLimit = 1024
    queueBytes = 32 * 1024 * 1024
    shutdownGrace = 3.0
    log = Logger()
    reactor = LazyReactor()

    def __init__(self, store: SettingsStore,
                 encoder: Optional[IScreenshotEncoder] = None,
                 reactor: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None,
                 runInThread: Optional[Callable[..., Deferred]] = None
                 ) -> None:
        """
        @param runInThread: runs the header reads that place C{PlateRect};
            by default a one-thread pool of this service.
        """
        self.store = store
        self.encoder = encoder
        self._reactor = reactor
        self.metrics = metricsOrPrivate(metrics)
        self._threads: Optional[ServiceThreads] = None
        if runInThread is None:
            self._threads = ServiceThreads("numberok-publisher",
                                           reactor=reactor)
            runInThread = self._threads.run
        self._pictures = PictureAttacher(encoder, runInThread)
        self._subscriptions: dict[IEventSubscriber, Subscription] = {}
        # The same, as a tuple made when a subscriber comes or goes: what
        # each event is handed to (a snapshot, as the list copy it replaces).
        self._pairs: tuple[tuple[IEventSubscriber, Subscription], ...] = ()
        self._pending: deque[Outgoing] = deque()
        self._dispatchWaiters: list[Deferred] = []
        self._drains: list[tuple[Deferred, IDelayedCall]] = []
        self._sequence = 0
        self._identity: tuple[int, bool] = (0, False)
        self._identityFrom = None
        m = self.metrics
        self._droppedOf = [m.droppedEvents.labels(state=state.value)
                           for state in DROP_ORDER]
        self._unencodable = m.unencodableEvents
        self._eventsSent = m.eventsSent
        self._bytesSent = m.bytesSent

    def startService(self) -> None:
        Service.startService(self)
        if self._threads is not None:
            self._threads.start()

    def stopService(self) -> Deferred:
        """
        L{drain} within L{shutdownGrace}, then stop the timers and the
        thread: twistd waits for the returned Deferred.
        """
        Service.stopService(self)
        d = self.drain(self.shutdownGrace)

        def stopped(_: object) -> Deferred:
            for subscription in self._subscriptions.values():
                subscription.cancelTimer()
            return (self._threads.stop() if self._threads is not None
                    else succeed(None))
        d.addCallback(stopped)
        d.addErrback(lambda f: self.log.failure("publisher stop failed", f))
        return d

    # -- subscribers ------------------------------------------------------

    def subscribe(self, subscriber: IEventSubscriber) -> Subscription:
        subscription = self._subscriptions.get(subscriber)
        if subscription is None:
            subscription = Subscription(subscriber, self.queueLimit,
                                        self.queueBytes)
            self._subscriptions[subscriber] = subscription
            self._pairs = tuple(self._subscriptions.items())
        return subscription

    def unsubscribe(self, subscriber: IEventSubscriber) -> None:
        """
        Forget C{subscriber} and empty its queue at once, so its events and
        pictures go even while its connection object lives on.
        """
        subscription = self._subscriptions.pop(subscriber, None)
        if subscription is not None:
            self._pairs = tuple(self._subscriptions.items())
            subscription.cancelTimer()
            subscription.clear()
            self._checkDrained()

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    # -- events -----------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """
        Queue C{event} for every subscriber that takes it; its packet is
        made when the first write is due.  Nothing raises to the caller.
        """
        settings = self.store.current
        if settings is not self._identityFrom:
            # Read once per settings change, not once per event.
            self._identity = (settings[SYSTEM_SYSTEM_ID],
                              settings[SYSTEM_TEST_MODE])
            self._identityFrom = settings
        self._sequence += 1
        outgoing = Outgoing(self._sequence, event, *self._identity)
        if self._wantsScreenshot(event):
            self._requestScreenshot(outgoing, settings)
        elif self._pending:
            self._pending.append(outgoing)
        else:
            self._dispatch(outgoing)

    def _wantsScreenshot(self, event: PlateEvent) -> bool:
        if not event.frame or self.encoder is None:
            return False
        return any(s.wantsScreenshots
                   and (event.state is EventState.LOST or not s.lostOnly)
                   for s in self._subscriptions)

    def _requestScreenshot(self, outgoing: Outgoing, settings: Any) -> None:
        try:
            # The picture may take what the text leaves of the 1 MiB.
            outgoing.encodeText()
        except wire.WireError as e:
            self._countUnencodable(outgoing, e)
            return
        outgoing.ready = False
        self._pending.append(outgoing)
        self._pictures.attach(
            outgoing, settings[NETSERVER_ATTACHED_SCREENSHOTS_QUALITY],
            self._dispatchReady)

    def _dispatchReady(self) -> None:
        while self._pending and self._pending[0].ready:
            self._dispatch(self._pending.popleft())
        if not self._pending:
            waiters, self._dispatchWaiters = self._dispatchWaiters, []
            for d in waiters:
                d.callback(None)
        self._checkDrained()

    def _dispatch(self, outgoing: Outgoing) -> None:
        if not self._subscriptions:
            return
        event = outgoing.event
        if event.frame is not None:
            # The queues never need the source frame: let it go with the
            # track, not with the slowest client.
            outgoing.event = dataclasses.replace(event, frame=None)
        isLost = outgoing.state is EventState.LOST
        hasShot = outgoing.jpeg is not None
        drops: Optional[list[int]] = None
        # Under a flood every queue is full and each push drops the oldest
        # Updated: that case is counted without a list (this runs for every
        # event and subscriber).
        updatedDrops = 0
        for subscriber, subscription in self._pairs:
            if not isLost and subscriber.lostOnly:
                continue
            dropped = subscription.push(
                outgoing, hasShot and subscriber.wantsScreenshots)
            if dropped is not None:
                if dropped is UPDATED_DROPPED:
                    updatedDrops += 1
                else:
                    if drops is None:
                        drops = [0] * len(DROP_ORDER)
                    for rank in dropped:
                        drops[rank] += 1
                total = subscription.dropped
                before = total - len(dropped)
                if before == 0 or before // 1000 != total // 1000:
                    self._logDropped(subscription)
            if subscription.timer is None:
                self._sendOrSchedule(subscription)
        if updatedDrops:
            self._droppedOf[UPDATED_DROPPED[0]].inc(updatedDrops)
        if drops is not None:
            for rank, count in enumerate(drops):
                if count:
                    self._droppedOf[rank].inc(count)

    def _logDropped(self, subscription: Subscription) -> None:
        """Log a full queue: its first drop, then every 1000th."""
        self.log.warn(
            "queue of {subscriber} full ({limit} events, {maxBytes} "
            "bytes): {dropped} dropped so far",
            subscriber=subscription.subscriber, limit=subscription.limit,
            maxBytes=subscription.maxBytes, dropped=subscription.dropped)

    def _countUnencodable(self, outgoing: Outgoing,
                          error: wire.WireError) -> None:
        outgoing.failed = True
        self._unencodable.inc()
        self.log.error("event {runtimeId} not sent: {error}",
                       runtimeId=outgoing.event.runtimeId, error=str(error))

    # -- writing ----------------------------------------------------------

    def _sendOrSchedule(self, subscription: Subscription) -> None:
        if subscription.timer is not None:
            return  # a flush is already due
        now = self.reactor.seconds()
        last = subscription.lastWriteAt
        if (last is None or now - last >= self.minInterval) and \
                subscription.subscriber.isWritable():
            self._write(subscription)
            return
        due = self.minInterval if last is None else max(
            0.0, last + self.minInterval - now)
        subscription.timer = self.reactor.callLater(
            due or self.minInterval, self._flushDue, subscription)

    def _flushDue(self, subscription: Subscription) -> None:
        subscription.timer = None
        if not subscription.queued:
            return
        if subscription.subscriber.isWritable():
            self._write(subscription)
        else:
            # Paused by its transport: look again in one interval.
            subscription.timer = self.reactor.callLater(
                self.minInterval, self._flushDue, subscription)

    def _packet(self, outgoing: Outgoing, withShot: bool) -> Optional[bytes]:
        """The packet for one queue entry, made once per event."""
        if outgoing.failed:
            return None
        if withShot and (outgoing.withShot is not None
                         or outgoing.jpeg is not None):
            try:
                return outgoing.shotPacket()
            except wire.WireError as e:
                self.log.warn("screenshot left out of event {runtimeId}: "
                              "{error}", runtimeId=outgoing.event.runtimeId,
                              error=str(e))
                outgoing.jpeg = None
        try:
            return outgoing.plainPacket()
        except wire.WireError as e:
            self._countUnencodable(outgoing, e)
            return None

    def _write(self, subscription: Subscription) -> None:
        packets = [packet for packet in
                   (self._packet(outgoing, withShot)
                    for outgoing, withShot in subscription.takeAll())
                   if packet is not None]
        if packets:
            data = b"".join(packets)
            subscription.lastWriteAt = self.reactor.seconds()
            subscription.writes += 1
            subscription.eventsSent += len(packets)
            subscription.bytesSent += len(data)
            self._eventsSent.inc(len(packets))
            self._bytesSent.inc(len(data))
            subscription.subscriber.writePackets(data)
        if self._drains:
            self._checkDrained()

    def flushAll(self) -> None:
        """
        Write every queue now, ignoring the rate limit (benchmarks and
        tests that need every event out at once).
        """
        for subscription in list(self._subscriptions.values()):
            if subscription.subscriber.isWritable():
                self._write(subscription)

    def whenDispatched(self) -> Deferred:
        """
        A Deferred that fires once every event published so far has reached
        the subscribers' queues (none is waiting for its screenshot).
        """
        if not self._pending:
            return succeed(None)
        d: Deferred = Deferred()
        self._dispatchWaiters.append(d)
        return d

    # -- shutdown ---------------------------------------------------------

    def drain(self, timeout: Optional[float] = None) -> Deferred:
        """
        Write what is queued to every subscriber as fast as the write cap
        allows, for the shutdown sequence (docs/operations.rst).

        Events still waiting for their screenshot are waited for while the
        C{timeout} runs; when it ends they are queued without the picture
        rather than not at all.  A subscriber whose transport is paused
        keeps its queue: its connection is about to be closed anyway.

        @param timeout: seconds to wait at most; L{None} means
            L{shutdownGrace}.
        @return: a Deferred that fires with L{None}, and never fails, when
            no event waits for its screenshot and every queue is empty
            (events published meanwhile included), or when C{timeout}
            seconds have passed, whichever comes first.
        """
        if timeout is None:
            timeout = self.shutdownGrace
        d: Deferred = Deferred()
        if self._drained():
            d.callback(None)
            return d
        entry = (d, self.reactor.callLater(max(0.0, timeout),
                                           self._drainTimedOut, d))
        self._drains.append(entry)
        return d

    def _drained(self) -> bool:
        return not self._pending and not any(
            s.queued for s in self._subscriptions.values())

    def _checkDrained(self) -> None:
        if self._drains and self._drained():
            drains, self._drains = self._drains, []
            for d, deadline in drains:
                if deadline.active():
                    deadline.cancel()
                d.callback(None)

    def _drainTimedOut(self, d: Deferred) -> None:
        self._drains = [(w, c) for w, c in self._drains if w is not d]
        late = sum(not p.ready for p in self._pending)
        if late:
            self.log.warn("shutdown: {count} events queued without their "
                          "screenshot (not ready within the grace period)",
                          count=late)
            for outgoing in self._pending:
                outgoing.ready = True
            self._dispatchReady()
        stalled = sum(1 for s in self._subscriptions.values() if s.queued)
        if stalled:
            self.log.warn("drain: {count} clients still have events queued "
                          "after the grace period", count=stalled)
        d.callback(None)
