"""
The journal's part of the admin API, a C{twisted.web} resource tree for the
admin server to mount as C{/api/events} (authentication is done before it):

- C{GET /api/events?since_id=N&limit=M}: rows with C{id > N}, oldest first,
  at most C{M} (default 100, at most 1000), plus C{oldest_id}, C{last_id},
  C{epoch} and C{first_id} (docs/operations.rst, "Catching up").
- C{GET /api/events/<id>/screenshot.jpg}: that row's frame.
- C{GET /api/events/<id>/plate.jpg}: that row's plate crop.
- C{GET /api/events/<id>/thumbnail}: that row's frame, scaled down.

Each path is an L{Endpoint} of the admin tree (numberok/web/common.py):
it passes the gate itself, and errors answer C{{"errors": {"<parameter or
path>": "message"}}} like the rest of the API.  Pictures carry an C{ETag} naming the file for all time, so
a browser revalidates instead of trusting a cached picture for an id.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.web.resource import Resource

from numberok.journal.fields import JournalEntry
from numberok.journal.service import Journal, JournalUnavailable
from numberok.web.common import (Endpoint, Guarded, HTTPError, answer,
                                 answerJSON)
from numberok.web.gate import Gate, Identity

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PICTURES = {b"screenshot.jpg": "screenshot", b"plate.jpg": "plate",
            b"thumbnail": "thumbnail"}
DISABLED = "the journal is disabled ([Journal] Path is empty)"


def _intArgument(request, name: str, default: int, low: int,
                 high: int) -> int:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    text = values[0].decode("ascii", "replace")
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise HTTPError(400, {name: "must be a whole number from %d to %d, "
                              "not %r" % (low, high, text[:20])})
    value = int(text, 10)
    if not low <= value <= high:
        raise HTTPError(400, {name: "must be %d..%d, not %d"
                              % (low, high, value)})
    return value


async def readJournal(d: Any) -> Any:
    """The journal's answer; 503 when it is not open (other failures are
    the endpoint's logged 500)."""
    try:
        return await d
    except JournalUnavailable as e:
        raise HTTPError(503, {"journal": "journal unavailable: %s" % (e,)})


def urlOf(base: str, entryId: int, picture: str) -> str:
    """The URL of a row's C{picture} below C{base} (C{/api/events})."""
    return "%s/%d/%s" % (base, entryId, picture)


def entryJSON(entry: JournalEntry, base: str = "/api/events"
              ) -> dict[str, Any]:
    """A row as the API shows it, its pictures' URLs below C{base}."""
    return entry.toJSON(urlOf(base, entry.id, "screenshot.jpg"),
                        urlOf(base, entry.id, "plate.jpg"))


class _Missing(Endpoint):
    """A path below C{/api/events} that does not exist (or a disabled
    journal): 404 in the API's error shape, after the gate."""

    isLeaf = True
    queryParameters = None

    def __init__(self, gate: Optional[Gate], where: str,
                 message: str) -> None:
        super().__init__(gate)
        self.where, self.message = where, message

    async def GET(self, request, identity: Identity) -> None:
        raise HTTPError(404, {self.where: self.message})


def _noSuch(gate: Optional[Gate], path: bytes) -> Endpoint:
    return _Missing(gate, "path", "no such resource: %s" % (
        path[:40].decode("ascii", "replace"),))


