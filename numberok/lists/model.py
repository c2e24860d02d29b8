"""
The values of known plates -- a L{PlateList} and its L{Entry}s -- and their
validation: every member of a JSON object or CSV line is checked at the
edge, and a problem is reported as C{{member: message}} in a L{ListError},
all problems at once.

Names here are the API's (docs/lists.rst): a list is C{name}, C{kind},
C{distance}, C{scope}, C{colour}; an entry is C{plate}, C{owner},
C{comment}, C{validFrom}, C{validUntil}, C{windows}, C{visitsLeft}.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Mapping, Optional

from numberok.lists.windows import Window, WindowError, parseWindows

KINDS = ("allow", "deny", "info")
DEFAULT_COLOURS = {"allow": "#2e7d32", "deny": "#c62828", "info": "#1565c0"}
MAX_DISTANCE = 2
MAX_PLATE = 16
MAX_TEXT = 200
MAX_SCOPE = 64
MIN_MASK_LITERALS = 2
"""A mask needs this many characters that are not wildcards: C{*} or
C{A*} would match (almost) every car, and is refused."""
RESERVED_NAMES = frozenset(["match"])
"""Names the API uses for itself under C{/api/lists/}."""

_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_SCOPE = re.compile(r"^\d{1,4}(:\d{1,2})?$")


class ListError(ValueError):
    """
    Bad input for a list or an entry.

    @ivar errors: member (or C{"line N"}) -> what is wrong with it.
    """

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join("%s: %s" % kv for kv in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class PlateList:
    """
    A list.  C{scope} holds C{"<channel>"} or C{"<channel>:<zone>"}
    strings; empty means every channel and zone.
    """

    name: str
    kind: str = "allow"
    distance: int = 0
    scope: tuple[str, ...] = ()
    colour: str = ""

    def covers(self, channel: int, zone: int) -> bool:
        if not self.scope:
            return True
        return (str(channel) in self.scope
                or "%d:%d" % (channel, zone) in self.scope)

    def toJSON(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind,
                "distance": self.distance, "scope": list(self.scope),
                "colour": self.colour}


@dataclass(frozen=True, slots=True)
class Entry:
    """
    One known plate (or mask with C{*} / C{?}) of a list.  C{validFrom} /
    C{validUntil} are ISO texts as stored (a date alone means the whole
    day); C{visitsLeft} L{None} means unlimited.
    """

    plate: str
    owner: str = ""
    comment: str = ""
    validFrom: Optional[str] = None
    validUntil: Optional[str] = None
    windows: tuple[Window, ...] = ()
    visitsLeft: Optional[int] = None

    @property
    def isMask(self) -> bool:
        return "*" in self.plate or "?" in self.plate

    def toJSON(self) -> dict[str, Any]:
        return {"plate": self.plate, "owner": self.owner,
                "comment": self.comment, "validFrom": self.validFrom,
                "validUntil": self.validUntil,
                "windows": [w.text for w in self.windows],
                "visitsLeft": self.visitsLeft}


# -- checks ---------------------------------------------------------------

def checkName(name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ListError({"name": "1..64 of A-Z a-z 0-9 _ . - (it is part "
                                 "of the list's URL)"})
    if name in RESERVED_NAMES:
        raise ListError({"name": "%r is reserved by the API" % (name,)})
    return name


def parseList(obj: object, name: Optional[str] = None) -> PlateList:
    """
    A list from its JSON object; C{name}, when given, is the one in the
    URL (a C{name} member, if any, must agree).
    """
    if not isinstance(obj, dict):
        raise ListError({"body": "expected a JSON object with name, kind, "
                                 "distance, scope, colour"})
    errors: dict[str, str] = {}
    unknown = set(obj) - {"name", "kind", "distance", "scope", "colour"}
    for key in sorted(unknown):
        errors[key] = "unknown member"
    given = obj.get("name", name)
    if name is not None and given != name:
        errors["name"] = "differs from the list in the URL (%s)" % (name,)
    try:
        given = checkName(given)
    except ListError as e:
        errors.update(e.errors)
    kind = obj.get("kind", "allow")
    if kind not in KINDS:
        errors["kind"] = "one of allow, deny, info"
    distance = obj.get("distance", 0)
    if (isinstance(distance, bool) or not isinstance(distance, int)
            or not 0 <= distance <= MAX_DISTANCE):
        errors["distance"] = "an integer 0..%d" % (MAX_DISTANCE,)
    scope = obj.get("scope", [])
    if isinstance(scope, str):
        scope = [s for s in re.split(r"[\s,;]+", scope) if s]
    if (not isinstance(scope, list) or len(scope) > MAX_SCOPE or not all(
            isinstance(s, str) and _SCOPE.match(s) for s in scope)):
        errors["scope"] = ('a list of "<channel>" or "<channel>:<zone>" '
                           '(empty: everywhere)')
    colour = obj.get("colour") or DEFAULT_COLOURS.get(kind, "#607d8b")
    if not isinstance(colour, str) or not _COLOUR.match(colour):
        errors["colour"] = "#rrggbb"
    if errors:
        raise ListError(errors)
    return PlateList(given, kind, distance, tuple(dict.fromkeys(scope)),
                     colour.lower())


def checkPlate(text: object) -> str:
    """
    The plate or mask as stored: upper case, spaces and dashes removed.

    @raise ListError: on C{plate}, saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise ListError({"plate": "missing"})
    if any(unicodedata.category(c)[0] == "C" for c in text):
        raise ListError({"plate": "contains control characters"})
    plate = re.sub(r"[\s\-]+", "", text).upper()
    if len(plate) > MAX_PLATE:
        raise ListError({"plate": "longer than %d characters" % (MAX_PLATE,)})
    bad = [c for c in plate if not (c.isalnum() or c in "*?")]
    if bad:
        raise ListError({"plate": "%r is not a letter, digit, * or ?"
                                  % (bad[0],)})
    literals = sum(c not in "*?" for c in plate)
    if plate != re.sub(r"[*?]", "", plate) and literals < MIN_MASK_LITERALS:
        raise ListError({"plate": "a mask needs at least %d characters that "
                                  "are not * or ?: %r would match almost "
                                  "every car" % (MIN_MASK_LITERALS, plate)})
    return plate


