"""
Visits: an entry paired with the next exit of the same vehicle, from the
journal and the zones' C{Role} settings (docs/search.rst, "Visits").

Which passage is an entry or an exit (C{[Zone:<ch>:<zone>] Role}):
C{entry} zone -- every passage; C{exit} zone -- every passage; C{both}
zone -- movement C{In} is an entry, C{Out} an exit (C{TryIn}, C{TryOut}
and C{Undetermined} are neither); C{none} -- ignored.

Pairing, in camera time (C{frame_time_ms}, then id), per look-alike
skeleton (a misread O/0 or Cyrillic/Latin spelling is the same vehicle):

- an entry opens a visit; the next exit closes it (C{status} C{"left"});
- an entry while a visit is open closes the open one as C{"exit_missed"}
  (its C{left} stays null: the exit was not seen) and opens a new one;
- an exit without an open visit is a visit C{"entry_missed"} (C{entered}
  null);
- a visit still open is C{"inside"}.

A visit is in a range when its entry or its exit is; an exit in the range
whose entry came before it is paired with the vehicle's last entry before
the range (one index look-up), at most L{LOOKBACK_MS} back.  Runs in the
journal's thread; reads only the rows of the range.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
LOOKBACK_MS = 7 * DAY_MS
"""How far back an exit's entry, or a vehicle inside now, is looked for."""

ROLES = ("entry", "exit", "both", "none")

_COLUMNS = ("id, plate, plate_skeleton, channel, zone, movement, "
            "frame_time_ms, screenshot_bytes, plate_bytes, "
            "screenshot_file, plate_file")


def _isPassage(keys: dict[int, str], prefix: str = "") -> str:
    """The SQL condition "an entry or exit" by the roles (C{keys} are
    ints, C{prefix} a table alias)."""
    def zoneIn(roles: tuple[str, ...]) -> str:
        return "(%schannel * 4 + %szone) IN (%s)" % (
            prefix, prefix, ", ".join(str(int(k)) for k, r in keys.items()
                                      if r in roles))
    return "(%s OR (%s AND %smovement IN ('In', 'Out')))" % (
        zoneIn(("entry", "exit")), zoneIn(("both",)), prefix)


@dataclass(frozen=True, slots=True)
class Passage:
    """One journal row that is an entry or an exit."""

    id: int
    plate: str
    skeleton: str
    timeMs: int
    entry: bool
    hasScreenshot: bool
    hasPlatePicture: bool


@dataclass(slots=True)
class Visit:
    """One stay; C{entry} or C{exit} is L{None} when not seen."""

    entry: Optional[Passage]
    exit: Optional[Passage] = None
    status: str = "inside"

    @property
    def plate(self) -> str:
        return (self.entry or self.exit).plate

    def durationMs(self, nowMs: int) -> Optional[int]:
        if self.entry is None or self.status == "exit_missed":
            return None
        end = self.exit.timeMs if self.exit is not None else nowMs
        return max(0, end - self.entry.timeMs)


@dataclass(slots=True)
class VisitReport:
    """
    What a visits query found.

    @ivar visits: newest entry (or exit) first.
    @ivar entriesPerHour: C{(hour start ms, entries)} over the range.
    """

    visits: list[Visit] = field(default_factory=list)
    entriesPerHour: list[tuple[int, int]] = field(default_factory=list)


def zoneKeys(roles: Mapping[tuple[int, int], str]) -> dict[int, str]:
    """C{channel * 4 + zone} -> role, for the zones that have one."""
    return {c * 4 + z: r for (c, z), r in roles.items() if r != "none"}


def _passage(row: tuple, role: str) -> Optional[Passage]:
    (rowId, plate, skel, _, _, movement, timeMs, shotBytes, plateBytes,
     shotFile, plateFile) = row
    if role == "both":
        if movement not in ("In", "Out"):
            return None
        entry = movement == "In"
    else:
        entry = role == "entry"
    return Passage(rowId, plate, skel, timeMs, entry,
                   bool(shotFile and shotBytes),
                   bool(plateFile and plateBytes))


def _passages(rows: Iterable[tuple], keys: dict[int, str]
              ) -> Iterable[Passage]:
    for row in rows:
        p = _passage(row, keys[row[3] * 4 + row[4]])
        if p is not None:
            yield p


