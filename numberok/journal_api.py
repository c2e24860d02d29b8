"""
The journal's part of the admin API, for the admin web server to mount:

- C{GET /api/events?since_id=N&limit=M}: journal rows with C{id > N}, oldest
  first, at most C{M} (default 100, at most 1000), each with the URL of its
  screenshot, plus C{oldest_id} and C{last_id} so that a client that was
  down can tell whether retention removed rows it never saw.  A client
  catches up by asking again with the last id it got until C{events} is
  empty.
- C{GET /api/events/<id>/screenshot.jpg}: that row's frame.

Mount it as the C{events} child of the C{api} resource (see
L{JournalResource}); authentication is the admin server's business, done
before this resource is reached.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import pages, resource, server

from numberok.journal import Journal, JournalUnavailable

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class BadQuery(ValueError):
    """A query parameter is missing its form; the message names it."""


def _intArgument(request, name: str, default: int, low: int,
                 high: int) -> int:
    values = request.args.get(name.encode("ascii"))
    if not values:
        return default
    text = values[0].decode("ascii", "replace")
    try:
        value = int(text, 10)
    except ValueError:
        raise BadQuery("%s must be a whole number, not %r"
                       % (name, text[:40])) from None
    if not low <= value <= high:
        raise BadQuery("%s must be %d..%d, not %d" % (name, low, high, value))
    return value


def _answer(request, status: int, document: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


class JournalResource(resource.Resource):
    """
    C{/api/events}: paging through the journal.

    @param journal: the running L{Journal}.
    @param screenshotBase: the URL path this resource is mounted at, used to
        build screenshot URLs (C{<base>/<id>/screenshot.jpg}).
    """

    log = Logger()

    def __init__(self, journal: Journal,
                 screenshotBase: str = "/api/events") -> None:
        super().__init__()
        self.journal = journal
        self.screenshotBase = screenshotBase.rstrip("/")

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path == b"":
            return self
        try:
            entryId = int(path.decode("ascii"), 10)
        except (UnicodeDecodeError, ValueError):
            return pages.notFound("No such event", "No such event.")
        return _EventResource(self.journal, entryId)

    def screenshotURL(self, entryId: int) -> str:
        return "%s/%d/screenshot.jpg" % (self.screenshotBase, entryId)

    def render_GET(self, request) -> Any:
        try:
            sinceId = _intArgument(request, "since_id", 0, 0, 2 ** 63 - 1)
            limit = _intArgument(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        except BadQuery as e:
            return _answer(request, 400, {"error": str(e)})
        d = self.journal.since(sinceId, limit)

        def found(page) -> None:
            document = {
                "events": [e.toJSON(self.screenshotURL(e.id))
                           for e in page.entries],
                "oldest_id": page.oldestId,
                "last_id": page.lastId,
                "since_id": sinceId,
            }
            request.write(_answer(request, 200, document))
            request.finish()

        def failed(f: Failure) -> None:
            if f.check(JournalUnavailable):
                body = _answer(request, 503, {
                    "error": "journal unavailable: %s" % (
                        f.getErrorMessage(),)})
            else:
                self.log.failure("GET /api/events failed", f)
                body = _answer(request, 500, {"error": "internal error"})
            request.write(body)
            request.finish()

        d.addCallbacks(found, failed)
        d.addErrback(lambda f: self.log.failure("answering failed", f))
        return server.NOT_DONE_YET


class _EventResource(resource.Resource):
    """C{/api/events/<id>/...}: only C{screenshot.jpg} lives here."""

    def __init__(self, journal: Journal, entryId: int) -> None:
        super().__init__()
        self.journal = journal
        self.entryId = entryId

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path != b"screenshot.jpg":
            return pages.notFound("Not found", "No such resource.")
        return _ScreenshotResource(self.journal.screenshotPath(self.entryId))


class _ScreenshotResource(resource.Resource):
    """
    Serves one screenshot file, read in a thread so that the disk never
    blocks the reactor (a frame is at most a few MiB).
    """

    isLeaf = True

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def render_GET(self, request) -> Any:
        d = deferToThread(_readFile, self.path)

        def send(data: Optional[bytes]) -> None:
            if data is None:
                request.write(_answer(request, 404,
                                      {"error": "no screenshot"}))
            else:
                request.setHeader(b"content-type", b"image/jpeg")
                request.setHeader(b"cache-control", b"max-age=86400")
                request.write(data)
            request.finish()

        def failed(f: Failure) -> None:
            Logger().failure("reading {path} failed", f, path=self.path)
            request.write(_answer(request, 500, {"error": "cannot read"}))
            request.finish()
        d.addCallbacks(send, failed)
        d.addErrback(lambda f: None)  # the client went away
        return server.NOT_DONE_YET


def _readFile(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
