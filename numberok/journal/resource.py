"""
The journal's part of the admin API, a C{twisted.web} resource tree for the
admin server to mount as C{/api/events} (authentication is done before it):

- C{GET /api/events?since_id=N&limit=M}: rows with C{id > N}, oldest first,
  at most C{M} (default 100, at most 1000), plus C{oldest_id}, C{last_id},
  C{epoch} and C{first_id} (docs/operations.rst, "Catching up").
- C{GET /api/events/<id>/screenshot.jpg}: that row's frame.
- C{GET /api/events/<id>/plate.jpg}: that row's plate crop.
- C{GET /api/events/<id>/thumbnail}: that row's frame, scaled down.

Errors answer C{{"errors": {"<parameter or path>": "message"}}} like the
rest of the API.  Pictures carry an C{ETag} naming the file for all time, so
a browser revalidates instead of trusting a cached picture for an id.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import resource, server
from twisted.web.resource import Resource

from numberok.journal.fields import JournalEntry
from numberok.journal.service import Journal, JournalUnavailable

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PICTURES = {b"screenshot.jpg": "screenshot", b"plate.jpg": "plate",
            b"thumbnail": "thumbnail"}
DISABLED = "the journal is disabled ([Journal] Path is empty)"

log = Logger()


class BadQuery(ValueError):
    """A query parameter is not in its form; C{args} = (name, message)."""


def _intArgument(request, name: str, default: int, low: int,
                 high: int) -> int:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    text = values[0].decode("ascii", "replace")
    if not (text.isascii() and text.isdigit() and len(text) <= 19):
        raise BadQuery(name, "must be a whole number from %d to %d, not %r"
                       % (low, high, text[:20]))
    value = int(text, 10)
    if not low <= value <= high:
        raise BadQuery(name, "must be %d..%d, not %d" % (low, high, value))
    return value


def answerJSON(request, status: int, document: Any) -> bytes:
    """Set the status and headers of a JSON answer; @return: its body."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def answerError(request, status: int, where: str, message: str) -> bytes:
    """The API's error shape: C{{"errors": {where: message}}}."""
    return answerJSON(request, status, {"errors": {where: message}})


def answerJPEG(request, data: bytes, tag: Optional[str] = None) -> bytes:
    """
    A picture.  With a C{tag} (a name the picture keeps for all time) the
    browser may keep it but asks again with C{If-None-Match}: an id alone
    may come back in a new journal epoch with another picture.
    """
    request.setHeader(b"content-type", b"image/jpeg")
    if tag is None:
        request.setHeader(b"cache-control", b"no-store")
    else:
        request.setHeader(b"cache-control", b"private, no-cache")
        request.setHeader(b"etag", ('"%s"' % (tag,)).encode("ascii"))
    return data


def _requestTag(request) -> Optional[str]:
    value = request.getHeader(b"if-none-match")
    if not value:
        return None
    return value.decode("ascii", "replace").strip().strip('"')


def finish(request, body: bytes) -> None:
    """Write C{body} and finish, unless the client went away."""
    if request.finished or getattr(request, "_disconnected", False):
        return
    request.write(body)
    request.finish()


def notFound(where: str, message: str) -> Resource:
    """A leaf answering 404 in the API's error shape."""
    return _Error(404, where, message)


class _Error(Resource):
    isLeaf = True

    def __init__(self, status: int, where: str, message: str) -> None:
        super().__init__()
        self.status, self.where, self.message = status, where, message

    def render(self, request) -> bytes:
        return answerError(request, self.status, self.where, self.message)


def renderAt(root: Resource, request, segments: Sequence[bytes]) -> None:
    """
    Answer C{request} with the resource at C{segments} below C{root}: for a
    router that checked authentication itself and hands the rest of the
    path (C{/api/events/<rest>}) to this tree.
    """
    request.postpath = list(segments)
    body = resource.getChildForRequest(root, request).render(request)
    if body is not server.NOT_DONE_YET:
        finish(request, body)


def urlOf(base: str, entryId: int, picture: str) -> str:
    """The URL of a row's C{picture} below C{base} (C{/api/events})."""
    return "%s/%d/%s" % (base, entryId, picture)


