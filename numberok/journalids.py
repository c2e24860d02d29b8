"""
C{JournalId} on Lost events (docs/protocol.rst, "Keys of our own"): the
journal id a Lost got, so that a NumberOk client that reconnects can ask
the catch-up API (C{GET /api/events?since_id=N}) for what it missed.

The id is known only once the journal's thread has committed the row,
a few milliseconds after the event.  L{JournalIds} sits in front of the
event publisher: a Lost waits for its id at most L{JournalIds.maxWait}
seconds and then goes on with it, or without it when the journal is
slower (or does not record it).  Events behind a waiting Lost wait with
it, so the clients still see events in the order they happened.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import EventState, PlateEvent
from numberok.interfaces import IEventSink
from numberok.reactors import LazyReactor

_LOST = EventState.LOST


@implementer(IEventSink)
class JournalIds:
    """
    Hands events to C{sink}, each Lost with its C{journalId} when the
    journal told it in time.

    @ivar maxWait: seconds a Lost waits for its journal id at most.
    """

    log = Logger()
    maxWait = 0.02
    reactor = LazyReactor()

    def __init__(self, sink: IEventSink, journal: Any,
                 reactor: Optional[IReactorTime]) -> None:
        """
        @param sink: the event publisher.
        @param journal: the L{numberok.journal.Journal}; it must receive
            every event after this object (the fan-out's order).
        """
        self.sink = sink
        self._reactor = reactor
        self._held: deque[list] = deque()     # [event, journalId, timer]
        self._waiting: dict[int, list] = {}   # id(event) -> its entry
        journal.addRecordedObserver(self._recorded)

    def publish(self, event: PlateEvent) -> None:
        if event.state is not _LOST and not self._held:
            # The usual event: nothing to wait for (L{_hand}, inlined: this
            # runs for every event).
            try:
                self.sink.publish(event)
            except Exception:
                self._refused(event)
            return
        item: list = [event, None, None]
        if event.state is EventState.LOST:
            self._waiting[id(event)] = item
            item[2] = self.reactor.callLater(self.maxWait, self._late, item)
        self._held.append(item)
        self._release()

    def _recorded(self, entry: Any, event: PlateEvent) -> None:
        item = self._waiting.pop(id(event), None)
        if item is None or item[0] is not event:
            return
        item[1] = entry.id
        self._settle(item)

    def _late(self, item: list) -> None:
        item[2] = None
        self._waiting.pop(id(item[0]), None)
        self._release()

    def _settle(self, item: list) -> None:
        timer, item[2] = item[2], None
        if timer is not None and timer.active():
            timer.cancel()
        self._release()

    def _release(self) -> None:
        """Hand on the events at the front that wait for nothing."""
        while self._held and self._held[0][2] is None:
            event, journalId, _ = self._held.popleft()
            if journalId is not None:
                event = dataclasses.replace(event, journalId=journalId)
            self._hand(event)

    def _hand(self, event: PlateEvent) -> None:
        try:
            self.sink.publish(event)
        except Exception:
            self._refused(event)

    def _refused(self, event: PlateEvent) -> None:
        self.log.failure("journal ids: the publisher refused event "
                         "{runtimeId}", runtimeId=event.runtimeId)

    def flush(self) -> None:
        """Hand on every held event now, with the ids known so far (at
        stop: no Lost may wait for a journal that is closing)."""
        for item in self._held:
            if item[2] is not None and item[2].active():
                item[2].cancel()
            item[2] = None
        self._waiting.clear()
        self._release()

    def held(self) -> int:
        """Events waiting (for tests and the shutdown)."""
        return len(self._held)

