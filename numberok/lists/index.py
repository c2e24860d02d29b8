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


class Known:
    """
    One entry as the index holds it: the plate, its folded text and
    skeleton, validity as timestamps, windows, and the visits left (the
    only member that changes in place, on the reactor thread).
    """

    __slots__ = ("plate", "key", "skel", "since", "until", "windows",
                 "visitsLeft")

    def __init__(self, entry: Entry, zone: tzinfo) -> None:
        self.plate = entry.plate
        key = fold(entry.plate)
        # Most plates are their own folded text: keep one string, not two.
        self.key = entry.plate if key == entry.plate else key
        self.skel = skeleton(entry.plate)
        self.since = (parseMoment(entry.validFrom, zone, False)
                      if entry.validFrom else None)
        self.until = (parseMoment(entry.validUntil, zone, True)
                      if entry.validUntil else None)
        self.windows = entry.windows or None
        self.visitsLeft = entry.visitsLeft

    def active(self, now: float, zone: tzinfo) -> bool:
        """Valid now: within its dates, a visit left, inside a window."""
        if self.since is not None and now < self.since:
            return False
        if self.until is not None and now > self.until:
            return False
        if self.visitsLeft is not None and self.visitsLeft <= 0:
            return False
        if self.windows is not None:
            minute = weekMinute(now, zone)
            return any(w.contains(minute) for w in self.windows)
        return True


def _add(table: dict, key: str, known: Known) -> None:
    held = table.get(key)
    if held is None:
        table[key] = known
    elif isinstance(held, list):
        held.append(known)
    else:
        table[key] = [held, known]


def _remove(table: dict, key: str, known: Known) -> None:
    held = table.get(key)
    if held is known:
        del table[key]
    elif isinstance(held, list):
        held[:] = [k for k in held if k is not known]
        if len(held) == 1:
            table[key] = held[0]
        elif not held:
            del table[key]


def _all(held) -> list[Known]:
    if held is None:
        return []
    return held if isinstance(held, list) else [held]


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
                     if k.plate == plate), None)

    def withList(self, plateList: PlateList) -> "ListIndex":
        """This index for a changed list (a new distance needs the
        segments built or dropped)."""
        if bool(plateList.distance) == bool(self.list.distance):
            self.list = plateList
            return self
        new = ListIndex(plateList, self.zone)
        for known in self.knowns():
            new._file(known)
        return new

    def add(self, entry: Entry) -> Known:
        self.remove(entry.plate)
        known = Known(entry, self.zone)
        self._file(known)
        return known

    def _file(self, known: Known) -> None:
        self.size += 1
        if "*" in known.plate or "?" in known.plate:
            self.masks[known.plate] = (_maskPattern(known.key),
                                       _maskPattern(known.skel), known)
            return
        _add(self.exact, known.key, known)
        _add(self.skels, known.skel, known)
        region = REGION.match(known.key)
        if region is not None:
            _add(self.regionless, skeleton(region.group(1)), known)
        if self.segments is not None:
            for key in self._segmentKeys(known.skel):
                _add(self.segments, key, known)

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
        if plate in self.masks:
            del self.masks[plate]
            return known
        _remove(self.exact, known.key, known)
        _remove(self.skels, known.skel, known)
        region = REGION.match(known.key)
        if region is not None:
            _remove(self.regionless, skeleton(region.group(1)), known)
        if self.segments is not None:
            for key in self._segmentKeys(known.skel):
                _remove(self.segments, key, known)
        return known

    # -- the levels of a match ---------------------------------------------

    def exactly(self, key: str) -> list[Known]:
        found = _all(self.exact.get(key))
        if self.masks:
            found = found + [k for pattern, _, k in self.masks.values()
                             if pattern.match(key)]
        return found

    def lookalike(self, skel: str) -> list[Known]:
        found = _all(self.skels.get(skel))
        if self.masks:
            found = found + [k for _, pattern, k in self.masks.values()
                             if pattern.match(skel)]
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
            d = Levenshtein.distance(skel, known.skel, score_cutoff=limit)
            if 0 < d <= limit:
                found.append((d, known))
        return found

    def withoutRegion(self, skel: str) -> list[Known]:
        return _all(self.regionless.get(skel))
