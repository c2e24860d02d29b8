"""
The in-memory index of one list: what a decision reads, so the read path
never touches the database.

Per list: the exact texts (case and script folded) in one dict, the
look-alike skeletons (L{numberok.plates.skeleton}: O/0, B/8, Cyrillic...)
in another, the plates without their region digits in a third, masks
compiled to regular expressions, and -- only for a list with a match
distance -- a segment index for the near search.

The near search uses the pigeonhole rule: an entry's skeleton is cut into
three segments; a read within two edits of it leaves at least one segment
intact, at most two places from where it stands in the entry.  So the
candidates are found by a few dozen dict look-ups (entry length x segment x
shift) and only they are measured with the real Levenshtein distance
(rapidfuzz, in C), whatever the size of the list.
"""

from __future__ import annotations

import re
from datetime import tzinfo
from time import sleep
from typing import Iterable, Optional

from rapidfuzz.distance import Levenshtein

from numberok.lists.model import MAX_DISTANCE, Entry, PlateList, parseMoment
from numberok.lists.windows import weekMinute
from numberok.plates import fold, skeleton

SEGMENTS = MAX_DISTANCE + 1
YIELD_EVERY = 500
"""A whole list is indexed in the lists' thread; every this many entries
it lets go of the GIL (C{sleep(0)}), so the reactor thread, which waits for
it, is never held up for more than a fraction of a millisecond's work."""
REGION = re.compile(r"^(.{4,}\D)(\d{2,3})$")
"""A plate whose last two or three digits may be its region (C{A123BC77},
C{A123BC777}): a read without them still finds it when it is the only
one."""


Known = tuple
"""
One entry as the index holds it: a plain tuple C{(plate, key, skel,
since, until, windows)} -- the plate as stored, its folded text, its
look-alike skeleton, validity as timestamps (or L{None}) and its windows
(or L{None}).  Plain tuples of strings and numbers are left alone by the
garbage collector once it has seen them, so 100,000 entries add nothing to
a full collection's pause (objects would add about 30 ms each time).  The
visits left, the one thing that changes, live in L{ListIndex.visits}.
"""
PLATE, KEY, SKEL, SINCE, UNTIL, WINDOWS = range(6)


def makeKnown(entry: Entry, zone: tzinfo) -> Known:
    key = fold(entry.plate)
    return (entry.plate,
            # Most plates are their own folded text: one string, not two.
            entry.plate if key == entry.plate else key,
            skeleton(entry.plate),
            parseMoment(entry.validFrom, zone, False)
            if entry.validFrom else None,
            parseMoment(entry.validUntil, zone, True)
            if entry.validUntil else None,
            entry.windows or None)


def _add(table: dict, key: str, known: Known) -> None:
    """File C{known} under C{key}: the entry itself, or a tuple of them
    when several share the key (told apart by the first member's type)."""
    held = table.get(key)
    if held is None:
        table[key] = known
    elif type(held[0]) is str:
        table[key] = (held, known)
    else:
        table[key] = held + (known,)


def _remove(table: dict, key: str, known: Known) -> None:
    held = table.get(key)
    if held is None:
        return
    if held is known:
        del table[key]
    elif type(held[0]) is not str:
        kept = tuple(k for k in held if k is not known)
        if len(kept) == 1:
            table[key] = kept[0]
        elif kept:
            table[key] = kept
        else:
            del table[key]


def _all(held) -> tuple:
    if held is None:
        return ()
    return (held,) if type(held[0]) is str else held


def _bounds(length: int) -> list[tuple[int, int]]:
    cuts = [length * i // SEGMENTS for i in range(SEGMENTS + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(SEGMENTS)]


def _maskPattern(mask: str) -> re.Pattern:
    return re.compile("".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c)
        for c in mask) + r"\Z")


