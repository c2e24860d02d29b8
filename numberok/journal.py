"""
The event journal: every Lost event, kept on disk so that an integrator who
was disconnected can catch up (C{GET /api/events?since_id=N}) and the admin
page's "last events" survive a restart (docs/operations.rst, "Journal").

Layout: C{Path} is a directory holding C{events.sqlite} (one row per Lost
event, every field of L{PlateEvent}) and C{screenshots/<id>.jpg}, the
event's frame as the recognizer sent it.  The frame is stored as is, not
re-encoded at the screenshot quality: it is the best evidence of the
vehicle, it costs no CPU, and the size retention bounds the disk it takes.
A frame that does not start like a JPEG is not stored (counted in
C{framesNotJpeg}).

Threads: SQLite and the files are blocking, so all of that work runs in one
thread owned by L{Journal}: one thread means one connection, writes in
publish order, and reads that see every write queued before them.  The
reactor thread only queues work and counts.

Ids are SQLite C{AUTOINCREMENT} keys: never reused, even after retention
deleted the newest row, so C{since_id} paging is gap-free: a client that
asks for C{id > N} again and again sees every row exactly once, as long as
retention has not removed it (L{JournalPage.oldestId} tells it when it has).

Failures: a journal that cannot be opened or written (read-only path, disk
full) logs at critical level, counts in C{writeFailures}, and drops the
record; publishing to it never raises and never delays live delivery.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from numberok.events import EventState, PlateEvent
from numberok.interfaces import IEventSink

DATABASE_NAME = "events.sqlite"
SCREENSHOT_DIRECTORY = "screenshots"
MS_PER_DAY = 86400 * 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    runtime_id INTEGER NOT NULL,
    channel INTEGER NOT NULL,
    zone INTEGER NOT NULL,
    plate TEXT NOT NULL,
    raw_plate TEXT NOT NULL,
    frame_time_ms INTEGER NOT NULL,
    process_time_ms INTEGER NOT NULL,
    movement TEXT NOT NULL,
    checkpoint INTEGER NOT NULL,
    confidence REAL NOT NULL,
    reads INTEGER NOT NULL,
    screenshot_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_recorded ON events (recorded_ms);
"""

_COLUMNS = ("id", "recorded_ms", "state", "runtime_id", "channel", "zone",
            "plate", "raw_plate", "frame_time_ms", "process_time_ms",
            "movement", "checkpoint", "confidence", "reads",
            "screenshot_bytes")
_SELECT = "SELECT %s FROM events" % (", ".join(_COLUMNS),)


_API_NAMES = {"runtimeId": "runtime_id", "rawPlate": "raw_plate",
              "frameTimeMs": "frame_time_ms",
              "processTimeMs": "process_time_ms"}
