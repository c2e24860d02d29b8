"""
Plate text: the rules that turn a raw read into the processed plate, the
distance used to compare plates, and the confidence-weighted vote that
decides a track's best plate (docs/plates.rst).

This module knows nothing about time, zones or tracks: the analytics own
those and call in here with strings.  Everything here is pure and cheap
enough to run on the reactor thread for every read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Optional

from rapidfuzz.distance import Levenshtein

__all__ = [
    "ALPHABETS", "Alphabet", "DEFAULT_TEMPLATES", "PlateRules",
    "PlateTemplate", "PlateTemplates", "PlateVote", "cleanRaw", "distance",
    "parseTemplates", "within",
]


# --- raw text --------------------------------------------------------------

_CONTROL = dict.fromkeys([*range(0x20), 0x7F])


def cleanRaw(text: str) -> str:
    """
    Make untrusted plate text safe to carry as C{RawPlateNumber}: remove the
    C0 control characters (0x00..0x1F, among them the wire's framing bytes
    0x00 and 0x05) and DEL, then strip outer whitespace.  Nothing else is
    changed: the raw read must stay what the recognizer said.
    """
    return text.translate(_CONTROL).strip()


# --- alphabets -------------------------------------------------------------

# Cyrillic letters that look like Latin ones, folded to Latin so that a read
# in either script compares equal.  Upper case only: text is upper-cased
# first.
_FOLD_PAIRS = {
    "\u0410": "A", "\u0412": "B", "\u0415": "E", "\u041a": "K",
    "\u041c": "M", "\u041d": "H", "\u041e": "O", "\u0420": "P",
    "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X",
    "\u0406": "I", "\u0408": "J", "\u0405": "S",
}
_FOLD = str.maketrans(_FOLD_PAIRS)


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
    native = {lat: cyr for cyr, lat in _FOLD_PAIRS.items()}
    return Alphabet(name, frozenset(latin), {c: native[c] for c in latin})


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
_DIGIT_FOR = {"O": "0", "Q": "0", "D": "0", "U": "0", "B": "8", "S": "5",
              "Z": "2", "I": "1", "L": "1", "J": "1", "G": "6", "T": "7",
              "A": "4"}
_LETTER_FOR = {"0": "O", "8": "B", "5": "S", "2": "Z", "1": "I", "6": "G",
               "7": "T", "4": "A"}
_DIGITS = frozenset("0123456789")


# --- templates -------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,23}\Z")
_HEAD = re.compile(r"\s*([^:(]*?)\s*(?:\(\s*([^)]*?)\s*\))?\s*:")
_CLASSES = {"L": "L", "D": "D", "R": "D", "X": "X"}
_FILLERS = frozenset(" -./_")
MAX_POSITIONS = 16
MAX_OPTIONAL_GROUPS = 3
MAX_TEMPLATES = 16


def _impliedAlphabet(name: str) -> str:
    """A template called C{ru} or C{ru-taxi} uses the C{ru} alphabet."""
    prefix = name.split("-", 1)[0].lower()
    return prefix if prefix in ALPHABETS else "latin"


def _expand(pattern: str) -> tuple[str, ...]:
    """
    The concrete shapes of a pattern: strings of C{L}, C{D} and C{X}, one
    per optional-group choice, shortest first.

    @raise ValueError: naming the column of the first bad character.
    """
    parts: list[tuple[str, bool]] = []  # (classes, optional)
    current: list[str] = []
    inGroup = False
    groups = 0
    for column, ch in enumerate(pattern, 1):
        if ch in _CLASSES:
            current.append(_CLASSES[ch])
        elif ch in _FILLERS:
            continue
        elif ch == "[":
            if inGroup:
                raise ValueError("nested '[' at character %d of the pattern"
                                 % (column,))
            groups += 1
            if groups > MAX_OPTIONAL_GROUPS:
                raise ValueError("more than %d optional groups"
                                 % (MAX_OPTIONAL_GROUPS,))
            parts.append(("".join(current), False))
            current, inGroup = [], True
        elif ch == "]":
            if not inGroup:
                raise ValueError("']' without '[' at character %d of the "
                                 "pattern" % (column,))
            if not current:
                raise ValueError("empty optional group '[]' ending at "
                                 "character %d of the pattern" % (column,))
            parts.append(("".join(current), True))
            current, inGroup = [], False
        else:
            raise ValueError(
                "%r at character %d of the pattern is not L (letter), D or R (digit), "
                "X (letter or digit), [ ] (optional) or a separator "
                "(space - . / _)" % (ch, column))
    if inGroup:
        raise ValueError("'[' is never closed")
    parts.append(("".join(current), False))
    shapes = [""]
    for classes, optional in parts:
        shapes = ([s + classes for s in shapes]
                  + ([s for s in shapes] if optional else []))
    shapes = sorted(set(shapes), key=lambda s: (len(s), s))
    if not shapes[-1]:
        raise ValueError("the pattern has no positions")
    if len(shapes[-1]) > MAX_POSITIONS:
        raise ValueError("the pattern has %d positions, more than %d"
                         % (len(shapes[-1]), MAX_POSITIONS))
    return tuple(s for s in shapes if s)


@dataclass(frozen=True, slots=True)
class PlateTemplate:
    """
    One plate layout of one plate system, as written in the C{Templates}
    setting: C{ru:L DDD LL RR[R]}.

    @ivar name: a label (C{ru}, C{ru-taxi}); its part before the first
        C{-} names the alphabet when that is not given.
    @ivar pattern: the layout, whitespace collapsed: C{L}/C{D}/C{R}/C{X}
        positions, C{[...]} optional, separators ignored.
    @ivar alphabet: a key of L{ALPHABETS}.
    @ivar shapes: derived: the concrete class strings (C{"LDDDLLDD"}, ...).
    """

    name: str
    pattern: str
    alphabet: str = ""
    shapes: tuple[str, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                "template name %r must start with a letter and hold only "
                "letters, digits, - and _ (at most 24)" % (self.name,))
        object.__setattr__(self, "pattern", " ".join(self.pattern.split()))
        alphabet = self.alphabet or _impliedAlphabet(self.name)
        if alphabet not in ALPHABETS:
            raise ValueError("unknown alphabet %r (known: %s)"
                             % (alphabet, ", ".join(ALPHABETS)))
        object.__setattr__(self, "alphabet", alphabet)
        object.__setattr__(self, "shapes", _expand(self.pattern))

    def __str__(self) -> str:
        """The settings text, which L{parseTemplates} reads back."""
        if self.alphabet == _impliedAlphabet(self.name):
            return "%s:%s" % (self.name, self.pattern)
        return "%s(%s):%s" % (self.name, self.alphabet, self.pattern)


class PlateTemplates(tuple):
    """
    A tuple of L{PlateTemplate}s whose C{str()} is the settings text, so the
    settings file can write it back as it writes any other value.
    """

    __slots__ = ()

    def __str__(self) -> str:
        # "; " right after a pattern: an INI inline comment needs a blank
        # *before* the ";", and a pattern never ends in one.
        return "; ".join(str(t) for t in self)

    def __repr__(self) -> str:
        return "PlateTemplates(%r)" % (str(self),)


_SEPARATORS = re.compile(r"[;,\n]")


def parseTemplates(text: str) -> PlateTemplates:
    """
    Parse the C{[Plates] Templates} setting: templates separated by C{;},
    C{,} or new lines, each C{name[(alphabet)]:pattern}.  Empty text means
    no templates (no look-alike fixes at all).

    @raise ValueError: with a message naming the template and the problem.
    """
    if not isinstance(text, str):
        raise ValueError("templates must be text, not %r" % (text,))
    templates = []
    for number, item in enumerate(_SEPARATORS.split(text), 1):
        item = item.strip()
        if not item:
            continue
        head = _HEAD.match(item)
        if head is None:
            raise ValueError(
                "template %d (%r) must look like name:pattern, for example "
                "ru:L DDD LL RR[R]" % (number, item))
        name, alphabet = head.group(1), head.group(2)
        if alphabet is not None and not alphabet:
            raise ValueError("template %d (%r): empty '()' names no alphabet"
                             % (number, item))
        try:
            templates.append(PlateTemplate(
                name, item[head.end():], (alphabet or "").lower()))
        except ValueError as e:
            raise ValueError("template %d (%r): %s" % (number, item, e)) \
                from None
        if len(templates) > MAX_TEMPLATES:
            raise ValueError("more than %d templates" % (MAX_TEMPLATES,))
    return PlateTemplates(templates)


DEFAULT_TEMPLATES = parseTemplates(
    "ru:L DDD LL RR[R]; ru-taxi:LL DDD RR[R]; by:DDDD LL-D")
"""
Russian private car (C{А123ВС77}, C{А123ВС777}), Russian taxi
(C{АВ12377}), Belarus private car (C{1234 АВ-7}).
"""


# --- normalisation ---------------------------------------------------------

_ASCII_DROP = str.maketrans("", "", "".join(
    chr(c) for c in range(128) if not chr(c).isalnum()))


def _canonical(raw: str) -> str:
    """
    Upper-case, Cyrillic look-alikes in Latin, only letters and digits.
    """
    if raw.isascii():
        return raw.upper().translate(_ASCII_DROP)
    text = raw
    # Each step can undo another's work on exotic text (stripping a
    # separator can make two code points composable again), so repeat to
    # the fixed point; plate text gets there in one round.
    for _ in range(8):
        new = unicodedata.normalize("NFKC", text).upper().translate(_FOLD)
        new = "".join(ch for ch in new if ch.isalnum())
        if new == text:
            break
        text = new
    return text


def _fit(text: str, shape: str, letters: frozenset[str],
         limit: int) -> Optional[str]:
    """
    C{text} fixed to C{shape}, or L{None} when it needs more than C{limit}
    look-alike fixes or has a character no fix can place.
    """
    fixes = 0
    out = []
    for ch, cls in zip(text, shape):
        if cls == "D":
            if ch not in _DIGITS:
                ch = _DIGIT_FOR.get(ch, "")
                fixes += 1
        elif cls == "L":
            if ch not in letters:
                ch = _LETTER_FOR.get(ch, "")
                if ch not in letters:
                    return None
                fixes += 1
        elif not ch.isalnum():  # "X": anything readable, left as is
            return None
        if not ch or fixes > limit:
            return None
        out.append(ch)
    return "".join(out)


@dataclass(frozen=True, slots=True)
class PlateRules:
    """
    The raw -> processed rules of one server (docs/plates.rst).

    @ivar alphabet: C{"latin"} writes processed plates in Latin letters
        (C{A123BC77}); C{"native"} in the script of the template that fits
        (C{А123ВС77}), or of the first template when none fits.
    @ivar templates: the plate layouts, most important first: ties between
        equally good fits go to the earlier one.
    @ivar max_fixes: a template fits only when at most this many look-alike
        fixes make the read match it; more means it is some other plate.
    """

    alphabet: str = "latin"
    templates: tuple[PlateTemplate, ...] = DEFAULT_TEMPLATES
    max_fixes: int = 2

    def __post_init__(self) -> None:
        if self.alphabet not in ("latin", "native"):
            raise ValueError("alphabet %r is not latin or native"
                             % (self.alphabet,))

    @classmethod
    def fromSettings(cls, settings: Any) -> "PlateRules":
        """
        The rules of C{settings["Plates.Alphabet"]} and
        C{settings["Plates.Templates"]}; a key the schema does not have yet
        gives its default.
        """
        def get(name: str, default: Any) -> Any:
            try:
                return settings[name]
            except KeyError:
                return default
        return cls(get("Plates.Alphabet", "latin"),
                   tuple(get("Plates.Templates", DEFAULT_TEMPLATES)))

    def normalize(self, raw: str) -> str:
        """
        The processed plate of a raw read: upper case, no spaces or
        separators, Cyrillic look-alikes folded, then the best fitting
        template (fewest fixes, then earliest) fixes O/0, B/8, ... and
        chooses the output script.  Idempotent and never raises for text.
        """
        text = _canonical(raw)
        best: Optional[tuple[int, str, PlateTemplate]] = None
        for template in self.templates:
            letters = ALPHABETS[template.alphabet].letters
            for shape in template.shapes:
                if len(shape) != len(text):
                    continue
                fixed = _fit(text, shape, letters, self.max_fixes)
                if fixed is None:
                    continue
                fixes = sum(a != b for a, b in zip(fixed, text))
                if best is None or fixes < best[0]:
                    best = (fixes, fixed, template)
        if best is not None:
            text, template = best[1], best[2]
        elif self.templates:
            template = self.templates[0]
        else:
            return text
        if self.alphabet == "native":
            return ALPHABETS[template.alphabet].toNative(text)
        return text


    def fits(self, processed: str) -> bool:
        """
        Whether C{processed} (a L{normalize} result) is a whole plate of
        one of the templates as it stands, with no fix needed.  The vote
        uses it to prefer a complete plate over a more often read
        truncation of it.
        """
        text = _canonical(processed)
        return any(
            _fit(text, shape, ALPHABETS[template.alphabet].letters, 0)
            is not None
            for template in self.templates for shape in template.shapes
            if len(shape) == len(text))

def _fold(text: str) -> str:
    return text.upper().translate(_FOLD)


def distance(a: str, b: str, limit: Optional[int] = None) -> int:
    """
    The Levenshtein distance between two plates, case and script folded
    (C{А123ВС77} in Cyrillic is 0 from C{a123bc77}), so the comparison does
    not depend on the output alphabet.

    @param limit: when given, any distance above it is reported as
        C{limit + 1}, which lets rapidfuzz stop early.
    """
    return Levenshtein.distance(_fold(a), _fold(b), score_cutoff=limit)


# --- voting ----------------------------------------------------------------

_SCALE = 1_000_000  # confidence in integer millionths: sums are exact


class PlateVote:
    """
    Incremental confidence-weighted vote over one track's reads.

    Per read, L{add} touches one counter per character, never the earlier
    reads, so a track with 100k reads costs what a track with ten does.
    Weights are kept in integer millionths so the result does not depend
    on the order the same reads arrived in (float sums would).

    The winning length is the one whose voted text fits a plate template
    (when the vote was given C{fits}), then the one with the highest
    summed confidence: partial reads at the frame edge often outnumber the
    whole plate, but they do not fit its template.  Ties, for a result
    that is reproducible: more reads, then the longer length (a recognizer
    drops characters more often than it invents them); per position the character with the highest summed confidence,
    then more reads, then the lowest code point; the reported raw read is
    the most confident one, the earliest of equals.

    @ivar reads: how many reads were added.
    """

    def __init__(self, fits: Optional[Callable[[str], bool]] = None) -> None:
        self.reads = 0
        self._fits = fits
        # length -> [summed weight, reads]
        self._lengths: dict[int, list[int]] = {}
        # length -> one dict per position: char -> [summed weight, reads]
        self._positions: dict[int, list[dict[str, list[int]]]] = {}
        # processed text -> (weight, raw) of its most confident read
        self._rawFor: dict[str, tuple[int, str]] = {}
        # length -> (weight, raw) of its most confident read
        self._rawOfLength: dict[int, tuple[int, str]] = {}
        self._best: Optional[tuple[str, str, float]] = None

    def add(self, processed: str, raw: str, confidence: float) -> None:
        """
        Count one read.

        @param processed: the read after L{PlateRules.normalize}.
        @param raw: the read as recognized, reported as C{RawPlateNumber}
            when it wins.
        @param confidence: 0..1; values outside are clamped, NaN counts 0.
        """
        if not confidence > 0.0:  # also NaN
            weight = 0
        else:
            weight = round(min(confidence, 1.0) * _SCALE)
        self.reads += 1
        self._best = None
        length = len(processed)
        total = self._lengths.get(length)
        if total is None:
            self._lengths[length] = [weight, 1]
            self._positions[length] = [{} for _ in range(length)]
        else:
            total[0] += weight
            total[1] += 1
        for counts, ch in zip(self._positions[length], processed):
            cell = counts.get(ch)
            if cell is None:
                counts[ch] = [weight, 1]
            else:
                cell[0] += weight
                cell[1] += 1
        known = self._rawFor.get(processed)
        if known is None or weight > known[0]:
            self._rawFor[processed] = (weight, raw)
        known = self._rawOfLength.get(length)
        if known is None or weight > known[0]:
            self._rawOfLength[length] = (weight, raw)

    def best(self) -> tuple[str, str, float]:
        """
        The track's plate as voted so far.

        @return: C{(processed plate, raw read to report, confidence)}; the
            confidence is the winning characters' summed confidence over
            the reads of the winning length, averaged over positions: the
            mean read confidence when all agree, less when they disagree.
            C{("", "", 0.0)} before the first read.
        """
        if self._best is not None:
            return self._best
        if not self.reads:
            return ("", "", 0.0)
        ranked = sorted(self._lengths.items(), reverse=True,
                        key=lambda kv: (kv[1][0], kv[1][1], kv[0]))
        length, (lengthWeight, count) = ranked[0]
        plate, won = self._votedText(length)
        if self._fits is not None and not self._fits(plate):
            for other, (otherWeight, otherCount) in ranked[1:]:
                text, weight = self._votedText(other)
                if self._fits(text):
                    length, lengthWeight, count = other, otherWeight, otherCount
                    plate, won = text, weight
                    break
        known = self._rawFor.get(plate) or self._rawOfLength[length]
        if length:
            confidence = won / (length * count * _SCALE)
        else:
            confidence = lengthWeight / (count * _SCALE)
        self._best = (plate, known[1], min(1.0, confidence))
        return self._best

    def _votedText(self, length: int) -> tuple[str, int]:
        """The per-position winners among reads of C{length}, and their
        summed weight."""
        chars = []
        won = 0
        for counts in self._positions[length]:
            ch, (weight, _) = max(
                counts.items(),
                key=lambda kv: (kv[1][0], kv[1][1], -ord(kv[0][0])))
            chars.append(ch)
            won += weight
        return "".join(chars), won

    def distinctPlates(self) -> Collection[str]:
        """
        Every distinct processed text added so far (a live view), for
        comparing a new read with the track's reads as well as its best
        plate.
        """
        return self._rawFor.keys()


def within(query: str, choices: Collection[str],
           limit: int) -> list[tuple[str, int]]:
    """
    The C{choices} within Levenshtein distance C{limit} of C{query}, with
    their distances, in one rapidfuzz scan (C speed, no Python loop): the
    analytics call this on every read that has no exact match.  Meant for
    processed plates, which are already in one alphabet, so unlike
    L{distance} it does not fold case or script.
    """
    from rapidfuzz import process
    return [(text, int(d)) for text, d, _ in process.extract(
        query, list(choices), scorer=Levenshtein.distance,
        score_cutoff=limit, limit=None)]


_SKELETON = str.maketrans(_DIGIT_FOR)


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
    return _fold(text).translate(_SKELETON)
