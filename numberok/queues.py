"""
The publisher's two data structures: L{Outgoing}, one published event on
its way out with the packets made from it (made once, when the first
subscriber's write is due, and shared by every subscriber), and
L{Subscription}, one subscriber's queue of them with its caps, drop order
and counters.

Encoding at write time, not at publish time, is what makes a raw-results
flood cheap: under it most Updated events are dropped from every queue by
the cap before any write is due, and an event dropped everywhere is never
encoded at all.

Drop order (docs/protocol.rst, "Rate and queues"): when a new event does
not fit -- the queue already holds C{limit} events, or its bytes would pass
C{maxBytes} -- the oldest queued Updated goes first, then the oldest
Detected, and a Lost only when the queue holds nothing else.  An incoming
event that would need a more important one dropped is dropped itself.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Optional

from twisted.internet.interfaces import IDelayedCall

from numberok import wire
from numberok.events import BBox, EventState, PlateEvent, eventPairs
from numberok.interfaces import IEventSubscriber

DROP_ORDER = (EventState.UPDATED, EventState.DETECTED, EventState.LOST)
"""Which queued events go first when a queue is full: lowest first."""

RANK = {state: rank for rank, state in enumerate(DROP_ORDER)}
"""A state's place in L{DROP_ORDER}: queues are indexed by it (an int
index is much cheaper than hashing the enum on every push)."""

UPDATED_DROPPED = (0,)
"""What L{Subscription.push} returns when it made room by dropping the
oldest Updated (rank 0): the flood's usual case, one object."""

ENTRY_BYTES = 1024
"""
What one queued event is counted for in a queue's byte cap besides its
picture: its packet text (about 300 bytes) and the objects that hold it.
A deliberate over-estimate, so that the cap bounds real memory.
"""


def rectPair(rect: BBox) -> bytes:
    """The encoded C{PlateRect} pair, separator included."""
    return b"\x05PlateRect=%d,%d,%d,%d" % rect


def attachedRect(bbox: BBox, frame: tuple[int, int],
                 attached: tuple[int, int]) -> Optional[BBox]:
    """
    The plate box C{bbox}, given in the pixels of a C{frame}-sized picture,
    in the pixels of the C{attached}-sized picture made from it (the
    screenshot encoder scales down only, keeping the aspect ratio), clipped
    to that picture.

    @return: C{(x, y, w, h)}, or L{None} when nothing of the box lies
        inside the picture.
    """
    (fw, fh), (aw, ah) = frame, attached
    if fw <= 0 or fh <= 0:
        return None
    sx, sy = aw / fw, ah / fh
    x, y, w, h = bbox
    left = min(aw, max(0, round(x * sx)))
    top = min(ah, max(0, round(y * sy)))
    right = min(aw, max(0, round((x + w) * sx)))
    bottom = min(ah, max(0, round((y + h) * sy)))
    if right <= left or bottom <= top:
        return None
    return left, top, right - left, bottom - top


class Outgoing:
    """
    One published event and the packets made from it, shared by every
    queue that holds it: it lives exactly as long as some queue (or the
    publisher's reorder buffer) holds it, so a client that goes takes its
    share of memory with it.

    @ivar event: the event; after dispatch, a copy without the source
        frame (the queues never need the frame, and must not pin it).
    @ivar text: the encoded pairs with their terminator, once made.
    @ivar plain: the packet without picture, once made.
    @ivar jpeg: the attached screenshot, until the packet with it is made.
    @ivar rect: C{PlateRect} for the packet with picture, when known.
    @ivar withShot: the packet with picture, once made.
    @ivar ready: C{False} while its screenshot is being made.
    @ivar failed: C{True} once its text proved unencodable.
    """

    __slots__ = ("sequence", "event", "state", "rank", "systemId", "testMode",
                 "text", "plain", "jpeg", "rect", "withShot", "ready",
                 "failed", "__weakref__")

    def __init__(self, sequence: int, event: PlateEvent, systemId: int,
                 testMode: bool) -> None:
        self.sequence = sequence
        self.event = event
        self.state = event.state
        self.rank = RANK[event.state]
        # Settings as they were at publish time, so a save between publish
        # and write does not change an event already published.
        self.systemId = systemId
        self.testMode = testMode
        self.text: Optional[bytes] = None
        self.plain: Optional[bytes] = None
        self.jpeg: Optional[bytes] = None
        self.rect: Optional[BBox] = None
        self.withShot: Optional[bytes] = None
        self.ready = True
        self.failed = False

    def encodeText(self) -> bytes:
        """
        The event's pairs, encoded (once).

        @raise wire.WireError: when the event's text cannot be encoded.
        """
        if self.text is None:
            self.text = wire.encodePairs(eventPairs(
                self.event, self.systemId, self.testMode))
        return self.text

    def plainPacket(self) -> bytes:
        """@raise wire.WireError: see L{encodeText}."""
        if self.plain is None:
            self.plain = wire.encodePacket(wire.PT_EVENT, self.encodeText())
        return self.plain

    def shotPacket(self) -> bytes:
        """
        The packet with the picture, and C{PlateRect} right after
        C{ReadCount} (the last pair) when the box is known.  The picture
        itself is let go once it is inside the packet.

        @raise wire.WireError: when the packet would pass 1 MiB.
        """
        if self.withShot is None:
            text = self.encodeText()
            if self.rect is not None:
                text = (text[:-len(wire.TEXT_TERMINATOR)] + rectPair(self.rect)
                        + wire.TEXT_TERMINATOR)
            self.withShot = wire.encodePacket(wire.PT_EVENT,
                                              text + (self.jpeg or b""))
            self.jpeg = None
        return self.withShot

    def size(self, withShot: bool) -> int:
        """What this event counts for in one queue's byte cap."""
        if withShot:
            if self.withShot is not None:
                return ENTRY_BYTES + len(self.withShot)
            if self.jpeg is not None:
                return ENTRY_BYTES + len(self.jpeg)
        return ENTRY_BYTES


