"""
The search's part of the admin API, mounted below C{/api/events}
(docs/search.rst):

- C{GET /api/events/search?plate=&match=&distance=&from=&to=&channel=
  &zone=&movement=&limit=&cursor=}: C{{"events": [...], "total": N,
  "cursor": ...}}, newest first;
- C{GET /api/events/export.csv?<same>[&sep=;]} and
  C{GET /api/events/export.jsonl?<same>}: every match, streamed.

A bad parameter answers 400 C{{"errors": {"<parameter>": "message"}}} and
is counted in C{numberok_search_refused_total{param}}.
"""

from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import parse_qs

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from numberok.journal.export import CSVFormat, ExportStream, JSONLinesFormat
from numberok.journal.query import SEARCH_PARAMETERS, SearchError, parseQuery
from numberok.journal.resource import (answerError, answerFailure,
                                       answerJSON, finish)
from numberok.journal.search import JournalSearch

MAX_EXPORT_ROWS = 10 ** 9
SEPARATORS = {",": ",", ";": ";", "tab": "\t"}

log = Logger()


def textArgs(request) -> Mapping[str, list[str]]:
    """
    The query parameters as text, split on C{&} only: twisted.web also
    splits on C{;}, which would eat C{sep=;} as written in a URL.

    @raise SearchError: the query string is not UTF-8.
    """
    query = request.uri.partition(b"?")[2].partition(b"#")[0]
    try:
        return parse_qs(query.decode("ascii"), encoding="utf-8",
                        errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise SearchError("query", "is not URL-encoded UTF-8 text") \
            from None


class _SearchBase(Resource):
    isLeaf = True

    def __init__(self, search: JournalSearch, events: Any,
                 kind: str) -> None:
        super().__init__()
        self.search, self.events, self.kind = search, events, kind
        self.metrics = search.journal.metrics

    def refuse(self, request, error: SearchError) -> bytes:
        param, message = error.args
        self.metrics.searchRefused.labels(param=param).inc()
        return answerError(request, 400, param, message)

    def failed(self, request, f: Failure) -> None:
        if f.check(SearchError):
            finish(request, self.refuse(request, f.value))
            return
        answerFailure(request, f)


class SearchResource(_SearchBase):
    """C{GET /api/events/search}."""

    queryParameters = SEARCH_PARAMETERS

    def render_GET(self, request) -> Any:
        try:
            query = parseQuery(textArgs(request))
        except SearchError as e:
            return self.refuse(request, e)
        self.metrics.searchRequests.labels(kind=self.kind).inc()
        d = self.search.search(query)

        def found(page) -> None:
            finish(request, answerJSON(request, 200, {
                "events": [self.events.entryJSON(e) for e in page.entries],
                "total": page.total,
                "cursor": page.cursor,
            }))
        d.addCallbacks(found, lambda f: self.failed(request, f))
        d.addErrback(lambda f: log.failure("answering failed", f))
        return server.NOT_DONE_YET


class ExportResource(_SearchBase):
    """C{GET /api/events/export.csv} and C{.jsonl}: C{limit} caps the
    rows (default: every match)."""

    queryParameters = SEARCH_PARAMETERS | {"sep"}

    def render_GET(self, request) -> Any:
        try:
            args = textArgs(request)
            query = parseQuery(args, MAX_EXPORT_ROWS)
            form = self._format(args)
        except SearchError as e:
            return self.refuse(request, e)
        self.metrics.searchRequests.labels(kind=self.kind).inc()
        maxRows = query.limit if args.get("limit") else None
        request.setHeader(b"content-type", form.contentType)
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"content-disposition",
                          b"attachment; filename=events.%s"
                          % (form.extension.encode("ascii"),))
        ExportStream(request, self.search, query, self.events.entryJSON,
                     form, maxRows, self.metrics).start()
        return server.NOT_DONE_YET

    def _format(self, args: Mapping[str, list[str]]):
        if self.kind == "jsonl":
            if args.get("sep"):
                raise SearchError("sep", "applies to export.csv only")
            return JSONLinesFormat()
        sep = (args.get("sep") or [","])[0]
        if sep not in SEPARATORS:
            raise SearchError("sep", "must be , or ; or tab, not %r"
                              % (sep[:10],))
        return CSVFormat(SEPARATORS[sep])


def mountSearch(events: Resource, journal: Any) -> JournalSearch:
    """Put the search and the exports below C{events} (the
    L{numberok.journal.resource.JournalResource}) of C{journal}.
    @return: the journal's L{JournalSearch}."""
    search = journal.search
    events.putChild(b"search", SearchResource(search, events, "search"))
    events.putChild(b"export.csv", ExportResource(search, events, "csv"))
    events.putChild(b"export.jsonl", ExportResource(search, events,
                                                    "jsonl"))
    return search
