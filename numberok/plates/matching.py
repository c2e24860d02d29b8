"""
Comparing plates: the Levenshtein distance, the one-scan fuzzy search the
analytics run on reads without an exact match, and the look-alike skeleton
they match on.
"""

from __future__ import annotations

from typing import Collection, Optional

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

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


def deletions(text: str, limit: int) -> set[str]:
    """C{text} and every string made from it by deleting up to C{limit}
    characters."""
    found = {text}
    frontier = found
    for _ in range(limit):
        frontier = {t[:i] + t[i + 1:] for t in frontier for i in range(len(t))}
        found |= frontier
    return found


class TextIndex:
    """
    Texts, each with the set of holders known by it (the analytics: match
    keys -> tracks of one zone), searched exactly in one dict look-up and
    near (within a Levenshtein distance) in time that does not grow with
    the number of texts.

    A small index is searched with one L{within} scan (C speed, cheapest
    for a few hundred texts).  From L{nearFrom} texts on, a
    deletion-neighbourhood side index is kept as well: two texts within
    distance k share a string made by deleting at most k characters from
    each, so the candidates are the texts filed under the query's
    deletions, each then checked with the real distance.  The result is
    the same set either way.
    """

    nearFrom = 256

    def __init__(self) -> None:
        self.holders: dict[str, set] = {}
        self._near: Optional[dict[str, set[str]]] = None
        self._nearLimit = -1

    def __len__(self) -> int:
        return len(self.holders)

    def get(self, text: str) -> Optional[set]:
        return self.holders.get(text)

    def add(self, text: str, holder: object) -> None:
        holders = self.holders.get(text)
        if holders is not None:
            holders.add(holder)
            return
        self.holders[text] = {holder}
        if self._near is not None:
            for variant in deletions(text, self._nearLimit):
                texts = self._near.get(variant)
                if texts is None:
                    self._near[variant] = {text}
                else:
                    texts.add(text)

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
            self._near = None
            return
        for variant in deletions(text, self._nearLimit):
            texts = self._near.get(variant)
            if texts is not None:
                texts.discard(text)
                if not texts:
                    del self._near[variant]

    def _build(self, limit: int) -> None:
        near: dict[str, set[str]] = {}
        for text in self.holders:
            for variant in deletions(text, limit):
                texts = near.get(variant)
                if texts is None:
                    near[variant] = {text}
                else:
                    texts.add(text)
        self._near, self._nearLimit = near, limit

    def near(self, query: str, limit: int) -> list[tuple[str, int]]:
        """The texts within distance C{limit} of C{query}, with it."""
        if len(self.holders) < self.nearFrom:
            return within(query, self.holders, limit)
        if self._near is None or self._nearLimit != limit:
            self._build(limit)
        candidates: set[str] = set()
        near = self._near
        for variant in deletions(query, limit):
            texts = near.get(variant)
            if texts:
                candidates |= texts
        found = []
        for text in candidates:
            d = Levenshtein.distance(query, text, score_cutoff=limit)
            if d <= limit:
                found.append((text, d))
        return found
