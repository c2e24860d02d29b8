"""
One webhook request over Twisted's HTTP client (C{Agent} on a persistent
C{HTTPConnectionPool}), and what its answer means for the delivery: done,
try again later, or refused (docs/integrations.rst, "Retries").

A receiver that closes its connection after each answer without saying so
(C{Connection: close}) races the pool: the next request may go out on the
connection it already closed and die unanswered.  Such a request is sent
again at once, once, on another connection (the dead one never goes back to
the pool) -- the idempotency key makes the repeat harmless -- before it
counts as a failed try.  Twisted's own retry covers only bodiless
idempotent methods, not our C{POST}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import (ConnectError, ConnectionAborted,
                                    DNSLookupError)
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import (Agent, HTTPConnectionPool,
                                RequestTransmissionFailed, ResponseDone,
                                ResponseNeverReceived)
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer, IResponse
from zope.interface import implementer

from numberok.webhooks.body import Body
from numberok.webhooks.config import TargetConfig

KEPT_ANSWER = 200
"""Bytes of an error answer kept for the status (the receiver's reason)."""
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """
    What one request came to.

    @ivar kind: C{ok} (2xx), C{refused} (4xx but 408/429: the event itself
        is bad for the receiver), C{retry} (anything else: 5xx, 408, 429,
        3xx, timeout, no connection).
    @ivar label: for the counters: C{2xx}, C{4xx}, C{5xx}, C{timeout},
        C{connect}, ...
    @ivar error: a line for the status and the log; empty when ok.
    @ivar retryAfter: seconds a 429/503 asked us to wait, if it said.
    """

    kind: str
    label: str
    error: str = ""
    retryAfter: Optional[float] = None


class AnswerReader(Protocol):
    """Reads an answer's body, keeping its start, so the connection goes
    back to the pool."""

    def __init__(self, done: Deferred) -> None:
        self.done = done
        self.kept = b""

    def dataReceived(self, data: bytes) -> None:
        if len(self.kept) < KEPT_ANSWER:
            self.kept += data[:KEPT_ANSWER - len(self.kept)]

    def connectionLost(self, reason: Failure = ResponseDone()) -> None:
        self.done.callback(self.kept)


def makeAgent(reactor: Any, connectTimeout: float = 10.0
              ) -> tuple[Agent, HTTPConnectionPool]:
    """An C{Agent} whose connections stay open between deliveries, and its
    pool (to close at stop)."""
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = 2
    pool.cachedConnectionTimeout = 60
    return Agent(reactor, connectTimeout=connectTimeout, pool=pool), pool


def deliver(agent: Agent, reactor: Any, config: TargetConfig,
            body: Body) -> Deferred:
    """
    Send C{body} once -- twice when the connection died before any answer
    (see the module docstring).

    @return: a Deferred firing with an L{Outcome}; it never fails, and
        cancelling it ends the request.  The whole request (connect, send,
        answer, and the one resend) is cancelled after C{config.timeout}
        seconds (a timer of the injected reactor).
    """
    timedOut: list[bool] = []

    def send() -> Deferred:
        headers = Headers(config.requestHeaders(body.data, body.key))
        return agent.request(config.method.encode("ascii"),
                             config.url.encode("utf-8"), headers,
                             BytesProducer(body.data))

    def resendIfUnanswered(failure: Failure) -> Any:
        if timedOut or not _diedUnanswered(failure):
            return failure
        return send()
    d = send()
    d.addErrback(resendIfUnanswered)
    d.addCallback(_readAnswer)

    def expire() -> None:
        timedOut.append(True)
        d.cancel()
    timer = reactor.callLater(config.timeout, expire)

    def settled(result: Any) -> Any:
        if timer.active():
            timer.cancel()
        return result
    d.addBoth(settled)
    d.addErrback(_failed, config.timeout, timedOut)
    return d


@implementer(IBodyProducer)
class BytesProducer:
    """A request body already in memory, written in one go."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred:
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def _diedUnanswered(failure: Failure) -> bool:
    """Did the connection die before any answer, not by our own
    cancelling (the timeout, a stop)?"""
    if not failure.check(ResponseNeverReceived, RequestTransmissionFailed):
        return False
    return not any(reason.check(CancelledError, ConnectionAborted)
                   for reason in failure.value.reasons)


def _readAnswer(response: IResponse) -> Deferred:
    done: Deferred = Deferred()
    response.deliverBody(AnswerReader(done))
    done.addCallback(_outcome, response)
    return done


def _outcome(kept: bytes, response: IResponse) -> Outcome:
    code = response.code
    label = "%dxx" % (code // 100,)
    if 200 <= code < 300:
        return Outcome("ok", label)
    reason = "HTTP %d %s" % (code, kept.decode("utf-8", "replace").strip())
    retryAfter = None
    if code in (429, 503):
        values = response.headers.getRawHeaders(b"retry-after") or []
        if values and values[0].strip().isdigit():
            retryAfter = min(MAX_RETRY_AFTER, float(values[0].strip()))
    if 400 <= code < 500 and code not in (408, 429):
        return Outcome("refused", label, reason[:KEPT_ANSWER])
    return Outcome("retry", label, reason[:KEPT_ANSWER], retryAfter)


def _failed(failure: Failure, timeout: float, timedOut: list) -> Outcome:
    if timedOut:
        return Outcome("retry", "timeout",
                       "no answer within %g s" % (timeout,))
    if failure.check(ConnectError, DNSLookupError):
        return Outcome("retry", "connect", failure.getErrorMessage())
    return Outcome("retry", "error", "%s: %s" % (
        failure.type.__name__, failure.getErrorMessage()))