class JournalResource(Endpoint):
    """
    C{/api/events}: paging through the journal, and the rows' pictures.

    @param journal: the running L{Journal}, or L{None} when it is disabled
        (every journal path then answers 404 saying so; children put here,
        such as the admin page's C{recent}, still work).
    @param gate: the admin site's gate, passed by every path below too
        (children put here that are not L{Endpoint}s, the search and the
        exports, are guarded with it).
    @param base: the URL path this resource is mounted at, for the picture
        URLs in the rows.
    """

    queryParameters = frozenset({"since_id", "limit"})
    """What C{GET /api/events} takes; any other parameter is a 400 naming
    it (L{numberok.web.query})."""

    def __init__(self, journal: Optional[Journal], gate: Optional[Gate],
                 base: str = "/api/events") -> None:
        super().__init__(gate)
        self.journal = journal
        self.base = base.rstrip("/")
        self.search = None
        if journal is not None:
            from numberok.journal.search_api import mountSearch
            self.search = mountSearch(self, journal)

    def urlOf(self, entryId: int, picture: str) -> str:
        """The URL of a row's C{picture} (C{screenshot.jpg}, C{plate.jpg},
        C{thumbnail})."""
        return urlOf(self.base, entryId, picture)

    def entryJSON(self, entry: JournalEntry) -> dict[str, Any]:
        return entryJSON(entry, self.base)

    def getChildWithDefault(self, path: bytes, request) -> Resource:
        child = super().getChildWithDefault(path, request)
        if isinstance(child, Endpoint) or self.gate is None:
            return child
        return Guarded(self.gate, child)

    def getChild(self, path: bytes, request) -> Resource:
        if path == b"":
            return self
        if self.journal is None:
            return _Missing(self.gate, "journal", DISABLED)
        if path.isdigit() and len(path) <= 18:
            return _EventNode(self.gate, self.journal, int(path))
        return _noSuch(self.gate, path)

    async def GET(self, request, identity: Identity) -> None:
        if self.journal is None:
            raise HTTPError(404, {"journal": DISABLED})
        sinceId = _intArgument(request, "since_id", 0, 0, 2 ** 63 - 1)
        limit = _intArgument(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        page = await readJournal(self.journal.since(sinceId, limit))
        answerJSON(request, 200, {
            "events": [self.entryJSON(e) for e in page.entries],
            "oldest_id": page.oldestId,
            "last_id": page.lastId,
            "since_id": sinceId,
            "epoch": page.epoch,
            "first_id": page.firstId,
        })


class _EventNode(Endpoint):
    """C{/api/events/<id>/...}: the row's pictures."""

    queryParameters = None

    def __init__(self, gate: Optional[Gate], journal: Journal,
                 entryId: int) -> None:
        super().__init__(gate)
        self.journal = journal
        self.entryId = entryId

    def getChild(self, path: bytes, request) -> Resource:
        kind = PICTURES.get(path)
        if kind is None:
            return _noSuch(self.gate, path)
        return _PictureEndpoint(self.gate, self.journal, self.entryId, kind)

    async def GET(self, request, identity: Identity) -> None:
        raise HTTPError(404, {"path": "no such resource"})


class _PictureEndpoint(Endpoint):
    """
    One picture of one row, read in the journal's thread.  It carries an
    C{ETag} naming the file for all time: the browser may keep it but asks
    again with C{If-None-Match}, since an id alone may come back in a new
    journal epoch with another picture.
    """

    isLeaf = True
    queryParameters = None
    names = {"screenshot": "screenshot", "plate": "plate picture",
             "thumbnail": "screenshot"}

    def __init__(self, gate: Optional[Gate], journal: Journal, entryId: int,
                 kind: str) -> None:
        super().__init__(gate)
        self.journal, self.entryId, self.kind = journal, entryId, kind

    async def GET(self, request, identity: Identity) -> None:
        found = await readJournal(self.journal.picture(
            self.entryId, self.kind, _requestTag(request)))
        if found is None:
            raise HTTPError(404, {"id": "event %d has no %s" % (
                self.entryId, self.names[self.kind])})
        tag, data = found
        request.setHeader(b"etag", ('"%s"' % (tag,)).encode("ascii"))
        if data is None:
            answer(request, 304, None, b"")
            return
        request.setHeader(b"cache-control", b"private, no-cache")
        answer(request, 200, b"image/jpeg", data)


def _requestTag(request) -> Optional[str]:
    value = request.getHeader(b"if-none-match")
    if not value:
        return None
    return value.decode("ascii", "replace").strip().strip('"')
