"""
Holes in a site's journal ids, seen from the collecting instance.

A site's outbox publishes its Lost events with their journal id (C{id}),
consecutive and in order.  A jump from 10 to 14 means 11..13 never came:
the broker had no session for us yet, or its store was wiped while we
were away.  The collector then asks that site to publish again from 11
(L{republishTopic}); whatever is still missing after L{Gaps.patience}
seconds cannot be filled (the site's journal no longer has it, or the site
is gone) and is counted and shown, never silently forgotten
(docs/mqtt.rst, "Gaps").
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional


def republishTopic(prefix: str, systemId: int) -> str:
    """Where a collector asks site C{systemId} to publish again."""
    return "%s/%d/republish" % (prefix, systemId)


@dataclass(slots=True)
class Hole:
    """Ids C{first}..C{last} of one site not received; asked again at
    C{askedAt} (the reactor's clock)."""

    first: int
    last: int
    askedAt: float

    @property
    def size(self) -> int:
        return self.last - self.first + 1


class Gaps:
    """
    The newest journal id heard from each SystemId, and its open holes.

    Bounded: L{maxSystems} SystemIds (least recently heard forgotten
    first), L{maxHoles} open holes per SystemId (the oldest is given up
    first).

    @ivar patience: seconds a hole stays open after its request.
    """

    patience = 30.0
    maxSystems = 1000
    maxHoles = 64

    def __init__(self) -> None:
        self._last: OrderedDict[int, int] = OrderedDict()
        self._holes: dict[int, list[Hole]] = {}

    def seed(self, systemId: int, journalId: int) -> None:
        """What a restart remembers (the duplicate memory's newest id)."""
        if journalId > self._last.get(systemId, 0):
            self._last[systemId] = journalId

    def observe(self, systemId: int, journalId: int, now: float
                ) -> tuple[Optional[Hole], int]:
        """
        Take id C{journalId} of C{systemId}.

        @return: the new hole this id reveals (ask the site for it), or
            L{None}; and how many ids had to be given up to keep the bounds.
        """
        given = 0
        holes = self._holes.get(systemId)
        if holes:
            self._fill(holes, journalId)
        last = self._last.get(systemId)
        if last is None:
            self._last[systemId] = journalId
            if len(self._last) > self.maxSystems:
                gone, _ = self._last.popitem(last=False)
                given += sum(h.size for h in self._holes.pop(gone, []))
            return None, given
        self._last.move_to_end(systemId)
        if journalId <= last:
            return None, given
        self._last[systemId] = journalId
        if journalId == last + 1:
            return None, given
        hole = Hole(last + 1, journalId - 1, now)
        holes = self._holes.setdefault(systemId, [])
        holes.append(hole)
        if len(holes) > self.maxHoles:
            given += holes.pop(0).size
        return hole, given

    def _fill(self, holes: list[Hole], journalId: int) -> None:
        for n, hole in enumerate(holes):
            if hole.first <= journalId <= hole.last:
                if hole.first == hole.last:
                    del holes[n]
                elif journalId == hole.first:
                    hole.first += 1
                elif journalId == hole.last:
                    hole.last -= 1
                else:
                    holes.insert(n + 1, Hole(journalId + 1, hole.last,
                                             hole.askedAt))
                    hole.last = journalId - 1
                return

    def expire(self, now: float) -> list[tuple[int, Hole]]:
        """Holes whose patience ran out, removed: they cannot be filled."""
        out = []
        for systemId, holes in list(self._holes.items()):
            keep = []
            for hole in holes:
                if now - hole.askedAt >= self.patience:
                    out.append((systemId, hole))
                else:
                    keep.append(hole)
            if keep:
                self._holes[systemId] = keep
            else:
                del self._holes[systemId]
        return out

    def open(self) -> int:
        """Ids missing and still hoped for."""
        return sum(h.size for holes in self._holes.values() for h in holes)
