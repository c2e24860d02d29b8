"""
Normalisation: the rules that turn a raw read into the processed plate
(docs/plates.rst).  Pure and cheap enough to run on the reactor thread for
every read.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Optional

from numberok.plates.alphabets import (ALPHABETS, DIGIT_FOR, DIGITS, FOLD,
                                       LETTER_FOR)
from numberok.plates.templates import DEFAULT_TEMPLATES, PlateTemplate

_CONTROL = dict.fromkeys([*range(0x20), 0x7F])
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Unicode categories never part of a plate: controls (C0, DEL, C1 such as
U+0085), format characters (U+200B zero-width space, U+202E right-to-left
override, U+FEFF, soft hyphen) and the line and paragraph separators."""


def cleanRaw(text: str) -> str:
    """
    Make untrusted plate text safe to carry as C{RawPlateNumber}: remove
    every control (Cc: C0 with the wire's framing bytes 0x00 and 0x05, DEL,
    C1), format (Cf: zero-width and bidirectional marks) and line or
    paragraph separator (Zl, Zp) character, then strip outer whitespace.
    Nothing else is changed: the raw read must stay what the recognizer
    said, and what a person sees in it is all there is.

    The one plate-text sanitiser: every source and the collected MQTT
    events go through it (L{numberok.sources.fields.checkPlate}).
    """
    if text.isascii():
        return text.translate(_CONTROL).strip()
    category = unicodedata.category
    return "".join([ch for ch in text
                    if category(ch) not in _INVISIBLE]).strip()


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
        new = unicodedata.normalize("NFKC", text).upper().translate(FOLD)
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
            if ch not in DIGITS:
                ch = DIGIT_FOR.get(ch, "")
                fixes += 1
        elif cls == "L":
            if ch not in letters:
                ch = LETTER_FOR.get(ch, "")
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


canonical = _canonical
"""Plate text as every comparison sees it: upper case, Cyrillic look-alikes
in Latin, letters and digits only (what a search query is reduced to)."""