class Subscription:
    """
    One subscriber's queue, schedule and counters: the handle
    L{numberok.publisher.EventPublisher.subscribe} returns.  The counters
    are this client's figures in the admin page's connection table; the
    server's totals are in the metrics registry.

    @ivar limit: events queued at most.
    @ivar maxBytes: bytes queued at most (L{Outgoing.size}).
    @ivar queued: events queued now.
    @ivar queuedBytes: their size.
    @ivar dropped: events this client lost to the caps.
    """

    def __init__(self, subscriber: IEventSubscriber, limit: int,
                 maxBytes: int) -> None:
        self.subscriber = subscriber
        self.limit = limit
        self.maxBytes = maxBytes
        # By rank (L{RANK}): (sequence, event, withShot, size), oldest first.
        self._queues: list[deque] = [deque() for _ in DROP_ORDER]
        self._bytesOf = [0] * len(DROP_ORDER)
        self.queued = 0
        self.queuedBytes = 0
        self.dropped = 0
        self.eventsSent = 0
        self.bytesSent = 0
        self.writes = 0
        self.lastWriteAt: Optional[float] = None
        self.timer: Optional[IDelayedCall] = None

    def push(self, outgoing: Outgoing, withShot: bool
             ) -> Optional[tuple[int, ...]]:
        """
        Queue one event, dropping by the documented order when it does not
        fit.

        @return: L{None} when nothing was dropped, else the ranks
            (L{RANK}) of the events dropped: the new one itself, or older
            ones.
        """
        # Without a picture an entry is ENTRY_BYTES (L{Outgoing.size}): the
        # flood's case, without the call.
        size = outgoing.size(True) if withShot else ENTRY_BYTES
        rank = outgoing.rank
        entry = (outgoing.sequence, outgoing, withShot, size)
        # The two common cases inline: room, and (a flood) full by count
        # where dropping the oldest Updated makes room.
        if self.queued < self.limit:
            if self.queuedBytes + size <= self.maxBytes:
                self._queues[rank].append(entry)
                self.queued += 1
                self.queuedBytes += size
                self._bytesOf[rank] += size
                return None
        else:
            updated = self._queues[0]
            if updated:
                freed = updated[0][3]
                if self.queuedBytes - freed + size <= self.maxBytes:
                    updated.popleft()
                    self._queues[rank].append(entry)
                    self.dropped += 1
                    self.queuedBytes += size - freed
                    bytesOf = self._bytesOf
                    bytesOf[0] -= freed
                    bytesOf[rank] += size
                    return UPDATED_DROPPED
        # Room can only come from events no more important than this one:
        # if even all of them would not make room, this one goes instead.
        freeable = sum(len(q) for q in self._queues[:rank + 1])
        freeableBytes = sum(self._bytesOf[:rank + 1])
        if (self.queued - freeable >= self.limit
                or self.queuedBytes - freeableBytes + size > self.maxBytes):
            self.dropped += 1
            return (rank,)
        dropped = []
        for victimRank, victims in enumerate(self._queues):
            while victims and (self.queued >= self.limit or
                               self.queuedBytes + size > self.maxBytes):
                self._forget(victimRank, victims.popleft())
                dropped.append(victimRank)
        self.dropped += len(dropped)
        self._append(rank, entry)
        return tuple(dropped)

    def _append(self, rank: int, entry: tuple) -> None:
        self._queues[rank].append(entry)
        self.queued += 1
        self.queuedBytes += entry[3]
        self._bytesOf[rank] += entry[3]

    def _forget(self, rank: int, entry: tuple) -> None:
        self.queued -= 1
        self.queuedBytes -= entry[3]
        self._bytesOf[rank] -= entry[3]

    def takeAll(self) -> list[tuple[Outgoing, bool]]:
        """
        Remove every queued event.  @return: C{(event, withShot)} pairs in
        publish order.
        """
        if self.queued == 0:
            return []
        queues = [q for q in self._queues if q]
        merged = queues[0] if len(queues) == 1 else heapq.merge(*queues)
        taken = [(outgoing, withShot) for _, outgoing, withShot, _ in merged]
        self.clear()
        return taken

    def clear(self) -> None:
        """Forget every queued event (their memory goes with them)."""
        for q in self._queues:
            q.clear()
        self._bytesOf = [0] * len(DROP_ORDER)
        self.queued = 0
        self.queuedBytes = 0

    def cancelTimer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
