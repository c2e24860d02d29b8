"""
The blocking half of the lists: the SQLite database (C{lists.sqlite} in
the journal folder, or in memory when the server has no journal folder).
Every method runs in the lists' one thread, and only there.

Tables: C{lists}, C{entries} (one row per list and plate) and
C{access_log} (every decision and gate action, L{ACCESS_COLUMNS}), kept to
the newest L{MAX_ACCESS_ROWS} rows.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import tzinfo
from typing import Any, Iterable, Optional, Sequence

from numberok.journal.schema import registerFunctions
from numberok.lists.model import Entry, PlateList
from numberok.lists.windows import parseWindows

DATABASE_NAME = "lists.sqlite"
MAX_ACCESS_ROWS = 500_000

ACCESS_COLUMNS = ("id", "time_ms", "channel", "zone", "runtime_id", "plate",
                  "list", "entry", "match", "decision", "action", "result",
                  "latency_ms", "reason")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lists (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL, distance INTEGER NOT NULL,
    scope TEXT NOT NULL, colour TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    origin TEXT NOT NULL DEFAULT 'local');
CREATE TABLE IF NOT EXISTS entries (
    list TEXT NOT NULL, plate TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT '', comment TEXT NOT NULL DEFAULT '',
    valid_from TEXT, valid_until TEXT, windows TEXT, visits_left INTEGER,
    PRIMARY KEY (list, plate));
CREATE TABLE IF NOT EXISTS access_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL,
    channel INTEGER, zone INTEGER, runtime_id INTEGER, plate TEXT,
    list TEXT, entry TEXT, match TEXT, decision TEXT, action TEXT,
    result TEXT, latency_ms REAL, reason TEXT);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_ENTRY = ("plate", "owner", "comment", "valid_from", "valid_until",
          "windows", "visits_left")


def _fold(text: Optional[str]) -> Optional[str]:
    """Case folding for search (SQLite's own LIKE folds ASCII only)."""
    return text.casefold() if text else text


def _entryRow(name: str, e: Entry) -> tuple:
    return (name, e.plate, e.owner, e.comment, e.validFrom, e.validUntil,
            json.dumps([w.text for w in e.windows]) if e.windows else None,
            e.visitsLeft)


def _entryOf(row: Sequence[Any]) -> Entry:
    plate, owner, comment, since, until, windows, visits = row
    return Entry(plate, owner, comment, since, until,
                 parseWindows(json.loads(windows)) if windows else (),
                 visits)


class ListsStore:
    """The lists database.  C{directory} L{None}: in memory."""

    def __init__(self, directory: Optional[str]) -> None:
        if directory is None:
            self.path = ":memory:"
        else:
            os.makedirs(directory, exist_ok=True)
            self.path = os.path.join(directory, DATABASE_NAME)
        self.db = sqlite3.connect(self.path, check_same_thread=False,
                                  isolation_level=None)
        if directory is not None:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.create_function("fold", 1, _fold, deterministic=True)
        registerFunctions(self.db)
        self.epoch = _accessSearchSchema(self.db)
        self._logged = 0

    def close(self) -> None:
        self.db.close()

    # -- lists ---------------------------------------------------------------

    def lists(self) -> list[PlateList]:
        return [PlateList(n, k, d, tuple(json.loads(s)), c)
                for n, k, d, s, c in self.db.execute(
                    "SELECT name, kind, distance, scope, colour FROM lists "
                    "ORDER BY name")]

    def remote(self) -> dict[str, int]:
        """The lists that came from the central office: name -> version."""
        return dict(self.db.execute(
            "SELECT name, version FROM lists WHERE origin = 'central'"))

    def putRemote(self, plateList: PlateList, version: int,
                  entries: Iterable[Entry]) -> None:
        """A central list, with its entries, in one transaction."""
        with _transaction(self.db):
            self.db.execute(
                "INSERT OR REPLACE INTO lists (name, kind, distance, scope, "
                "colour, version, origin) VALUES (?, ?, ?, ?, ?, ?, "
                "'central')", (plateList.name, plateList.kind,
                               plateList.distance,
                               json.dumps(list(plateList.scope)),
                               plateList.colour, version))
            self.db.execute("DELETE FROM entries WHERE list = ?",
                            (plateList.name,))
            self.db.executemany(
                "INSERT INTO entries (list, %s) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?)" % (", ".join(_ENTRY),),
                (_entryRow(plateList.name, e) for e in entries))

    def touch(self, name: str, version: int) -> None:
        """A local list changed: its version becomes C{version} (the
        server's time in ms), the one the broker message carries."""
        self.db.execute("UPDATE lists SET version = ? WHERE name = ? AND "
                        "origin = 'local'", (version, name))

    def version(self, name: str) -> Optional[int]:
        row = self.db.execute("SELECT version FROM lists WHERE name = ?",
                              (name,)).fetchone()
        return None if row is None else row[0]

    def putList(self, plateList: PlateList) -> bool:
        """Create or change a list.  @return: whether it was new."""
        existed = self.db.execute("SELECT 1 FROM lists WHERE name = ?",
                                  (plateList.name,)).fetchone() is not None
        self.db.execute(
            "INSERT INTO lists (name, kind, distance, scope, colour) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
            "kind = excluded.kind, distance = excluded.distance, "
            "scope = excluded.scope, colour = excluded.colour, "
            "version = version + 1",
            (plateList.name, plateList.kind, plateList.distance,
             json.dumps(list(plateList.scope)), plateList.colour))
        return not existed

    def deleteList(self, name: str) -> bool:
        with _transaction(self.db):
            self.db.execute("DELETE FROM entries WHERE list = ?", (name,))
            gone = self.db.execute("DELETE FROM lists WHERE name = ?",
                                   (name,)).rowcount
        return bool(gone)

    # -- entries -------------------------------------------------------------

    def entries(self, name: str) -> list[Entry]:
        return [_entryOf(r) for r in self.db.execute(
            "SELECT %s FROM entries WHERE list = ? ORDER BY plate"
            % (", ".join(_ENTRY),), (name,))]

    def search(self, name: str, query: str, offset: int,
               limit: int) -> tuple[int, list[Entry]]:
        """A page of entries whose plate, owner or comment contain
        C{query} (case-insensitive in any script), and how many there
        are."""
        where = "list = ?"
        args: list[Any] = [name]
        if query:
            where += (" AND (fold(plate) LIKE ? ESCAPE '\\' OR fold(owner) "
                      "LIKE ? ESCAPE '\\' OR fold(comment) LIKE ? "
                      "ESCAPE '\\')")
            like = "%" + query.casefold().replace("\\", "\\\\").replace(
                "%", "\\%").replace("_", "\\_") + "%"
            args += [like, like, like]
        total = self.db.execute("SELECT COUNT(*) FROM entries WHERE "
                                + where, args).fetchone()[0]
        rows = self.db.execute(
            "SELECT %s FROM entries WHERE %s ORDER BY plate LIMIT ? OFFSET ?"
            % (", ".join(_ENTRY), where), args + [limit, offset])
        return total, [_entryOf(r) for r in rows]

    def upsert(self, name: str, entries: Iterable[Entry]) -> None:
        with _transaction(self.db):
            self.db.executemany(
                "INSERT OR REPLACE INTO entries (list, %s) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?)" % (", ".join(_ENTRY),),
                (_entryRow(name, e) for e in entries))

    def replace(self, name: str, entries: Iterable[Entry]) -> None:
        """The list's entries become C{entries}, all or nothing."""
        with _transaction(self.db):
            self.db.execute("DELETE FROM entries WHERE list = ?", (name,))
            self.db.executemany(
                "INSERT INTO entries (list, %s) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?)" % (", ".join(_ENTRY),),
                (_entryRow(name, e) for e in entries))

    def deleteEntry(self, name: str, plate: str) -> bool:
        return bool(self.db.execute(
            "DELETE FROM entries WHERE list = ? AND plate = ?",
            (name, plate)).rowcount)

    def countVisit(self, name: str, plate: str) -> None:
        self.db.execute(
            "UPDATE entries SET visits_left = visits_left - 1 WHERE "
            "list = ? AND plate = ? AND visits_left > 0", (name, plate))

    # -- the access log --------------------------------------------------------

    def logAccess(self, rows: Sequence[tuple]) -> None:
        with _transaction(self.db):
            self.db.executemany(
                "INSERT INTO access_log (%s, plate_skeleton) VALUES "
                "(%s, nk_skeleton(?))" % (
                    ", ".join(ACCESS_COLUMNS[1:]),
                    ", ".join("?" * (len(ACCESS_COLUMNS) - 1))),
                (tuple(r) + (r[4],) for r in rows))
        self._logged += len(rows)
        if self._logged >= 1000:
            self._logged = 0
            self.db.execute(
                "DELETE FROM access_log WHERE id <= (SELECT MAX(id) FROM "
                "access_log) - ?", (MAX_ACCESS_ROWS,))


def _accessSearchSchema(db: sqlite3.Connection) -> str:
    """
    What the access log's search needs (L{numberok.lists.accesslog}): the
    plate's look-alike skeleton on every row (added to, and filled in, an
    older database), its index, one on time, and the database's epoch (a
    cursor of another database is refused).  @return: the epoch.
    """
    names = {r[1] for r in db.execute("PRAGMA table_info(access_log)")}
    if "plate_skeleton" not in names:
        db.execute("ALTER TABLE access_log ADD COLUMN plate_skeleton TEXT")
    db.execute("CREATE INDEX IF NOT EXISTS access_skeleton ON "
               "access_log (plate_skeleton)")
    # Every time (through the index, so cheap once done): a stop between
    # the column and the filling leaves no row unfindable.
    db.execute("UPDATE access_log SET plate_skeleton = nk_skeleton(plate) "
               "WHERE plate_skeleton IS NULL AND plate IS NOT NULL")
    db.execute("CREATE INDEX IF NOT EXISTS access_time ON "
               "access_log (time_ms)")
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES "
               "('epoch', ?)", (uuid.uuid4().hex,))
    return db.execute("SELECT value FROM meta WHERE key = 'epoch'"
                      ).fetchone()[0]


class _transaction:
    """C{BEGIN IMMEDIATE} ... C{COMMIT}, or C{ROLLBACK} on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, value, tb) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


def loadAll(store: ListsStore, zone: tzinfo) -> list[tuple[PlateList,
                                                          list[Entry]]]:
    """Every list with its entries, for the start."""
    return [(plateList, store.entries(plateList.name))
            for plateList in store.lists()]
