"""
The outbox: one durable consumer of the journal per at-least-once output
(the MQTT publisher, each webhook target), so no output keeps its own copy
of cursor and paging (docs/architecture.rst, "The outbox").

The journal is the queue.  The outbox holds no rows in memory beyond a
bounded read-ahead (C{pageSize}) and a window of rows in flight
(C{window}).  It reads C{journal.since(cursor)} page by page, has the
output prepare a page (pictures, in a thread), hands the rows to the
output in id order, and moves the cursor over an id only once the output
acknowledged that id and every id before it: deliveries that complete out
of order never move it past a row still in flight.  The cursor is a small
file beside the journal (L{numberok.journal.cursor}), replaced atomically
in a thread; an outage, a cut or a restart starts again from it, so a few
rows may go twice, never none.

Retention: when the journal's oldest kept id is above the next id the
consumer needs, rows were deleted before they were delivered.  That is
never skipped in silence: it is logged at error level, counted in
C{numberok_outbox_skipped_total{consumer}} and shown in L{Outbox.state}.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok.interfaces import IOutbox, IOutboxOutput
from numberok.journal.cursor import readCursorState, writeCursor
from numberok.journal.fields import JournalEntry, JournalPage
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.threads import ServiceThreads

END_OF_JOURNAL = 2 ** 62
"""A C{since_id} above every id: the answer's C{lastId} is the end."""


