"""
The access log over HTTP, searched and exported like the journal
(docs/lists.rst, "Access log"):

- C{GET /api/access-log?plate=&match=&distance=&from=&to=&decision=
  &list=&channel=&zone=&limit=&cursor=}: C{{"rows": [...], "total": N,
  "cursor": ..., "next_before_id": ...}}, newest first;
- C{GET /api/access-log/export.csv?<same>[&sep=;]} and
  C{GET /api/access-log/export.jsonl?<same>}: every match, streamed.

The access log lives in the lists' database (L{numberok.lists.store}), not
the journal's, but its rows have what the journal search needs (an C{id},
a C{plate_skeleton}, a time): the parameters, the SQL, the paging, the
formats and the streaming are the journal's own
(L{numberok.journal.query}, L{numberok.journal.search},
L{numberok.journal.export}), pointed at the C{access_log} table by
L{ACCESS_LOG} and run in the lists' thread.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Mapping, Optional

from numberok.journal.export import ExportStream, exportPage
from numberok.journal.query import (SEARCH_PARAMETERS, SearchError,
                                    SearchQuery, parseQuery)
from numberok.journal.search import (SearchedTable, SearchPage,
                                     SkeletonCache, searchPage)
from numberok.journal.search_api import (MAX_EXPORT_ROWS, exportFormat,
                                         textArgs)
from numberok.lists.service import ListsService
from numberok.lists.store import ACCESS_COLUMNS
from numberok.web.common import Endpoint, HTTPError, answerJSON

AccessRow = namedtuple("AccessRow", ACCESS_COLUMNS)
"""One row of the access log, as selected."""

ACCESS_LOG = SearchedTable(
    "access_log", ACCESS_COLUMNS, lambda r: AccessRow(*r), "access_skeleton",
    "time_ms", {"ListName": "list", "Access": "decision"})
"""The access log as the journal search sees it: C{from}/C{to} bound
C{time_ms} (the server's time of the decision or the gate attempt),
C{list=} its C{list}, C{access=} (or C{decision=}) its C{decision}."""

ACCESS_PARAMETERS = (SEARCH_PARAMETERS - {"movement"}) | {"decision",
                                                         "before_id"}
"""The search's parameters but C{movement} (a row has none), with
C{decision} (another name for C{access}) and C{before_id} (the paging of
the first version of this API: rows with lower ids)."""


def rowJSON(row: AccessRow) -> dict[str, Any]:
    """A row as the API, the JSON lines and the CSV show it."""
    return row._asdict()


def parseAccessQuery(args: Mapping[str, list[str]],
                     maxLimit: Optional[int] = None) -> SearchQuery:
    """
    The search of the access log C{args} ask for.

    @raise SearchError: the first parameter that is wrong, named as the
        client wrote it.
    """
    args = dict(args)
    decision = args.pop("decision", None)
    if decision:
        if args.get("access"):
            raise SearchError("decision", "give decision or access, not "
                              "both (they are one filter)")
        args["access"] = decision
    if args.get("movement"):
        raise SearchError("movement", "the access log has no movement")
    try:
        query = (parseQuery(args) if maxLimit is None
                 else parseQuery(args, maxLimit))
    except SearchError as e:
        if decision and e.args[0] == "access":
            raise SearchError("decision", e.args[1]) from None
        raise
    beforeId = (args.get("before_id") or [""])[0].strip()
    if beforeId:
        if query.cursor is not None:
            raise SearchError("before_id", "give cursor or before_id, not "
                              "both")
        if not (beforeId.isascii() and beforeId.isdigit()
                and len(beforeId) <= 18):
            raise SearchError("before_id", "must be a row id, not %r"
                              % (beforeId[:20],))
        query = query.page((None, int(beforeId)))
    return query


def _inEpoch(store, query: SearchQuery) -> SearchQuery:
    """C{query} with a C{before_id} (good in any epoch) given this
    database's epoch; a cursor of another epoch refused.  The lists'
    thread."""
    if query.cursor is not None and query.cursor[0] is None:
        return query.page((store.epoch, query.cursor[1]))
    if query.cursor is not None and query.cursor[0] != store.epoch:
        raise SearchError("cursor", (
            "the cursor is from another access log (epoch %s; this one is "
            "%s): start the search again" % (query.cursor[0], store.epoch)))
    return query


def _page(store, cache: SkeletonCache, query: SearchQuery) -> SearchPage:
    """One page, in the lists' thread."""
    return searchPage(store.db, store.epoch, cache, _inEpoch(store, query),
                      table=ACCESS_LOG)


def _exportPage(store, cache: SkeletonCache, query: SearchQuery,
                form) -> tuple[bytes, int, Optional[tuple]]:
    return exportPage(store, cache, _inEpoch(store, query), rowJSON, form,
                      ACCESS_LOG)


async def searchAccessLog(lists: ListsService, query: SearchQuery,
                          cache: Optional[SkeletonCache] = None
                          ) -> list[dict[str, Any]]:
    """The rows of the first page of C{query}, as L{rowJSON} shows them
    (for code in the server; HTTP clients have the endpoint)."""
    page = await lists.readAccessLog(
        _page, cache or SkeletonCache(ACCESS_LOG.name), query)
    return [rowJSON(r) for r in page.entries]


class _AccessBase(Endpoint):
    isLeaf = True

    def __init__(self, gate, lists: ListsService, cache: SkeletonCache,
                 kind: str) -> None:
        super().__init__(gate)
        self.lists, self.cache, self.kind = lists, cache, kind
        self.metrics = lists.metrics

    def refuse(self, error: SearchError) -> HTTPError:
        """A bad parameter: counted (as the journal search's are), and
        the 400 naming it."""
        param, message = error.args
        self.metrics.searchRefused.labels(param=param).inc()
        return HTTPError(400, {param: message})


class AccessLogEndpoint(_AccessBase):
    """C{GET /api/access-log}: a page, newest first."""

    isLeaf = False
    queryParameters = ACCESS_PARAMETERS

    def __init__(self, gate, lists: ListsService) -> None:
        cache = SkeletonCache(ACCESS_LOG.name)
        super().__init__(gate, lists, cache, "access-log")
        for kind in ("csv", "jsonl"):
            self.putChild(b"export." + kind.encode("ascii"),
                          AccessExportEndpoint(gate, lists, cache,
                                               "access-" + kind))

    async def GET(self, request, identity) -> None:
        try:
            query = parseAccessQuery(textArgs(request))
            page = await self.lists.readAccessLog(_page, self.cache, query)
        except SearchError as e:
            raise self.refuse(e)
        self.metrics.searchRequests.labels(kind=self.kind).inc()
        rows = page.entries
        answerJSON(request, 200, {
            "rows": [rowJSON(r) for r in rows],
            "total": page.total,
            "cursor": page.cursor,
            "next_before_id": rows[-1].id if page.cursor else None,
        })


class AccessExportEndpoint(_AccessBase):
    """C{GET /api/access-log/export.csv} and C{.jsonl}: C{limit} caps the
    rows (default: every match)."""

    queryParameters = ACCESS_PARAMETERS | {"sep"}

    async def GET(self, request, identity) -> None:
        try:
            args = textArgs(request)
            query = parseAccessQuery(args, MAX_EXPORT_ROWS)
            form = exportFormat(self.kind.partition("-")[2], args,
                                ACCESS_COLUMNS)
            # A cursor of another database is refused before the 200.
            query = await self.lists.readAccessLog(_inEpoch, query)
        except SearchError as e:
            raise self.refuse(e)
        self.metrics.searchRequests.labels(kind=self.kind).inc()
        request.setHeader(b"content-type", form.contentType)
        request.setHeader(b"content-disposition",
                          b"attachment; filename=access-log.%s"
                          % (form.extension.encode("ascii"),))

        def readPage(q: SearchQuery):
            return self.lists.readAccessLog(_exportPage, self.cache, q, form)
        ExportStream(request, None, query, rowJSON, form,
                     query.limit if args.get("limit") else None,
                     self.metrics, readPage).start()
