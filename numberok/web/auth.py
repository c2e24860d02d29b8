"""
Who may use the admin page and API, and the C{numberok-passwd} command.

The model (docs/admin.rst explains it for operators):

 - One password.  The settings file keeps only a salted PBKDF2-SHA256 hash
   of it in C{[Admin] PasswordHash}; C{numberok-passwd CONFIG} sets it.
 - The page logs in with a form and then rides on a session cookie
   (C{HttpOnly}, C{SameSite=Strict}); every state-changing request made
   with that cookie must also carry the session's CSRF token in the
   C{X-CSRF-Token} header, which a page from another site cannot read.
 - Scripts, cameras and recognizers use HTTP Basic.  Those requests are not
   authenticated by a cookie, so a forged cross-site request has nothing
   the browser adds by itself -- except Basic credentials a browser cached
   after a user typed them at a prompt.  Browsers send an C{Origin} header
   with every cross-origin POST/PUT/DELETE, so any state-changing request
   not made with the session cookie is refused when its C{Origin} is not
   this server's own; clients that are not browsers send no C{Origin}.
 - With no password set the server only listens on loopback
   (C{tap.Options} refuses anything else at start, with
   L{numberok.endpoints.isLoopbackEndpoint}), and then the page
   and API are open, with a warning banner, so the quick start works
   without a set-up step.  To stop a web page in the operator's browser
   from using that open door, the same CSRF and C{Origin} rules apply, and
   the C{Host} header must be a loopback name (DNS rebinding).
 - Password checks are admitted by L{LoginThrottle} before any hash is
   computed (one per address, two in all, a growing back-off after each
   failure; the rest get 429 at once), run in their own one-thread pool,
   never in the reactor nor in the pool that parses pushed reads, and a
   wrong password's answer comes late.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger

from numberok import settings as settingsModule
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.settings.keys import ADMIN_PASSWORD_HASH
from numberok.threads import ServiceThreads

HASH_SCHEME = "pbkdf2_sha256"
PBKDF2_ITERATIONS = 600_000
"""OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.1 s here."""
MIN_PASSWORD_LENGTH = 8


def hashPassword(password: str, iterations: int = PBKDF2_ITERATIONS,
                 salt: Optional[bytes] = None) -> str:
    """
    The C{[Admin] PasswordHash} text for C{password}:
    C{pbkdf2_sha256$<iterations>$<salt, base64>$<hash, base64>}.  The
    iteration count travels with the hash so it can be raised later
    without breaking existing files.
    """
    if salt is None:
        salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt,
                                 iterations)
    return "%s$%d$%s$%s" % (HASH_SCHEME, iterations,
                            base64.b64encode(salt).decode("ascii"),
                            base64.b64encode(digest).decode("ascii"))


def checkPassword(password: str, encoded: str) -> bool:
    """
    Whether C{password} matches the hash C{encoded}, in constant time.
    Blocking (PBKDF2): run it in a thread from the reactor.
    """
    try:
        scheme, iterations, salt, digest = encoded.split("$")
        if scheme != HASH_SCHEME:
            return False
        expected = base64.b64decode(digest, validate=True)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"),
                                     base64.b64decode(salt, validate=True),
                                     int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# -- sessions and throttling -----------------------------------------------

@dataclass
class Session:
    """
    A logged-in browser (or, with no password set, any page visitor).

    @ivar csrf: the token every state-changing request of this session must
        echo in C{X-CSRF-Token}; the page reads it from a C{<meta>} tag.
    """

    token: str
    csrf: str
    lastSeen: float
    anonymous: bool = False


@dataclass
class Sessions:
    """
    Live sessions by cookie token, forgotten after C{idleTimeout} seconds
    unused and, past C{maxSessions}, oldest first (anonymous sessions are
    free to make, so their number must be bounded).
    """

    reactor: IReactorTime
    idleTimeout: float = 12 * 3600.0
    maxSessions: int = 200
    _sessions: "OrderedDict[str, Session]" = field(default_factory=OrderedDict)

    def create(self, anonymous: bool = False) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                          self.reactor.seconds(), anonymous)
        self._sessions[session.token] = session
        while len(self._sessions) > self.maxSessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, token: Optional[str]) -> Optional[Session]:
        """The live session for C{token}, touched; L{None} when unknown or
        expired."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self.reactor.seconds()
        if now - session.lastSeen > self.idleTimeout:
            del self._sessions[token]
            return None
        session.lastSeen = now
        self._sessions.move_to_end(token)
        return session

    def end(self, token: str) -> None:
        self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)


class Throttled(Exception):
    """
    A password check refused before any hash was computed: the address
    already has one in flight or is still in its back-off, or the checks
    of every address together are at their cap.  Answer 429 with
    C{Retry-After: retryAfter}.
    """

    def __init__(self, retryAfter: int, message: str) -> None:
        super().__init__(message)
        self.retryAfter = retryAfter
        self.message = message


