"""
Fan-out of vehicle events to subscribers, at most twice per second each.

Each event is encoded once into a packet shared (as the same L{bytes}
object) by every subscriber's queue; its screenshot is re-encoded once, and
only when some subscriber wants it.  Events leave in the order they were
published even though screenshots are encoded in threads: a small
reorder buffer holds later events until the earlier screenshot is ready.

Rate: a subscriber not written to for 0.5 s gets an event written at once;
otherwise one timer of that subscriber fires 0.5 s after its last write and
writes everything queued meanwhile in one write.  So two writes to one
client are always at least 0.5 s apart, sparse events are not delayed, and
an idle server runs no timers.  (The design sketch names a 2 Hz
L{LoopingCall}; a LoopingCall keeps a fixed grid, so a tick the reactor runs
late is followed by one less than 0.5 s later, which the protocol forbids.
A timer counted from the last write cannot do that.)

Overflow: each subscriber queues at most C{queueLimit} (1024) events.  A full
queue drops the oldest Updated first, then the oldest Detected, and Lost
events only when the queue holds nothing else (docs/protocol.rst).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from numberok import wire
from numberok.events import EventState, PlateEvent, eventPairs
from numberok.interfaces import (IEventPublisher, IEventSubscriber,
                                 IScreenshotEncoder)
from numberok.settings import SettingsStore

# Which queued events go first when a queue is full: lowest first.
_DROP_ORDER = (EventState.UPDATED, EventState.DETECTED, EventState.LOST)


class Subscription:
    """
    One subscriber's queue, schedule and counters.  The counters are what
    the admin page's connection table shows.
    """

    def __init__(self, subscriber: IEventSubscriber, limit: int) -> None:
        self.subscriber = subscriber
        self.limit = limit
        self._queues: dict[EventState, deque] = {
            state: deque() for state in _DROP_ORDER}
        self.queued = 0
        self.dropped = 0
        self.eventsSent = 0
        self.bytesSent = 0
        self.writes = 0
        self.lastWriteAt: Optional[float] = None
        self.timer: Optional[IDelayedCall] = None

    def push(self, sequence: int, state: EventState, packet: bytes) -> bool:
        """
        Queue one packet.  @return: C{False} when something was dropped to
        make room (the new packet itself, or an older, less important one).
        """
        if self.queued >= self.limit:
            victim = self._victimQueue(state)
            if victim is None:
                self.dropped += 1
                return False
            victim.popleft()
            self.queued -= 1
            self.dropped += 1
            self._queues[state].append((sequence, packet))
            self.queued += 1
            return False
        self._queues[state].append((sequence, packet))
        self.queued += 1
        return True

    def _victimQueue(self, incoming: EventState) -> Optional[deque]:
        for state in _DROP_ORDER:
            if self._queues[state]:
                return self._queues[state]
            if state is incoming:
                return None
        return None

    def cancelTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None

    def takeAll(self) -> tuple[bytes, int]:
        """Remove every queued packet; return them joined in publish order."""
        merged = heapq.merge(*(q for q in self._queues.values() if q))
        data = b"".join(packet for _, packet in merged)
        count = self.queued
        for q in self._queues.values():
            q.clear()
        self.queued = 0
        return data, count


class _Pending:
    """An event waiting for its screenshot before it can be dispatched."""

    __slots__ = ("state", "plain", "withShot", "ready")

    def __init__(self, state: EventState, plain: bytes) -> None:
        self.state = state
        self.plain = plain
        self.withShot: Optional[bytes] = None
        self.ready = True


@implementer(IEventPublisher)
class EventPublisher(Service):
    """
    The one L{IEventPublisher} of a server.

    @ivar minInterval: seconds between two writes to one subscriber.
    @ivar queueLimit: events queued per subscriber before dropping.
    @ivar shutdownGrace: seconds L{drain} waits for screenshots at most.
    """

    minInterval = 0.5
    queueLimit = 1024
    shutdownGrace = 3.0
    log = Logger()

    def __init__(self, store: SettingsStore,
                 encoder: Optional[IScreenshotEncoder] = None,
                 reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.store = store
        self.encoder = encoder
        self.reactor = reactor
        self._subscriptions: dict[IEventSubscriber, Subscription] = {}
        self._pending: deque[_Pending] = deque()
        self._drainWaiters: list[Deferred] = []
        self._draining: Optional[list[Deferred]] = None
        self._sequence = 0
        self.published = 0
        self.unencodable = 0
        self.dropped = 0

    # -- subscribers ------------------------------------------------------

    def subscribe(self, subscriber: IEventSubscriber) -> Subscription:
        subscription = self._subscriptions.get(subscriber)
        if subscription is None:
            subscription = Subscription(subscriber, self.queueLimit)
            self._subscriptions[subscriber] = subscription
        return subscription

    def unsubscribe(self, subscriber: IEventSubscriber) -> None:
        subscription = self._subscriptions.pop(subscriber, None)
        if subscription is not None:
            subscription.cancelTimer()

    def subscriptions(self) -> list[Subscription]:
        return list(self._subscriptions.values())

    # -- events -----------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """
        Encode C{event} once and queue it for every subscriber that takes it.
        An event whose text cannot be encoded is logged, counted and
        dropped; nothing raises to the caller.
        """
        settings = self.store.current
        try:
            text = wire.encodePairs(eventPairs(
                event, settings["System.SystemId"], settings["System.TestMode"]))
            plain = wire.encodePacket(wire.PT_EVENT, text)
        except wire.WireError as e:
            self.unencodable += 1
            self.log.error("event {runtimeId} not sent: {error}",
                           runtimeId=event.runtimeId, error=str(e))
            return
        self.published += 1
        pending = _Pending(event.state, plain)
        self._pending.append(pending)
        if self._wantsScreenshot(event):
            pending.ready = False
            maxBytes = wire.MAX_DATA_LENGTH - len(text)
            d = self.encoder.encode(
                event.frame, settings["NetServer.AttachedScreenshotsQuality"],
                maxBytes, event.channel)
            d.addCallback(self._screenshotReady, pending, text)
            d.addErrback(self._screenshotFailed, pending)
            return
        self._dispatchReady()

    def _wantsScreenshot(self, event: PlateEvent) -> bool:
        if not event.frame or self.encoder is None:
            return False
        return any(s.wantsScreenshots
                   and (event.state is EventState.LOST or not s.lostOnly)
                   for s in self._subscriptions)

    def _screenshotReady(self, jpeg: Optional[bytes], pending: _Pending,
                         text: bytes) -> None:
        if jpeg:
            try:
                pending.withShot = wire.encodePacket(wire.PT_EVENT, text + jpeg)
            except wire.WireError as e:
                self.log.warn("screenshot left out: {error}", error=str(e))
        pending.ready = True
        self._dispatchReady()

    def _screenshotFailed(self, failure, pending: _Pending) -> None:
        self.log.failure("screenshot encoding failed", failure)
        pending.ready = True
        self._dispatchReady()

    def _dispatchReady(self) -> None:
        while self._pending and self._pending[0].ready:
            self._dispatch(self._pending.popleft())
        if not self._pending and self._drainWaiters:
            waiters, self._drainWaiters = self._drainWaiters, []
            for d in waiters:
                d.callback(None)

    def _dispatch(self, pending: _Pending) -> None:
        self._sequence += 1
        isLost = pending.state is EventState.LOST
        for subscriber, subscription in list(self._subscriptions.items()):
            if subscriber.lostOnly and not isLost:
                continue
            packet = pending.plain
            if pending.withShot is not None and subscriber.wantsScreenshots:
                packet = pending.withShot
            if not subscription.push(self._sequence, pending.state, packet):
                self.dropped += 1
                if subscription.dropped == 1 or subscription.dropped % 1000 == 0:
                    self.log.warn(
                        "queue of {subscriber} full ({limit} events): "
                        "{dropped} dropped so far",
                        subscriber=subscriber, limit=subscription.limit,
                        dropped=subscription.dropped)
            self._sendOrSchedule(subscription)

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

    def _write(self, subscription: Subscription) -> None:
        data, count = subscription.takeAll()
        if not count:
            return
        subscription.lastWriteAt = self.reactor.seconds()
        subscription.writes += 1
        subscription.eventsSent += count
        subscription.bytesSent += len(data)
        subscription.subscriber.writePackets(data)

    def flushAll(self) -> None:
        """
        Write every queue now, ignoring the rate limit: for shutdown, when
        the last events matter more than the cadence.
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
        d = Deferred()
        self._drainWaiters.append(d)
        return d

    def drain(self, timeout: Optional[float] = None) -> Deferred:
        """
        Hand every event published so far to its subscribers now, ignoring
        the rate limit: for shutdown, when the last events (the Lost events
        of every active track) matter more than the cadence.

        Events still waiting for their screenshot are waited for at most
        C{timeout} seconds; after that they go without the picture rather
        than not at all.  Subscribers whose transport is paused keep their
        queue (their connection is about to be closed anyway).

        @param timeout: seconds to wait for screenshots; L{None} means
            L{shutdownGrace}.
        @return: a Deferred firing when every queue has been written.
            Concurrent calls share one drain.
        """
        if timeout is None:
            timeout = self.shutdownGrace
        mine: Deferred = Deferred()
        if self._draining is not None:
            self._draining.append(mine)
            return mine
        self._draining = [mine]
        deadline = self.reactor.callLater(timeout, self._drainTimedOut)

        def dispatched(_: object) -> None:
            if deadline.active():
                deadline.cancel()
            self.flushAll()
            waiters, self._draining = self._draining, None
            for d in waiters:
                d.callback(None)
        d = self.whenDispatched()
        d.addCallback(dispatched)
        d.addErrback(lambda f: self.log.failure("drain failed", f))
        return mine

    def _drainTimedOut(self) -> None:
        late = sum(not p.ready for p in self._pending)
        self.log.warn("shutdown: {count} events sent without their "
                      "screenshot (not ready within the grace period)",
                      count=late)
        for pending in self._pending:
            pending.ready = True
        self._dispatchReady()

    def stopService(self) -> Deferred:
        """
        Stop the timers and L{drain}: twistd waits for the returned Deferred
        (bounded by L{shutdownGrace}) before it stops the reactor.
        """
        Service.stopService(self)
        for subscription in self._subscriptions.values():
            subscription.cancelTimer()
        return self.drain()