"""The JSON API keeps its documented snake_case member names."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """
    One recorded event: the fields of its L{PlateEvent} (C{movement} as its
    wire name, C{state} as its wire value), plus the journal's own.

    @ivar id: the journal id, increasing, never reused.
    @ivar recorded_ms: when the journal took the event (server clock, ms).
    @ivar screenshot_bytes: size of C{screenshots/<id>.jpg}; 0 for none.
    """

    id: int
    recorded_ms: int
    state: str
    runtimeId: int
    channel: int
    zone: int
    plate: str
    rawPlate: str
    frameTimeMs: int
    processTimeMs: int
    movement: str
    checkpoint: int
    confidence: float
    reads: int
    screenshot_bytes: int

    @property
    def hasScreenshot(self) -> bool:
        return self.screenshot_bytes > 0

    def toJSON(self, screenshotURL: Optional[str] = None) -> dict[str, Any]:
        """
        The entry as a JSON object for the admin API.

        @param screenshotURL: where the web server serves the picture; the
            C{"screenshot"} member is that URL, or L{None} without one.
        """
        data = {_API_NAMES.get(k, k): v for k, v in asdict(self).items()}
        data["screenshot"] = screenshotURL if self.hasScreenshot else None
        return data


@dataclass(frozen=True, slots=True)
class JournalPage:
    """
    An answer to L{Journal.since}.

    @ivar entries: rows with C{id > since_id}, oldest first.
    @ivar oldestId: the oldest id still kept (L{None} when empty): when it is
        greater than C{since_id + 1}, retention removed rows the client
        never saw.
    @ivar lastId: the newest id recorded so far (L{None} when empty).
    """

    entries: list[JournalEntry]
    oldestId: Optional[int]
    lastId: Optional[int]


class JournalUnavailable(Exception):
    """The journal is not open (stopped, or its path cannot be used)."""


def _isJpeg(data: Optional[bytes]) -> bool:
    return bool(data) and data[:2] == b"\xff\xd8"


class _Store:
    """
    The blocking half: every method runs in the journal's thread, and only
    there, so the one SQLite connection is never shared.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.shots = os.path.join(directory, SCREENSHOT_DIRECTORY)
        os.makedirs(self.shots, exist_ok=True)
        path = os.path.join(directory, DATABASE_NAME)
        self.db = sqlite3.connect(path, check_same_thread=False,
                                  isolation_level=None)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            # Prove now that we can write, not at the first event.
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.close()
            raise

    def screenshotPath(self, entryId: int) -> str:
        return os.path.join(self.shots, "%d.jpg" % (entryId,))

    def record(self, row: tuple, frame: Optional[bytes]) -> tuple[int, Optional[str]]:
        """
        Insert one event; write its frame.  @return: the id, and the reason
        the frame was not kept (or L{None}).
        """
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "INSERT INTO events (%s) VALUES (%s)" % (
                    ", ".join(_COLUMNS[1:-1]), ", ".join("?" * (len(_COLUMNS) - 2))),
                row)
            entryId = cursor.lastrowid
            shotError = None
            if frame is not None:
                path = self.screenshotPath(entryId)
                try:
                    with open(path + ".part", "wb") as f:
                        f.write(frame)
                    os.replace(path + ".part", path)
                    db.execute("UPDATE events SET screenshot_bytes = ? "
                               "WHERE id = ?", (len(frame), entryId))
                except OSError as e:
                    shotError = str(e)
                    try:
                        os.remove(path + ".part")
                    except OSError:
                        pass
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return entryId, shotError

    def since(self, sinceId: int, limit: int) -> JournalPage:
        rows = self.db.execute(
            _SELECT + " WHERE id > ? ORDER BY id LIMIT ?",
            (sinceId, limit)).fetchall()
        oldest, last = self.db.execute(
            "SELECT MIN(id), MAX(id) FROM events").fetchone()
        # MAX(id) forgets deleted rows; the sequence table does not.
        seq = self.db.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        if seq is not None:
            last = seq[0]
        return JournalPage([JournalEntry(*r) for r in rows], oldest, last)

    def recent(self, limit: int) -> list[JournalEntry]:
        rows = self.db.execute(_SELECT + " ORDER BY id DESC LIMIT ?",
                               (limit,)).fetchall()
        return [JournalEntry(*r) for r in rows]

    def get(self, entryId: int) -> Optional[JournalEntry]:
        row = self.db.execute(_SELECT + " WHERE id = ?",
                              (entryId,)).fetchone()
        return JournalEntry(*row) if row else None

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def totalBytes(self) -> int:
        """Database pages in use plus screenshot files."""
        pageSize = self.db.execute("PRAGMA page_size").fetchone()[0]
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        free = self.db.execute("PRAGMA freelist_count").fetchone()[0]
        shots = self.db.execute(
            "SELECT COALESCE(SUM(screenshot_bytes), 0) FROM events"
        ).fetchone()[0]
        return (pages - free) * pageSize + shots

    def prune(self, olderThanMs: int, maxBytes: int) -> int:
        """
        Delete rows recorded before C{olderThanMs}, then the oldest rows
        until the journal fits in C{maxBytes}; their files go too.
        @return: rows deleted.
        """
        deleted = self._deleteWhere("recorded_ms < ?", (olderThanMs,))
        while True:
            excess = self.totalBytes() - maxBytes
            if excess <= 0:
                break
            # Delete the oldest rows that cover the excess, counting a
            # row's text as 200 bytes.
            rows = self.db.execute(
                "SELECT id, screenshot_bytes FROM events ORDER BY id LIMIT 1000"
            ).fetchall()
            if not rows:
                break
            freed, upTo = 0, rows[0][0]
            for entryId, size in rows:
                freed += size + 200
                upTo = entryId
                if freed >= excess:
                    break
            deleted += self._deleteWhere("id <= ?", (upTo,))
        return deleted

    def _deleteWhere(self, where: str, args: tuple) -> int:
        db = self.db
        doomed = [r[0] for r in db.execute(
            "SELECT id FROM events WHERE %s AND screenshot_bytes > 0" % (where,),
            args)]
        db.execute("BEGIN IMMEDIATE")
        try:
            count = db.execute("DELETE FROM events WHERE %s" % (where,),
                               args).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for entryId in doomed:
            _remove(self.screenshotPath(entryId))
        return count

    def close(self) -> None:
        self.db.close()


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _row(event: PlateEvent, recordedMs: int) -> tuple:
    return (recordedMs, event.state.value, event.runtimeId, event.channel,
            event.zone, event.plate, event.rawPlate, event.frameTimeMs,
            event.processTimeMs, event.movement.wireName, event.checkpoint,
            float(event.confidence), event.reads)


