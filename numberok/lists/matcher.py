"""
The access decision for a plate read in a channel and zone: the lists in
scope are searched level by level -- exact (case and script folded), then
look-alike (skeleton equal), then within each list's distance, then a read
missing its region digits -- and the first level with a match decides.

Rules at one level (docs/lists.rst):

 - a plain entry beats a mask;
 - the same plate in several lists is one car: the strictest list speaks
   (deny, then allow, then info);
 - two different plates tied at the best level are no match, with the
   reason; so is a read without its region that fits more than one entry.

Everything here reads memory only (L{numberok.lists.index.ListIndex}); the
decision costs a few dict look-ups plus, for a list with a distance, a
bounded candidate search.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Iterable, Optional

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from numberok.lists.index import KEY, PLATE, REGION, SKEL, Known, ListIndex
from numberok.lists.model import PlateList
from numberok.plates import fold, skeleton

ACCESS_OF_KIND = {"allow": "granted", "deny": "denied", "info": "unknown"}
KIND_ORDER = {"deny": 0, "allow": 1, "info": 2}


@dataclass(frozen=True, slots=True)
class Match:
    """An entry a plate matched: the list, the entry's plate, how."""

    list: PlateList
    plate: str
    level: str
    distance: int = 0

    @property
    def wire(self) -> str:
        """C{exact}, C{lookalike} or C{fuzzy:<d>} (the C{ListMatch}
        key)."""
        if self.level == "fuzzy":
            return "fuzzy:%d" % (self.distance,)
        return self.level


@dataclass(frozen=True, slots=True)
class Decision:
    """
    The access decision: C{access} is C{granted}, C{denied} or C{unknown};
    C{match} the entry that decided (L{None} for none), C{reason} a line
    for the access log and the preview.
    """

    access: str
    match: Optional[Match]
    reason: str


def _known(found: list[tuple[ListIndex, Known]]) -> list[tuple[ListIndex,
                                                               Known]]:
    plain = [(i, k) for i, k in found if k[PLATE] not in i.masks]
    return plain or found


def resolve(found: list[tuple[ListIndex, Known]], level: str,
            distance: int = 0) -> Decision:
    """One level's candidates (not empty) to a decision."""
    found = _known(found)
    plates = sorted({k[KEY] for _, k in found})
    if len(plates) > 1:
        shown = ", ".join(plates[:5]) + (", ..." if len(plates) > 5 else "")
        return Decision("unknown", None, "tie at %s%s between %s" % (
            level, ":%d" % distance if level == "fuzzy" else "", shown))
    index, known = min(found, key=lambda f: (KIND_ORDER[f[0].list.kind],
                                             f[0].list.name))
    match = Match(index.list, known[PLATE], level, distance)
    return Decision(ACCESS_OF_KIND[index.list.kind], match,
                    "%s entry %s of list %s" % (match.wire, known[PLATE],
                                                index.list.name))


def nearByScan(index: ListIndex, skel: str,
               limit: int) -> list[tuple[int, Known]]:
    """
    The entries of C{index} within C{limit} of C{skel}, by one rapidfuzz
    scan over the list (C speed; the preview's distance may differ from
    the one the list is indexed for).
    """
    knowns = [k for k in index.knowns() if k[PLATE] not in index.masks]
    return [(int(d), knowns[i]) for _, d, i in process.extract(
        skel, [k[SKEL] for k in knowns], scorer=Levenshtein.distance,
        score_cutoff=limit, limit=None) if d > 0]


class Matcher:
    """
    Every list's index, and the decision.  Lists change on the reactor
    thread only (by L{numberok.lists.service.ListsService}), so a decision
    always sees whole lists.
    """

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.indexes: dict[str, ListIndex] = {}
        self._scopes: dict[tuple[int, int], tuple[ListIndex, ...]] = {}

    def put(self, index: ListIndex) -> None:
        self.indexes[index.list.name] = index
        self._scopes.clear()

    def drop(self, name: str) -> None:
        self.indexes.pop(name, None)
        self._scopes.clear()

    def inScope(self, channel: int, zone: int) -> tuple[ListIndex, ...]:
        where = (channel, zone)
        scoped = self._scopes.get(where)
        if scoped is None:
            scoped = self._scopes[where] = tuple(
                i for _, i in sorted(self.indexes.items())
                if i.list.covers(channel, zone))
        return scoped

    def decide(self, plate: str, channel: int, zone: int,
               now: float) -> Optional[Decision]:
        """
        The decision for C{plate} read in C{channel}/C{zone} at UTC
        C{now}; L{None} when no list is in scope there.
        """
        indexes = self.inScope(channel, zone)
        if not indexes:
            return None
        return self.decideAmong(indexes, plate, now)

    def decideAmong(self, indexes: Iterable[ListIndex], plate: str,
                    now: float) -> Decision:
        indexes = tuple(indexes)
        key = fold(plate)
        found = [(i, k) for i in indexes for k in i.exactly(key)
                 if i.active(k, now)]
        if found:
            return resolve(found, "exact")
        skel = skeleton(plate)
        found = [(i, k) for i in indexes for k in i.lookalike(skel)
                 if i.active(k, now)]
        if found:
            return resolve(found, "lookalike")
        near = [(d, i, k) for i in indexes for d, k in i.near(skel)
                if i.active(k, now)]
        if near:
            best = min(d for d, _, _ in near)
            return resolve([(i, k) for d, i, k in near if d == best],
                           "fuzzy", best)
        if key and not key[-1].isdigit():
            found = [(i, k) for i in indexes for k in i.withoutRegion(skel)
                     if i.active(k, now)]
            if len({k[KEY] for _, k in found}) == 1:
                region = REGION.match(found[0][1][KEY])
                return resolve(found, "fuzzy", len(region.group(2)))
            if found:
                return Decision("unknown", None, (
                    "read without region digits fits %d entries"
                    % (len({k[KEY] for _, k in found}),)))
        return Decision("unknown", None, "no entry matches")

    def preview(self, plate: str, distance: Optional[int],
                now: float) -> list[dict]:
        """
        Every entry of every list that C{plate} would match, at which
        level, and whether it is valid now -- for the operator's match
        preview.  C{distance} overrides each list's own for the search.
        """
        key, skel = fold(plate), skeleton(plate)
        rows = []
        for name, index in sorted(self.indexes.items()):
            limit = index.list.distance if distance is None else distance
            seen: set[int] = set()
            levels = [("exact", 0, index.exactly(key)),
                      ("lookalike", 0, index.lookalike(skel))]
            if limit:
                levels += [("fuzzy", d, [k]) for d, k in sorted(
                    nearByScan(index, skel, limit), key=lambda f: f[0])]
            for level, d, knowns in levels:
                for k in knowns:
                    if id(k) in seen:
                        continue
                    seen.add(id(k))
                    match = Match(index.list, k[PLATE], level, d)
                    rows.append({"list": name, "kind": index.list.kind,
                                 "colour": index.list.colour,
                                 "plate": k[PLATE], "match": match.wire,
                                 "activeNow": index.active(k, now),
                                 "visitsLeft": index.visitsLeft(k[PLATE])})
        order = {"exact": 0, "lookalike": 1}
        rows.sort(key=lambda r: (order.get(r["match"], 2), r["match"],
                                 r["list"], r["plate"]))
        return rows