def entryJSON(entry: JournalEntry, base: str = "/api/events"
              ) -> dict[str, Any]:
    """A row as the API shows it, its pictures' URLs below C{base}."""
    return entry.toJSON(urlOf(base, entry.id, "screenshot.jpg"),
                        urlOf(base, entry.id, "plate.jpg"))


class JournalResource(Resource):
    """
    C{/api/events}: paging through the journal, and the rows' pictures.

    @param journal: the running L{Journal}, or L{None} when it is disabled
        (every journal path then answers 404 saying so; children put here,
        such as the admin page's C{recent}, still work).
    @param base: the URL path this resource is mounted at, for the picture
        URLs in the rows.
    """

    queryParameters = frozenset({"since_id", "limit"})
    """What C{GET /api/events} takes; any other parameter is a 400 naming
    it (L{numberok.web.query})."""

    def __init__(self, journal: Optional[Journal],
                 base: str = "/api/events") -> None:
        super().__init__()
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

    def getChild(self, path: bytes, request) -> Resource:
        if path == b"":
            return self
        if self.journal is None:
            return notFound("journal", DISABLED)
        if path.isdigit() and len(path) <= 18:
            return _EventResource(self.journal, int(path))
        return notFound("path", "no such resource: %s" % (
            path[:40].decode("ascii", "replace"),))

    def render_GET(self, request) -> Any:
        if self.journal is None:
            return answerError(request, 404, "journal", DISABLED)
        try:
            sinceId = _intArgument(request, "since_id", 0, 0, 2 ** 63 - 1)
            limit = _intArgument(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        except BadQuery as e:
            return answerError(request, 400, *e.args)
        d = self.journal.since(sinceId, limit)

        def found(page) -> None:
            finish(request, answerJSON(request, 200, {
                "events": [self.entryJSON(e) for e in page.entries],
                "oldest_id": page.oldestId,
                "last_id": page.lastId,
                "since_id": sinceId,
                "epoch": page.epoch,
                "first_id": page.firstId,
            }))

        d.addCallbacks(found, lambda f: _failed(request, f))
        d.addErrback(lambda f: log.failure("answering failed", f))
        return server.NOT_DONE_YET


def _failed(request, f: Failure) -> None:
    if f.check(JournalUnavailable):
        body = answerError(request, 503, "journal", "journal unavailable: %s"
                           % (f.getErrorMessage(),))
    else:
        log.failure("journal request {path} failed", f,
                    path=request.path.decode("ascii", "replace"))
        body = answerError(request, 500, "server",
                           "internal error; see the server log")
    finish(request, body)


answerFailure = _failed
"""Answer a failed journal read: 503 when the journal is not open, else a
logged 500 (for the search's and visits' resources)."""


class _EventResource(Resource):
    """C{/api/events/<id>/...}: the row's pictures."""

    def __init__(self, journal: Journal, entryId: int) -> None:
        super().__init__()
        self.journal = journal
        self.entryId = entryId

    def getChild(self, path: bytes, request) -> Resource:
        kind = PICTURES.get(path)
        if kind is None:
            return notFound("path", "no such resource: %s" % (
                path[:40].decode("ascii", "replace"),))
        return _PictureResource(self.journal, self.entryId, kind)

    def render(self, request) -> bytes:
        return answerError(request, 404, "path", "no such resource")


class _PictureResource(Resource):
    """One picture of one row, read in the journal's thread."""

    isLeaf = True
    names = {"screenshot": "screenshot", "plate": "plate picture",
             "thumbnail": "screenshot"}

    def __init__(self, journal: Journal, entryId: int, kind: str) -> None:
        super().__init__()
        self.journal, self.entryId, self.kind = journal, entryId, kind

    def render_GET(self, request) -> Any:
        d = self.journal.picture(self.entryId, self.kind, _requestTag(request))

        def send(found) -> None:
            if found is None:
                body = answerError(request, 404, "id", "event %d has no %s"
                                   % (self.entryId, self.names[self.kind]))
            else:
                tag, data = found
                if data is None:
                    request.setResponseCode(304)
                    request.setHeader(b"etag", ('"%s"' % (tag,)).encode())
                    body = b""
                else:
                    body = answerJPEG(request, data, tag)
            finish(request, body)

        d.addCallbacks(send, lambda f: _failed(request, f))
        d.addErrback(lambda f: log.failure("answering failed", f))
        return server.NOT_DONE_YET
