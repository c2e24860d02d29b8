"""
C{POST /api/cameras/hikvision}: the alarms Hikvision ANPR cameras push
(ISAPI "HTTP listening"), parsed by L{numberok.sources.hikvision}.

Who may push: HTTP Basic with the admin password, as the JSON API, or
C{?token=T} -- exactly that query, nothing else in it -- with C{T} equal to
C{[Cameras] Token} (many cameras cannot send Basic credentials); another
query is a 400 on C{token}, wrong credentials a 401.  A wrong token counts
as a failure of the address in the admin site's L{LoginThrottle}, like a
wrong password: the address then waits its growing back-off (429 with
C{Retry-After}) before any credential of it is checked again.  Refusals
are counted and logged at most once per reason every few seconds
(L{RefusalLog}); the token is in no log line (the admin site redacts the
access log: L{numberok.web.tokens.redactedURI}).  Errors are answered as
C{{"errors": {field: message}}}, as the rest of the API does.

Bodies are bounded before they are stored: L{BodyLimitRequest} answers 413
as soon as C{Content-Length} (or the bytes streamed so far) passes the
limit, without reading the rest; the resource checks again, so it is safe
behind a site whose own limit is larger.  Parsing (XML, JPEG headers) runs
in the cameras' own threads, never on the reactor thread.

The resource is standalone and declares its own path
(L{HikvisionResource.path}); L{CamerasService.push} is what the admin site
mounts there, outside the page's session and CSRF rules (a camera has
neither), with the body limit and the query token it allows.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.web.server import Request

from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.settings.keys import ADMIN_PASSWORD_HASH, CAMERAS_TOKEN
from numberok.sources import handOver
from numberok.sources.formats import ReadFormatError
from numberok.sources.hikvision import (ANPR, HEARTBEAT, KINDS,
                                       MAX_ALARM_BYTES, Alarm,
                                       parseAlarm)
from numberok.threads import ServiceThreads
from numberok.web import common
from numberok.web.auth import LoginThrottle, Throttled
from numberok.web.common import Endpoint, HTTPError, Push, answerJSON
from numberok.web.gate import Identity
from numberok.web.limits import errorResponse
from numberok.web.refusals import RefusalLog
from numberok.web.tokens import (CAMERA_PATH, TOKEN_FORM, BadTokenForm,
                                 tokenOf)


class BodyLimitRequest(Request):
    """
    A request that refuses a body over L{maxBody} bytes before storing it:
    from its C{Content-Length} when the headers end, or when a chunked body
    streams past the limit.  The client gets a 413 with a JSON error and
    the connection is closed; the rest of the body is never read.

    The admin site's request class can take this behaviour by inheriting
    from it with its own C{maxBody}.
    """

    maxBody = MAX_ALARM_BYTES
    bodyTooLarge = False
    _received = 0

    def gotLength(self, length: Optional[int]) -> None:
        if length is not None and length > self.maxBody:
            # The channel would answer "Expect: 100-continue" right after
            # this; a refused body must not be invited.
            self.requestHeaders.removeHeader(b"expect")
            self._refuse()
        Request.gotLength(self, length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.bodyTooLarge:
            return
        self._received += len(data)
        if self._received > self.maxBody:
            self._refuse()
            return
        Request.handleContentChunk(self, data)

    def process(self) -> None:
        # The whole (short) body may have been in the same read as the
        # headers; a refused request is never rendered.
        if not self.bodyTooLarge:
            Request.process(self)

    def _refuse(self) -> None:
        if self.bodyTooLarge:
            return
        self.bodyTooLarge = True
        channel = self.channel
        if channel is None or channel.transport is None:
            return
        channel.transport.write(errorResponse(413, {
            "body": "larger than %d bytes" % (self.maxBody,)}))
        channel.loseConnection()


class HikvisionResource(Endpoint):
    """
    Takes Hikvision ANPR alarms and hands their reads to the sink: an
    L{Endpoint} like every answering resource of the admin site, without
    the gate (a camera has no session; L{_answer} checks its token or
    Basic credentials).

    @cvar path: where cameras push (L{numberok.web.tokens.CAMERA_PATH},
        the one place it is spelled; the access log's redaction reads it
        there too).
    @ivar maxBody: the largest body taken (L{MAX_ALARM_BYTES}).
    """

    isLeaf = True
    path = CAMERA_PATH
    maxBody = MAX_ALARM_BYTES

    def __init__(self, store, passwords, sink,
                 runInThread: Callable[..., Deferred],
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None) -> None:
        """
        @param store: the L{numberok.settings.SettingsStore}; read for
            C{[Cameras] Token} and whether an admin password is set.
        @param passwords: the admin site's
            L{numberok.web.auth.PasswordChecker} (C{check(password, host)}).
        @param sink: an L{numberok.interfaces.IPlateReadSink}.
        @param runInThread: C{f(callable, *args) -> Deferred} running the
            parse off the reactor thread.
        """
        super().__init__(None)
        self.store = store
        self.passwords = passwords
        self.sink = sink
        self.runInThread = runInThread
        self.metrics = metricsOrPrivate(metrics)
        self._reactor = reactor
        self._alarms = {kind: self.metrics.cameraAlarms.labels(kind=kind)
                        for kind in KINDS}
        self._throttle: Optional[LoginThrottle] = getattr(
            passwords, "throttle", None)
        self._refusals: Optional[RefusalLog] = None

    reactor = LazyReactor()
    queryParameters = None
    """The query is checked by L{tokenOf}: C{token=T} exactly, or none."""

    @property
    def throttle(self) -> LoginThrottle:
        """The admin site's throttle of failed credentials (the password
        checker's), or one of our own without it."""
        if self._throttle is None:
            self._throttle = LoginThrottle(self.reactor)
        return self._throttle

    @property
    def refusals(self) -> RefusalLog:
        if self._refusals is None:
            self._refusals = RefusalLog(self.reactor, self.metrics,
                                        self.metrics.cameraRefused,
                                        "camera push")
        return self._refusals

    def _handler(self, request):
        try:
            return super()._handler(request)
        except HTTPError as e:
            self.refusals.refused("method", common.peer(request),
                                  "method %r" % (request.method,))
            raise HTTPError(e.code, {"method": "send the alarm with POST"},
                            e.headers)

    async def admit(self, request) -> Identity:
        """Every caller reaches L{POST}, which checks its credentials
        after the body's size (L{_answer})."""
        return Identity("camera")

    async def POST(self, request, identity: Identity) -> None:
        if any(request.postpath):
            return self._refuse(request, 404, "path", {
                "path": "nothing below this path; " + TOKEN_FORM})
        try:
            token = tokenOf(request)
        except BadTokenForm:
            return self._refuse(request, 400, "token_form",
                                {"token": TOKEN_FORM})
        await self._answer(request, token)

    async def _answer(self, request, token: Optional[bytes]) -> None:
        problem = self._tooLarge(request)
        if problem:
            return self._refuse(request, 413, "too_large", {"body": problem})
        peer = common.peer(request)
        try:
            refusal = await self._authenticate(request, token, peer)
        except Throttled as e:
            request.setHeader(b"Retry-After", b"%d" % (e.retryAfter,))
            return self._refuse(request, 429, "throttled", {
                "token" if token is not None else "Authorization": e.message})
        if refusal is not None:
            request.setHeader(b"WWW-Authenticate",
                              b'Basic realm="numberok cameras", '
                              b'charset="UTF-8"')
            return self._refuse(request, 401, "unauthorized", refusal)
        request.content.seek(0)
        body = request.content.read()
        contentType = request.getHeader("content-type") or ""
        nowMs = int(self.reactor.seconds() * 1000)
        try:
            alarm = await self.runInThread(parseAlarm, contentType, body,
                                           nowMs)
        except ReadFormatError as e:
            if e.field == "Content-Type":
                return self._refuse(request, 415, "unsupported_type",
                                    {e.field: e.message})
            return self._refuse(request, 400, "invalid", {e.field: e.message})
        self._take(alarm, peer)
        answerJSON(request, 200, {"kind": alarm.kind})

    def _tooLarge(self, request) -> Optional[str]:
        length = request.getHeader("content-length") or ""
        declared = int(length) if length.strip().isdigit() else 0
        request.content.seek(0, 2)
        if (getattr(request, "bodyTooLarge", False) or declared > self.maxBody
                or request.content.tell() > self.maxBody):
            return "larger than %d bytes" % (self.maxBody,)
        return None

    async def _authenticate(self, request, token: Optional[bytes],
                            peer: str) -> Optional[dict[str, str]]:
        """
        L{None} when let in, else the errors to answer 401 with.

        @raise Throttled: the address is in its back-off after failures.
        """
        if token is not None:
            self.throttle.refuseWhileWaiting(peer)
            expected = self.store.current[CAMERAS_TOKEN]
            if expected and hmac.compare_digest(
                    token, expected.encode("utf-8")):
                self.throttle.succeeded(peer)
                return None
            self.throttle.failed(peer)
            return {"token": "wrong token" if expected else
                    "no [Cameras] Token is set on this server"}
        scheme, _, credentials = (request.getHeader("authorization")
                                  or "").partition(" ")
        if scheme.lower() != "basic":
            return {"Authorization": "send ?token= ([Cameras] Token) or HTTP "
                    "Basic with the admin password"}
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True)
        except (binascii.Error, ValueError):
            return {"Authorization": "malformed Basic credentials"}
        if not self.store.current[ADMIN_PASSWORD_HASH]:
            return {"Authorization": "no admin password is set; use "
                    "?token= with [Cameras] Token"}
        password = decoded.decode("utf-8", "replace").partition(":")[2]
        if not (await self.passwords.check(password, peer)):
            return {"Authorization": "wrong password"}
        return None

    def _take(self, alarm: Alarm, peer: str) -> None:
        self._alarms[alarm.kind].inc()
        if alarm.pictureProblem is not None:
            self.metrics.cameraPicturesDropped.inc()
            self.log.warn("camera {peer}: picture left out: {problem}",
                          peer=peer, problem=alarm.pictureProblem)
        if alarm.kind == ANPR:
            handOver(self.sink, alarm.read, "Hikvision camera " + peer)
        elif alarm.kind != HEARTBEAT:
            self.log.debug("camera {peer}: {eventType} alarm without a read",
                           peer=peer, eventType=alarm.eventType)

    def _refuse(self, request, code: int, reason: str,
                errors: dict[str, str]) -> None:
        self.refusals.refused(reason, common.peer(request), "; ".join(
            "%s: %s" % item for item in errors.items()))
        if not request.finished and request.channel is not None:
            answerJSON(request, code, {"errors": errors})


class CamerasService(Service):
    """
    Owns the threads that parse camera pushes and the resource the admin
    site routes L{HikvisionResource.path} to (L{resource}; L{push} is its
    declaration for the site).
    """

    name = "cameras"

    def __init__(self, store, passwords, sink,
                 metrics: Optional[Metrics] = None,
                 reactor: Optional[IReactorTime] = None,
                 threads: int = 2,
                 runInThread: Optional[Callable[..., Deferred]] = None
                 ) -> None:
        """
        @param runInThread: replaces the service's own threads (tests pass
            a synchronous runner).
        """
        self.threads = ServiceThreads("numberok-cameras", threads,
                                      reactor=reactor)
        self.resource = HikvisionResource(
            store, passwords, sink, runInThread or self.threads.run,
            metrics, reactor)
        self.push = Push(self.resource.path, self.resource,
                         self.resource.maxBody, tokenInQuery=True)

    def startService(self) -> None:
        super().startService()
        self.threads.start()

    def stopService(self) -> Deferred:
        super().stopService()
        return self.threads.stop()