@implementer(IEventSink)
class Journal(Service):
    """
    The L{IEventSink} that records Lost events (docs/operations.rst).

    Put it in the service tree I{before} the analytics: children stop in
    reverse order, so the analytics' shutdown Lost events reach the journal
    before its L{stopService} drains and closes it.

    @ivar maxPending: records queued for the thread at most; past that a
        record is dropped and counted (a disk that stalls must not eat the
        server's memory).
    @ivar pruneInterval: seconds between two retention passes.
    @ivar states: the event states recorded; Lost by default.
    @ivar recorded: events written.
    @ivar writeFailures: events (or a start) that could not be written.
    @ivar screenshotFailures: events written without their frame because the
        file could not be written.
    @ivar framesNotJpeg: frames not stored because they are not JPEG.
    @ivar overflowed: records dropped because L{maxPending} were queued.
    @ivar pruned: rows removed by retention.
    """

    name = "journal"
    log = Logger()
    maxPending = 10000
    pruneInterval = 3600.0
    states = frozenset([EventState.LOST])

    def __init__(self, path: str, keepDays: float = 30.0,
                 maxMegabytes: float = 1024.0, reactor: Any = None,
                 clock: Any = None) -> None:
        """
        @param path: the directory (created when missing).
        @param keepDays: rows older than this are deleted.
        @param maxMegabytes: the database and screenshots together stay under
            this; the oldest rows go first.
        @param reactor: runs the thread hand-over (C{callFromThread}).
        @param clock: tells the time for C{recorded_ms} and retention;
            defaults to C{reactor}.
        """
        self.path = path
        self.keepDays = keepDays
        self.maxMegabytes = maxMegabytes
        self._reactor = reactor
        self._clock = clock
        self._pool: Optional[ThreadPool] = None
        self._store: Optional[_Store] = None
        self._threadStore: Optional[_Store] = None
        self._opening: Optional[Deferred] = None
        self._pending = 0
        self._idleWaiters: list[Deferred] = []
        self._pruneCall = None
        self._lastFailureLog: Optional[float] = None
        self.recorded = 0
        self.writeFailures = 0
        self.screenshotFailures = 0
        self.framesNotJpeg = 0
        self.overflowed = 0
        self.pruned = 0
        self.lastError: Optional[str] = None

    @property
    def reactor(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor
            self._reactor = reactor
        return self._reactor

    @property
    def clock(self) -> Any:
        return self._clock if self._clock is not None else self.reactor

    @property
    def isOpen(self) -> bool:
        """True once the database is open and writable."""
        return self._store is not None

    def _nowMs(self) -> int:
        return int(self.clock.seconds() * 1000)

    # -- life cycle -------------------------------------------------------

    def startService(self) -> None:
        """
        Start the thread and open the database in it.  An unusable path
        does not stop the server: it is logged, counted, and the journal
        stays closed (events are counted as C{writeFailures}) until the
        next retention pass tries again.
        """
        Service.startService(self)
        self._pool = ThreadPool(minthreads=1, maxthreads=1,
                                name="numberok-journal")
        self._pool.start()
        self._open()
        self._schedulePrune()

    def _open(self) -> Deferred:
        if self._opening is not None:
            return self._opening
        d = self._inThread(self._openInThread)

        def opened(store: _Store) -> None:
            self._opening = None
            self._store = store
            self.lastError = None
            self.log.info("journal open at {path}", path=self.path)

        def failed(f: Failure) -> None:
            self._opening = None
            self.writeFailures += 1
            self.lastError = f.getErrorMessage()
            self.log.critical(
                "journal at {path} cannot be opened: {error}; events are "
                "delivered live but NOT recorded until it can be",
                path=self.path, error=self.lastError)
        d.addCallbacks(opened, failed)
        self._opening = d
        return d

    def _openInThread(self) -> _Store:
        # The thread's own reference: records queued while opening run
        # right after this job, before the reactor hears it worked.
        if self._threadStore is None:
            self._threadStore = _Store(self.path)
        return self._threadStore

    def _closeInThread(self) -> None:
        store, self._threadStore = self._threadStore, None
        if store is not None:
            store.close()

    def stopService(self) -> Deferred:
        """
        Let every queued record reach the disk, then close the database and
        stop the thread.  @return: a Deferred firing when done.
        """
        Service.stopService(self)
        if self._pruneCall is not None and self._pruneCall.active():
            self._pruneCall.cancel()
        self._pruneCall = None
        done = self.whenIdle()

        def close(_: object) -> Deferred:
            self._store = None
            pool, self._pool = self._pool, None
            if pool is None:
                return succeed(None)
            finished: Deferred = Deferred()
            pool.callInThread(self._closeInThread)

            def stopInThread() -> None:
                # Runs in the reactor's pool: joining our thread blocks.
                pool.stop()
                self.reactor.callFromThread(finished.callback, None)
            self.reactor.callInThread(stopInThread)
            return finished
        done.addCallback(close)
        done.addCallback(lambda _: self.log.info(
            "journal closed: {recorded} events recorded, {failures} write "
            "failures", recorded=self.recorded, failures=self.writeFailures))
        return done

    def whenIdle(self) -> Deferred:
        """A Deferred that fires when every record queued so far is written
        (or has failed)."""
        if not self._pending and self._opening is None:
            return succeed(None)
        d: Deferred = Deferred()
        self._idleWaiters.append(d)
        return d

    def _inThread(self, f: Callable, *args: Any) -> Deferred:
        self._pending += 1
        d = deferToThreadPool(self.reactor, self._pool, f, *args)

        def finished(result: object) -> object:
            self._pending -= 1
            if not self._pending:
                self.reactor.callLater(0, self._wakeIdle)
            return result
        d.addBoth(finished)
        return d

    def _wakeIdle(self) -> None:
        if self._pending or self._opening is not None:
            return
        waiters, self._idleWaiters = self._idleWaiters, []
        for d in waiters:
            d.callback(None)

    # -- IEventSink -------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """
        Queue C{event} for the disk when its state is recorded.  Never
        raises, never blocks.
        """
        if event.state not in self.states:
            return
        if self._pool is None or (self._store is None and self._opening is None):
            self._failed(event, "journal is not open" if self.lastError is None
                         else "journal is not open: %s" % (self.lastError,))
            return
        if self._pending >= self.maxPending:
            self.overflowed += 1
            self._failed(event, "%d records already waiting for the disk"
                         % (self._pending,))
            return
        frame = event.frame
        if frame is not None and not _isJpeg(frame):
            self.framesNotJpeg += 1
            frame = None
        row = _row(event, self._nowMs())
        d = self._inThread(self._record, row, frame)
        d.addCallbacks(self._recorded, self._writeFailed,
                       callbackArgs=(event,), errbackArgs=(event,))
        d.addErrback(lambda f: self.log.failure("journal bookkeeping", f))

    def _record(self, row: tuple, frame: Optional[bytes]):
        # In the thread.  The store may still be opening when the record
        # was queued; the open runs first (same thread, FIFO).
        store = self._threadStore
        if store is None:
            raise JournalUnavailable("journal is not open")
        return store.record(row, frame)

    def _recorded(self, result: tuple[int, Optional[str]],
                  event: PlateEvent) -> None:
        entryId, shotError = result
        self.recorded += 1
        if shotError is not None:
            self.screenshotFailures += 1
            self.log.error("journal: screenshot of event {id} (runtime "
                           "{runtimeId}) not written: {error}", id=entryId,
                           runtimeId=event.runtimeId, error=shotError)

    def _writeFailed(self, failure: Failure, event: PlateEvent) -> None:
        self._failed(event, failure.getErrorMessage() or
                     failure.type.__name__)

    def _failed(self, event: PlateEvent, reason: str) -> None:
        self.writeFailures += 1
        self.lastError = reason
        now = self.clock.seconds()
        # Loud, but not one line per event while the disk stays full.
        if self._lastFailureLog is None or now - self._lastFailureLog >= 60:
            self._lastFailureLog = now
            self.log.critical(
                "journal: event {runtimeId} NOT recorded: {reason} "
                "({failures} failures so far); live delivery goes on",
                runtimeId=event.runtimeId, reason=reason,
                failures=self.writeFailures)

    # -- reading ----------------------------------------------------------

    def _read(self, method: str, *args: Any) -> Deferred:
        if self._pool is None:
            return fail(JournalUnavailable("journal is not running"))

        def call():
            store = self._threadStore
            if store is None:
                raise JournalUnavailable("journal is not open")
            return getattr(store, method)(*args)
        return self._inThread(call)

    def since(self, sinceId: int = 0, limit: int = 100) -> Deferred:
        """
        Rows with C{id > sinceId}, oldest first, at most C{limit}.
        @return: a Deferred firing with a L{JournalPage}; it fails with
            L{JournalUnavailable} when the journal is not open.
        """
        return self._read("since", int(sinceId), int(limit))

    def recent(self, limit: int = 20) -> Deferred:
        """The newest C{limit} rows, newest first: the admin page's "last
        events".  @return: a Deferred firing with a list of
        L{JournalEntry}."""
        return self._read("recent", int(limit))

    def get(self, entryId: int) -> Deferred:
        """One row, or L{None}.  @return: a Deferred."""
        return self._read("get", int(entryId))

    def count(self) -> Deferred:
        """@return: a Deferred firing with the number of rows kept."""
        return self._read("count")

    def totalBytes(self) -> Deferred:
        """@return: a Deferred firing with the bytes the journal uses."""
        return self._read("totalBytes")

    def screenshotPath(self, entryId: int) -> str:
        """Where the frame of row C{entryId} is (or would be) stored."""
        return os.path.join(self.path, SCREENSHOT_DIRECTORY,
                            "%d.jpg" % (int(entryId),))

    # -- retention --------------------------------------------------------

    def _schedulePrune(self) -> None:
        self._pruneCall = self.clock.callLater(self.pruneInterval,
                                               self._pruneTick)

    def _pruneTick(self) -> None:
        self._pruneCall = None
        d = self.prune()
        d.addErrback(lambda f: None)
        if self.running:
            self._schedulePrune()

    def prune(self) -> Deferred:
        """
        Apply retention now: delete rows older than C{keepDays}, then the
        oldest rows until the journal is under C{maxMegabytes}, with their
        screenshot files.  A closed journal tries to open again first.
        @return: a Deferred firing with the number of rows deleted; failures
            are logged and counted, then passed on.
        """
        if self._pool is None:
            return succeed(0)
        if self._store is None:
            opening = self._open()
            return opening.addCallback(
                lambda _: self.prune() if self._store is not None else 0)
        cutoff = self._nowMs() - int(self.keepDays * MS_PER_DAY)
        maxBytes = int(self.maxMegabytes * 1024 * 1024)
        d = self._read("prune", cutoff, maxBytes)

        def done(count: int) -> int:
            self.pruned += count
            if count:
                self.log.info("journal retention removed {count} events",
                              count=count)
            return count

        def failed(f: Failure) -> Failure:
            self.log.error("journal retention failed: {error}",
                           error=f.getErrorMessage())
            return f
        return d.addCallbacks(done, failed)
