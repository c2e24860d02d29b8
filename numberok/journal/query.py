"""
The parameters of a journal search (C{GET /api/events/search} and the
exports), read from a request's query string into a L{SearchQuery}, with a
specific error for every bad value (docs/search.rst, "Errors").

Filters on one column are rows of L{COLUMN_FILTERS}: a new one (a list
name, an access result) is one line there, and it works for the search,
the exports and the page at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Mapping, Optional, Sequence

from numberok.events import MovementType
from numberok.plates.rules import canonical
from numberok.settings.keys import MAX_CHANNEL, MAX_ZONE

MATCHES = ("exact", "lookalike", "fuzzy", "mask", "fragment")
MAX_DISTANCE = 2
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_PLATE_LENGTH = 32
ACCESS_RESULTS = ("granted", "denied", "unknown")
"""The values of the C{access} filter (the list decision's C{Access})."""
MAX_MS = 2 ** 53
"""Times beyond this (year 285,000) are refused: JSON cannot carry them
exactly."""


class SearchError(ValueError):
    """A search parameter is wrong: C{args} = (parameter, message), the
    400 answer's C{{"errors": {parameter: message}}}."""


def _intIn(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            raise ValueError("must be a whole number %d..%d, not %r"
                             % (low, high, text[:20]))
        value = int(text)
        if not low <= value <= high:
            raise ValueError("must be %d..%d, not %d" % (low, high, value))
        return value
    return parse


def _choice(names: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in names:
            raise ValueError("must be one of %s, not %r"
                             % (", ".join(names), text[:20]))
        return text
    return parse


def _name(longest: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if not text or len(text) > longest or not text.isprintable():
            raise ValueError("must be 1..%d printable characters" % longest)
        return text
    return parse


@dataclass(frozen=True, slots=True)
class ColumnFilter:
    """
    A filter C{column = value} taken from query parameter C{param}.

    @ivar parse: text -> the column's value; raises L{ValueError} with the
        message the client sees.
    """

    param: str
    column: str
    parse: Callable[[str], object]


COLUMN_FILTERS: tuple[ColumnFilter, ...] = (
    ColumnFilter("channel", "channel", _intIn(0, MAX_CHANNEL)),
    ColumnFilter("zone", "zone", _intIn(0, MAX_ZONE)),
    ColumnFilter("movement", "movement",
                 _choice([m.wireName for m in MovementType])),
    # The list decision (numberok.lists): the list an event matched, and
    # its access result.
    ColumnFilter("list", "ListName", _name(64)),
    ColumnFilter("access", "Access", _choice(ACCESS_RESULTS)),
)
"""Every one-column filter of the search, in the order they are checked."""

SEARCH_PARAMETERS = frozenset(
    {"plate", "match", "distance", "from", "to", "limit", "cursor"}
    | {f.param for f in COLUMN_FILTERS})
"""The query parameters of a search; any other is refused (the admin
site's C{queryParameters} check, where it has one)."""


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """
    One search, valid.

    @ivar plate: the plate text, canonical (upper case, Latin look-alikes,
        letters and digits; a mask keeps C{*} and C{?}), or L{None}.
    @ivar match: one of L{MATCHES}.
    @ivar distance: for C{fuzzy}: 0..L{MAX_DISTANCE}.
    @ivar fromMs: camera time (C{frame_time_ms}) at least this, or L{None}.
    @ivar toMs: camera time at most this, or L{None}.
    @ivar columns: C{(column, value)} of the L{COLUMN_FILTERS} given.
    @ivar limit: rows per page.
    @ivar cursor: C{(epoch, id)}: rows with ids below C{id}, or L{None} for
        the first page.
    """

    plate: Optional[str] = None
    match: str = "lookalike"
    distance: int = 0
    fromMs: Optional[int] = None
    toMs: Optional[int] = None
    columns: tuple[tuple[str, object], ...] = ()
    limit: int = DEFAULT_LIMIT
    cursor: Optional[tuple[str, int]] = None

    def page(self, cursor: Optional[tuple[str, int]],
             limit: Optional[int] = None) -> "SearchQuery":
        """The same search from C{cursor} on."""
        return SearchQuery(self.plate, self.match, self.distance,
                           self.fromMs, self.toMs, self.columns,
                           self.limit if limit is None else limit, cursor)


def parseTime(name: str, text: str) -> int:
    """
    ISO 8601 with an offset (C{2026-12-03T10:00:00+03:00}, C{...Z}) or
    milliseconds since 1970, as milliseconds.
    """
    if text.isascii() and text.isdigit():
        if len(text) > 16 or int(text) > MAX_MS:
            raise SearchError(name, "%s ms is out of range" % (text[:20],))
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SearchError(name, (
            "%r is not a time: give ISO 8601 with an offset "
            "(2026-12-03T10:00:00+03:00 or ...Z) or ms since 1970"
            % (text[:40],))) from None
    if when.tzinfo is None:
        raise SearchError(name, (
            "%r has no UTC offset: add one (+03:00, Z) so the time is not "
            "guessed" % (text[:40],)))
    return int(when.timestamp() * 1000)


_MASK_DROP = re.compile(r"[^*?]+")


def _plateOf(text: str, match: str) -> str:
    if len(text) > MAX_PLATE_LENGTH:
        raise SearchError("plate", "at most %d characters"
                          % (MAX_PLATE_LENGTH,))
    if match == "mask":
        # Canonical form for the literal runs, the wildcards kept.
        plate = _MASK_DROP.sub(lambda m: canonical(m.group()), text)
        if not plate.replace("*", "").replace("?", ""):
            raise SearchError("plate", (
                "a mask needs at least one letter or digit: %r would match "
                "every plate" % (text,)))
        return plate
    if "*" in text or "?" in text:
        raise SearchError("plate", "* and ? are wildcards of match=mask "
                          "only")
    plate = canonical(text)
    if not plate:
        raise SearchError("plate", "%r has no letters or digits" % (text,))
    return plate


def _one(args: Mapping[str, Sequence[str]], name: str) -> Optional[str]:
    values = args.get(name)
    if not values:
        return None
    value = values[0].strip()
    return value or None


def _parseCursor(text: str) -> tuple[str, int]:
    epoch, dot, number = text.partition(".")
    if (not dot or not re.fullmatch(r"[0-9a-f]{32}", epoch)
            or not number.isascii() or not number.isdigit()
            or len(number) > 18):
        raise SearchError("cursor", "%r is not a cursor this server gave"
                          % (text[:60],))
    return epoch, int(number)


def parseQuery(args: Mapping[str, Sequence[str]],
               maxLimit: int = MAX_LIMIT) -> SearchQuery:
    """
    The search C{args} ask for (query parameters, decoded as text).

    @raise SearchError: the first parameter that is wrong.
    """
    match = _one(args, "match")
    if match is not None and match not in MATCHES:
        raise SearchError("match", "must be one of %s, not %r"
                          % (", ".join(MATCHES), match[:20]))
    distanceText = _one(args, "distance")
    distance = 0
    if distanceText is not None:
        try:
            distance = _intIn(0, MAX_DISTANCE)(distanceText)
        except ValueError as e:
            raise SearchError("distance", str(e)) from None
        if match not in (None, "fuzzy"):
            raise SearchError("distance", "applies to match=fuzzy only")
        match = "fuzzy"
    elif match == "fuzzy":
        distance = 1
    match = match or "lookalike"
    plateText = _one(args, "plate")
    plate = None if plateText is None else _plateOf(plateText, match)
    fromText, toText = _one(args, "from"), _one(args, "to")
    fromMs = None if fromText is None else parseTime("from", fromText)
    toMs = None if toText is None else parseTime("to", toText)
    if fromMs is not None and toMs is not None and toMs < fromMs:
        raise SearchError("to", "is before from: the range is the wrong way "
                          "round")
    columns = []
    for f in COLUMN_FILTERS:
        text = _one(args, f.param)
        if text is not None:
            try:
                columns.append((f.column, f.parse(text)))
            except ValueError as e:
                raise SearchError(f.param, str(e)) from None
    limit = DEFAULT_LIMIT
    limitText = _one(args, "limit")
    if limitText is not None:
        try:
            limit = _intIn(1, maxLimit)(limitText)
        except ValueError as e:
            raise SearchError("limit", str(e)) from None
    cursorText = _one(args, "cursor")
    cursor = None if cursorText is None else _parseCursor(cursorText)
    return SearchQuery(plate, match, distance, fromMs, toMs, tuple(columns),
                       limit, cursor)


def cursorText(epoch: str, entryId: int) -> str:
    """The cursor L{parseQuery} reads back: C{<epoch>.<id>}."""
    return "%s.%d" % (epoch, entryId)
