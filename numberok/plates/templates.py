"""
Plate templates: the layouts of the plate systems (C{ru:L DDD LL RR[R]}),
as written in the C{[Plates] Templates} setting (docs/plates.rst).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from numberok.plates.alphabets import ALPHABETS

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

