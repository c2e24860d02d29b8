"""
C{/api/visits} (docs/search.rst, "Visits"):

- C{GET /api/visits?from=&to=&plate=&open=1&longer_than=&limit=}: the
  visits with an entry or exit in the range (default: the last 24 hours),
  newest first, C{{"count": N, "visits": [...], "entriesPerHour": [...]}};
- C{GET /api/visits/inside?longer_than=}: the vehicles inside now,
  C{{"count": N, "visits": [...]}}.

Each visit: C{plate}, C{entered} and C{left} (camera time, ms since 1970;
C{left} null while inside), C{durationSec} (so far, while inside; null
when the entry or the exit was not seen), C{entryId}, C{exitId},
C{status}, C{entryPicture}, C{exitPicture}.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from numberok.journal.query import SearchError, parseTime
from numberok.journal.resource import DISABLED, readJournal
from numberok.journal.search_api import textArgs
from numberok.journal.visits import (DAY_MS, LOOKBACK_MS, Passage, Visit,
                                     VisitReport, visitReport)
from numberok.plates.matching import skeleton
from numberok.plates.rules import canonical
from numberok.web.common import Endpoint, HTTPError, answerJSON
from numberok.web.gate import Gate, Identity

MAX_RANGE_MS = 31 * DAY_MS
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
FAR_FUTURE_MS = 2 ** 53


def _intParam(args: Mapping[str, list[str]], name: str, default: int,
              low: int, high: int) -> int:
    text = (args.get(name) or [""])[0].strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise SearchError(name, "must be a whole number %d..%d, not %r"
                          % (low, high, text[:20]))
    value = int(text)
    if not low <= value <= high:
        raise SearchError(name, "must be %d..%d, not %d" % (low, high, value))
    return value


class Visits:
    """
    The visits of one journal under the zones' roles, read in its thread.

    @param settings: the L{numberok.settings.SettingsStore}: the C{Role} of
        every zone is read from its current settings for each query.
    """

    def __init__(self, journal: Any, settings: Any,
                 base: str = "/api/events") -> None:
        self.journal, self.settings, self.base = journal, settings, base

    def nowMs(self) -> int:
        return int(self.journal.clock.seconds() * 1000)

    def roles(self) -> dict[tuple[int, int], str]:
        return {where: z.role
                for where, z in self.settings.current.zones.items()}

    def report(self, fromMs: int, toMs: int, plate: Optional[str] = None,
               lookAhead: bool = True):
        """@return: a Deferred firing with a L{VisitReport}."""
        skel = None if plate is None else skeleton(plate)
        return self.journal.readWith(
            lambda store: visitReport(store.db, self.roles(), fromMs, toMs,
                                      skel, lookAhead))

    def inside(self):
        """@return: a Deferred firing with the open visits (inside now)."""
        now = self.nowMs()
        d = self.report(now - LOOKBACK_MS, FAR_FUTURE_MS, lookAhead=False)
        return d.addCallback(lambda r: [v for v in r.visits
                                        if v.status == "inside"])

    def _picture(self, p: Optional[Passage]) -> Optional[str]:
        if p is None or not p.hasScreenshot:
            return None
        return "%s/%d/screenshot.jpg" % (self.base, p.id)

    def visitJSON(self, v: Visit, nowMs: int) -> dict[str, Any]:
        duration = v.durationMs(nowMs)
        return {
            "plate": v.plate,
            "entered": v.entry.timeMs if v.entry is not None else None,
            "left": v.exit.timeMs if v.exit is not None else None,
            "durationSec": None if duration is None else duration // 1000,
            "entryId": v.entry.id if v.entry is not None else None,
            "exitId": v.exit.id if v.exit is not None else None,
            "status": v.status,
            "entryPicture": self._picture(v.entry),
            "exitPicture": self._picture(v.exit),
        }


def longerThan(visits: list[Visit], seconds: int, nowMs: int) -> list[Visit]:
    """The visits that lasted (or last so far) at least C{seconds}."""
    return [v for v in visits
            if (v.durationMs(nowMs) or -1) >= seconds * 1000]


def parseRange(args: Mapping[str, list[str]],
               nowMs: int) -> tuple[int, int]:
    """C{from} and C{to}, defaulting to the last 24 hours."""
    fromText = (args.get("from") or [""])[0].strip()
    toText = (args.get("to") or [""])[0].strip()
    toMs = parseTime("to", toText) if toText else nowMs
    fromMs = parseTime("from", fromText) if fromText else toMs - DAY_MS
    if toMs < fromMs:
        raise SearchError("to", "is before from: the range is the wrong way "
                          "round")
    if toMs - fromMs > MAX_RANGE_MS:
        raise SearchError("to", "the range is longer than 31 days")
    return fromMs, toMs


class VisitsResource(Endpoint):
    """C{/api/visits} and C{/api/visits/inside}."""

    isLeaf = True
    queryParameters = frozenset({"from", "to", "plate", "open",
                                 "longer_than", "limit"})

    def __init__(self, visits: Optional[Visits],
                 gate: Optional[Gate]) -> None:
        super().__init__(gate)
        self.visits = visits

    async def GET(self, request, identity: Identity) -> None:
        if self.visits is None:
            raise HTTPError(404, {"journal": DISABLED})
        path = [p for p in request.postpath if p]
        if path not in ([], [b"inside"]):
            raise HTTPError(404, {"path": "no such resource"})
        metrics = self.visits.journal.metrics
        now = self.visits.nowMs()
        openOnly = limit = 0
        try:
            args = textArgs(request)
            longer = _intParam(args, "longer_than", 0, 0, 10 ** 9)
            if path:
                d = self.visits.inside()
                kind = "inside"
            else:
                limit = _intParam(args, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
                openOnly = _intParam(args, "open", 0, 0, 1)
                fromMs, toMs = parseRange(args, now)
                plate = (args.get("plate") or [""])[0]
                if plate.strip() and not canonical(plate):
                    raise SearchError("plate", "%r has no letters or digits"
                                      % (plate[:40],))
                d = self.visits.report(fromMs, toMs,
                                       canonical(plate) or None)
                kind = "visits"
        except SearchError as e:
            metrics.searchRefused.labels(param=e.args[0]).inc()
            raise HTTPError(400, {e.args[0]: e.args[1]})
        metrics.searchRequests.labels(kind=kind).inc()
        result = await readJournal(d)
        if isinstance(result, VisitReport):
            visits = result.visits
            if openOnly:
                visits = [v for v in visits if v.status == "inside"]
        else:
            visits = result
        visits = longerThan(visits, longer, now) if longer else visits
        doc: dict[str, Any] = {"count": len(visits)}
        if isinstance(result, VisitReport):
            visits = visits[:limit]
            doc["entriesPerHour"] = [
                {"hour": h, "entries": n}
                for h, n in result.entriesPerHour]
        doc["visits"] = [self.visits.visitJSON(v, now) for v in visits]
        answerJSON(request, 200, doc)
