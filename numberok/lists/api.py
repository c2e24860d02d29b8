"""
The JSON API of the lists, mounted under C{/api/lists} and
C{/api/access-log} (docs/lists.rst has every path with examples):

    GET    /api/lists                       every list, with its size
    POST   /api/lists                       create (201; 409 when it exists)
    GET    /api/lists/match?plate=&distance=   match preview
    GET    /api/lists/<name>                one list
    PUT    /api/lists/<name>                create or change
    DELETE /api/lists/<name>                remove it and its entries
    GET    /api/lists/<name>/entries        ?q=&offset=&limit=  a page
    POST   /api/lists/<name>/entries        one object, or an array: upsert
    PUT    /api/lists/<name>/entries        text/csv (or a JSON array):
                                            replace all, atomically
    DELETE /api/lists/<name>/entries/<plate>
    GET    /api/lists/<name>/entries.csv    export

The access log (C{/api/access-log}) is L{numberok.lists.accesslog}.
"""

from __future__ import annotations

import json
from typing import Any, Optional
from urllib.parse import unquote

from twisted.web import resource

from numberok.lists.model import ListError, checkName, checkPlate, \
    parseEntry, parseList
from numberok.lists.service import ListsService, NoSuchList
from numberok.web.common import (Endpoint, HTTPError, answer, answerJSON,
                                 readBody)
from numberok.web.limits import LISTS_BODY_BYTES, SMALL_BODY_BYTES

MAX_PAGE = 1000


def _arg(request, name: str) -> str:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return ""
    try:
        return values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPError(400, {name: "not UTF-8"})


def _int(request, name: str, default: Optional[int], low: int,
         high: int) -> Optional[int]:
    text = _arg(request, name)
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise HTTPError(400, {name: "an integer %d..%d" % (low, high)})
    return int(text)


def _json(request, limit: int) -> Any:
    kind = (request.getHeader("content-type") or "").split(";")[0]
    if kind.strip().lower() != "application/json":
        raise HTTPError(415, {"Content-Type": "send application/json"})
    try:
        return json.loads(readBody(request, limit).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, {"body": "not JSON: %s" % (e,)})


def _refused(service: ListsService, what: str, e: ListError) -> HTTPError:
    service.metrics.listRefused.labels(what=what).inc()
    return HTTPError(400, e.errors)


def _listJSON(plateList, size: int, origin: str = "local"
              ) -> dict[str, Any]:
    data = plateList.toJSON()
    data["entries"] = size
    data["origin"] = origin
    return data


class _ListsPart(Endpoint):
    def __init__(self, gate, lists: ListsService) -> None:
        super().__init__(gate)
        self.lists = lists

    def _list(self, name: str):
        try:
            return self.lists.getList(name)
        except NoSuchList:
            raise HTTPError(404, {"name": "no list named %r" % (name,)})

    def _writable(self, name: str) -> None:
        """409 for a list that comes from the central office."""
        if self.lists.isRemote(name):
            raise HTTPError(409, {"name": (
                "list %r comes from the central office over the broker; "
                "change it there" % (name,))})


class ListsEndpoint(_ListsPart):
    """C{/api/lists}: every list, and creating one."""

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path == b"match":
            return MatchEndpoint(self.gate, self.lists)
        try:
            name = unquote(path.decode("utf-8"))
        except UnicodeDecodeError:
            name = ""
        return ListEndpoint(self.gate, self.lists, name)

    async def GET(self, request, identity) -> None:
        answerJSON(request, 200, {"lists": [
            _listJSON(l, n, "central" if self.lists.isRemote(l.name)
                      else "local") for l, n in self.lists.lists()]})

    async def POST(self, request, identity) -> None:
        try:
            plateList = parseList(_json(request, SMALL_BODY_BYTES))
        except ListError as e:
            raise _refused(self.lists, "list", e)
        if plateList.name in self.lists.matcher.indexes:
            raise HTTPError(409, {"name": "list %r exists; PUT /api/lists/"
                                          "%s changes it" % (
                                              plateList.name,
                                              plateList.name)})
        await self.lists.putList(plateList)
        answerJSON(request, 201, _listJSON(plateList, 0))


class MatchEndpoint(_ListsPart):
    """C{/api/lists/match?plate=...&distance=}: the match preview."""
    queryParameters = frozenset({"plate", "distance", "channel", "zone"})

    async def GET(self, request, identity) -> None:
        try:
            plate = checkPlate(_arg(request, "plate"))
        except ListError as e:
            raise HTTPError(400, e.errors)
        if "*" in plate or "?" in plate:
            raise HTTPError(400, {"plate": "a plate as read, not a mask"})
        distance = _int(request, "distance", None, 0, 2)
        channel = _int(request, "channel", None, 0, 9999)
        zone = _int(request, "zone", 0, 0, 99)
        matcher = self.lists.matcher
        now = self.lists.reactor.seconds()
        indexes = (matcher.inScope(channel, zone) if channel is not None
                   else tuple(i for _, i in sorted(matcher.indexes.items())))
        decision = matcher.decideAmong(indexes, plate, now)
        match = decision.match
        answerJSON(request, 200, {
            "plate": plate,
            "decision": {
                "Access": decision.access, "reason": decision.reason,
                "ListName": match.list.name if match else None,
                "ListKind": match.list.kind if match else None,
                "ListPlate": match.plate if match else None,
                "ListMatch": match.wire if match else None},
            "matches": self.lists.preview(plate, distance)})


