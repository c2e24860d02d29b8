"""
The blocking half of the journal: the SQLite database and the picture
files.  Every method runs in the journal's one thread, and only there, so
the one connection is never shared and writes happen in publish order.

Layout of the journal directory::

    events.sqlite   one row per event (numberok.journal.fields)
    events.lastid   the highest id ever given, beside the database
    screenshots/    <random>.jpg (frame), <random>.plate.jpg (plate crop)

Epochs: a database is one epoch, named by a UUID stored in it.  When the
database file is gone or replaced (deleted by hand while running, or
missing at start), a new one is made and its ids continue above the last
id known (from the old connection, else from C{events.lastid}), so a
client's C{since_id} never skips new rows; the epoch tells it the history
before was lost (docs/operations.rst).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from typing import Callable, Optional

from numberok.events import BBox
from numberok.images import InvalidImage, cropPlate
from numberok.journal.fields import (ALL_FIELDS, COLUMNS, JournalEntry,
                                     JournalPage, searchValues)
from numberok.journal.pictures import (makeThumbnail, newPictureName,
                                       readOrNone, removeQuietly, writeNew)
from numberok.journal.schema import upgrade

DATABASE_NAME = "events.sqlite"
HIGH_WATER_NAME = "events.lastid"
SCREENSHOT_DIRECTORY = "screenshots"
ROW_OVERHEAD = 200
"""What retention by size counts for a row's text, in bytes."""

