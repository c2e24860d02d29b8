"""
Journal search, the half that runs in the journal's thread: a
L{SearchQuery} made into SQL over the indexed columns, newest first, one
page at a time (docs/search.rst).

How a plate is found among a million rows without reading them:

- C{exact} and C{lookalike}: the C{plate_skeleton} index (one B-tree
  look-up; C{exact} then compares the folded text of those few rows);
- C{fuzzy}, C{mask}, C{fragment}: first the skeletons that match, found
  among the journal's I{distinct} skeletons (far fewer than its rows) in
  memory -- a rapidfuzz scan in C for a distance, one regular expression
  over them joined for a mask -- then those skeletons through the index.
  The distinct skeletons are read once from the index and then only the
  rows added since (by id), so the cache follows the journal without a
  hook in the write path; skeletons of rows retention removed stay in it
  and simply find nothing.

Paging is by id (C{id < cursor}): rows that arrive while a client pages
have higher ids and never shift the pages it has not read yet.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

from numberok.journal.fields import COLUMNS, JournalEntry
from numberok.journal.query import SearchError, SearchQuery, cursorText
from numberok.plates.alphabets import fold
from numberok.plates.matching import skeleton, within


@dataclass(frozen=True, slots=True)
class SearchPage:
    """
    One page of a search.

    @ivar entries: the rows, newest (highest id) first.
    @ivar total: how many rows match the search (every page, not only
        this one), counted when the page was read.
    @ivar cursor: what to pass for the next page, L{None} after the last.
    """

    entries: list
    total: int
    cursor: Optional[str]


class SkeletonCache:
    """
    The distinct plate skeletons of one database, for the searches that
    cannot use the index directly.  Used only in the journal's thread.
    """

    def __init__(self, table: str = "events") -> None:
        self._table = table
        self._db: Optional[sqlite3.Connection] = None
        self._seenId = 0
        self._known: set[str] = set()
        self._list: list[str] = []
        self._text: Optional[str] = None

    def refresh(self, db: sqlite3.Connection) -> None:
        """Take in the skeletons of rows added since the last call (all of
        them the first time, or when the database is another)."""
        table = self._table
        top = db.execute("SELECT MAX(id) FROM %s" % (table,)
                         ).fetchone()[0] or 0
        if db is not self._db or top < self._seenId:
            self.__init__(table)
            self._db = db
            rows = db.execute("SELECT DISTINCT plate_skeleton FROM %s "
                              "WHERE plate_skeleton IS NOT NULL" % (table,))
        elif top == self._seenId:
            return
        else:
            rows = db.execute(
                "SELECT DISTINCT plate_skeleton FROM %s WHERE id > ? "
                "AND id <= ? AND plate_skeleton IS NOT NULL" % (table,),
                (self._seenId, top))
        self._seenId = top
        new = [s for (s,) in rows if s not in self._known]
        if new:
            self._known.update(new)
            self._list.extend(new)
            self._text = None

    def near(self, text: str, limit: int) -> list[str]:
        """The skeletons within Levenshtein distance C{limit} of C{text}."""
        return [s for s, _ in within(text, self._list, limit)]

    def matching(self, pattern: str) -> list[str]:
        """The skeletons C{pattern} (a regular expression over one line,
        anchored by the caller) matches, in one C-speed pass."""
        if self._text is None:
            self._text = "\n".join(self._list)
        return re.findall(pattern, self._text, re.MULTILINE)


def maskPattern(plate: str, match: str) -> str:
    """
    The regular expression, over skeletons, of a C{mask} (C{*} any run,
    C{?} one character) or C{fragment} (the text anywhere).
    """
    if match == "fragment":
        plate = "*" + plate + "*"
    parts = []
    for ch in plate:
        if ch == "*":
            parts.append(r"[^\n]*")
        elif ch == "?":
            parts.append(r"[^\n]")
        else:
            parts.append(re.escape(skeleton(ch)))
    return "^" + "".join(parts) + "$"


def plateCondition(query: SearchQuery, cache: SkeletonCache,
                   db: sqlite3.Connection
                   ) -> Optional[tuple[list[str], list[Any]]]:
    """
    The SQL condition on the plate, as C{(clauses, args)}; L{None} when no
    row can match (no skeleton qualifies).
    """
    plate, match = query.plate, query.match
    if plate is None:
        return [], []
    if match == "exact":
        return (["plate_skeleton = ?", "nk_fold(plate) = ?"],
                [skeleton(plate), fold(plate)])
    if match == "lookalike" or (match == "fuzzy" and query.distance == 0):
        return ["plate_skeleton = ?"], [skeleton(plate)]
    cache.refresh(db)
    if match == "fuzzy":
        found = cache.near(skeleton(plate), query.distance)
    else:
        found = cache.matching(maskPattern(plate, match))
    if not found:
        return None
    if len(found) == 1:
        return ["plate_skeleton = ?"], found
    return (["plate_skeleton IN (SELECT value FROM json_each(?))"],
            [json.dumps(found)])


@dataclass(frozen=True, slots=True)
class SearchedTable:
    """
    A table the search reads: the journal's C{events} (L{EVENTS}), or
    another with the same kind of rows (the access log of
    L{numberok.lists.accesslog}).

    @ivar name: the table; it has C{id} and C{plate_skeleton} columns.
    @ivar columns: what a page selects, in order.
    @ivar row: a selected row -> what the page holds.
    @ivar skeletonIndex: the index on C{plate_skeleton}.
    @ivar timeColumn: the column C{from} and C{to} bound.
    @ivar renamed: a L{SearchQuery} column -> this table's.
    """

    name: str
    columns: tuple[str, ...]
    row: Callable[[Sequence[Any]], Any]
    skeletonIndex: str
    timeColumn: str
    renamed: Mapping[str, str] = field(default_factory=dict)


EVENTS = SearchedTable("events", tuple(COLUMNS),
                       lambda r: JournalEntry(*r), "events_skeleton",
                       "frame_time_ms")


def whereOf(query: SearchQuery, cache: SkeletonCache,
            db: sqlite3.Connection, table: SearchedTable = EVENTS
            ) -> Optional[tuple[list[str], list[Any], bool]]:
    """
    Every condition of C{query} but the cursor: C{(clauses, args,
    byPlate)}, C{byPlate} telling whether the plate index should lead;
    L{None} when nothing can match.
    """
    plate = plateCondition(query, cache, db)
    if plate is None:
        return None
    clauses, args = plate
    if query.fromMs is not None:
        clauses.append("%s >= ?" % (table.timeColumn,))
        args.append(query.fromMs)
    if query.toMs is not None:
        clauses.append("%s <= ?" % (table.timeColumn,))
        args.append(query.toMs)
    for column, value in query.columns:
        clauses.append("%s = ?" % (table.renamed.get(column, column),))
        args.append(value)
    return clauses, args, query.plate is not None


def _sql(head: str, clauses: list[str], index: Optional[str]) -> str:
    # The planner does not know how many rows a skeleton list finds; the
    # plate index is always the narrow one when a plate is given.
    if index:
        head += " INDEXED BY " + index
    if clauses:
        head += " WHERE " + " AND ".join(clauses)
    return head


def searchPage(db: sqlite3.Connection, epoch: str, cache: SkeletonCache,
               query: SearchQuery, countTotal: bool = True,
               table: SearchedTable = EVENTS) -> SearchPage:
    """
    One page of C{query} in C{table}.  Blocking: the journal's thread
    only (or the thread of C{table}'s database).

    @param epoch: the database's epoch; a cursor of another is refused.
    @param countTotal: count every match (the exports skip it).
    @raise SearchError: the cursor is from another epoch.
    """
    if query.cursor is not None and query.cursor[0] != epoch:
        raise SearchError("cursor", (
            "the cursor is from another journal epoch (%s; this journal is "
            "%s): the journal was made anew, start the search again"
            % (query.cursor[0], epoch)))
    where = whereOf(query, cache, db, table)
    if where is None:
        return SearchPage([], 0, None)
    clauses, args, byPlate = where
    index = table.skeletonIndex if byPlate else None
    total = -1
    if countTotal:
        total = db.execute(_sql("SELECT COUNT(*) FROM " + table.name,
                                clauses, index), args).fetchone()[0]
    if query.cursor is not None:
        clauses = clauses + ["id < ?"]
        args = args + [query.cursor[1]]
    select = "SELECT %s FROM %s" % (", ".join(table.columns), table.name)
    rows = db.execute(_sql(select, clauses, index)
                      + " ORDER BY id DESC LIMIT ?",
                      args + [query.limit + 1]).fetchall()
    more = len(rows) > query.limit
    entries = [table.row(r) for r in rows[:query.limit]]
    cursor = (cursorText(epoch, entries[-1].id) if more and entries
              else None)
    return SearchPage(entries, total, cursor)


class JournalSearch:
    """
    Searches of one L{numberok.journal.Journal}, run in its thread.

    @ivar cache: the distinct skeletons, touched only in that thread.
    """

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.cache = SkeletonCache()

    def search(self, query: SearchQuery, countTotal: bool = True):
        """
        @return: a Deferred firing with a L{SearchPage}, failing with
            L{SearchError} (a cursor from another epoch) or
            L{numberok.journal.JournalUnavailable}.
        """
        return self.journal.readWith(self._inThread, query, countTotal)

    def _inThread(self, store, query: SearchQuery,
                  countTotal: bool) -> SearchPage:
        return searchPage(store.db, store.epoch, self.cache, query,
                          countTotal)
