"""
L{PassageDecider}: puts the access decision on every event of a passage.

It sits between the analytics and their sinks (an L{IEventSink} wrapping
the fan-out), so the analytics need not know about lists.  The decision is
made once per passage, on its first event (Detected: the plate is
confident), and again only when the track's voted plate changes -- and
then it is taken only if it names another entry.  A new passage of the same
car (a new track, a new RuntimeID) decides again, so a car that comes back
is let in again.

Visits: an entry with a visit limit is counted down once per passage, on
the first of its events whose movement is In.
"""

from __future__ import annotations

from dataclasses import replace
from time import perf_counter
from typing import Optional

from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import EventState, MovementType, PlateEvent
from numberok.interfaces import IEventSink
from numberok.lists.matcher import Decision
from numberok.lists.service import ListsService

MAX_PASSAGES = 20_000
"""Passages remembered at most (active tracks are far fewer; a track whose
Lost never came is forgotten oldest first)."""


class Passage:
    """What the decider remembers of one active track."""

    __slots__ = ("plate", "decision", "counted")

    def __init__(self, plate: str, decision: Optional[Decision]) -> None:
        self.plate = plate
        self.decision = decision
        self.counted = False


def _entryOf(decision: Optional[Decision]) -> Optional[tuple[str, str]]:
    if decision is None or decision.match is None:
        return None
    return decision.match.list.name, decision.match.plate


def decorated(event: PlateEvent, decision: Optional[Decision]) -> PlateEvent:
    """C{event} carrying C{decision} (unchanged when no list applies)."""
    if decision is None:
        return event
    match = decision.match
    if match is None:
        return replace(event, access=decision.access)
    return replace(event, listName=match.list.name,
                   listKind=match.list.kind, listPlate=match.plate,
                   listMatch=match.wire, access=decision.access)


@implementer(IEventSink)
class PassageDecider:
    """
    @param lists: where decisions come from.
    @param sink: where decorated events go (the fan-out).
    """

    log = Logger()

    def __init__(self, lists: ListsService, sink: IEventSink) -> None:
        self.lists = lists
        self.sink = sink
        self.passages: dict[int, Passage] = {}
        self._latency = lists.metrics.listDecisionSeconds.observe
        self._decisions = lists.metrics.listDecisions

    def publish(self, event: PlateEvent) -> None:
        try:
            event = self.decorate(event)
        except Exception:
            self.log.failure("lists: no decision for {runtimeId}",
                             runtimeId=event.runtimeId)
        self.sink.publish(event)

    def decorate(self, event: PlateEvent) -> PlateEvent:
        passage = self.passages.get(event.runtimeId)
        if passage is None or passage.plate != event.plate:
            started = perf_counter()
            decision = self.lists.decide(event.plate, event.channel,
                                         event.zone)
            self._latency(perf_counter() - started)
            if passage is None:
                passage = self._remember(event, decision)
                self._decided(event, decision)
            elif _entryOf(decision) != _entryOf(passage.decision) and (
                    decision is not None and decision.match is not None):
                passage.decision = decision
                passage.counted = False
                self._decided(event, decision)
            passage.plate = event.plate
        decision = passage.decision
        if (not passage.counted and event.movement is MovementType.IN
                and decision is not None and decision.match is not None):
            passage.counted = True
            self.lists.countVisit(decision.match.list.name,
                                  decision.match.plate)
        if event.state is EventState.LOST:
            self.passages.pop(event.runtimeId, None)
        return decorated(event, decision)

    def _remember(self, event: PlateEvent,
                  decision: Optional[Decision]) -> Passage:
        if len(self.passages) >= MAX_PASSAGES:
            del self.passages[next(iter(self.passages))]
        passage = self.passages[event.runtimeId] = Passage(event.plate,
                                                           decision)
        return passage

    def _decided(self, event: PlateEvent,
                 decision: Optional[Decision]) -> None:
        if decision is None:
            return
        self._decisions.labels(access=decision.access).inc()
        match = decision.match
        self.lists.logAccess((
            int(self.lists.reactor.seconds() * 1000), event.channel,
            event.zone, event.runtimeId, event.plate,
            match.list.name if match else None,
            match.plate if match else None,
            match.wire if match else None, decision.access, "decision",
            None, None, decision.reason))