def pair(passages: Iterable[Passage],
         before: Mapping[str, Passage] = {}) -> list[Visit]:
    """
    The visits of C{passages} (in camera-time order) by the rules above.
    @param before: per skeleton, an entry before the first passage still
        open then.
    """
    opened: dict[str, Visit] = {s: Visit(p) for s, p in before.items()}
    visits: list[Visit] = []
    for p in passages:
        current = opened.get(p.skeleton)
        if p.entry:
            if current is not None:
                current.status = "exit_missed"
                visits.append(current)
            opened[p.skeleton] = Visit(p)
        elif current is not None:
            current.exit, current.status = p, "left"
            visits.append(current)
            del opened[p.skeleton]
        else:
            visits.append(Visit(None, p, "entry_missed"))
    visits.extend(opened.values())
    return visits


def _neighbours(db: sqlite3.Connection, keys: dict[int, str],
                skeletons: list[str], later: bool,
                timeMs: int) -> dict[str, Passage]:
    """
    Per vehicle, its first passage after C{timeMs} (C{later}) or its last
    before it (at most L{LOOKBACK_MS} back): one index seek each, all in
    one statement.
    """
    if not skeletons:
        return {}
    window = ("e.frame_time_ms > ?1" if later else
              "e.frame_time_ms < ?1 AND e.frame_time_ms >= ?1 - %d"
              % (LOOKBACK_MS,))
    order = "" if later else "DESC"
    found = db.execute(
        "SELECT (SELECT e.id FROM events e INDEXED BY events_skeleton "
        "WHERE e.plate_skeleton = k.value AND %s AND %s "
        "ORDER BY e.frame_time_ms %s, e.id %s LIMIT 1) "
        "FROM json_each(?2) k" % (window, _isPassage(keys, "e."), order,
                                  order),
        (timeMs, json.dumps(skeletons))).fetchall()
    ids = [i for (i,) in found if i is not None]
    rows = db.execute("SELECT %s FROM events WHERE id IN "
                      "(SELECT value FROM json_each(?))" % (_COLUMNS,),
                      (json.dumps(ids),))
    return {p.skeleton: p for p in _passages(rows, keys)}


def visitReport(db: sqlite3.Connection,
                roles: Mapping[tuple[int, int], str], fromMs: int,
                toMs: int, skeleton: Optional[str] = None,
                lookAhead: bool = True) -> VisitReport:
    """
    The visits with an entry or exit in C{[fromMs, toMs]} (camera time),
    and the entries per hour.  Blocking: the journal's thread.

    @param skeleton: only this vehicle (look-alike skeleton).
    @param lookAhead: close a visit still open at C{toMs} with the
        vehicle's next passage after it when that is an exit (L{False}
        for "inside now", where nothing comes after).
    """
    keys = zoneKeys(roles)
    report = VisitReport()
    if not keys:
        return report
    where = "frame_time_ms >= ? AND frame_time_ms <= ? AND " + _isPassage(
        keys)
    args: list[Any] = [fromMs, toMs]
    if skeleton is not None:
        where += " AND plate_skeleton = ?"
        args.append(skeleton)
    rows = db.execute("SELECT %s FROM events INDEXED BY events_frame_time "
                      "WHERE %s ORDER BY frame_time_ms, id"
                      % (_COLUMNS, where), args)
    passages = list(_passages(rows, keys))
    firstSeen: dict[str, Passage] = {}
    for p in passages:
        firstSeen.setdefault(p.skeleton, p)
    before = {skel: p for skel, p in _neighbours(
        db, keys, [s for s, p in firstSeen.items() if not p.entry], False,
        fromMs).items() if p.entry}
    visits = pair(passages, before)
    if lookAhead:
        inside = [v for v in visits if v.status == "inside"]
        after = _neighbours(db, keys, [v.entry.skeleton for v in inside],
                            True, toMs)
        for v in inside:
            p = after.get(v.entry.skeleton)
            if p is not None and not p.entry:
                v.exit, v.status = p, "left"
    visits.sort(key=lambda v: ((v.entry or v.exit).timeMs,
                               (v.entry or v.exit).id), reverse=True)
    report.visits = visits
    report.entriesPerHour = _perHour(passages, fromMs, toMs)
    return report


def _perHour(passages: list[Passage], fromMs: int,
             toMs: int) -> list[tuple[int, int]]:
    start = fromMs - fromMs % HOUR_MS
    hours = min((toMs - start) // HOUR_MS + 1, 24 * 31)
    counts = [0] * hours
    for p in passages:
        if p.entry:
            slot = (p.timeMs - start) // HOUR_MS
            if 0 <= slot < hours:
                counts[slot] += 1
    return [(start + i * HOUR_MS, n) for i, n in enumerate(counts)]
