"""
Comparing plates: the Levenshtein distance, the one-scan fuzzy search the
analytics run on reads without an exact match, and the look-alike skeleton
they match on.
"""

from __future__ import annotations

from typing import Collection, Optional

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from numberok.budgets import ByteBudget
from numberok.plates.alphabets import DIGIT_FOR, fold

def distance(a: str, b: str, limit: Optional[int] = None) -> int:
    """
    The Levenshtein distance between two plates, case and script folded
    (C{А123ВС77} in Cyrillic is 0 from C{a123bc77}), so the comparison does
    not depend on the output alphabet.

    @param limit: when given, any distance above it is reported as
        C{limit + 1}, which lets rapidfuzz stop early.
    """
    return Levenshtein.distance(fold(a), fold(b), score_cutoff=limit)


def within(query: str, choices: Collection[str],
           limit: int) -> list[tuple[str, int]]:
    """
    The C{choices} within Levenshtein distance C{limit} of C{query}, with
    their distances, in one rapidfuzz scan (C speed, no Python loop): the
    analytics call this on every read that has no exact match.  Meant for
    processed plates, which are already in one alphabet, so unlike
    L{distance} it does not fold case or script.
    """
    return [(text, int(d)) for text, d, _ in process.extract(
        query, list(choices), scorer=Levenshtein.distance,
        score_cutoff=limit, limit=None)]


_SKELETON = str.maketrans(DIGIT_FOR)


def skeleton(text: str) -> str:
    """
    C{text} with every look-alike pair collapsed to one character (O, Q, D,
    U -> 0; B -> 8; S -> 5; Z -> 2; I, L, J -> 1; G -> 6; T -> 7; A -> 4),
    after folding case and script.

    The analytics match reads to tracks on skeletons: a look-alike confusion
    then costs nothing, and neither does a template fix that went the wrong
    way on a partial read (C{363BE89} taken for a C{DDDD LL D} plate and
    "fixed" to C{3638EB9}), so the Levenshtein budget is left for real
    errors: dropped, extra and wrong characters.
    """
    return fold(text).translate(_SKELETON)


NEAR_INDEX_BYTES = 16 * 1024 * 1024
"""What the near indexes of all zones together may hold (a shared
L{ByteBudget}); past it a zone's near search is one scan of its texts
instead, with the same result."""

_ENTRY_BYTES = 120
"""About what one entry of a near index costs: its key string and its
slot in the dict (the texts themselves are shared with the holders)."""


def _segments(length: int, limit: int) -> list[tuple[int, int]]:
    """
    Where the C{limit + 1} segments of a text of C{length} characters
    start and how long each is (the first ones one shorter when it does
    not divide).  Two texts within distance C{limit} share a segment of
    one of them unchanged, shifted by at most C{limit} in the other: the
    C{limit} edits can touch at most C{limit} of the segments.
    """
    count = limit + 1
    short, longer = divmod(length, count)
    found, at = [], 0
    for j in range(count):
        size = short + (1 if j >= count - longer else 0)
        found.append((at, size))
        at += size
    return found


def _key(length: int, j: int, segment: str) -> str:
    return "%d:%d:%s" % (length, j, segment)


