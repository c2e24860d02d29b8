"""
The journal's schema versions and the migrations between them
(docs/operations.rst, "Journal schema and migrations").

The version lives in the C{meta} table under C{schema_version}; a database
without it is version 1 (every release before search).  Columns are still
added by C{store._migrate} from the field list (C{ALTER TABLE ADD COLUMN},
nullable); what a version adds beyond a column -- an index, a backfill of
old rows, a side table -- is one function in L{MIGRATIONS}, run once, in
order, in the journal's thread when the database is opened, each in its
own transaction together with the new version number.  A branch that needs
a new step appends one function: the next version is its index + 2.

The SQL functions registered here (L{registerFunctions}) exist on every
connection the store opens, so queries and migrations may use them.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

from numberok.plates.alphabets import fold
from numberok.plates.matching import skeleton

VERSION_KEY = "schema_version"


def registerFunctions(db: sqlite3.Connection) -> None:
    """C{nk_skeleton(text)} and C{nk_fold(text)}: the look-alike skeleton
    and the case/script fold of L{numberok.plates}, for SQL."""
    db.create_function("nk_skeleton", 1, _nullSafe(skeleton),
                       deterministic=True)
    db.create_function("nk_fold", 1, _nullSafe(fold), deterministic=True)


def _nullSafe(f: Callable[[str], str]) -> Callable:
    return lambda text: None if text is None else f(text)


def _searchColumns(db: sqlite3.Connection) -> None:
    """Version 2: the plate skeleton of old rows, and the indexes search
    and visits use (skeleton; camera time)."""
    db.execute("UPDATE events SET plate_skeleton = nk_skeleton(plate) "
               "WHERE plate_skeleton IS NULL")
    # With the camera time: a vehicle's passage before or after a time
    # (visits) is one seek, and a plate's rows come in time order.
    db.execute("CREATE INDEX IF NOT EXISTS events_skeleton "
               "ON events (plate_skeleton, frame_time_ms)")
    db.execute("CREATE INDEX IF NOT EXISTS events_frame_time "
               "ON events (frame_time_ms)")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _searchColumns,   # -> 2
)
"""Step C{i} brings a database from version C{i + 1} to C{i + 2}."""

CURRENT_VERSION = len(MIGRATIONS) + 1


def schemaVersion(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?",
                     (VERSION_KEY,)).fetchone()
    return int(row[0]) if row else 1


def upgrade(db: sqlite3.Connection) -> int:
    """
    Register the SQL functions and run the migrations C{db} has not had.
    A database newer than this code is left alone (its extra columns and
    indexes do no harm to an older reader).

    @return: the version the database is at now.
    """
    registerFunctions(db)
    version = schemaVersion(db)
    while version < CURRENT_VERSION:
        step = MIGRATIONS[version - 1]
        db.execute("BEGIN IMMEDIATE")
        try:
            step(db)
            version += 1
            db.execute("INSERT OR REPLACE INTO meta (key, value) "
                       "VALUES (?, ?)", (VERSION_KEY, str(version)))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return version