@implementer(IOutbox)
class Outbox:
    """
    One output's durable reader of the journal.

    @ivar name: the consumer's name in logs and metrics (C{mqtt},
        C{webhook:erp}).
    @ivar window: rows sent and not yet acknowledged, at most.
    @ivar pageSize: rows read (and prepared) ahead, at most.
    @ivar pollInterval: seconds between two looks at the journal besides
        the look after each L{wake}.
    """

    log = Logger()
    window = 100
    pageSize = 20
    pollInterval = 1.0
    saveInterval = 0.0

    def __init__(self, name: str, journal: Any, output: IOutboxOutput,
                 cursorPath: str, threads: ServiceThreads,
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None,
                 backlog: Any = None, window: Optional[int] = None,
                 pageSize: Optional[int] = None,
                 pollInterval: Optional[float] = None,
                 saveInterval: Optional[float] = None) -> None:
        """
        @param journal: the L{numberok.journal.Journal} read.
        @param output: what the rows go to.
        @param cursorPath: the cursor file.
        @param threads: the owner's started thread pool; the cursor file is
            read and written there.
        @param backlog: a gauge set to the rows not yet acknowledged;
            default C{numberok_outbox_backlog{consumer=name}}.
        @param saveInterval: seconds between two cursor writes at most
            while running (0: each move is written at once, one write at
            a time); a crash then repeats at most that much.  The stop
            always writes the last value.
        """
        self.name = name
        self.journal = journal
        self.output = output
        self.cursorPath = cursorPath
        self.metrics = metricsOrPrivate(metrics)
        self.reactor = reactor if reactor is not None else threads.reactor
        self._threads = threads
        self._backlog = (backlog if backlog is not None else
                         self.metrics.outboxBacklog.labels(consumer=name))
        self._skippedCount = self.metrics.outboxSkipped.labels(consumer=name)
        if window is not None:
            self.window = window
        if pageSize is not None:
            self.pageSize = pageSize
        if pollInterval is not None:
            self.pollInterval = pollInterval
        if saveInterval is not None:
            self.saveInterval = saveInterval
        self._lastSave = float("-inf")
        self._saveTimer: Any = None
        self.running = False
        self._poll: Optional[LoopingCall] = None
        self._acked: Optional[int] = None   # the cursor
        self._highWater = 0                 # the highest id ever acknowledged
        self._read = 0                      # the highest id read
        self._sent = 0                      # the highest id handed over
        self._queue: deque = deque()        # (entry, prepared), read ahead
        self._outstanding: dict[int, bool] = {}   # id -> acknowledged
        self._generation = 0
        self._reading = False
        self._sending = False
        self._lastId = 0
        self._saving: Optional[Deferred] = None
        self._saved: Optional[int] = None   # the value in the file
        self.skipped = 0
        self.lastSkipped: Optional[tuple[int, int]] = None
        self.firstId: Optional[int] = None  # the first id ever to deliver
        self.epoch: Optional[str] = None    # the journal's, last page read
        self.oldestId: Optional[int] = None  # the journal's oldest kept id

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        self.running = True
        self._reading = True
        self._loadCursor().addBoth(self._cursorLoaded)
        self._poll = LoopingCall(self.pump)
        self._poll.clock = self.reactor
        self._poll.start(self.pollInterval, now=False)

    def stop(self) -> Deferred:
        self.running = False
        if self._poll is not None and self._poll.running:
            self._poll.stop()
        self._poll = None
        if self._saveTimer is not None and self._saveTimer.active():
            self._saveTimer.cancel()
        self._forget()
        return self._flushCursor() or succeed(None)

    def wake(self) -> None:
        if self.running:
            d = self.journal.whenIdle()
            d.addCallback(lambda _: self.pump())
            d.addErrback(self._logFailure)

    def reset(self) -> None:
        self._forget()
        if self._acked is not None:
            self._read = self._sent = self._acked

    def rewind(self, journalId: int) -> None:
        if self._acked is None:
            raise RuntimeError("the outbox has not read its cursor yet")
        journalId = max(1, int(journalId))
        if journalId - 1 >= self._sent:
            # Ids from there on are not sent yet: they go out anyway, and
            # moving the cursor forward would skip the ones before.
            return
        self.log.info("outbox {consumer}: rewound to journal id {id}",
                      consumer=self.name, id=journalId)
        self._forget()
        self._acked = self._read = self._sent = journalId - 1
        self._saveCursor()
        self.pump()

    def state(self) -> dict[str, Any]:
        acked = self._acked
        return {"acknowledged": acked, "sent": self._sent,
                "inFlight": len(self._outstanding),
                "queued": len(self._queue), "lastId": self._lastId,
                "backlog": (max(0, self._lastId - acked)
                            if acked is not None else None),
                "skipped": self.skipped,
                "lastSkipped": (list(self.lastSkipped)
                                if self.lastSkipped else None),
                "firstId": self.firstId}

    def _forget(self) -> None:
        self._generation += 1
        self._outstanding.clear()
        self._queue.clear()
        self._reading = False

    # -- reading -----------------------------------------------------------

    def pump(self) -> None:
        """Send what is read and the window allows; read the next page
        when the read-ahead runs low."""
        if not self.running or self._sending:
            return
        if self._acked is None:
            if not self._reading:
                # The journal could not tell its end at start: try again.
                self._reading = True
                self._loadCursor().addBoth(self._cursorLoaded)
            return
        self._sendQueued()
        if (self._reading or len(self._queue) > self.pageSize // 2
                or len(self._outstanding) >= self.window
                or not self.output.ready):
            return
        self._reading = True
        generation = self._generation
        d = self.journal.since(self._read, self.pageSize - len(self._queue))
        d.addCallback(self._gotPage, generation)
        d.addErrback(self._pageFailed, generation)

    def _loadCursor(self) -> Deferred:
        """
        The cursor from its file; on the first run, the journal's end (its
        history is not sent).  The journal is asked at once, before any
        event this output will see is queued for it: its one thread
        answers in order, so no event falls between the end and the
        outbox.
        """
        end = self.journal.since(END_OF_JOURNAL, 1)
        end.addCallback(self._firstPage)
        d = self._threads.run(readCursorState, self.cursorPath)

        def first(state: Optional[tuple[int, Optional[int]]]) -> Any:
            if state is not None:
                value, firstId = state
                self._saved = value if firstId is not None else None
                # A file from before the first id was kept: what was sent
                # before is unknown, so claim only from here on.
                self.firstId = firstId if firstId is not None else value + 1
                end.addErrback(lambda f: None)
                return value
            return end.addCallback(self._firstRun)
        return d.addCallback(first)

    def _firstPage(self, page: JournalPage) -> int:
        self.epoch, self.oldestId = page.epoch or None, page.oldestId
        return page.lastId or 0

    def _firstRun(self, end: int) -> int:
        self.firstId = end + 1
        return end

    def _cursorLoaded(self, result: Any) -> None:
        self._reading = False
        if isinstance(result, int):
            self._acked = self._read = self._sent = result
            self._highWater = max(self._highWater, result)
            self.log.info("outbox {consumer}: resumes after journal id {id}",
                          consumer=self.name, id=result)
            self._saveCursor()
            self.pump()
        else:
            self.log.error("outbox {consumer}: cursor {path} unreadable: "
                           "{error}", consumer=self.name,
                           path=self.cursorPath,
                           error=result.getErrorMessage())

    def _pageFailed(self, failure: Failure, generation: int) -> None:
        if generation == self._generation:
            self._reading = False
        self.log.warn("outbox {consumer}: journal not readable: {error}",
                      consumer=self.name, error=failure.getErrorMessage())

    def _gotPage(self, page: JournalPage, generation: int
                 ) -> Optional[Deferred]:
        if generation != self._generation:
            return None
        self._lastId = page.lastId or 0
        self.epoch, self.oldestId = page.epoch or None, page.oldestId
        self._showBacklog()
        self._checkRetention(page)
        if not page.entries:
            self._reading = False
            return None
        d = gatherResults([self.output.prepare(e) for e in page.entries],
                          consumeErrors=True)
        d.addCallback(self._prepared, page.entries, generation)
        d.addErrback(self._pageFailed, generation)
        return d

    def _checkRetention(self, page: JournalPage) -> None:
        """Rows deleted before this consumer had them: tell, once per
        gap.  A rewind below what was delivered is not a loss."""
        if page.oldestId is None:
            return
        first = max(self._read, self._highWater) + 1
        last = page.oldestId - 1
        if last < first:
            return
        self._highWater = last
        self.skipped += last - first + 1
        self.lastSkipped = (first, last)
        self._skippedCount.inc(last - first + 1)
        self.log.error(
            "outbox {consumer}: journal retention removed events "
            "{first}..{last} before they were delivered ({count} lost to "
            "this output; raise [Journal] KeepDays/MaxMegabytes or fix the "
            "output)", consumer=self.name, first=first, last=last,
            count=last - first + 1)

    def _prepared(self, prepared: list, entries: list[JournalEntry],
                  generation: int) -> None:
        if generation != self._generation:
            return
        for entry, value in zip(entries, prepared):
            self._queue.append((entry, value))
            self._read = entry.id
        self._reading = False
        self.pump()

    # -- sending -----------------------------------------------------------

    def _sendQueued(self) -> None:
        self._sending = True
        try:
            generation = self._generation
            while (self._queue and len(self._outstanding) < self.window
                   and self.output.ready and generation == self._generation):
                entry, prepared = self._queue.popleft()
                self._sent = entry.id
                self._outstanding[entry.id] = False
                d = self.output.send(entry, prepared)
                if d is None:
                    self._outstanding[entry.id] = True
                    continue
                d.addCallbacks(self._delivered, self._sendFailed,
                               (entry.id, generation), None,
                               (entry.id, generation))
                d.addErrback(self._logFailure)
        finally:
            self._sending = False
        self._advance()

    def _delivered(self, _: object, entryId: int, generation: int) -> None:
        if generation != self._generation or \
                entryId not in self._outstanding:
            return
        self._outstanding[entryId] = True
        if not self._sending:
            self._advance()
            self.pump()

    def _sendFailed(self, failure: Failure, entryId: int,
                    generation: int) -> None:
        if generation != self._generation:
            return
        self.log.warn("outbox {consumer}: journal id {id} not sent "
                      "({error}); again from the cursor", consumer=self.name,
                      id=entryId, error=failure.getErrorMessage())
        self.reset()

    def _advance(self) -> None:
        """Move the cursor over the acknowledged ids at the window's
        start."""
        moved = False
        for entryId in list(self._outstanding):
            if not self._outstanding[entryId]:
                break
            del self._outstanding[entryId]
            self._acked = entryId
            moved = True
        if moved:
            self._highWater = max(self._highWater, self._acked)
            self._showBacklog()
            self._saveCursor()

    def _showBacklog(self) -> None:
        if self._acked is not None:
            self._backlog.set(max(0, self._lastId - self._acked))

    # -- the cursor file ---------------------------------------------------

    def _saveCursor(self, force: bool = False) -> None:
        """Persist the cursor; one write at a time, the newest value
        last, at most one per C{saveInterval} unless C{force}d."""
        if (self._acked is None or self._acked == self._saved
                or self._saving is not None or not self._threads.running):
            return
        wait = self._lastSave + self.saveInterval - self.reactor.seconds()
        if wait > 0 and not force:
            if self._saveTimer is None or not self._saveTimer.active():
                self._saveTimer = self.reactor.callLater(
                    wait, self._saveCursor)
            return
        self._lastSave = self.reactor.seconds()
        value = self._acked
        d = self._threads.run(writeCursor, self.cursorPath, value,
                              self.firstId)
        self._saving = d

        def done(result: Any) -> None:
            self._saving = None
            if isinstance(result, Failure):
                self.log.error("outbox {consumer}: cursor not saved: "
                               "{error}", consumer=self.name,
                               error=result.getErrorMessage())
            else:
                self._saved = value
                self._saveCursor(force)
        d.addBoth(done)

    def _flushCursor(self, _: object = None, rounds: int = 3
                     ) -> Optional[Deferred]:
        """At stop: wait for the write in progress, then write the newest
        value if it is not on disk yet (a few tries: a failing disk must
        not hold the shutdown)."""
        if self._saving is None:
            self._saveCursor(force=True)
        if self._saving is None or rounds <= 0:
            return None
        waiting: Deferred = Deferred()
        self._saving.addBoth(lambda r: waiting.callback(None))
        return waiting.addCallback(self._flushCursor, rounds - 1)

    def _logFailure(self, failure: Failure) -> None:
        self.log.failure("outbox {consumer}: unexpected error", failure,
                         consumer=self.name)