class LoginThrottle:
    """
    Decides, before any PBKDF2 work, whether a password may be checked now.

    Per address: one check at a time, and after the n-th failure in a row
    nothing for C{baseDelay * 2**(n-1)} seconds (at most C{maxDelay}).  In
    total: at most C{maxInFlight} checks at once, the size of the password
    pool, so guesses from many addresses queue nowhere.  Whatever is not
    admitted is refused at once (L{Throttled}): parallel guesses cost a
    dictionary lookup each, not a hash.  A success clears the address.
    Time comes from the reactor, nothing sleeps.
    """

    baseDelay = 1.0
    maxDelay = 30.0
    maxAddresses = 10000
    maxInFlight = 2

    def __init__(self, reactor: IReactorTime,
                 baseDelay: Optional[float] = None) -> None:
        self.reactor = reactor
        if baseDelay is not None:
            self.baseDelay = baseDelay
        self._failures: "OrderedDict[str, tuple[int, float]]" = OrderedDict()
        self._inFlight: set[str] = set()

    def delayFor(self, host: str) -> float:
        """Seconds C{host} must still wait before its next attempt."""
        entry = self._failures.get(host)
        if entry is None:
            return 0.0
        return max(0.0, entry[1] - self.reactor.seconds())

    def refuseWhileWaiting(self, host: str) -> None:
        """
        @raise Throttled: while C{host} waits out its back-off after wrong
            passwords or camera tokens (both count as its failures).
        """
        delay = self.delayFor(host)
        if delay:
            raise Throttled(math.ceil(delay), (
                "too many wrong passwords or tokens from this address; try "
                "again in %d s" % (math.ceil(delay),)))

    def admit(self, host: str) -> None:
        """
        Take a check slot for C{host}; give it back with L{release}.

        @raise Throttled: when C{host} may not try now.
        """
        self.refuseWhileWaiting(host)
        if host in self._inFlight:
            raise Throttled(1, "a password check from this address is "
                               "already running; one at a time")
        if len(self._inFlight) >= self.maxInFlight:
            raise Throttled(1, "too many password checks at once; try "
                               "again in a second")
        self._inFlight.add(host)

    def release(self, host: str) -> None:
        self._inFlight.discard(host)

    def failed(self, host: str) -> float:
        """Count a failure.  @return: the delay now imposed on C{host}."""
        count = self._failures.pop(host, (0, 0.0))[0] + 1
        delay = min(self.maxDelay, self.baseDelay * 2 ** (count - 1))
        self._failures[host] = (count, self.reactor.seconds() + delay)
        while len(self._failures) > self.maxAddresses:
            self._failures.popitem(last=False)
        return delay

    def succeeded(self, host: str) -> None:
        self._failures.pop(host, None)


class PasswordChecker:
    """
    Checks passwords against the current C{[Admin] PasswordHash} in its own
    small pool (C{threads}), behind a L{LoginThrottle}: the pool that
    parses pushed reads never waits for a guess.

    HTTP Basic sends the password with every request; running PBKDF2 each
    time would cap a camera pushing reads at a few per second.  So a
    password that checked out is remembered as an HMAC under a key that
    lives only in this process's memory (and that covers the hash too, so a
    new password invalidates it).
    """

    log = Logger()
    cacheSize = 16

    def __init__(self, store: settingsModule.SettingsStore,
                 reactor: IReactorTime,
                 threads: ServiceThreads, throttle: LoginThrottle,
                 metrics: Optional[Metrics] = None) -> None:
        self.store = store
        self.reactor = reactor
        self.threads = threads
        self.throttle = throttle
        self.metrics = metricsOrPrivate(metrics)
        self._throttled = self.metrics.adminRefused.labels(
            reason="login_throttled")
        self._key = os.urandom(32)
        self._good: "OrderedDict[bytes, None]" = OrderedDict()

    def _mark(self, password: str, encoded: str) -> bytes:
        return hmac.new(self._key, ("%s\0%s" % (encoded, password)).encode(
            "utf-8"), hashlib.sha256).digest()

    @defer.inlineCallbacks
    def check(self, password: str, host: str):
        """
        @return: a Deferred firing with C{True} or C{False}; a wrong
            password's C{False} comes only after the throttle's delay.  It
            fails with L{Throttled}, at once, when the check may not run now.
        """
        encoded = self.store.current[ADMIN_PASSWORD_HASH]
        mark = self._mark(password, encoded)
        if mark in self._good:
            self._good.move_to_end(mark)
            self.throttle.succeeded(host)
            return True
        try:
            self.throttle.admit(host)
        except Throttled:
            self._throttled.inc()
            raise
        try:
            self.metrics.passwordChecks.inc()
            ok = yield self.threads.run(checkPassword, password, encoded)
        finally:
            self.throttle.release(host)
        if ok:
            self.throttle.succeeded(host)
            self._good[mark] = None
            while len(self._good) > self.cacheSize:
                self._good.popitem(last=False)
            return True
        self.metrics.loginFailures.inc()
        delay = self.throttle.failed(host)
        self.log.warn("wrong admin password from {host}; next attempt in "
                      "{delay} s", host=host, delay=delay)
        yield deferLater(self.reactor, delay, lambda: None)
        return False
