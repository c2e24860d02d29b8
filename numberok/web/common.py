"""
What every resource of the admin server shares: the error type, the way
answers are written, and L{Endpoint}, the base of every resource that
answers (page, API, C{/metrics}).

The routing model is Twisted's own: a tree of resources built with
C{putChild} and C{getChild} (see L{numberok.web.resource}).  An
L{Endpoint} is a leaf of that tree: its C{render} runs one coroutine that
sets the security headers, lets the request through the gate (L{
numberok.web.gate.Gate}) unless the endpoint is public, and calls the
method named after the HTTP verb (C{GET}, C{PUT}, ...).  Whatever fails ends
as an answer -- C{{"errors": {"<field or param>": "message"}}} for the API --
or, for a bug, as a logged 500: nothing raises into the reactor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from numberok.endpoints import hostText
from numberok.web.query import unknownParameters

if TYPE_CHECKING:
    from numberok.web.gate import Gate, Identity

STATE_CHANGING = (b"POST", b"PUT", b"DELETE", b"PATCH")
HTTP_METHODS = (b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH")

SECURITY_HEADERS = {
    b"X-Content-Type-Options": b"nosniff",
    b"X-Frame-Options": b"DENY",
    # Not no-referrer: under it browsers send "Origin: null" with the page's
    # own form posts, which the CSRF check must refuse.
    b"Referrer-Policy": b"same-origin",
    b"Content-Security-Policy": (
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; "
        b"script-src 'self'; frame-ancestors 'none'; form-action 'self'; "
        b"base-uri 'none'"),
}


class HTTPError(Exception):
    """Answer with C{code} and C{{"errors": errors}} (or a page)."""

    def __init__(self, code: int, errors: dict[str, str],
                 headers: Optional[dict[bytes, bytes]] = None) -> None:
        super().__init__(errors)
        self.code = code
        self.errors = errors
        self.headers = headers or {}


# -- answering ------------------------------------------------------------

def answer(request, code: int, contentType: Optional[bytes],
           body: bytes) -> None:
    """Finish C{request} with C{body}, unless the peer has gone."""
    if request.finished or request.channel is None:
        return
    request.setResponseCode(code)
    if contentType is not None:
        request.setHeader(b"Content-Type", contentType)
    request.setHeader(b"Content-Length", b"%d" % (len(body),))
    if body and request.method != b"HEAD":
        request.write(body)
    request.finish()


def jsonBytes(document: Any) -> bytes:
    """The API's JSON encoding of C{document}."""
    return json.dumps(document).encode("utf-8")


def answerJSON(request, code: int, document: Any) -> None:
    """The one way the admin site answers JSON (errors are
    C{{"errors": {field: message}}})."""
    answer(request, code, b"application/json", jsonBytes(document))


def answerHTML(request, code: int, body: bytes) -> None:
    answer(request, code, b"text/html; charset=utf-8", body)


def redirect(request, location: bytes) -> None:
    request.setHeader(b"Location", location)
    answer(request, 303, None, b"")


def readBody(request, limit: int) -> bytes:
    """
    The request's body, or 413 past C{limit} bytes (the admin site refuses
    most bodies that are too large before they are stored:
    L{numberok.web.limits}).
    """
    content = request.content
    content.seek(0, 2)
    if content.tell() > limit:
        raise HTTPError(413, {"body": "larger than %d bytes" % (limit,)})
    content.seek(0)
    return content.read()


def requireJSON(request) -> None:
    """
    415 unless the body says it is JSON.  Besides clear errors, this keeps
    plain HTML forms (which cannot send this type) away from the API.
    """
    kind = (request.getHeader("content-type") or "").split(";")[0]
    if kind.strip().lower() != "application/json":
        raise HTTPError(415, {"Content-Type": (
            "send the body as application/json, not %s"
            % (kind.strip()[:60] or "a body without a type",))})


MAX_INT_DIGITS = 100


def _parseInt(text: str) -> Any:
    # Python refuses to convert more than 4300 digits and the message would
    # be the JSON parser's; the text goes on to settings validation, which
    # says what is wrong with the value in its own words.
    return int(text) if len(text) <= MAX_INT_DIGITS else text


def jsonObject(body: bytes, field: str, what: str) -> dict[str, Any]:
    """C{body} as a JSON object, or 400 on C{field} saying C{what} it
    should be."""
    try:
        value = json.loads(body.decode("utf-8"), parse_int=_parseInt)
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, {field: "not JSON: %s" % (e,)})
    if not isinstance(value, dict):
        raise HTTPError(400, {field: "expected a JSON object of " + what})
    return value


def peer(request) -> str:
    """The host a request came from (L{hostText})."""
    return hostText(request.getClientAddress())


# -- the resources --------------------------------------------------------

class Node(resource.Resource):
    """
    An inner node of the tree (C{/api}, C{/static}): children are put in
    with C{putChild}; anything else is a JSON 404, not twisted.web's HTML
    page.
    """

    def __init__(self, gate: Optional["Gate"]) -> None:
        super().__init__()
        self.gate = gate

    def getChild(self, path: bytes, request) -> resource.Resource:
        return NotFound(self.gate)

    def render(self, request):
        return NotFound(self.gate).render(request)


