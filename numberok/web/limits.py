"""
The admin port's defences that act before any resource runs: how many
connections, how long a request may take to arrive, how large its body may
be and which body types a path takes.

Everything here is decided from the connection and the request head, so an
attacker who knows no password costs us a socket, a few KiB and a timer --
never a parse of a large body on the reactor thread:

 - L{AdminSite} caps connections in total and per address (the event and
   ingest ports have their own sockets and must keep theirs whatever the
   admin port suffers; systemd's C{LimitNOFILE} gives room for all of them).
 - L{AdminChannel} closes a connection that has not delivered a complete
   request within L{AdminChannel.requestDeadline} seconds of connecting or
   of its previous answer, however the bytes trickle (Twisted's own timeout
   is an idle timeout, which one byte every few seconds resets).
 - L{AdminRequest} refuses a body over its path's limit (413) or of a type
   the path does not take (415) from the headers, before buffering it, and
   counts what it streams; Twisted's own form parsing is off
   (C{parsePOSTFormSubmission=False}): only small URL-encoded forms (the
   login form) become C{request.args}, and multipart bodies are parsed by
   C{/api/reads} itself, in a thread.

Refusals answer the API's documented error shape C{{"errors": {...}}}, are
counted in C{numberok_admin_refused_total{reason=...}} and logged at most
once per L{RefusalLog.interval} seconds per reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Optional
from urllib.parse import parse_qs

from twisted.internet.interfaces import IReactorTime
from twisted.web.http import HTTPChannel, RESPONSES
from twisted.web.server import Request, Site

from numberok.budgets import ByteBudget
from numberok.endpoints import hostText
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.web.common import Push, jsonBytes
from numberok.web.ingest import MAX_BODY_BYTES
from numberok.web.refusals import RefusalLog
from numberok.web.tokens import TOKEN_QUERY, redactedURI

__all__ = ["AdminChannel", "AdminRequest", "AdminSite",
           "RefusalLog", "errorResponse", "mediaType"]

SMALL_BODY_BYTES = 16 * 1024
"""The body limit of every path not listed in L{AdminSite.bodyLimits} (the
login form, logout, DELETE), and of a large-limit path while a password is
set and the request carries no credentials at all."""
SETTINGS_BODY_BYTES = 64 * 1024
LISTS_BODY_BYTES = 32 * 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPES = ("application/json",)
READS_TYPES = ("application/json", "multipart/form-data")


def mediaType(headers) -> str:
    """The media type of a request's C{Content-Type}, lower case, without
    parameters ("" when there is none)."""
    value = headers.getRawHeaders(b"content-type", [b""])[0]
    return value.split(b";", 1)[0].strip().lower().decode("latin-1")


def errorResponse(code: int, errors: dict[str, str]) -> bytes:
    """A complete C{Connection: close} response with the API's error
    shape, for answers given before (or instead of) a Request's own; a 503
    says C{Retry-After: 1}."""
    body = jsonBytes({"errors": errors})
    return b"".join([
        b"HTTP/1.1 %d %s\r\n" % (code, RESPONSES.get(code, b"Error")),
        b"Retry-After: 1\r\n" if code == 503 else b"",
        b"Content-Type: application/json\r\n",
        b"Content-Length: %d\r\n" % (len(body),),
        b"Cache-Control: no-store\r\n",
        b"X-Content-Type-Options: nosniff\r\n",
        b"Connection: close\r\n\r\n", body])


class AdminRequest(Request):
    """
    A request whose body is limited by its path (L{AdminSite.bodyLimit})
    before a byte of it is stored, and whose URL-encoded form is parsed
    only when small.

    @ivar refused: set when this request was answered from its head (413,
        415); the rest of its body is read and dropped, then the connection
        closes.
    """

    refused = False
    limit = SMALL_BODY_BYTES
    _received = 0
    _declared: Optional[int] = None
    _held = 0

    def __init__(self, channel, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(channel, *args, **kwargs)

    def gotLength(self, length: Optional[int]) -> None:
        channel, site = self.channel, self.channel.site
        path = channel.pendingPath()
        self.limit = site.bodyLimit(path, self.requestHeaders,
                                    channel.pendingQuery())
        if length != 0:
            allowed = site.bodyTypes.get(path)
            kind = mediaType(self.requestHeaders)
            if allowed is not None and kind not in allowed and not (
                    kind.endswith("+json") and "application/json" in allowed):
                return self.refuse(415, "Content-Type", (
                    "%r is not accepted: send %s" % (
                        kind or "(none)", " or ".join(allowed))),
                    "content_type")
        if length is not None and length > self.limit:
            return self.refuse(413, "body", self._tooLarge())
        self._declared = length
        if length is not None and not self._hold(length):
            return
        if length is not None and length > SMALL_BODY_BYTES:
            channel.extendDeadline(length / channel.minUploadRate)
        Request.gotLength(self, length)

    def _hold(self, size: int) -> bool:
        """
        Count a body of C{size} bytes (so far) against the site's
        L{ByteBudget}; small bodies (a settings save, a login) are bounded
        by the connection caps and never wait for it.  Past the budget the
        request is answered 503 at once.
        """
        if size <= SETTINGS_BODY_BYTES or size <= self._held:
            return True
        budget = self.channel.site.bodies
        if not budget.take(size - self._held):
            self.refuse(503, "body", (
                "the server is taking %d bytes of bodies at once; send "
                "again in a second" % (budget.maxBytes,)), "bodies_in_flight")
            return False
        if not self._held:
            # The channel is gone by the time a lost connection tells.
            self.notifyFinish().addBoth(self._giveBack, budget)
        self._held = size
        return True

    def _giveBack(self, result: object, budget: ByteBudget) -> None:
        budget.give(self._held)
        self._held = 0

    def _tooLarge(self) -> str:
        if self.limit == SMALL_BODY_BYTES:
            return ("larger than %d bytes (the limit here, and for any "
                    "request without credentials)" % (self.limit,))
        return "larger than %d bytes" % (self.limit,)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self._received += len(data)
        if self._received > self.limit:
            self.refuse(413, "body", self._tooLarge())
            return
        if self._declared is None and not self._hold(self._received):
            return
        Request.handleContentChunk(self, data)

    def refuse(self, code: int, field: str, message: str,
               reason: str = "body_too_large") -> None:
        self.refused = True
        # allHeadersReceived would answer "100 Continue" after our 413.
        self.requestHeaders.removeHeader(b"expect")
        if self.content is not None:
            self.content.close()
            self.content = None
        self.channel.refuse(code, {field: message}, reason)

    def requestReceived(self, command: bytes, path: bytes,
                        version: bytes) -> None:
        if self.refused:
            self.channel.loseConnection()
            return
        Request.requestReceived(self, command, path, version)

    def process(self) -> None:
        if (self.method == b"POST"
                and mediaType(self.requestHeaders) == FORM_TYPE
                and self._received <= SMALL_BODY_BYTES):
            self.args.update(parse_qs(self.content.read(), 1))
            self.content.seek(0)
        Request.process(self)


class AdminChannel(HTTPChannel):
    """
    An HTTP connection that must deliver each complete request within
    L{requestDeadline} seconds (plus the time a declared body takes at
    L{minUploadRate}), counted from connecting or from the previous answer.
    An idle connection is then closed silently, one caught mid-request is
    answered 408 and closed.
    """

    requestDeadline = 10.0
    minUploadRate = 256 * 1024
    """Bytes per second a large declared body must at least arrive at."""
    abortTimeout = 5
    peerHost = "?"
    _deadline = None
    _started = False

    def connectionMade(self) -> None:
        HTTPChannel.connectionMade(self)
        self._startDeadline()

    def pendingPath(self) -> bytes:
        """The path (without the query) of the request whose head is being
        read; HTTPChannel keeps it until the request is complete."""
        return getattr(self, "_path", b"").split(b"?", 1)[0]

    def pendingQuery(self) -> bytes:
        """The query string of that request (after C{?}), or empty."""
        return getattr(self, "_path", b"").partition(b"?")[2]

    def _startDeadline(self) -> None:
        self._cancelDeadline()
        self._started = False
        self._deadline = self.callLater(self.requestDeadline, self._expired)

    def _cancelDeadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def extendDeadline(self, seconds: float) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.delay(seconds)

    def dataReceived(self, data: bytes) -> None:
        self._started = True
        HTTPChannel.dataReceived(self, data)

    def allContentReceived(self) -> None:
        self._cancelDeadline()
        HTTPChannel.allContentReceived(self)

    def requestDone(self, request) -> None:
        HTTPChannel.requestDone(self, request)
        if self.persistent and not self._handlingRequest:
            self._startDeadline()

    def _expired(self) -> None:
        self._deadline = None
        midRequest = self._started or bool(self.requests)
        if midRequest and not self.site.anyRefused(self):
            self.refuse(408, {"request": (
                "not complete within %g s; send the whole request at "
                "once" % (self.requestDeadline,))}, "slow_request")
        # else: an idle keep-alive connection, or a refused request's body
        # still arriving: closing is the whole answer.
        self.loseConnection()
        self._abortingCall = self.callLater(self.abortTimeout,
                                            self.forceAbortClient)

    def refuse(self, code: int, errors: dict[str, str], reason: str) -> None:
        """Answer C{code} with C{errors} now and end the connection once the
        request's body (dropped) is in, or at the deadline."""
        self.persistent = False
        self.transport.write(errorResponse(code, errors))
        self.site.refusals.refused(reason, self.peerHost,
                                   "; ".join(errors.values()))

    def connectionLost(self, reason) -> None:
        self._cancelDeadline()
        HTTPChannel.connectionLost(self, reason)
        self.site.connectionClosed(self)


