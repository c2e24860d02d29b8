"""
L{ListsService}: the known-plate lists of one server.  It owns the lists
database (in its own thread) and the in-memory L{Matcher} that decisions
read; every change goes to the database first and reaches the matcher
only once stored, so what decides is always what survives a restart.

Large changes (a CSV import, a bulk upsert) build the list's new index in
the thread too and swap it in on the reactor thread in one assignment:
the reactor never spends more than a dict store on them, and a decision
sees the old list or the new one, never half of it.
"""

from __future__ import annotations

from datetime import tzinfo
from time import sleep
from typing import Any, Callable, Optional, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from numberok.lists.csvfile import exportCSV, readCSV
from numberok.lists.index import YIELD_EVERY, ListIndex
from numberok.lists.matcher import Decision, Matcher
from numberok.lists.remote import CentralLists, release
from numberok.lists.model import Entry, ListError, PlateList
from numberok.lists.store import ListsStore, loadAll
from numberok.lists.windows import localZone
from numberok.metrics import Metrics
from numberok.reactors import LazyReactor
from numberok.threads import ServiceThreads

SMALL_CHANGE = 1000
"""Entries changed in place on the reactor thread; more are indexed in the
thread and swapped in."""


class NoSuchList(KeyError):
    """A list name that is not there."""


