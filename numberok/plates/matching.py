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