class AdminSite(Site):
    """
    The admin site: caps connections, answers malformed or oversized
    requests from their head (see the module docstring) and leaves out of
    the access log the successful reads the page makes every second.

    @ivar isOpen: whether no password is set (then a request without
        credentials may send a large body: there are none to send).
    """

    displayTracebacks = False
    requestFactory = AdminRequest
    protocol = AdminChannel

    maxConnections = 64
    maxPerAddress = 16
    maxBodyBytesInFlight = 32 * 1024 * 1024
    """Body bytes over L{SETTINGS_BODY_BYTES} each that all requests
    together may hold (L{ByteBudget}): two of the largest reads and an
    alarm; more are answered 503 with C{Retry-After}."""
    bodyLimits = {b"/api/reads": MAX_BODY_BYTES,
                  b"/api/settings": SETTINGS_BODY_BYTES}
    """The site's own paths; pushes add theirs (L{acceptPush})."""
    bodyTypes = {b"/api/reads": READS_TYPES, b"/api/settings": JSON_TYPES}
    bodyPrefixLimits = ((b"/api/lists/", LISTS_BODY_BYTES),)
    """Limits of whole subtrees: a list's CSV of 100,000 entries is a few
    MB."""
    tokenPaths: frozenset[bytes] = frozenset()
    """Paths whose callers (cameras) may prove who they are with a
    C{token} in the query instead of credentials in a header."""

    def __init__(self, resource, metrics: Optional[Metrics] = None,
                 isOpen: Callable[[], bool] = lambda: False,
                 reactor: Optional[IReactorTime] = None) -> None:
        # Twisted's HTTPFactory finds the global reactor when none is given.
        super().__init__(resource, reactor=reactor)
        self.metrics = metricsOrPrivate(metrics)
        self.isOpen = isOpen
        self.refusals = RefusalLog(self.reactor, self.metrics)
        self.open = 0
        self.perAddress: Counter[str] = Counter()
        self.bodyLimits = dict(self.bodyLimits)
        self.tokenPaths = frozenset(self.tokenPaths)
        self._bodies: Optional[ByteBudget] = None

    def acceptPush(self, push: Push) -> None:
        """Take bodies up to C{push.maxBody} at C{push.path} (and a query
        token as credentials, when the push says so)."""
        self.bodyLimits[push.path] = push.maxBody
        if push.tokenInQuery:
            self.tokenPaths = self.tokenPaths | {push.path}

    @property
    def bodies(self) -> ByteBudget:
        """The body bytes all requests together may hold at once (four
        8 MiB alarms in parallel peaked at 834 MB): a request takes its
        share from its head (C{Content-Length}) or as a chunked body
        streams, and gives it back when it is answered or its connection
        is lost.  Made at first use, so that L{maxBodyBytesInFlight} may be
        set on the instance."""
        if self._bodies is None:
            self._bodies = ByteBudget(self.maxBodyBytesInFlight)
        return self._bodies

    def buildProtocol(self, addr):
        host = hostText(addr)
        if self.open >= self.maxConnections:
            self.refusals.refused("connections", host, (
                "%d admin connections open" % (self.open,)))
            return None
        if self.perAddress[host] >= self.maxPerAddress:
            self.refusals.refused("connections_per_address", host, (
                "%d admin connections open from this address"
                % (self.perAddress[host],)))
            return None
        channel = Site.buildProtocol(self, addr)
        channel.peerHost = host
        self.open += 1
        self.perAddress[host] += 1
        return channel

    def connectionClosed(self, channel: AdminChannel) -> None:
        self.open -= 1
        self.perAddress[channel.peerHost] -= 1
        if not self.perAddress[channel.peerHost]:
            del self.perAddress[channel.peerHost]

    def anyRefused(self, channel: AdminChannel) -> bool:
        return any(getattr(r, "refused", False) for r in channel.requests)

    def bodyLimit(self, path: bytes, headers, query: bytes = b"") -> int:
        """
        The most body bytes a request to C{path} may send.  A large limit
        needs credentials in the request (checked later) unless no password
        is set: anonymous bodies stay small before authentication.  On a
        L{tokenPaths} path a C{token} in the query counts as credentials.
        """
        limit = self.bodyLimits.get(path, SMALL_BODY_BYTES)
        for prefix, prefixLimit in self.bodyPrefixLimits:
            if path.startswith(prefix):
                limit = prefixLimit
        hasToken = (path in self.tokenPaths
                    and TOKEN_QUERY.match(query) is not None)
        if (limit > SMALL_BODY_BYTES and not self.isOpen() and not hasToken
                and not headers.hasHeader(b"authorization")
                and not headers.hasHeader(b"cookie")):
            return SMALL_BODY_BYTES
        return limit

    def log(self, request) -> None:
        """
        The access log line, without the successful reads, without the
        answers of a throttle (429: counted, and summed up in the log by
        the refusing part's L{RefusalLog}, so a flood of guesses writes a
        few lines, not one each), and with the query and anything past the
        camera path redacted (L{redactedURI}): a camera token must never
        reach a log, however it was sent.
        """
        if (request.method == b"GET" and request.code < 400
                or request.code == 429):
            return
        uri = request.uri
        request.uri = redactedURI(uri)
        try:
            Site.log(self, request)
        finally:
            request.uri = uri