class Endpoint(Node):
    """
    A leaf of the admin tree that answers requests itself.

    Subclasses define C{async def GET(self, request, identity)} (and
    C{PUT}, C{POST}, C{DELETE}) and set the flags below.  A device push
    (L{Push}), whose callers have no session, has no gate: it overrides
    L{admit}, and its handler checks the caller's token or credentials.

    @cvar public: no login needed (static files, the login form, 404s).
    @cvar api: errors are JSON and a missing login is 401; otherwise a
        page, where a missing login goes to C{/login} and a 403 is a page.
    """

    log = Logger()
    public = False
    api = True
    queryParameters: Optional[frozenset[str]] = frozenset()
    """The query parameters this API path takes; any other is a 400
    naming it (L{numberok.web.query}).  L{None}: not checked here."""

    def render(self, request):
        defer.ensureDeferred(self._handle(request))
        return NOT_DONE_YET

    def allowedMethods(self) -> list[bytes]:
        return [m for m in HTTP_METHODS if m != b"HEAD"
                and getattr(self, m.decode("ascii"), None) is not None]

    async def _handle(self, request) -> None:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"Cache-Control", b"no-store")
        try:
            handler = self._handler(request)
            identity = await self.admit(request)
            if identity is not None:
                self._checkQuery(request)
                await handler(request, identity)
        except HTTPError as e:
            for name, value in e.headers.items():
                request.setHeader(name, value)
            if self.api or e.code != 403:
                answerJSON(request, e.code, {"errors": e.errors})
            else:
                from numberok.web.login import errorPage
                answerHTML(request, e.code, errorPage(
                    e.code, "; ".join(e.errors.values())))
        except Exception:
            self.log.failure("admin request {method} {path} failed",
                             method=request.method, path=request.path)
            answerJSON(request, 500, {"errors": {
                "server": "internal error; see the server log"}})

    async def admit(self, request) -> Optional["Identity"]:
        """
        Who is asking, or L{None} when the request was answered already;
        raises L{HTTPError} to refuse.  The gate decides (L{numberok.web.
        gate.Gate.admit}).
        """
        if self.gate is None:
            raise TypeError("%r has no gate and must override admit"
                            % (self,))
        return await self.gate.admit(request, self)
    def _checkQuery(self, request) -> None:
        allowed = self.queryParameters
        if self.api and allowed is not None:
            errors = unknownParameters(request, allowed)
            if errors:
                raise HTTPError(400, errors)

    def _handler(self, request):
        method = b"GET" if request.method == b"HEAD" else request.method
        handler = (getattr(self, method.decode("ascii"), None)
                   if method in HTTP_METHODS else None)
        if handler is None:
            raise HTTPError(405, {"method": "%s is not allowed here" % (
                request.method.decode("ascii", "replace")[:20],)},
                {b"Allow": b", ".join(self.allowedMethods())})
        return handler


class NotFound(Endpoint):
    """Any path the tree does not have: 404 in the API's error shape."""

    public = True
    queryParameters = None  # a wrong path is a 404, whatever its query

    def _handler(self, request):
        # Every method: a wrong path is a 404 whatever the verb.
        return self.GET

    async def GET(self, request, identity: "Identity") -> None:
        raise HTTPError(404, {"path": "no such page or API: %s" % (
            request.path.decode("ascii", "replace")[:200],)})


class Guarded(Endpoint):
    """
    A plain twisted.web resource of another part (the journal's C{/api/
    events} pages) behind the gate: its children are guarded too, and it
    renders itself once the request is let in.
    """

    def __init__(self, gate: "Gate", inner: resource.Resource) -> None:
        super().__init__(gate)
        self.inner = inner
        # A leaf inside reads the rest of the path (request.postpath)
        # itself: stop traversing here too.
        self.isLeaf = bool(getattr(inner, "isLeaf", False))
        # The inner resource says which parameters it takes, if it does.
        self.queryParameters = getattr(inner, "queryParameters", None)

    def getChild(self, path: bytes, request) -> resource.Resource:
        child = self.inner.getChildWithDefault(path, request)
        if isinstance(child, Endpoint):
            return child  # it passes the gate itself
        return Guarded(self.gate, child)

    async def GET(self, request, identity: "Identity") -> None:
        body = self.inner.render(request)
        if body is not NOT_DONE_YET:
            request.write(body)
            request.finish()


@dataclass(frozen=True, slots=True)
class Push:
    """
    An HTTP path devices push to (camera alarms), declared once by the part
    that serves it and mounted on the admin site with
    L{numberok.web.service.AdminService.putPush}.  It is not behind the
    gate: a device has no session, Origin or loopback Host, and the
    resource checks its token or Basic credentials itself.

    @ivar path: the full path, e.g. C{b"/api/cameras/hikvision"}.
    @ivar maxBody: the largest body the site lets through (with
        credentials or a token; anonymous bodies stay small).
    @ivar tokenInQuery: a C{token=} in the query counts as credentials
        for that limit (many cameras cannot send Basic).
    """

    path: bytes
    resource: resource.Resource
    maxBody: int
    tokenInQuery: bool = True
