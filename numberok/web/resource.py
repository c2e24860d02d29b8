"""
The admin web server's resource tree: the page, the login form, the JSON
API and C{POST /api/reads}, behind one gate that authenticates and checks
CSRF (see L{numberok.web.auth} for the model).

Routes::

    GET    /                          the admin page (login needed)
    GET    /login, POST /login        the login form
    POST   /logout
    GET    /static/<name>.css|js      the page's CSS and script (public)
    GET    /api/settings              settings, schema, listening state
    PUT    /api/settings              partial change; 200 or 400 {"errors"}
    GET    /api/connections           connections table and counters
    DELETE /api/connections/<id>      204, 404 for an unknown id
    GET    /api/events/recent         the last events, newest first
    GET    /api/events/<id>/thumbnail
    GET    /api/events?since_id=N&limit=M   the journal, oldest first
    GET    /api/events/<id>/screenshot.jpg  a journal row's picture
    POST   /api/reads                 HTTP ingest; 202 or 400 {"errors"}

Every handler runs in a coroutine whose failures end as a logged 500:
nothing raises into the reactor.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from typing import Any, Optional

from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.filepath import FilePath
from twisted.web import resource
from twisted.web.server import NOT_DONE_YET

from numberok import settings as settingsModule
from numberok.settings import SCHEMA, ZONE_SCHEMA, SettingsError
from numberok.sources import handOver
from numberok.sources.formats import ReadFormatError
from numberok.web import auth, page
from numberok.web.ingest import parseBody

STATIC = FilePath(__file__).sibling("static")
STATE_CHANGING = (b"POST", b"PUT", b"DELETE", b"PATCH")
PAGE_HEADER = b"x-numberok-page"
MAX_SETTINGS_BODY = 64 * 1024
HIDDEN_SETTINGS = ("Admin.PasswordHash",)

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


class Identity:
    """
    How a request was let in: C{"session"} (cookie; needs the CSRF token
    to change anything), C{"basic"} (HTTP Basic) or C{"open"} (no
    password is set).
    """

    def __init__(self, kind: str,
                 session: Optional[auth.Session] = None) -> None:
        self.kind = kind
        self.session = session


def settingsAsJSON(settings: settingsModule.Settings) -> dict[str, Any]:
    """The settings as JSON scalars, as C{PUT} takes them back."""
    values: dict[str, Any] = {}
    for f in SCHEMA:
        if f.name in HIDDEN_SETTINGS:
            continue
        value = settings[f.name]
        values[f.name] = (f.render(value) if f.kind in ("cidrs", "str")
                          else value)
    return values


def schemaAsJSON() -> dict[str, Any]:
    def describe(f, name):
        return {"kind": f.kind, "default": (
            f.render(f.default) if f.kind in ("cidrs", "str") else f.default),
            "allowed": f.describe(), "help": f.help,
            "min": f.minimum, "max": f.maximum,
            "choices": list(f.choices)}
    out = {f.name: describe(f, f.name) for f in SCHEMA
           if f.name not in HIDDEN_SETTINGS}
    out.update({"Zone.%s" % (f.key,): describe(f, f.key)
                for f in ZONE_SCHEMA})
    return out


def zonesAsJSON(settings: settingsModule.Settings) -> list[dict[str, Any]]:
    return [{"channel": c, "zone": z, "LossIntervalSec": zone.lossInterval,
             "InDirection": zone.inDirection}
            for (c, z), zone in sorted(settings.zones.items())]


class AdminResource(resource.Resource):
    """
    The root: every request goes through L{AdminResource.dispatch}.

    @ivar admin: the L{numberok.web.service.AdminService} holding the parts
        (store, factory, events, sink, recent, sessions, password checker).
    """

    log = Logger()

    def __init__(self, admin) -> None:
        super().__init__()
        self.admin = admin
        self._static: dict[str, bytes] = {}
        self._saving = defer.DeferredLock()

    isLeaf = True

    def render(self, request):
        defer.ensureDeferred(self.dispatch(request))
        return NOT_DONE_YET

    # -- the gate ------------------------------------------------------------

    @property
    def openMode(self) -> bool:
        return not self.admin.store.current["Admin.PasswordHash"]

    def cookieName(self, request) -> bytes:
        # Cookies are not per port: two servers on one host must not share.
        return b"numberok_session_%d" % (request.getHost().port,)

    def session(self, request) -> Optional[auth.Session]:
        token = request.getCookie(self.cookieName(request))
        session = self.admin.sessions.get(
            token.decode("ascii", "replace") if token else None)
        if session is not None and session.anonymous and not self.openMode:
            return None
        return session

    def startSession(self, request, anonymous: bool = False) -> auth.Session:
        session = self.admin.sessions.create(anonymous=anonymous)
        request.addCookie(self.cookieName(request), session.token, path="/",
                          httpOnly=True, sameSite="strict",
                          secure=request.isSecure() or None)
        return session

    def endSession(self, request) -> None:
        token = request.getCookie(self.cookieName(request))
        if token:
            self.admin.sessions.end(token.decode("ascii", "replace"))
        request.addCookie(self.cookieName(request), "", path="/",
                          httpOnly=True, sameSite="strict", max_age="0")

    def checkHost(self, request) -> None:
        """With no password, only loopback host names (DNS rebinding)."""
        if not self.openMode:
            return
        host = (request.getHeader("host") or "").rsplit(":", 1)[0]
        if not host.startswith("[") and host.count(":") > 1:
            host = request.getHeader("host") or ""
        if not auth.isLoopbackHost(host):
            raise HTTPError(403, {"Host": (
                "no admin password is set, so only loopback names "
                "(localhost, 127.0.0.1, [::1]) are served; set a password "
                "with numberok-passwd")})

    async def identify(self, request) -> Optional[Identity]:
        session = self.session(request)
        if session is not None:
            return Identity("session", session)
        header = request.getHeader("authorization") or ""
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "basic":
            password = _basicPassword(credentials)
            if self.openMode:
                return Identity("basic")
            ok = await self.admin.passwords.check(password, _peer(request))
            if not ok:
                raise HTTPError(401, {"Authorization": "wrong password"},
                                self.challenge(request))
            return Identity("basic")
        if self.openMode:
            return Identity("open")
        return None

    def challenge(self, request) -> dict[bytes, bytes]:
        # The page's own requests get no challenge: a browser would pop up
        # its Basic dialog over the page instead of going to /login.
        if request.getHeader(PAGE_HEADER):
            return {}
        return {b"WWW-Authenticate":
                b'Basic realm="numberok admin", charset="UTF-8"'}

    def checkCSRF(self, request, identity: Identity) -> None:
        """
        A state-changing request must not come from another site: its
        C{Origin}, when there is one, must be ours, and with the session
        cookie it must echo the session's token.
        """
        origin = request.getHeader("origin")
        if origin is not None and origin not in _ownOrigins(request):
            raise HTTPError(403, {"Origin": (
                "cross-origin request from %s refused" % (origin[:100],))})
        if identity.kind != "session":
            return
        token = request.getHeader("x-csrf-token")
        if token is None:
            values = request.args.get(b"csrf") or [b""]
            token = values[0].decode("ascii", "replace")
        if not hmac.compare_digest(token.encode("utf-8", "replace"),
                                   identity.session.csrf.encode()):
            raise HTTPError(403, {"csrf": (
                "missing or wrong CSRF token; reload the page")})

    # -- dispatch ------------------------------------------------------------

    ROUTES = [
        (re.compile(r"^/$"), {b"GET": "pageAdmin"}),
        (re.compile(r"^/static/([A-Za-z0-9_-]+\.(?:css|js))$"),
         {b"GET": "getStatic"}),
        (re.compile(r"^/login$"), {b"GET": "pageLogin", b"POST": "doLogin"}),
        (re.compile(r"^/logout$"), {b"POST": "doLogout"}),
        (re.compile(r"^/api/settings$"),
         {b"GET": "getSettings", b"PUT": "putSettings"}),
        (re.compile(r"^/api/connections$"), {b"GET": "getConnections"}),
        (re.compile(r"^/api/connections/([^/]+)$"),
         {b"DELETE": "deleteConnection"}),
        (re.compile(r"^/api/events/recent$"), {b"GET": "getRecent"}),
        (re.compile(r"^/api/events$"), {b"GET": "getJournal"}),
        (re.compile(r"^/api/events/(\d{1,18})/screenshot\.jpg$"),
         {b"GET": "getJournalScreenshot"}),
        (re.compile(r"^/api/events/(\d{1,18})/thumbnail$"),
         {b"GET": "getThumbnail"}),
        (re.compile(r"^/api/reads$"), {b"POST": "postReads"}),
    ]
    PUBLIC = ("pageLogin", "doLogin", "getStatic")
    STATIC_TYPES = {"css": b"text/css; charset=utf-8",
                    "js": b"text/javascript; charset=utf-8"}

    async def dispatch(self, request) -> None:
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        request.setHeader(b"Cache-Control", b"no-store")
        path = request.path.decode("ascii", "replace")
        isAPI = path.startswith("/api/")
        try:
            handlerName, args = self._route(request, path)
            self.checkHost(request)
            identity = None
            if handlerName not in self.PUBLIC:
                identity = await self.identify(request)
                if identity is None:
                    if isAPI:
                        raise HTTPError(401, {"Authorization": (
                            "log in: HTTP Basic with the admin password")},
                            self.challenge(request))
                    return self.redirect(request, b"/login")
                if request.method in STATE_CHANGING:
                    self.checkCSRF(request, identity)
            elif request.method in STATE_CHANGING:
                self.checkCSRF(request, Identity("public"))
            await getattr(self, handlerName)(request, identity, *args)
        except HTTPError as e:
            for name, value in e.headers.items():
                request.setHeader(name, value)
            if isAPI or e.code != 403:
                self.answerJSON(request, e.code, {"errors": e.errors})
            else:
                self.answerHTML(request, e.code, page.errorPage(
                    e.code, "; ".join(e.errors.values())))
        except Exception:
            self.log.failure("admin request {method} {path} failed",
                             method=request.method, path=path)
            self.answerJSON(request, 500, {"errors": {
                "server": "internal error; see the server log"}})

    def _route(self, request, path: str) -> tuple[str, tuple]:
        for pattern, methods in self.ROUTES:
            match = pattern.match(path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                raise HTTPError(405, {"method": "%s is not allowed here" % (
                    request.method.decode("ascii", "replace"),)},
                    {b"Allow": b", ".join(methods)})
            return handler, match.groups()
        raise HTTPError(404, {"path": "no such page or API: %s" % (path,)})

    # -- answering -----------------------------------------------------------

    def answerJSON(self, request, code: int, obj: Any) -> None:
        self.answer(request, code, b"application/json",
                    json.dumps(obj).encode("utf-8"))

    def answerHTML(self, request, code: int, body: bytes) -> None:
        self.answer(request, code, b"text/html; charset=utf-8", body)

    def answer(self, request, code: int, contentType: Optional[bytes],
               body: bytes) -> None:
        if request.finished or request.channel is None:
            return
        request.setResponseCode(code)
        if contentType is not None:
            request.setHeader(b"Content-Type", contentType)
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        if body:
            request.write(body)
        request.finish()

    def redirect(self, request, location: bytes) -> None:
        request.setHeader(b"Location", location)
        self.answer(request, 303, None, b"")

    def body(self, request, limit: int) -> bytes:
        if getattr(request, "bodyTooLarge", False):
            raise HTTPError(413, {"body": "larger than %d bytes" % (limit,)})
        content = request.content
        content.seek(0, 2)
        if content.tell() > limit:
            raise HTTPError(413, {"body": "larger than %d bytes" % (limit,)})
        content.seek(0)
        return content.read()

    # -- pages ---------------------------------------------------------------

    async def getStatic(self, request, identity, name: str) -> None:
        """The page's CSS and script: public, read once from the package
        (a few KiB), names checked by the route (no paths)."""
        body = self._static.get(name)
        if body is None:
            child = STATIC.child(name)
            if not child.isfile():
                raise HTTPError(404, {"path": "no such file: %s" % (name,)})
            body = self._static[name] = child.getContent()
        request.setHeader(b"Cache-Control", b"no-cache")
        self.answer(request, 200, self.STATIC_TYPES[name.rsplit(".", 1)[1]],
                    body)

    async def pageAdmin(self, request, identity: Identity) -> None:
        session = identity.session
        if session is None:
            # No password set and no session yet: a session only to carry
            # the CSRF token.
            session = self.startSession(request, anonymous=True)
        body = await page.adminPage(self.admin, session.csrf,
                                    openMode=self.openMode)
        self.answerHTML(request, 200, body)

    async def pageLogin(self, request, identity, message: str = "",
                        code: int = 200) -> None:
        if self.openMode:
            return self.redirect(request, b"/")
        body = await page.loginPage(message)
        self.answerHTML(request, code, body)

    async def doLogin(self, request, identity) -> None:
        if self.openMode:
            return self.redirect(request, b"/")
        password = (request.args.get(b"password") or [b""])[0].decode(
            "utf-8", "replace")
        if await self.admin.passwords.check(password, _peer(request)):
            self.log.info("admin login from {peer}", peer=_peer(request))
            self.startSession(request)
            return self.redirect(request, b"/")
        await self.pageLogin(request, identity, "Wrong password.", 401)

    async def doLogout(self, request, identity) -> None:
        self.endSession(request)
        self.redirect(request, b"/login" if not self.openMode else b"/")

    # -- settings ------------------------------------------------------------

    def settingsDocument(self) -> dict[str, Any]:
        admin = self.admin
        current = admin.store.current
        return {
            "settings": settingsAsJSON(current),
            "zones": zonesAsJSON(current),
            "schema": schemaAsJSON(),
            "listening": admin.listeningState(),
            "passwordSet": bool(current["Admin.PasswordHash"]),
        }

    async def getSettings(self, request, identity) -> None:
        self.answerJSON(request, 200, self.settingsDocument())

    async def putSettings(self, request, identity) -> None:
        changes = _jsonObject(self.body(request, MAX_SETTINGS_BODY), "body")
        for name in HIDDEN_SETTINGS:
            if name in changes:
                raise HTTPError(400, {name: (
                    "set the password with numberok-passwd, not over the API")})
        await self._saving.acquire()
        try:
            await self.admin.saveSettings(changes)
        except SettingsError as e:
            code = 500 if set(e.errors) == {"file"} else 400
            raise HTTPError(code, e.errors)
        finally:
            self._saving.release()
        self.log.info("settings changed from {peer}: {keys}",
                      peer=_peer(request), keys=", ".join(sorted(changes)))
        self.answerJSON(request, 200, self.settingsDocument())

    # -- connections and events ----------------------------------------------

    async def getConnections(self, request, identity) -> None:
        self.answerJSON(request, 200, self.admin.connectionsDocument())

    async def deleteConnection(self, request, identity, connectionId) -> None:
        if not connectionId.isdigit() or not self.admin.factory.disconnect(
                int(connectionId)):
            raise HTTPError(404, {"id": "no connection %s" % (
                connectionId[:20],)})
        self.log.info("connection {id} disconnected by {peer}",
                      id=connectionId, peer=_peer(request))
        self.answer(request, 204, None, b"")

    async def getRecent(self, request, identity) -> None:
        self.answerJSON(request, 200, self.admin.recentDocument())


    async def getJournal(self, request, identity) -> None:
        """C{GET /api/events?since_id=N&limit=M}: the journal's pages."""
        self._renderJournal(request, self._journal())

    async def getJournalScreenshot(self, request, identity,
                                   eventId: str) -> None:
        event = self._journal().getChild(eventId.encode("ascii"), request)
        self._renderJournal(request,
                            event.getChild(b"screenshot.jpg", request))

    def _journal(self):
        if self.admin.journal is None:
            raise HTTPError(404, {"journal": "the journal is disabled "
                                             "([Journal] Path is empty)"})
        return self.admin.journal

    def _renderJournal(self, request, target) -> None:
        """The journal's resources answer the request themselves."""
        body = target.render(request)
        if body is not NOT_DONE_YET:
            request.write(body)
            request.finish()

    async def getThumbnail(self, request, identity, eventId) -> None:
        thumbnail = (self.admin.recent.thumbnail(int(eventId))
                     if self.admin.recent is not None else None)
        if thumbnail is None:
            raise HTTPError(404, {"id": "no thumbnail for event %s"
                                  % (eventId,)})
        request.setHeader(b"Cache-Control", b"private, max-age=86400")
        self.answer(request, 200, b"image/jpeg", thumbnail)

    # -- HTTP ingest ---------------------------------------------------------

    async def postReads(self, request, identity) -> None:
        admin = self.admin
        if admin.sink is None:
            raise HTTPError(503, {"sink": "this server takes no reads"})
        contentType = request.getHeader("content-type") or ""
        nowMs = int(admin.reactor.seconds() * 1000)
        try:
            body = self.body(request, admin.maxReadBody)
            reads = await deferToThreadPool(admin.reactor, admin.threadpool,
                                            parseBody, contentType, body,
                                            nowMs)
        except ReadFormatError as e:
            admin.httpBadRequests += 1
            self.log.warn("HTTP ingest from {peer}: {field}: {message}",
                          peer=_peer(request), field=e.field,
                          message=e.message)
            code = 415 if e.field == "Content-Type" else 400
            raise HTTPError(code, {e.field: e.message})
        except HTTPError:
            admin.httpBadRequests += 1
            raise
        for read in reads:
            admin.httpReads += 1
            handOver(admin.sink, read, "HTTP ingest")
        self.answerJSON(request, 202, {"accepted": len(reads)})


def _peer(request) -> str:
    return getattr(request.getClientAddress(), "host", "?")


def _ownOrigins(request) -> tuple[str, str]:
    """
    This server's origin as the browser names it.  Either scheme: behind a
    TLS-terminating proxy the page is https while we see http, and what
    keeps other sites out is the host, which they cannot choose.
    """
    host = request.getHeader("host") or ""
    return ("http://" + host, "https://" + host)


def _basicPassword(credentials: str) -> str:
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(401, {"Authorization": "malformed Basic credentials"})
    return decoded.decode("utf-8", "replace").partition(":")[2]


def _jsonObject(body: bytes, field: str) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, {field: "not JSON: %s" % (e,)})
    if not isinstance(value, dict):
        raise HTTPError(400, {field: (
            'expected a JSON object of "Section.Key": value')})
    return value

