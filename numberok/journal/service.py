"""
The reactor side of the journal: L{Journal}, the L{IEventSink} that records
Lost events through a L{JournalStore} running in the journal's one thread
(docs/operations.rst, "Event journal").

The reactor thread only queues work, counts and logs; publishing never
raises and never delays live delivery.  A journal that cannot be opened or
written (read-only path, disk full) logs at critical level, counts in
C{numberok_journal_failures_total{reason}}, and drops the record.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok.events import EventState, PlateEvent
from numberok.images import isJpeg
from numberok.interfaces import IEventSink
from numberok.journal.fields import JournalEntry, eventRow
from numberok.journal.pictures import describe, failureReason
from numberok.journal.search import JournalSearch
from numberok.journal.store import SCREENSHOT_DIRECTORY, JournalStore
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.threads import ServiceThreads

MS_PER_DAY = 86400 * 1000

RecordedObserver = Callable[[JournalEntry, PlateEvent], None]
"""Told C{(entry, event)} on the reactor thread once an event's row has
committed: C{entry.id} is the journal id the event got."""


class JournalUnavailable(Exception):
    """The journal is not open (stopped, or its path cannot be used)."""


@implementer(IEventSink)
class Journal(Service):
    """
    Records Lost events on disk and answers reads of them.

    @ivar maxPending: records queued for the thread at most; past that a
        record is dropped and counted (a disk that stalls must not eat the
        server's memory).
    @ivar pruneInterval: seconds between two retention passes.
    @ivar failureLogInterval: at most one critical line per this many
        seconds while writes keep failing.
    @ivar states: the event states recorded; Lost by default.
    @ivar lastError: why the last write (or open) failed, in words.
    """

    name = "journal"
    log = Logger()
    maxPending = 10000
    pruneInterval = 3600.0
    failureLogInterval = 60.0
    states = frozenset([EventState.LOST])

    def __init__(self, path: str, keepDays: float = 30.0,
                 maxMegabytes: float = 1024.0,
                 reactor: Optional[IReactorFromThreads] = None,
                 clock: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None) -> None:
        """
        @param path: the directory (created when missing).
        @param keepDays: rows older than this are deleted.
        @param maxMegabytes: the database and pictures together stay under
            this; the oldest rows go first.
        @param reactor: runs the thread hand-over (C{callFromThread}).
        @param clock: tells the time for C{recordedMs} and runs retention;
            defaults to C{reactor}.
        """
        self.path = path
        self.keepDays = keepDays
        self.maxMegabytes = maxMegabytes
        self._clock = clock
        self.metrics = metricsOrPrivate(metrics)
        self._recordedCount = self.metrics.journalRecorded
        self._threads = ServiceThreads("numberok-journal", 1, reactor=reactor)
        self._store: Optional[JournalStore] = None
        self._threadStore: Optional[JournalStore] = None
        self._opening: Optional[Deferred] = None
        self._pending = 0
        # Records waiting for the thread; it takes all of them at once
        # (one transaction): the lock is held for a list swap only.
        self._queue: list[tuple] = []
        self._queueLock = threading.Lock()
        self._draining = False
        self._idleWaiters: list[Deferred] = []
        self._pruning: Optional[LoopingCall] = None
        self._lastFailureLog: Optional[float] = None
        self._observers: list[RecordedObserver] = []
        self.lastError: Optional[str] = None
        # Searches run in this journal's thread and keep its distinct
        # plate skeletons (numberok.journal.search): one per journal.
        self.search = JournalSearch(self)

    @property
    def reactor(self) -> IReactorFromThreads:
        return self._threads.reactor

    @property
    def clock(self) -> Any:
        return self._clock if self._clock is not None else self.reactor

    @property
    def isOpen(self) -> bool:
        """True once the database is open and writable."""
        return self._store is not None

    def _nowMs(self) -> int:
        return int(self.clock.seconds() * 1000)

    # -- observers ----------------------------------------------------------

    def addRecordedObserver(self, observer: RecordedObserver) -> None:
        """
        Call C{observer(entry, event)} on the reactor thread for every event
        recorded, after its row committed, in id order.  An observer that
        raises is logged; the others are still told.
        """
        self._observers.append(observer)

    def removeRecordedObserver(self, observer: RecordedObserver) -> None:
        self._observers.remove(observer)

    # -- life cycle ---------------------------------------------------------

    def startService(self) -> None:
        """
        Start the thread and open the database in it.  An unusable path
        does not stop the server: it is logged, counted, and the journal
        stays closed (events are counted as failures) until the next
        retention pass tries again.
        """
        Service.startService(self)
        self._threads.start()
        self._open()
        self._pruning = LoopingCall(self._pruneTick)
        self._pruning.clock = self.clock
        self._pruning.start(self.pruneInterval, now=False)

    def _open(self) -> Deferred:
        if self._opening is not None:
            return self._opening
        d = self._inThread(self._openInThread)

        def opened(store: JournalStore) -> None:
            self._opening = None
            self._store = store
            self.lastError = None
            self.log.info("journal open at {path} (epoch {epoch})",
                          path=self.path, epoch=store.epoch)

        def failed(f: Failure) -> None:
            self._opening = None
            self.metrics.journalFailures.labels(
                reason=failureReason(f.value)).inc()
            self.lastError = describe(f.value)
            self.log.critical(
                "journal at {path} cannot be opened: {error}; events are "
                "delivered live but NOT recorded until it can be",
                path=self.path, error=self.lastError)
        d.addCallbacks(opened, failed)
        self._opening = d
        return d

    def _openInThread(self) -> JournalStore:
        # The thread's own reference: records queued while opening run
        # right after this job, before the reactor hears it worked.
        if self._threadStore is None:
            self._threadStore = JournalStore(self.path, self._epochInThread)
        return self._threadStore

    def _epochInThread(self, epoch: str, firstId: int, why: str) -> None:
        self.reactor.callFromThread(self._newEpoch, epoch, firstId, why)

    def _newEpoch(self, epoch: str, firstId: int, why: str) -> None:
        self.metrics.journalEpochs.inc()
        self.log.critical(
            "journal at {path}: {why}; a NEW journal epoch {epoch} starts, "
            "ids continue at {firstId}; events recorded before are gone "
            "(restore a backup to get them back)", path=self.path, why=why,
            epoch=epoch, firstId=firstId)

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
        if self._pruning is not None and self._pruning.running:
            self._pruning.stop()
        self._pruning = None
        done = self.whenIdle()

        def close(_: object) -> Deferred:
            self._store = None
            if not self._threads.running:
                return succeed(None)
            closing = self._threads.run(self._closeInThread)
            closing.addErrback(lambda f: self.log.failure(
                "closing the journal failed", f))
            return closing.addCallback(lambda _: self._threads.stop())
        done.addCallback(close)
        done.addCallback(lambda _: self.log.info(
            "journal closed: {recorded:.0f} events recorded",
            recorded=self.metrics.value("numberok_journal_recorded_total")))
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
        d = self._threads.run(f, *args)

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

    # -- IEventSink ---------------------------------------------------------

    def publish(self, event: PlateEvent) -> None:
        """
        Queue C{event} for the disk when its state is recorded.  Never
        raises, never blocks; L{addRecordedObserver} tells the id it got.
        """
        if event.state not in self.states:
            return
        if not self._threads.running or (
                self._store is None and self._opening is None):
            self._failed(event, "closed", "journal is not open"
                         if self.lastError is None
                         else "journal is not open: %s" % (self.lastError,))
            return
        waiting = self._pending + len(self._queue)
        if waiting >= self.maxPending:
            self._failed(event, "overflow", "%d records already waiting for "
                         "the disk" % (waiting,))
            return
        frame = event.frame
        if frame is not None and not isJpeg(frame):
            self.metrics.journalPicturesSkipped.labels(reason="not_jpeg").inc()
            frame = None
        # Queued, not one thread job each: the job that runs next takes
        # every record queued by then into one transaction.  A read queued
        # after this record still runs after it (the job is queued first).
        with self._queueLock:
            self._queue.append((event, (eventRow(event), self._nowMs(),
                                        frame, event.bbox)))
            idle, self._draining = not self._draining, True
        if idle:
            d = self._inThread(self._recordQueued)
            d.addCallback(self._queueRecorded)
            d.addErrback(lambda f: self.log.failure("journal bookkeeping", f))

    def _recordQueued(self) -> list[tuple[PlateEvent, Any]]:
        """In the thread: every queued record, in one transaction when it
        can (else one by one, so that one bad row fails alone).  The store
        may still be opening when the records were queued; the open runs
        first (same thread, FIFO).  @return: each event with its
        C{(entry, problems)} or the exception that kept it out."""
        with self._queueLock:
            queued, self._queue = self._queue, []
            self._draining = False
        store = self._threadStore
        if store is None:
            error = JournalUnavailable("journal is not open")
            return [(event, error) for event, _ in queued]
        try:
            results: list = store.recordMany([r for _, r in queued])
        except Exception:
            results = []
            for _, record in queued:
                try:
                    results.append((store.record(*record), store.problems))
                except Exception as e:
                    results.append(e)
        return [(event, result) for (event, _), result in zip(queued,
                                                              results)]

    def _queueRecorded(self, outcomes: list[tuple[PlateEvent, Any]]) -> None:
        for event, result in outcomes:
            if isinstance(result, BaseException):
                self._failed(event, failureReason(result), describe(result))
            else:
                self._recorded(result, event)

    def _recorded(self, result: tuple[JournalEntry, list],
                  event: PlateEvent) -> None:
        entry, problems = result
        self._recordedCount.inc()
        for what, error in problems:
            self.metrics.journalPicturesSkipped.labels(
                reason=failureReason(error)).inc()
            self.log.error("journal: {what} of event {id} (runtime "
                           "{runtimeId}) not written: {error}; the event is "
                           "recorded without it", what=what, id=entry.id,
                           runtimeId=event.runtimeId, error=describe(error))
        for observer in list(self._observers):
            try:
                observer(entry, event)
            except Exception:
                self.log.failure("journal observer {observer} failed",
                                 observer=observer)

    def _failed(self, event: PlateEvent, reason: str, text: str) -> None:
        self.metrics.journalFailures.labels(reason=reason).inc()
        self.lastError = text
        now = self.clock.seconds()
        # Loud, but not one line per event while the disk stays full.
        if (self._lastFailureLog is None
                or now - self._lastFailureLog >= self.failureLogInterval):
            self._lastFailureLog = now
            self.log.critical(
                "journal: event {runtimeId} NOT recorded: {reason}; live "
                "delivery goes on", runtimeId=event.runtimeId, reason=text)

    # -- reading ------------------------------------------------------------

    def _read(self, method: str, *args: Any) -> Deferred:
        return self.readWith(
            lambda store, *a: getattr(store, method)(*a), *args)

    def readWith(self, f: Callable, *args: Any) -> Deferred:
        """
        Run C{f(store, *args)} in the journal's thread, on the open
        L{JournalStore} (its epoch checked first): how the search, visits
        and export queries (L{numberok.journal.search}) read without
        touching the store from the reactor.
        @return: a Deferred firing with what C{f} returns.
        """
        if not self._threads.running:
            return fail(JournalUnavailable("journal is not running"))

        def call():
            store = self._threadStore
            if store is None:
                raise JournalUnavailable("journal is not open")
            store.checkEpoch()
            return f(store, *args)
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

    def picture(self, entryId: int, kind: str = "screenshot",
                knownTag: Optional[str] = None) -> Deferred:
        """
        A picture of row C{entryId}: C{"screenshot"} (the frame as the
        recognizer sent it), C{"plate"} (the plate crop) or C{"thumbnail"}
        (the frame scaled down); only ever the file the row names.
        @return: a Deferred firing with C{(tag, jpeg)} (see
            L{JournalStore.picture}), or L{None} when there is none.
        """
        return self._read("picture", int(entryId), kind, knownTag)

    def count(self) -> Deferred:
        """@return: a Deferred firing with the number of rows kept."""
        return self._read("count")

    def totalBytes(self) -> Deferred:
        """@return: a Deferred firing with the bytes the journal uses."""
        return self._read("totalBytes")

    def screenshotPath(self, entry: JournalEntry) -> Optional[str]:
        """Where the frame of C{entry} is stored, or L{None}."""
        if entry.screenshotFile is None:
            return None
        return os.path.join(self.path, SCREENSHOT_DIRECTORY,
                            entry.screenshotFile)

    # -- retention ----------------------------------------------------------

    def _pruneTick(self) -> None:
        self.prune().addErrback(lambda f: None)  # logged by prune

    def prune(self) -> Deferred:
        """
        Apply retention now: delete rows older than C{keepDays}, then the
        oldest rows until the journal is under C{maxMegabytes}, with their
        picture files.  A closed journal tries to open again first.
        @return: a Deferred firing with the number of rows deleted; failures
            are logged, then passed on.
        """
        if not self._threads.running:
            return succeed(0)
        if self._store is None:
            opening = self._open()
            return opening.addCallback(
                lambda _: self.prune() if self._store is not None else 0)
        cutoff = self._nowMs() - int(self.keepDays * MS_PER_DAY)
        maxBytes = int(self.maxMegabytes * 1024 * 1024)
        d = self._read("prune", cutoff, maxBytes)

        def done(count: int) -> int:
            self.metrics.journalPruned.inc(count)
            if count:
                self.log.info("journal retention removed {count} events",
                              count=count)
            return count

        def failed(f: Failure) -> Failure:
            self.log.error("journal retention failed: {error}",
                           error=describe(f.value))
            return f
        return d.addCallbacks(done, failed)
