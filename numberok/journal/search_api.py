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

from typing import Any, Mapping, Optional
from urllib.parse import parse_qs

from twisted.web.resource import Resource

from numberok.journal.export import (EXPORT_COLUMNS, CSVFormat,
                                     ExportStream, JSONLinesFormat)
from numberok.journal.query import SEARCH_PARAMETERS, SearchError, parseQuery
from numberok.journal.resource import readJournal
from numberok.journal.search import JournalSearch
from numberok.web.common import Endpoint, HTTPError, answerJSON
from numberok.web.gate import Gate, Identity

MAX_EXPORT_ROWS = 10 ** 9
SEPARATORS = {",": ",", ";": ";", "tab": "\t"}


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


class _SearchBase(Endpoint):
    isLeaf = True

    def __init__(self, gate: Optional[Gate], search: JournalSearch,
                 events: Any, kind: str) -> None:
        super().__init__(gate)
        self.search, self.events, self.kind = search, events, kind
        self.metrics = search.journal.metrics

    def refuse(self, error: SearchError) -> HTTPError:
        """A bad parameter: counted, and the 400 naming it."""
        param, message = error.args
        self.metrics.searchRefused.labels(param=param).inc()
        return HTTPError(400, {param: message})


class SearchResource(_SearchBase):
    """C{GET /api/events/search}."""

    queryParameters = SEARCH_PARAMETERS

    async def GET(self, request, identity: Identity) -> None:
        try:
            query = parseQuery(textArgs(request))
            self.metrics.searchRequests.labels(kind=self.kind).inc()
            page = await readJournal(self.search.search(query))
        except SearchError as e:
            raise self.refuse(e)
        answerJSON(request, 200, {
            "events": [self.events.entryJSON(e) for e in page.entries],
            "total": page.total,
            "cursor": page.cursor,
        })


class ExportResource(_SearchBase):
    """C{GET /api/events/export.csv} and C{.jsonl}: C{limit} caps the
    rows (default: every match)."""

    queryParameters = SEARCH_PARAMETERS | {"sep"}

    async def GET(self, request, identity: Identity) -> None:
        try:
            args = textArgs(request)
            query = parseQuery(args, MAX_EXPORT_ROWS)
            form = self._format(args)
        except SearchError as e:
            raise self.refuse(e)
        self.metrics.searchRequests.labels(kind=self.kind).inc()
        maxRows = query.limit if args.get("limit") else None
        request.setHeader(b"content-type", form.contentType)
        request.setHeader(b"content-disposition",
                          b"attachment; filename=events.%s"
                          % (form.extension.encode("ascii"),))
        ExportStream(request, self.search, query, self.events.entryJSON,
                     form, maxRows, self.metrics).start()

    def _format(self, args: Mapping[str, list[str]]):
        return exportFormat(self.kind, args)


def exportFormat(kind: str, args: Mapping[str, list[str]],
                 columns: tuple[str, ...] = EXPORT_COLUMNS):
    """The format of an export of C{kind} (C{csv} with C{sep=}, or
    C{jsonl}), the CSV with C{columns}.  @raise SearchError: a bad
    C{sep}."""
    if kind == "jsonl":
        if args.get("sep"):
            raise SearchError("sep", "applies to export.csv only")
        return JSONLinesFormat()
    sep = (args.get("sep") or [","])[0]
    if sep not in SEPARATORS:
        raise SearchError("sep", "must be , or ; or tab, not %r"
                          % (sep[:10],))
    return CSVFormat(SEPARATORS[sep], columns)


def mountSearch(events: Resource, journal: Any) -> JournalSearch:
    """Put the search and the exports below C{events} (the
    L{numberok.journal.resource.JournalResource}) of C{journal}.
    @return: the journal's L{JournalSearch}."""
    search = journal.search
    gate = events.gate
    events.putChild(b"search", SearchResource(gate, search, events,
                                              "search"))
    events.putChild(b"export.csv", ExportResource(gate, search, events,
                                                  "csv"))
    events.putChild(b"export.jsonl", ExportResource(gate, search, events,
                                                    "jsonl"))
    return search
