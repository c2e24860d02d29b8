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

Two things the ids alone cannot tell, and the site says:

- where its ids start.  A site's outbox publishes, retained, on
  C{<prefix>/<SystemId>/info} (L{numberok.mqtt.info}) the first journal id it ever published (its outbox's first
  run) and the oldest its journal still keeps.  A collector that first
  hears of a site (L{Gaps.introduce}) asks for everything from there: the
  Lost events the site published before the collector's session existed
  (broker down at the first start, the central started later) are no
  longer invisible; what is older than the site's journal is counted as
  unfillable at once.
- which ids are its own.  A site that also collects keeps other
  instances' events in its journal and never publishes their ids; its
  messages then carry C{after}: the ids between C{after} and C{id} are not
  its own (L{Gaps.observe}), so they are no hole.
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
        # Where each SystemId's ids start is settled: remembered from an
        # earlier run (seeded) or told by its info message.
        self._settled: OrderedDict[int, None] = OrderedDict()
        # The lowest id heard this run of a SystemId not settled yet.
        self._low: dict[int, int] = {}

    def seed(self, systemId: int, journalId: int) -> None:
        """What a restart remembers (the duplicate memory's newest id):
        this site was heard from before, its start is settled."""
        if journalId > self._last.get(systemId, 0):
            self._last[systemId] = journalId
        self._settle(systemId)

    def observe(self, systemId: int, journalId: int, now: float,
                after: Optional[int] = None) -> tuple[Optional[Hole], int]:
        """
        Take id C{journalId} of C{systemId}.

        @param after: the message's C{after}: ids C{after + 1 ..
            journalId - 1} are not the site's own (collected from others);
            default C{journalId - 1}.
        @return: the new hole this id reveals (ask the site for it), or
            L{None}; and how many ids had to be given up to keep the bounds.
        """
        if after is None or not 0 <= after < journalId:
            after = journalId - 1
        given = 0
        holes = self._holes.get(systemId)
        if holes:
            self._fill(holes, after + 1, journalId)
        if systemId not in self._settled:
            self._low[systemId] = min(self._low.get(systemId, journalId),
                                      after + 1)
        last = self._last.get(systemId)
        if last is None:
            self._last[systemId] = journalId
            return None, given + self._bound()
        self._last.move_to_end(systemId)
        if journalId <= last:
            return None, given
        self._last[systemId] = journalId
        if after <= last:
            return None, given
        return self._open(systemId, last + 1, after, now)

    def introduce(self, systemId: int, firstId: int,
                  lastId: Optional[int], oldestId: Optional[int],
                  now: float) -> tuple[Optional[int], Optional[Hole], int]:
        """
        Take a site's info: it published its Lost events from C{firstId}
        on, up to C{lastId} (L{None}: none since its start), and its journal
        keeps ids from C{oldestId} on.  Only the first info of a SystemId
        not heard from before counts: later ones change nothing.

        @return: the id to ask the site to publish again from (L{None}:
            nothing to ask); the hole to wait for, if one can be bounded;
            and how many ids cannot be had (older than the site's journal,
            or given up to keep the bounds).
        """
        if systemId in self._settled:
            return None, None, 0
        low = self._low.pop(systemId, None)
        given = self._settle(systemId)
        start = max(firstId, oldestId or firstId)
        unfillable = start - firstId
        upper = low - 1 if low is not None else lastId
        if low is None and upper is not None:
            self._last[systemId] = max(self._last.get(systemId, 0), upper)
            given += self._bound()
        if upper is not None and upper < start:
            return None, None, unfillable + given
        hole: Optional[Hole] = None
        if upper is not None:
            hole, more = self._open(systemId, start, upper, now)
            given += more
        return start, hole, unfillable + given

    def _settle(self, systemId: int) -> int:
        self._settled[systemId] = None
        self._settled.move_to_end(systemId)
        self._low.pop(systemId, None)
        while len(self._settled) > self.maxSystems:
            self._settled.popitem(last=False)
        return self._bound()

    def _bound(self) -> int:
        """Forget the least recently heard SystemIds beyond L{maxSystems};
        @return: the ids of their open holes, given up."""
        given = 0
        while len(self._last) > self.maxSystems:
            gone, _ = self._last.popitem(last=False)
            given += sum(h.size for h in self._holes.pop(gone, []))
        while len(self._low) > self.maxSystems:
            self._low.pop(next(iter(self._low)))
        return given

    def _open(self, systemId: int, first: int, last: int, now: float
              ) -> tuple[Hole, int]:
        hole = Hole(first, last, now)
        holes = self._holes.setdefault(systemId, [])
        holes.append(hole)
        given = 0
        if len(holes) > self.maxHoles:
            given += holes.pop(0).size
        return hole, given

    def _fill(self, holes: list[Hole], low: int, high: int) -> None:
        """Take ids C{low}..C{high} out of C{holes}."""
        kept: list[Hole] = []
        for hole in holes:
            if high < hole.first or low > hole.last:
                kept.append(hole)
                continue
            if hole.first < low:
                kept.append(Hole(hole.first, low - 1, hole.askedAt))
            if high < hole.last:
                kept.append(Hole(high + 1, hole.last, hole.askedAt))
        holes[:] = kept

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
