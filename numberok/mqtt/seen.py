"""
What a collecting instance has already handed on: the keys of the last
messages of every other instance, so that a message the broker or a site's
outbox delivers again is dropped (exactly once at the NumberOk client).

Kept in memory for the check (the reactor never waits for the disk) and in
a small SQLite table (C{mqtt-seen.sqlite} beside the journal) so that a
restart of the collecting instance still knows them.  Bounded: the newest
L{SeenKeys.perSystem} keys of each SystemId, in memory and on disk.  A
redelivery only ever concerns the last messages of a site (its in-flight
window, the broker's unacknowledged ones), far fewer than that.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from typing import Optional

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    system_id INTEGER NOT NULL,
    key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS seen_system ON seen (system_id, n);
"""


class SeenStore:
    """The blocking half: every method runs in the collector's one
    thread."""

    def __init__(self, path: Optional[str]) -> None:
        self.db = sqlite3.connect(path or ":memory:",
                                  check_same_thread=False,
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        self._added: dict[int, int] = {}

    def load(self, perSystem: int) -> dict[int, list[str]]:
        """The newest C{perSystem} keys of each SystemId, oldest first."""
        found: dict[int, list[str]] = {}
        systems = [r[0] for r in self.db.execute(
            "SELECT DISTINCT system_id FROM seen")]
        for systemId in systems:
            rows = self.db.execute(
                "SELECT key FROM seen WHERE system_id = ? ORDER BY n DESC "
                "LIMIT ?", (systemId, perSystem)).fetchall()
            found[systemId] = [r[0] for r in reversed(rows)]
        return found

    def add(self, keys: list[tuple[int, str]], perSystem: int) -> None:
        """Remember C{keys} (in one transaction), then forget the oldest
        beyond C{perSystem} of a SystemId now and then."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO seen (system_id, key) VALUES (?, ?)",
                           keys)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for systemId, _ in keys:
            self._added[systemId] = self._added.get(systemId, 0) + 1
        for systemId, count in list(self._added.items()):
            if count >= max(1, perSystem // 10):
                self._added[systemId] = 0
                db.execute(
                    "DELETE FROM seen WHERE system_id = ? AND n <= (SELECT n "
                    "FROM seen WHERE system_id = ? ORDER BY n DESC LIMIT 1 "
                    "OFFSET ?)", (systemId, systemId, perSystem))

    def close(self) -> None:
        self.db.close()


class SeenKeys:
    """
    The in-memory half, on the reactor thread.

    @ivar perSystem: keys remembered per SystemId.
    """

    perSystem = 10000

    def __init__(self, loaded: Optional[dict[int, list[str]]] = None) -> None:
        self._keys: dict[int, OrderedDict[str, None]] = {}
        for systemId, keys in (loaded or {}).items():
            self._keys[systemId] = OrderedDict.fromkeys(keys)

    def __contains__(self, item: tuple[int, str]) -> bool:
        keys = self._keys.get(item[0])
        return keys is not None and item[1] in keys

    def add(self, systemId: int, key: str) -> None:
        keys = self._keys.setdefault(systemId, OrderedDict())
        keys[key] = None
        while len(keys) > self.perSystem:
            keys.popitem(last=False)