class ListEndpoint(_ListsPart):
    """C{/api/lists/<name>}."""

    def __init__(self, gate, lists: ListsService, name: str) -> None:
        super().__init__(gate, lists)
        self.name = name

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path == b"entries":
            return EntriesEndpoint(self.gate, self.lists, self.name)
        if path == b"entries.csv":
            return ExportEndpoint(self.gate, self.lists, self.name)
        return super().getChild(path, request)

    async def GET(self, request, identity) -> None:
        answerJSON(request, 200, _listJSON(*self._list(self.name)))

    async def PUT(self, request, identity) -> None:
        self._writable(self.name)
        try:
            checkName(self.name)
            plateList = parseList(_json(request, SMALL_BODY_BYTES),
                                  self.name)
        except ListError as e:
            raise _refused(self.lists, "list", e)
        created = await self.lists.putList(plateList)
        answerJSON(request, 201 if created else 200,
                   _listJSON(*self.lists.getList(self.name)))

    async def DELETE(self, request, identity) -> None:
        self._list(self.name)
        self._writable(self.name)
        await self.lists.deleteList(self.name)
        answer(request, 204, None, b"")


class EntriesEndpoint(_ListsPart):
    """C{/api/lists/<name>/entries}."""
    queryParameters = frozenset({"q", "offset", "limit"})

    def __init__(self, gate, lists: ListsService, name: str) -> None:
        super().__init__(gate, lists)
        self.name = name

    def getChild(self, path: bytes, request) -> resource.Resource:
        try:
            plate = unquote(path.decode("utf-8"))
        except UnicodeDecodeError:
            plate = ""
        return EntryEndpoint(self.gate, self.lists, self.name, plate)

    async def GET(self, request, identity) -> None:
        self._list(self.name)
        total, entries = await self.lists.entries(
            self.name, _arg(request, "q")[:64],
            _int(request, "offset", 0, 0, 10 ** 9),
            _int(request, "limit", 100, 1, MAX_PAGE))
        answerJSON(request, 200, {"total": total, "entries": [
            e.toJSON() for e in entries]})

    def _entries(self, values: Any) -> list:
        now = self.lists.reactor.seconds()
        many = isinstance(values, list)
        errors: dict[str, str] = {}
        entries = []
        for n, value in enumerate(values if many else [values]):
            try:
                entries.append(parseEntry(value, self.lists.zone, now))
            except ListError as e:
                for key, message in e.errors.items():
                    errors[("[%d].%s" % (n, key)) if many else key] = message
        if len({e.plate for e in entries}) != len(entries):
            errors["plate"] = "a plate appears twice in the request"
        if errors:
            raise _refused(self.lists, "entry", ListError(errors))
        return entries

    async def POST(self, request, identity) -> None:
        self._list(self.name)
        self._writable(self.name)
        entries = self._entries(_json(request, LISTS_BODY_BYTES))
        await self.lists.upsert(self.name, entries)
        answerJSON(request, 200, {"upserted": len(entries)})

    async def PUT(self, request, identity) -> None:
        self._list(self.name)
        self._writable(self.name)
        kind = (request.getHeader("content-type") or "").split(";")[0]
        kind = kind.strip().lower()
        if kind == "text/csv":
            body = readBody(request, LISTS_BODY_BYTES)
            try:
                count = await self.lists.importCSV(self.name, body)
            except ListError as e:
                raise HTTPError(400, e.errors)
        else:
            values = _json(request, LISTS_BODY_BYTES)
            if not isinstance(values, list):
                raise HTTPError(400, {"body": "a JSON array of entries (or "
                                              "a text/csv body)"})
            entries = self._entries(values)
            await self.lists.replace(self.name, entries)
            count = len(entries)
        answerJSON(request, 200, {"entries": count})


class EntryEndpoint(_ListsPart):
    """C{/api/lists/<name>/entries/<plate>}."""

    def __init__(self, gate, lists: ListsService, name: str,
                 plate: str) -> None:
        super().__init__(gate, lists)
        self.name = name
        self.plate = plate

    async def DELETE(self, request, identity) -> None:
        self._list(self.name)
        self._writable(self.name)
        try:
            plate = checkPlate(self.plate)
        except ListError as e:
            raise HTTPError(404, e.errors)
        if not await self.lists.deleteEntry(self.name, plate):
            raise HTTPError(404, {"plate": "%s is not in list %s" % (
                plate, self.name)})
        answer(request, 204, None, b"")


class ExportEndpoint(_ListsPart):
    """C{/api/lists/<name>/entries.csv}."""

    def __init__(self, gate, lists: ListsService, name: str) -> None:
        super().__init__(gate, lists)
        self.name = name

    async def GET(self, request, identity) -> None:
        self._list(self.name)
        body = await self.lists.exportCSV(self.name)
        request.setHeader(b"Content-Disposition",
                          b'attachment; filename="%s.csv"'
                          % (self.name.encode("ascii"),))
        answer(request, 200, b"text/csv; charset=utf-8", body)
