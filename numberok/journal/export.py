"""
The exports of a search: CSV (Excel-friendly) and JSON lines, streamed
(docs/search.rst, "Export").

The rows are read a page at a time in the journal's thread, formatted to
bytes there too, and written to the request by L{ExportStream}, a push
producer: while the client is slow the transport pauses it and no next page
is read, so memory stays one page however many rows match, and records keep
reaching the disk between two pages.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable, Optional

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.iweb import IRequest
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from numberok.journal.fields import ALL_FIELDS
from numberok.journal.query import SearchQuery
from numberok.journal.search import (EVENTS, SearchedTable, SkeletonCache,
                                     searchPage)

PAGE_ROWS = 2000
"""Rows per page read from the database and written at once."""

EXPORT_COLUMNS: tuple[str, ...] = (
    ("id",) + tuple(f.column for f in ALL_FIELDS if f.public)
    + ("screenshot", "plate_picture"))
"""The columns of the CSV, in the order of the catch-up API's members
(L{numberok.journal.fields.JournalEntry.toJSON})."""

_FORMULA = ("=", "+", "-", "@", "\t", "\r")

log = Logger()

RowJSON = Callable[[Any], dict]
"""A journal entry -> its JSON object (the API's, with picture URLs)."""


def _cell(value: Any) -> Any:
    """One CSV cell: lists (the plate box) as C{x,y,w,h}, L{None} empty,
    and text a spreadsheet would run as a formula made inert with a
    leading C{'}."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


class CSVFormat:
    """
    UTF-8 with a byte order mark (Excel then reads it as UTF-8), a header
    row, C{\\r\\n} line ends, fields quoted when they hold the separator,
    a quote or a line break (RFC 4180).
    """

    contentType = b"text/csv; charset=utf-8"
    extension = "csv"

    def __init__(self, separator: str = ",",
                 columns: tuple[str, ...] = EXPORT_COLUMNS) -> None:
        self.separator, self.columns = separator, columns

    def _lines(self, rows: list[list]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.separator,
                            lineterminator="\r\n")
        writer.writerows(rows)
        return out.getvalue().encode("utf-8")

    def head(self) -> bytes:
        return b"\xef\xbb\xbf" + self._lines([list(self.columns)])

    def rows(self, objects: list[dict]) -> bytes:
        return self._lines([[_cell(o[c]) for c in self.columns]
                            for o in objects])


class JSONLinesFormat:
    """One JSON object per line, as the search answers them."""

    contentType = b"application/x-ndjson; charset=utf-8"
    extension = "jsonl"

    def head(self) -> bytes:
        return b""

    def rows(self, objects: list[dict]) -> bytes:
        return b"".join(json.dumps(o, ensure_ascii=False).encode("utf-8")
                        + b"\n" for o in objects)


def exportPage(store, cache: SkeletonCache, query: SearchQuery,
               rowJSON: RowJSON, form, table: SearchedTable = EVENTS
               ) -> tuple[bytes, int, Optional[tuple]]:
    """
    One page of an export, formatted.  Blocking: the thread of C{store}
    (the journal's, or the lists' for the access log).
    @return: C{(bytes, rows, cursor of the next page or None)}.
    """
    page = searchPage(store.db, store.epoch, cache, query, countTotal=False,
                      table=table)
    body = form.rows([rowJSON(e) for e in page.entries])
    cursor = ((store.epoch, page.entries[-1].id) if page.cursor is not None
              else None)
    return body, len(page.entries), cursor


@implementer(IPushProducer)
class ExportStream:
    """
    Writes every row of a search to C{request}, a page at a time, pausing
    while the client does not keep up.

    @ivar maxRows: stop after this many rows (the C{limit} parameter), or
        L{None} for every row.
    @ivar readPage: C{query -> Deferred((bytes, rows, next cursor))}: one
        page, formatted with C{form}, read in a thread; by default
        L{exportPage} of the journal (the access log brings its own).
    """

    def __init__(self, request: IRequest, search: Any, query: SearchQuery,
                 rowJSON: RowJSON, form, maxRows: Optional[int] = None,
                 metrics: Any = None,
                 readPage: Optional[Callable[[SearchQuery], Any]] = None
                 ) -> None:
        self.request, self.search, self.form = request, search, form
        self.rowJSON, self.maxRows, self.metrics = rowJSON, maxRows, metrics
        self.readPage = readPage or (
            lambda q: search.journal.readWith(exportPage, search.cache, q,
                                              rowJSON, form))
        self.query = query.page(query.cursor, PAGE_ROWS)
        self.written = 0
        self._paused = self._waiting = self._stopped = False

    def start(self) -> None:
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addErrback(lambda _: self.stopProducing())
        self.request.write(self.form.head())
        self._next()

    def _next(self) -> None:
        if self._stopped:
            return
        if self._paused:
            self._waiting = True
            return
        query = self.query
        if self.maxRows is not None:
            query = query.page(query.cursor,
                               min(PAGE_ROWS, self.maxRows - self.written))
        d = self.readPage(query)
        d.addCallbacks(self._got, self._failed)
        d.addErrback(lambda f: log.failure("export bookkeeping", f))

    def _got(self, result: tuple[bytes, int, Optional[tuple]]) -> None:
        body, rows, cursor = result
        if self._stopped:
            return
        if body:
            self.request.write(body)
        self.written += rows
        if self.metrics is not None:
            self.metrics.exportRows.inc(rows)
        if cursor is None or (self.maxRows is not None
                              and self.written >= self.maxRows):
            self._finish()
            return
        self.query = self.query.page(cursor)
        self._next()

    def _finish(self) -> None:
        self._stopped = True
        self.request.unregisterProducer()
        self.request.finish()

    def _failed(self, f: Failure) -> None:
        """Mid-stream the status is sent: the connection is cut so the
        client sees a truncated download, not a short one that looks
        whole."""
        log.failure("export failed after {rows} rows", f, rows=self.written)
        self._stopped = True
        self.request.unregisterProducer()
        self.request.channel.transport.abortConnection()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._waiting:
            self._waiting = False
            self._next()

    def stopProducing(self) -> None:
        self._stopped = True