_SELECT = "SELECT %s FROM events" % (", ".join(COLUMNS),)
_INSERT = "INSERT INTO events (%s) VALUES (%s)" % (
    ", ".join(COLUMNS[1:]), ", ".join("?" * (len(COLUMNS) - 1)))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    %s
);
CREATE INDEX IF NOT EXISTS events_recorded ON events (recorded_ms);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
""" % (",\n    ".join("%s %s" % (f.column, f.sqlType) for f in ALL_FIELDS),)

EpochObserver = Callable[[str, int, str], None]
"""Told C{(epoch, firstId, why)} when a new epoch starts; in the thread."""


class JournalStore:
    """
    The database and files of one journal directory.

    @ivar epoch: the current database's UUID.
    @ivar firstId: the first id of this epoch.
    @ivar problems: what went wrong with pictures in the last L{record}, as
        C{(what, error)} pairs, for the service to count and log.
    """

    def __init__(self, directory: str,
                 onNewEpoch: Optional[EpochObserver] = None) -> None:
        self.directory = directory
        self.shots = os.path.join(directory, SCREENSHOT_DIRECTORY)
        self.path = os.path.join(directory, DATABASE_NAME)
        self.highWaterPath = os.path.join(directory, HIGH_WATER_NAME)
        self.onNewEpoch = onNewEpoch
        self.db: Optional[sqlite3.Connection] = None
        self._highWaterFd: Optional[int] = None
        if self._open(0):
            self._newEpoch("the database was missing at start")

    # -- opening, epochs ----------------------------------------------------

    def _open(self, knownLastId: int) -> bool:
        """Open (or create) the database.  @return: whether a new epoch
        started above ids given before."""
        os.makedirs(self.shots, exist_ok=True)
        if not os.path.exists(self.path):
            # A write-ahead log left by a lost database must not be
            # replayed into the new one.
            for suffix in ("-wal", "-shm", "-journal"):
                removeQuietly(self.path + suffix)
        db = sqlite3.connect(self.path, check_same_thread=False,
                             isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            existed = db.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'events'"
            ).fetchone() is not None
            db.executescript(_SCHEMA)
            _migrate(db, self.shots)
            upgrade(db)
            highWater = max(knownLastId, self._readHighWater())
            epoch, firstId, created = _epochOf(db, existed, highWater)
        except BaseException:
            db.close()
            raise
        stat = os.stat(self.path)
        self._identity = (stat.st_dev, stat.st_ino)
        self.db, self.epoch, self.firstId = db, epoch, firstId
        self.problems: list[tuple[str, BaseException]] = []
        self._removeOrphans()
        return created and highWater > 0

    def _newEpoch(self, why: str) -> None:
        if self.onNewEpoch is not None:
            self.onNewEpoch(self.epoch, self.firstId, why)

    def checkEpoch(self) -> None:
        """
        Start a new epoch when the database file is not the one open (an
        inode and device check: one C{stat}).  Called before each write
        and read, so nothing is written into a deleted file.
        """
        try:
            stat = os.stat(self.path)
            if (stat.st_dev, stat.st_ino) == self._identity:
                return
        except FileNotFoundError:
            pass
        lastId = self.lastId()
        self._closeQuietly()
        self._open(lastId)
        self._newEpoch("the database file was deleted or replaced while "
                       "running")

    def _readHighWater(self) -> int:
        data = readOrNone(self.highWaterPath)
        try:
            return int(data or b"0")
        except ValueError:
            return 0

    def _writeHighWater(self, entryId: int) -> None:
        """
        Best effort: losing it only matters if the database is lost too.

        Written in place, through a descriptor kept open, as one
        fixed-width C{pwrite} (the id right-aligned in 20 characters, then
        a newline; any release reads it with C{int()}).  A new file renamed
        over the old one, as before, cost about 95 us a transaction: half
        of what recording an event without a picture costs
        (bench/journal_search.py).  Neither way is synced to the disk:
        after a power loss the number may be older, as it could be before.
        """
        fd = self._highWaterFd
        try:
            if fd is None:
                fd = self._highWaterFd = os.open(
                    self.highWaterPath, os.O_WRONLY | os.O_CREAT, 0o644)
            os.pwrite(fd, b"%20d\n" % (entryId,), 0)
        except OSError:
            self._closeHighWater()

    def _closeHighWater(self) -> None:
        fd, self._highWaterFd = self._highWaterFd, None
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass

    def _removeOrphans(self) -> None:
        """Remove picture files no row names: left by a crash between the
        file and the commit, or by a lost database."""
        named = set()
        for shot, plate in self.db.execute(
                "SELECT screenshot_file, plate_file FROM events "
                "WHERE screenshot_file IS NOT NULL OR plate_file IS NOT NULL"):
            named.update((shot, plate))
        for name in os.listdir(self.shots):
            if name not in named:
                removeQuietly(os.path.join(self.shots, name))

    # -- writing ------------------------------------------------------------

    def record(self, row: tuple, recordedMs: int, frame: Optional[bytes],
               box: Optional[BBox]) -> JournalEntry:
        """
        Write the pictures under fresh names, then insert the row naming
        them.  A picture that cannot be written leaves the row without it
        (noted in L{problems}); a row that cannot be committed takes its
        pictures with it and raises.

        @param row: the event's values (L{numberok.journal.fields.eventRow}).
        """
        entry, self.problems = self.recordMany(
            [(row, recordedMs, frame, box)])[0]
        return entry

    def recordMany(self, records: list[tuple[tuple, int, Optional[bytes],
                                             Optional[BBox]]]
                   ) -> list[tuple[JournalEntry, list]]:
        """
        L{record} for several rows in one transaction (one commit, one
        high-water write): what keeps a burst of collected events cheap.
        All rows are committed or none (their pictures go with them).

        @return: each row's entry and its picture problems, in order.
        """
        self.checkEpoch()
        prepared = []
        for row, recordedMs, frame, box in records:
            self.problems = []
            shotName = plateName = None
            shotBytes = plateBytes = 0
            if frame is not None:
                base = newPictureName()
                try:
                    writeNew(os.path.join(self.shots, base + ".jpg"), frame)
                    shotName, shotBytes = base + ".jpg", len(frame)
                except OSError as e:
                    self.problems.append(("screenshot", e))
                if shotName is not None and box is not None:
                    plateName, plateBytes = self._writePlate(base, frame, box)
            prepared.append((row + (recordedMs, shotBytes, shotName,
                                    plateName, plateBytes) + searchValues(row),
                             self.problems, (shotName, plateName)))
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            ids = [db.execute(_INSERT, values).lastrowid
                   for values, _, _ in prepared]
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            for _, _, names in prepared:
                for name in names:
                    if name is not None:
                        removeQuietly(os.path.join(self.shots, name))
            raise
        self._writeHighWater(ids[-1])
        return [(JournalEntry(entryId, *values), problems)
                for entryId, (values, problems, _) in zip(ids, prepared)]

    def _writePlate(self, base: str, frame: bytes,
                    box: BBox) -> tuple[Optional[str], int]:
        try:
            crop = cropPlate(frame, box)
            if crop is None:
                return None, 0
            writeNew(os.path.join(self.shots, base + ".plate.jpg"), crop)
            return base + ".plate.jpg", len(crop)
        except (OSError, InvalidImage) as e:
            self.problems.append(("plate picture", e))
            return None, 0

    def _rollback(self) -> None:
        # The first error is the one to report: a failed ROLLBACK (no
        # transaction left after a failed COMMIT) must not replace it.
        if self.db.in_transaction:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass

    # -- reading ------------------------------------------------------------

    def lastId(self) -> int:
        """The highest id given in this epoch (or seeded into it)."""
        seq = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        top = self.db.execute("SELECT MAX(id) FROM events").fetchone()[0]
        return max(seq[0] if seq else 0, top or 0)

    def since(self, sinceId: int, limit: int) -> JournalPage:
        self.checkEpoch()
        rows = self.db.execute(_SELECT + " WHERE id > ? ORDER BY id LIMIT ?",
                               (sinceId, limit)).fetchall()
        oldest = self.db.execute("SELECT MIN(id) FROM events").fetchone()[0]
        # MAX(id) forgets deleted rows; the sequence table does not.
        last = self.lastId() or None
        return JournalPage([JournalEntry(*r) for r in rows], oldest, last,
                           self.epoch, self.firstId)

    def recent(self, limit: int) -> list:
        self.checkEpoch()
        rows = self.db.execute(_SELECT + " ORDER BY id DESC LIMIT ?",
                               (limit,)).fetchall()
        return [JournalEntry(*r) for r in rows]

    def get(self, entryId: int) -> Optional[JournalEntry]:
        self.checkEpoch()
        row = self.db.execute(_SELECT + " WHERE id = ?",
                              (entryId,)).fetchone()
        return JournalEntry(*row) if row else None

    def picture(self, entryId: int, kind: str, knownTag: Optional[str] = None
                ) -> Optional[tuple[str, Optional[bytes]]]:
        """
        The C{"screenshot"}, C{"plate"} crop or C{"thumbnail"} of row
        C{entryId}, from the file the row names.

        @param knownTag: the tag a client already has (C{If-None-Match}).
        @return: C{(tag, data)}, the tag naming the picture for all time
            (its file name is never used again); C{(tag, None)} when the
            tag is C{knownTag}; L{None} when the row or picture is gone.
        """
        entry = self.get(entryId)
        if entry is None:
            return None
        name = entry.plateFile if kind == "plate" else entry.screenshotFile
        if name is None:
            return None
        tag = name + (".thumbnail" if kind == "thumbnail" else "")
        if tag == knownTag:
            return tag, None
        data = readOrNone(os.path.join(self.shots, name))
        if data is not None and kind == "thumbnail":
            data = makeThumbnail(data)
        return None if data is None else (tag, data)

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def totalBytes(self) -> int:
        """Database pages in use plus picture files."""
        pageSize = self.db.execute("PRAGMA page_size").fetchone()[0]
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        files = self.db.execute(
            "SELECT COALESCE(SUM(screenshot_bytes + plate_bytes), 0) "
            "FROM events").fetchone()[0]
        return (pages - free) * pageSize + files

    # -- retention ----------------------------------------------------------

    def prune(self, olderThanMs: int, maxBytes: int) -> int:
        """
        Delete rows recorded before C{olderThanMs}, then the oldest rows
        until the journal fits in C{maxBytes}; their files go too.
        @return: rows deleted.
        """
        self.checkEpoch()
        deleted = self._deleteWhere("recorded_ms < ?", (olderThanMs,))
        while True:
            excess = self.totalBytes() - maxBytes
            if excess <= 0:
                break
            rows = self.db.execute(
                "SELECT id, screenshot_bytes + plate_bytes FROM events "
                "ORDER BY id LIMIT 1000").fetchall()
            if not rows:
                break
            freed, upTo = 0, rows[0][0]
            for entryId, size in rows:
                freed += size + ROW_OVERHEAD
                upTo = entryId
                if freed >= excess:
                    break
            deleted += self._deleteWhere("id <= ?", (upTo,))
        return deleted

    def _deleteWhere(self, where: str, args: tuple) -> int:
        db = self.db
        doomed = [name for pair in db.execute(
            "SELECT screenshot_file, plate_file FROM events WHERE %s"
            % (where,),
            args) for name in pair if name is not None]
        db.execute("BEGIN IMMEDIATE")
        try:
            count = db.execute("DELETE FROM events WHERE %s" % (where,),
                               args).rowcount
            db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        for name in doomed:
            removeQuietly(os.path.join(self.shots, name))
        return count

    def _closeQuietly(self) -> None:
        self._closeHighWater()
        try:
            self.db.close()
        except sqlite3.Error:
            pass

    def close(self) -> None:
        self._closeHighWater()
        self.db.close()


def _migrate(db: sqlite3.Connection, shots: str) -> None:
    """
    Add the columns a database of an older release lacks
    (C{ALTER TABLE ADD COLUMN}), so an old journal opens and keeps its rows.
    A row of the first release named its frame C{<id>.jpg}; it keeps it
    when the file is there with the size the row says, else loses it.
    """
    have = {r[1] for r in db.execute("PRAGMA table_info(events)")}
    missing = [f for f in ALL_FIELDS if f.column not in have]
    if not missing:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for f in missing:
            db.execute("ALTER TABLE events ADD COLUMN %s %s"
                       % (f.column, f.sqlType))
        if any(f.column == "screenshot_file" for f in missing):
            rows = db.execute("SELECT id, screenshot_bytes FROM events "
                              "WHERE screenshot_bytes > 0").fetchall()
            for entryId, size in rows:
                name = "%d.jpg" % (entryId,)
                try:
                    ok = os.path.getsize(os.path.join(shots, name)) == size
                except OSError:
                    ok = False
                db.execute("UPDATE events SET screenshot_file = ?, "
                           "screenshot_bytes = ? WHERE id = ?",
                           (name if ok else None, size if ok else 0, entryId))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _epochOf(db: sqlite3.Connection, existed: bool,
             highWater: int) -> tuple[str, int, bool]:
    """
    The database's epoch and first id, made when it has none; ids are
    raised above C{highWater} when the database is behind it.
    @return: C{(epoch, firstId, created)}.
    """
    meta = dict(db.execute("SELECT key, value FROM meta"))
    seqRow = db.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
    seq = seqRow[0] if seqRow else 0
    db.execute("BEGIN IMMEDIATE")
    try:
        created = "epoch" not in meta
        if created:
            meta["epoch"] = uuid.uuid4().hex
            # An old release's database starts at 1; a new one above every
            # id given before it.
            meta["first_id"] = str(1 if existed else highWater + 1)
            db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                           [("epoch", meta["epoch"]),
                            ("first_id", meta["first_id"])])
        if highWater > seq:
            if seqRow is None:
                db.execute("INSERT INTO sqlite_sequence (name, seq) "
                           "VALUES ('events', ?)", (highWater,))
            else:
                db.execute("UPDATE sqlite_sequence SET seq = ? "
                           "WHERE name = 'events'", (highWater,))
        db.execute("COMMIT")  # also proves now that we can write
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return meta["epoch"], int(meta["first_id"]), created