class TextIndex:
    """
    Texts, each with the set of holders known by it (the analytics: match
    keys -> tracks of one zone), searched exactly in one dict look-up and
    near (within a Levenshtein distance) in time that does not grow with
    the number of texts.

    A small index is searched with one L{within} scan (C speed, cheapest
    for a few hundred texts).  From L{nearFrom} texts on, a partition
    index is kept as well (as in Pass-Join): each text of length L is
    filed under its C{limit + 1} segments (L{_segments}); a query looks up,
    for each length within C{limit} of its own and each segment, its own
    substrings near the segment's place (Pass-Join's multi-match-aware
    window: Li, Deng, Wang, Feng, VLDB 2012), and checks those candidates
    with the real distance.  That is C{limit + 1} entries
    per text (a deletion neighbourhood needed about 27 for a plate at
    distance 2: 63,000 near-miss plates made 1.7 million keys), and they
    count against a L{ByteBudget} (the analytics share one among all
    zones): past it the index is let go and the
    scan answers.  The result is the same set every way.
    """

    nearFrom = 256

    def __init__(self, budget: Optional[ByteBudget] = None) -> None:
        self.holders: dict[str, set] = {}
        self.budget = (budget if budget is not None
                       else ByteBudget(NEAR_INDEX_BYTES))
        self._near: Optional[dict[str, object]] = None
        self._nearLimit = -1
        self._nearBytes = 0

    def __len__(self) -> int:
        return len(self.holders)

    @property
    def nearBytes(self) -> int:
        """The estimated bytes of the near index now (0 without one)."""
        return self._nearBytes

    def get(self, text: str) -> Optional[set]:
        return self.holders.get(text)

    def add(self, text: str, holder: object) -> None:
        holders = self.holders.get(text)
        if holders is not None:
            holders.add(holder)
            return
        self.holders[text] = {holder}
        if self._near is not None:
            if self.budget.take(self._cost(1)):
                self._nearBytes += self._cost(1)
                self._file(text)
            else:
                self._drop()

    def discard(self, text: str, holder: object) -> None:
        holders = self.holders.get(text)
        if holders is None:
            return
        holders.discard(holder)
        if holders:
            return
        del self.holders[text]
        if self._near is None:
            return
        if len(self.holders) < self.nearFrom // 2:
            self._drop()
            return
        self._unfile(text)
        self.budget.give(self._cost(1))
        self._nearBytes -= self._cost(1)

    def _cost(self, texts: int) -> int:
        return texts * (self._nearLimit + 1) * _ENTRY_BYTES

    def _keys(self, text: str) -> list[str]:
        length = len(text)
        return [_key(length, j, text[at:at + size])
                for j, (at, size) in enumerate(_segments(length,
                                                          self._nearLimit))]

    def _file(self, text: str) -> None:
        near = self._near
        for key in self._keys(text):
            entry = near.get(key)
            if entry is None:
                near[key] = text          # one text: no set for it
            elif isinstance(entry, set):
                entry.add(text)
            elif entry != text:
                near[key] = {entry, text}

    def _unfile(self, text: str) -> None:
        near = self._near
        for key in self._keys(text):
            entry = near.get(key)
            if entry == text:
                del near[key]
            elif isinstance(entry, set):
                entry.discard(text)
                if len(entry) == 1:
                    near[key] = entry.pop()

    def _drop(self) -> None:
        self.budget.give(self._nearBytes)
        self._near, self._nearLimit, self._nearBytes = None, -1, 0

    def _build(self, limit: int) -> bool:
        """Build the index for C{limit}; C{False} when over the budget."""
        self._drop()
        cost = len(self.holders) * (limit + 1) * _ENTRY_BYTES
        if not self.budget.take(cost):
            return False
        self._near, self._nearLimit, self._nearBytes = {}, limit, cost
        for text in self.holders:
            self._file(text)
        return True

    def near(self, query: str, limit: int) -> list[tuple[str, int]]:
        """The texts within distance C{limit} of C{query}, with it."""
        if len(self.holders) < self.nearFrom:
            return within(query, self.holders, limit)
        if self._near is None or self._nearLimit != limit:
            if not self._build(limit):
                return within(query, self.holders, limit)
        candidates: set[str] = set()
        near = self._near
        size = len(query)
        for length in range(max(0, size - limit), size + limit + 1):
            delta = size - length
            for j, (at, part) in enumerate(_segments(length, limit)):
                # Pass-Join's multi-match-aware window: where segment j
                # can sit in the query if it is the first unchanged one.
                low = max(0, at - j, at + delta - (limit - j))
                high = min(size - part, at + j, at + delta + (limit - j))
                for start in range(low, high + 1):
                    entry = near.get(_key(length, j,
                                          query[start:start + part]))
                    if entry is None:
                        continue
                    if isinstance(entry, set):
                        candidates |= entry
                    else:
                        candidates.add(entry)
        found = []
        for text in candidates:
            d = Levenshtein.distance(query, text, score_cutoff=limit)
            if d <= limit:
                found.append((text, d))
        return found
