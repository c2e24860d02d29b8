"""
What a collecting instance has already handed on: the keys of the last
messages of every other instance, so that a message the broker or a site's
outbox delivers again is dropped (exactly once at the NumberOk client).

Kept in memory for the check (the reactor never waits for the disk) and in
a small SQLite table (C{mqtt-seen.sqlite} beside the journal) so that a
restart of the collecting instance still knows them.  Bounded: the newest
L{SeenKeys.perSystem} keys of each SystemId, in memory and on disk, and at
most L{SeenKeys.maxSystems} SystemIds (the least recently heard one is
forgotten first: 30,000 SystemIds invented by a broker's other client must
not take the memory).  A redelivery only ever concerns the last messages of
a site (its in-flight window, the broker's unacknowledged ones), far fewer
than that.
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
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
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

    def load(self, perSystem: int, maxSystems: int
             ) -> dict[int, list[str]]:
        """The newest C{perSystem} keys of each of the C{maxSystems} most
        recently heard SystemIds, least recent SystemId and oldest key
        first; the other SystemIds are forgotten."""
        found: dict[int, list[str]] = {}
        systems = [r[0] for r in self.db.execute(
            "SELECT system_id FROM seen GROUP BY system_id "
            "ORDER BY MAX(n) DESC LIMIT ?", (maxSystems,))][::-1]
        keep = set(systems)
        self.forget([r[0] for r in self.db.execute(
            "SELECT DISTINCT system_id FROM seen").fetchall()
            if r[0] not in keep])
        for systemId in systems:
            rows = self.db.execute(
                "SELECT key FROM seen WHERE system_id = ? ORDER BY n DESC "
                "LIMIT ?", (systemId, perSystem)).fetchall()
            found[systemId] = [r[0] for r in reversed(rows)]
        return found

    def forget(self, systemIds: list[int]) -> None:
        """Drop every key of C{systemIds}."""
        if systemIds:
            self.db.executemany("DELETE FROM seen WHERE system_id = ?",
                                [(s,) for s in systemIds])

    def add(self, keys: list[tuple[int, str]], perSystem: int,
            forgotten: list[int] = ()) -> None:
        """Remember C{keys} and drop the SystemIds C{forgotten} (in one
        transaction), then forget the oldest beyond C{perSystem} of a
        SystemId now and then."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany("INSERT INTO seen (system_id, key) VALUES (?, ?)",
                           keys)
            self.forget(list(forgotten))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for systemId in forgotten:
            self._added.pop(systemId, None)
        for systemId, _ in keys:
            self._added[systemId] = self._added.get(systemId, 0) + 1
        for systemId, count in list(self._added.items()):
            if count >= max(1, perSystem // 10):
                self._added[systemId] = 0
                db.execute(
                    "DELETE FROM seen WHERE system_id = ? AND n <= (SELECT n "
                    "FROM seen WHERE system_id = ? ORDER BY n DESC LIMIT 1 "
                    "OFFSET ?)", (systemId, systemId, perSystem))

    def readMeta(self, name: str) -> Optional[int]:
        """A number the collector keeps between runs (C{clients}: NumberOk
        clients subscribed at the last stop)."""
        row = self.db.execute("SELECT value FROM meta WHERE name = ?",
                              (name,)).fetchone()
        return None if row is None else int(row[0])

    def writeMeta(self, name: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (name, value) "
                        "VALUES (?, ?)", (name, int(value)))

    def close(self) -> None:
        self.db.close()


class SeenKeys:
    """
    The in-memory half, on the reactor thread.

    @ivar perSystem: keys remembered per SystemId.
    @ivar maxSystems: SystemIds remembered; the least recently heard one
        goes first.
    """

    perSystem = 10000
    maxSystems = 1000

    def __init__(self, loaded: Optional[dict[int, list[str]]] = None) -> None:
        self._keys: OrderedDict[int, OrderedDict[str, None]] = OrderedDict()
        for systemId, keys in (loaded or {}).items():
            self._keys[systemId] = OrderedDict.fromkeys(keys)

    def __len__(self) -> int:
        """SystemIds remembered."""
        return len(self._keys)

    def __contains__(self, item: tuple[int, str]) -> bool:
        keys = self._keys.get(item[0])
        return keys is not None and item[1] in keys

    def newestLost(self) -> dict[int, int]:
        """The highest journal id among each SystemId's Lost keys
        (C{L<id>:<ms>}): where gap detection resumes after a restart."""
        out = {}
        for systemId, keys in self._keys.items():
            ids = [int(k[1:k.index(":")]) for k in keys if k[:1] == "L"]
            if ids:
                out[systemId] = max(ids)
        return out

    def add(self, systemId: int, key: str) -> Optional[int]:
        """Remember C{key}.  @return: the SystemId forgotten to make room
        for a new one, if any."""
        keys = self._keys.get(systemId)
        if keys is None:
            keys = self._keys[systemId] = OrderedDict()
        else:
            self._keys.move_to_end(systemId)
        keys[key] = None
        while len(keys) > self.perSystem:
            keys.popitem(last=False)
        if len(self._keys) > self.maxSystems:
            return self._keys.popitem(last=False)[0]
        return None