class ListIndex:
    """
    The index of one list.  Built in a thread for a whole list (a CSV
    import of 100,000 entries), then swapped in on the reactor thread;
    single entries are added and removed in place.
    """

    def __init__(self, plateList: PlateList, zone: tzinfo,
                 entries: Iterable[Entry] = ()) -> None:
        self.list = plateList
        self.zone = zone
        self.size = 0
        self.visits: dict[str, int] = {}
        self.exact: dict[str, object] = {}
        self.skels: dict[str, object] = {}
        self.regionless: dict[str, object] = {}
        self.segments: Optional[dict[str, object]] = (
            {} if plateList.distance else None)
        self.masks: dict[str, tuple[re.Pattern, re.Pattern, Known]] = {}
        for n, entry in enumerate(entries):
            self.add(entry)
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                sleep(0)

    def __len__(self) -> int:
        return self.size

    def knowns(self) -> list[Known]:
        """Every entry as indexed, plain ones first."""
        found = [k for held in self.exact.values() for k in _all(held)]
        return found + [k for _, _, k in self.masks.values()]

    def find(self, plate: str) -> Optional[Known]:
        """The entry of C{plate} (as stored), if any."""
        mask = self.masks.get(plate)
        if mask is not None:
            return mask[2]
        return next((k for k in _all(self.exact.get(fold(plate)))
                     if k[PLATE] == plate), None)

    def active(self, known: Known, now: float) -> bool:
        """Valid now: within its dates, a visit left, inside a window."""
        since, until, windows = known[SINCE], known[UNTIL], known[WINDOWS]
        if since is not None and now < since:
            return False
        if until is not None and now > until:
            return False
        if self.visits and self.visits.get(known[PLATE], 1) <= 0:
            return False
        if windows is not None:
            minute = weekMinute(now, self.zone)
            return any(w.contains(minute) for w in windows)
        return True

    def visitsLeft(self, plate: str) -> Optional[int]:
        return self.visits.get(plate)

    def countVisit(self, plate: str) -> bool:
        """One visit of C{plate} used; C{False} when it has no limit or
        none left."""
        left = self.visits.get(plate)
        if left is None or left <= 0:
            return False
        self.visits[plate] = left - 1
        return True

    def withList(self, plateList: PlateList) -> "ListIndex":
        """This index for a changed list (a new distance needs the
        segments built or dropped)."""
        if bool(plateList.distance) == bool(self.list.distance):
            self.list = plateList
            return self
        new = ListIndex(plateList, self.zone)
        for known in self.knowns():
            new._file(known)
        new.visits = self.visits
        return new

    def add(self, entry: Entry) -> Known:
        self.remove(entry.plate)
        known = makeKnown(entry, self.zone)
        self._file(known)
        if entry.visitsLeft is not None:
            self.visits[entry.plate] = entry.visitsLeft
        return known

    def _file(self, known: Known) -> None:
        self.size += 1
        plate, key, skel = known[PLATE], known[KEY], known[SKEL]
        if "*" in plate or "?" in plate:
            self.masks[plate] = (_maskPattern(key), _maskPattern(skel),
                                 known)
            return
        _add(self.exact, key, known)
        _add(self.skels, skel, known)
        region = REGION.match(key)
        if region is not None:
            _add(self.regionless, skeleton(region.group(1)), known)
        if self.segments is not None:
            for segment in self._segmentKeys(skel):
                _add(self.segments, segment, known)

    @staticmethod
    def _segmentKeys(skel: str) -> list[str]:
        n = len(skel)
        return ["%d.%d.%s" % (n, i, skel[a:b])
                for i, (a, b) in enumerate(_bounds(n))]

    def remove(self, plate: str) -> Optional[Known]:
        known = self.find(plate)
        if known is None:
            return None
        self.size -= 1
        self.visits.pop(plate, None)
        if plate in self.masks:
            del self.masks[plate]
            return known
        key, skel = known[KEY], known[SKEL]
        _remove(self.exact, key, known)
        _remove(self.skels, skel, known)
        region = REGION.match(key)
        if region is not None:
            _remove(self.regionless, skeleton(region.group(1)), known)
        if self.segments is not None:
            for segment in self._segmentKeys(skel):
                _remove(self.segments, segment, known)
        return known

    # -- the levels of a match ---------------------------------------------

    def exactly(self, key: str) -> tuple[Known, ...]:
        found = _all(self.exact.get(key))
        if self.masks:
            found = found + tuple(k for pattern, _, k in self.masks.values()
                                  if pattern.match(key))
        return found

    def lookalike(self, skel: str) -> tuple[Known, ...]:
        found = _all(self.skels.get(skel))
        if self.masks:
            found = found + tuple(k for _, pattern, k in self.masks.values()
                                  if pattern.match(skel))
        return found

    def near(self, skel: str) -> list[tuple[int, Known]]:
        """Entries within the list's distance (1..2) of C{skel}, with the
        distance; masks take no part."""
        limit = self.list.distance
        segments = self.segments
        if not limit or not segments:
            return []
        n = len(skel)
        seen: dict[int, Known] = {}
        for length in range(max(1, n - limit), n + limit + 1):
            for i, (a, b) in enumerate(_bounds(length)):
                prefix = "%d.%d." % (length, i)
                for shift in range(-limit, limit + 1):
                    if a + shift < 0 or b + shift > n:
                        continue
                    for known in _all(segments.get(
                            prefix + skel[a + shift:b + shift])):
                        seen[id(known)] = known
        found = []
        for known in seen.values():
            d = Levenshtein.distance(skel, known[SKEL], score_cutoff=limit)
            if 0 < d <= limit:
                found.append((d, known))
        return found

    def withoutRegion(self, skel: str) -> tuple[Known, ...]:
        return _all(self.regionless.get(skel))
