"""
The letters of the plate systems and the look-alike tables: the one copy of
the Cyrillic/Latin look-alike pairs every part of numberok uses (plate
rules, matching, the demo's rendering).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CYRILLIC_LOOKALIKES: dict[str, str] = {
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K",
    "\u041c": "M", "\u041d": "H", "\u041e": "O", "\u0420": "P",
    "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X",
    "\u0406": "I", "\u0408": "J", "\u0405": "S",
}
"""Cyrillic letters that look like Latin ones -> that Latin letter, folded
so that a read in either script compares equal.  Upper case only: text is
upper-cased first."""

LATIN_TO_CYRILLIC: dict[str, str] = {
    lat: cyr for cyr, lat in CYRILLIC_LOOKALIKES.items()}
"""The same pairs the other way round: how a Cyrillic plate spells a Latin
look-alike."""

FOLD = str.maketrans(CYRILLIC_LOOKALIKES)


def fold(text: str) -> str:
    """Upper case, Cyrillic look-alikes in Latin."""
    return text.upper().translate(FOLD)

@dataclass(frozen=True, slots=True)
class Alphabet:
    """
    The letters a plate system uses.

    @ivar letters: the allowed letters, spelled in Latin (the canonical form
        every comparison uses).
    @ivar native: Latin letter to the letter as the system writes it, for
        the C{native} output alphabet; empty for Latin systems.
    """

    name: str
    letters: frozenset[str]
    native: dict[str, str] = field(default_factory=dict, compare=False,
                                   hash=False)
    _toNative: dict[int, str] = field(init=False, compare=False,
                                      hash=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_toNative", str.maketrans(self.native))

    def toNative(self, text: str) -> str:
        """Spell C{text}'s Latin look-alikes in this system's own script."""
        return text.translate(self._toNative)



def _cyrillic(name: str, latin: str) -> Alphabet:
    """A Cyrillic plate alphabet whose letters all look like C{latin}."""
    return Alphabet(name, frozenset(latin),
                    {c: LATIN_TO_CYRILLIC[c] for c in latin})


ALPHABETS: dict[str, Alphabet] = {
    "latin": Alphabet("latin", frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")),
    # The 12 letters of Russian plates: А В Е К М Н О Р С Т У Х.
    "ru": _cyrillic("ru", "ABEKMHOPCTYX"),
    # Belarus adds І, drops У.
    "by": _cyrillic("by", "ABEIKMHOPCTX"),
    # Ukraine: А В С Е Н І К М О Р Т Х.
    "ua": _cyrillic("ua", "ABCEHIKMOPTX"),
}
"""The alphabets a template may name; see docs/plates.rst."""

# Look-alike fixes, applied only where a fitting template says which class a
# position must be.
DIGIT_FOR = {"O": "0", "Q": "0", "D": "0", "U": "0", "B": "8", "S": "5",
              "Z": "2", "I": "1", "L": "1", "J": "1", "G": "6", "T": "7",
              "A": "4"}
LETTER_FOR = {"0": "O", "8": "B", "5": "S", "2": "Z", "1": "I", "6": "G",
               "7": "T", "4": "A"}
DIGITS = frozenset("0123456789")
