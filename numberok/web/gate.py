"""
The gate every admin request passes before an endpoint answers it: the
host check of open mode, who is asking (session cookie, HTTP Basic, or
nobody with no password set) and the CSRF rules.  The model is described in
L{numberok.web.auth} and docs/admin.rst; this module applies it to requests.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import TYPE_CHECKING, Optional

from numberok.endpoints import isLoopbackHost
from numberok.settings.keys import ADMIN_PASSWORD_HASH
from numberok.web import auth
from numberok.web.common import STATE_CHANGING, HTTPError, peer, redirect

if TYPE_CHECKING:
    from numberok.web.common import Endpoint

PAGE_HEADER = b"x-numberok-page"


class Identity:
    """
    How a request was let in: C{"session"} (cookie; needs the CSRF token
    to change anything), C{"basic"} (HTTP Basic), C{"open"} (no password
    is set) or C{"public"} (an endpoint that needs no login).
    """

    def __init__(self, kind: str,
                 session: Optional[auth.Session] = None) -> None:
        self.kind = kind
        self.session = session


class Gate:
    """
    @param store: the settings store (the password hash decides open mode).
    @param sessions: the L{auth.Sessions} of the page's logins.
    @param passwords: the L{auth.PasswordChecker} (throttled, threaded).
    """

    def __init__(self, store, sessions: auth.Sessions,
                 passwords: auth.PasswordChecker) -> None:
        self.store = store
        self.sessions = sessions
        self.passwords = passwords

    @property
    def openMode(self) -> bool:
        return not self.store.current[ADMIN_PASSWORD_HASH]

    async def admit(self, request, endpoint: "Endpoint"
                    ) -> Optional[Identity]:
        """
        Let C{request} through to C{endpoint}, or raise L{HTTPError}.
        @return: who is asking, or L{None} when the request was answered
            here (a page without login is sent to C{/login}).
        """
        self.checkHost(request)
        if endpoint.public:
            identity = Identity("public")
        else:
            identity = await self.identify(request)
            if identity is None:
                if endpoint.api:
                    raise HTTPError(401, {"Authorization": (
                        "log in: HTTP Basic with the admin password")},
                        self.challenge(request))
                redirect(request, b"/login")
                return None
        if request.method in STATE_CHANGING:
            self.checkCSRF(request, identity)
        return identity

    # -- sessions ------------------------------------------------------------

    def cookieName(self, request) -> bytes:
        # Cookies are not per port: two servers on one host must not share.
        return b"numberok_session_%d" % (request.getHost().port,)

    def session(self, request) -> Optional[auth.Session]:
        token = request.getCookie(self.cookieName(request))
        session = self.sessions.get(
            token.decode("ascii", "replace") if token else None)
        if session is not None and session.anonymous and not self.openMode:
            return None
        return session

    def startSession(self, request, anonymous: bool = False) -> auth.Session:
        session = self.sessions.create(anonymous=anonymous)
        request.addCookie(self.cookieName(request), session.token, path="/",
                          httpOnly=True, sameSite="strict",
                          secure=request.isSecure() or None)
        return session

    def endSession(self, request) -> None:
        token = request.getCookie(self.cookieName(request))
        if token:
            self.sessions.end(token.decode("ascii", "replace"))
        request.addCookie(self.cookieName(request), "", path="/",
                          httpOnly=True, sameSite="strict", max_age="0")

    # -- the checks ----------------------------------------------------------

    def checkHost(self, request) -> None:
        """With no password, only loopback host names (DNS rebinding)."""
        if not self.openMode:
            return
        host = (request.getHeader("host") or "").rsplit(":", 1)[0]
        if not host.startswith("[") and host.count(":") > 1:
            host = request.getHeader("host") or ""
        if not isLoopbackHost(host):
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
            try:
                ok = await self.passwords.check(password, peer(request))
            except auth.Throttled as e:
                raise HTTPError(429, {"Authorization": e.message},
                                {b"Retry-After": b"%d" % (e.retryAfter,)})
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