class ListsService(CentralLists, Service):
    """
    @param directory: where C{lists.sqlite} lives (the journal folder);
        L{None} keeps the lists in memory only (docs/lists.rst).
    @param zone: the time zone of validity dates and windows; L{None} for
        the server's local zone.
    @ivar accessFlushSec: how often the access log is written.
    @ivar maxPendingLog: access log rows held while the writer is behind;
        more are dropped and counted.
    """

    log = Logger()
    accessFlushSec = 0.5
    maxPendingLog = 20_000

    def __init__(self, directory: Optional[str], reactor: Any = None,
                 metrics: Optional[Metrics] = None,
                 zone: Optional[tzinfo] = None) -> None:
        self._reactor = reactor
        self.directory = directory
        self.metrics = metrics if metrics is not None else Metrics()
        self.zone = zone if zone is not None else localZone()
        self.matcher = Matcher(self.zone)
        self.threads = ServiceThreads("numberok-lists", 1, reactor=reactor)
        self.store: Optional[ListsStore] = None
        self.ready: Deferred = Deferred()
        self._waiting: list[tuple] = []
        self.remote: dict[str, int] = {}
        self._lastVersion = 0
        self.observers: list[Callable[[str], None]] = []
        self._pending: list[tuple] = []
        self._flushing = False
        self._flushTimer = None

    reactor = LazyReactor()

    # -- life ------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self.threads.start()

        def load() -> tuple[ListsStore, list[ListIndex], dict[str, int]]:
            store = ListsStore(self.directory)
            return store, [ListIndex(plateList, self.zone, entries)
                           for plateList, entries in loadAll(
                               store, self.zone)], store.remote()

        def loaded(result: tuple[ListsStore, list[ListIndex],
                                 dict[str, int]]) -> None:
            self.store, indexes, self.remote = result
            for index in indexes:
                self.matcher.put(index)
            self._countEntries()
            self.log.info("lists: {lists} lists, {entries} entries loaded "
                          "from {where}", lists=len(indexes),
                          entries=sum(len(i) for i in indexes),
                          where=self.store.path)
            waiting, self._waiting = self._waiting, []
            for f, args, d in waiting:
                self.threads.run(f, self.store, *args).chainDeferred(d)
            self.ready.callback(None)

        def failed(f) -> None:
            self.log.failure("lists: cannot open the lists database", f)
            waiting, self._waiting = self._waiting, []
            for _, _, d in waiting:
                d.errback(f)
            self.ready.errback(f)
            self.ready.addErrback(lambda _: None)
        self.threads.run(load).addCallbacks(loaded, failed)

    def stopService(self) -> Deferred:
        Service.stopService(self)
        if self._flushTimer is not None and self._flushTimer.active():
            self._flushTimer.cancel()
        rows, self._pending = self._pending, []
        if not self.threads.running:
            return succeed(None)

        def close() -> None:
            if self.store is not None:
                if rows:
                    self.store.logAccess(rows)
                self.store.close()
        d = self.threads.run(close)
        d.addErrback(lambda f: self.log.failure("lists: closing failed", f))
        return d.addBoth(lambda _: self.threads.stop())

    def _after(self, f, *args) -> Deferred:
        """C{f(store, *args)} in the lists thread, once the database is
        open and loaded."""
        if self.store is not None:
            return self.threads.run(f, self.store, *args)
        d: Deferred = Deferred()
        self._waiting.append((f, args, d))
        return d

    def _countEntries(self) -> None:
        self.metrics.listEntries.set(sum(
            len(i) for i in self.matcher.indexes.values()))

    def _index(self, name: str) -> ListIndex:
        index = self.matcher.indexes.get(name)
        if index is None:
            raise NoSuchList(name)
        return index

    # -- lists -----------------------------------------------------------------

    def lists(self) -> list[tuple[PlateList, int]]:
        """Every list and its number of entries, by name."""
        return [(i.list, len(i)) for _, i in
                sorted(self.matcher.indexes.items())]

    def getList(self, name: str) -> tuple[PlateList, int]:
        index = self._index(name)
        return index.list, len(index)

    async def putList(self, plateList: PlateList) -> bool:
        """Create or change a list.  @return: whether it is new."""
        created = await self._after(ListsStore.putList, plateList)
        index = self.matcher.indexes.get(plateList.name)
        if index is None:
            self.matcher.put(ListIndex(plateList, self.zone))
        elif (bool(plateList.distance) == bool(index.list.distance)
              or len(index) <= SMALL_CHANGE):
            self.matcher.put(index.withList(plateList))
        else:
            # A distance switched on or off re-indexes the whole list: from
            # the database, in the thread.  Meanwhile the old index serves
            # the new settings (with no segment index, no fuzzy level).
            index.list = plateList
            self.matcher.put(index)
            del index
            self._swap(await self._after(lambda s: ListIndex(
                plateList, self.zone, s.entries(plateList.name))))
        self._changed(plateList.name)
        return created

    async def deleteList(self, name: str) -> None:
        self._index(name)
        await self._after(ListsStore.deleteList, name)
        self.matcher.drop(name)
        self._countEntries()
        self._changed(name)

    # -- entries ---------------------------------------------------------------

    async def entries(self, name: str, query: str = "", offset: int = 0,
                      limit: int = 100) -> tuple[int, list[Entry]]:
        self._index(name)
        return await self._after(ListsStore.search, name, query, offset,
                                 limit)

    async def upsert(self, name: str, entries: Sequence[Entry]) -> None:
        """Add or change entries (by plate)."""
        # Only the list's settings are kept across the wait: an index held
        # here would be freed on the reactor thread after the swap.
        plateList = self._index(name).list
        if len(entries) <= SMALL_CHANGE:
            await self._after(ListsStore.upsert, name, entries)
            index = self._index(name)
            for entry in entries:
                index.add(entry)
        else:
            def store(s: ListsStore) -> ListIndex:
                s.upsert(name, entries)
                return ListIndex(plateList, self.zone, s.entries(name))
            self._swap(await self._after(store))
        self._countEntries()
        self._changed(name)

    async def replace(self, name: str, entries: Sequence[Entry]) -> None:
        """The list's entries become C{entries}, atomically."""
        plateList = self._index(name).list

        def store(s: ListsStore) -> ListIndex:
            s.replace(name, entries)
            return ListIndex(plateList, self.zone, entries)
        self._swap(await self._after(store))
        self._countEntries()
        self._changed(name)

    async def importCSV(self, name: str, body: bytes) -> int:
        """
        Replace the list's entries by a CSV file's, parsed in the thread.
        @raise ListError: per bad line; nothing changed then.
        """
        plateList = self._index(name).list
        now = self.reactor.seconds()

        def store(s: ListsStore) -> ListIndex:
            # Stored and indexed line by line in one transaction: a bad
            # line anywhere rolls it all back, and the index is dropped.
            index = ListIndex(plateList, self.zone)

            def indexed(entries):
                for n, entry in enumerate(entries):
                    index.add(entry)
                    if n % YIELD_EVERY == YIELD_EVERY - 1:
                        sleep(0)
                    yield entry
            s.replace(name, indexed(readCSV(body, self.zone, now)))
            return index
        try:
            new = await self._after(store)
        except ListError:
            self.metrics.listRefused.labels(what="csv").inc()
            raise
        self._swap(new)
        self._countEntries()
        self._changed(name)
        return len(new)

    def _swap(self, new: ListIndex) -> None:
        """Put a list's index built in the thread, unless the list was
        deleted or changed meanwhile (then the newer list's settings
        apply)."""
        current = self.matcher.indexes.get(new.list.name)
        if current is None:
            return
        self.matcher.put(new.withList(current.list))
        # Freeing 100,000 entries takes tens of milliseconds: let the
        # last reference to the old index go in the thread.
        self.threads.run(release, [current])
        del current

    async def exportCSV(self, name: str) -> bytes:
        self._index(name)
        return await self._after(
            lambda s: exportCSV(s.entries(name)))

    async def deleteEntry(self, name: str, plate: str) -> bool:
        self._index(name)
        gone = await self._after(ListsStore.deleteEntry, name, plate)
        index = self.matcher.indexes.get(name)
        if index is not None:
            index.remove(plate)
        self._countEntries()
        self._changed(name)
        return gone

    # -- changes, for the broker (numberok.lists.share) --------------------------

    def _changed(self, name: str) -> None:
        """A local list changed: its version (for the broker) becomes now,
        in the database after the change itself, then observers hear."""
        # Strictly increasing, also for two changes in one millisecond.
        version = self._lastVersion = max(int(self.reactor.seconds() * 1000),
                                          self._lastVersion + 1)
        self._after(ListsStore.touch, name, version).addErrback(
            lambda f: self.log.failure("lists: version of {name} not "
                                       "stored", f, name=name))
        for observer in list(self.observers):
            try:
                observer(name)
            except Exception:
                self.log.failure("lists: change observer failed")

    # -- decisions ---------------------------------------------------------------

    def decide(self, plate: str, channel: int, zone: int
               ) -> Optional[Decision]:
        """The decision now, from memory (L{Matcher.decide})."""
        return self.matcher.decide(plate, channel, zone,
                                   self.reactor.seconds())

    def countVisit(self, listName: str, plate: str) -> None:
        """
        One In passage of the entry C{plate}: a visit limit is counted down
        now in memory, and in the database in the thread; an entry without
        a limit is left alone.
        """
        index = self.matcher.indexes.get(listName)
        if index is None or not index.countVisit(plate):
            return
        self.metrics.visitsCounted.inc()
        if self.threads.running and self.store is not None:
            self.threads.run(self.store.countVisit, listName,
                             plate).addErrback(
                lambda f: self.log.failure("lists: visit not stored", f))

    def preview(self, plate: str, distance: Optional[int]) -> list[dict]:
        return self.matcher.preview(plate, distance, self.reactor.seconds())

    # -- the access log ------------------------------------------------------------

    def logAccess(self, row: tuple) -> None:
        """
        One access log row (L{numberok.lists.store.ACCESS_COLUMNS} without
        C{id}); written in batches every L{accessFlushSec}.
        """
        if len(self._pending) >= self.maxPendingLog:
            self.metrics.accessLogDropped.inc()
            return
        self._pending.append(row)
        if self._flushTimer is None or not self._flushTimer.active():
            self._flushTimer = self.reactor.callLater(self.accessFlushSec,
                                                      self._flush)

    def _flush(self) -> None:
        if (self._flushing or not self._pending or not self.running
                or self.store is None):
            return
        rows, self._pending = self._pending, []
        self._flushing = True

        def failed(f) -> None:
            self.metrics.accessLogDropped.inc(len(rows))
            self.log.failure("lists: access log rows lost", f)

        def done(_: object) -> None:
            self._flushing = False
            if self._pending:
                self._flushTimer = self.reactor.callLater(
                    self.accessFlushSec, self._flush)
        self.threads.run(self.store.logAccess, rows).addErrback(
            failed).addBoth(done)

    def readAccessLog(self, f, *args) -> Deferred:
        """C{f(store, *args)} in the lists' thread once the database is
        open: the access log's search and export
        (L{numberok.lists.accesslog})."""
        return self._after(f, *args)