def _text(obj: Mapping[str, Any], key: str, errors: dict[str, str]) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TEXT or any(
            unicodedata.category(c) == "Cc" for c in value):
        errors[key] = "text of at most %d characters, no control " \
                      "characters" % (MAX_TEXT,)
        return ""
    return value.strip()


def parseMoment(text: str, zone: tzinfo, end: bool) -> float:
    """
    An ISO date or date-time as a UTC timestamp; a date alone is its first
    second (C{end=False}) or the end of that day (C{end=True}), and a
    time without an offset is in C{zone}.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end
                                      else day, time(0), zone)
            return moment.timestamp() - (0.001 if end else 0.0)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("not an ISO date (2026-12-31) or date-time "
                         "(2026-12-31T18:00)")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.timestamp()


def parseEntry(obj: object, zone: tzinfo, now: float) -> Entry:
    """
    An entry from its JSON object (or a CSV line made into one).

    @param now: the server's time, to refuse an expiry in the past.
    """
    if not isinstance(obj, dict):
        raise ListError({"body": "expected a JSON object with plate, owner, "
                                 "comment, validFrom, validUntil, windows, "
                                 "visitsLeft"})
    errors: dict[str, str] = {}
    known = {"plate", "owner", "comment", "validFrom", "validUntil",
             "windows", "visitsLeft"}
    for key in sorted(set(obj) - known):
        errors[key] = "unknown member"
    plate = ""
    try:
        plate = checkPlate(obj.get("plate"))
    except ListError as e:
        errors.update(e.errors)
    owner = _text(obj, "owner", errors)
    comment = _text(obj, "comment", errors)
    moments: dict[str, Optional[float]] = {}
    texts: dict[str, Optional[str]] = {}
    for key, end in (("validFrom", False), ("validUntil", True)):
        value = obj.get(key)
        if value in (None, ""):
            moments[key] = texts[key] = None
            continue
        if not isinstance(value, str):
            errors[key] = "an ISO date or date-time text"
            continue
        try:
            moments[key] = parseMoment(value.strip(), zone, end)
            texts[key] = value.strip()
        except ValueError as e:
            errors[key] = str(e)
    until, since = moments.get("validUntil"), moments.get("validFrom")
    if until is not None and until < now:
        errors["validUntil"] = "%s is in the past" % (texts["validUntil"],)
    elif until is not None and since is not None and until < since:
        errors["validUntil"] = "before validFrom"
    windows: tuple[Window, ...] = ()
    try:
        windows = parseWindows(obj.get("windows"))
    except WindowError as e:
        errors["windows"] = str(e)
    visits = obj.get("visitsLeft")
    if isinstance(visits, str) and visits.strip().isdigit():
        visits = int(visits)
    elif visits == "":
        visits = None
    if visits is not None and (isinstance(visits, bool)
                               or not isinstance(visits, int)
                               or not 0 <= visits <= 10 ** 9):
        errors["visitsLeft"] = "a whole number 0..1000000000, or empty " \
                               "for unlimited"
    if errors:
        raise ListError(errors)
    return Entry(plate, owner, comment, texts.get("validFrom"),
                 texts.get("validUntil"), windows, visits)
