"""
The HTTP side of a gate: one request to a relay board or barrier
controller (Shelly, Tasmota, a PLC's web API), with the URL and body filled
in from the event, through Twisted's C{Agent}, bounded by a timeout on the
injected reactor.  A relay that hangs costs at most the timeout.
"""

from __future__ import annotations

import re
from io import BytesIO
from typing import Any, Mapping, Optional
from urllib.parse import quote

from twisted.internet import defer
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.web.client import (Agent, FileBodyProducer,
                                HTTPConnectionPool, readBody)
from twisted.web.http_headers import Headers
from zope.interface import implementer

from numberok.interfaces import IRelay

class RelayError(Exception):
    """The relay did not do it: C{str()} says why, for the access log."""


PLACEHOLDER = re.compile(r"\{(plate|channel|zone|list|access|runtimeId)\}")


def fill(template: str, values: Mapping[str, Any], forUrl: bool) -> str:
    """
    C{template} with C{{plate}}, C{{channel}}, C{{zone}}, C{{list}},
    C{{access}}, C{{runtimeId}} replaced (URL-quoted in a URL).  Nothing
    else is touched, so a JSON body keeps its own braces.
    """
    def value(match: re.Match) -> str:
        text = str(values.get(match.group(1), ""))
        return quote(text, safe="") if forUrl else text
    return PLACEHOLDER.sub(value, template)


@implementer(IRelay)
class HttpRelay:
    """
    Sends gate requests.  Connections are not kept: a relay gets one
    request per passage and many boards close idle sockets badly.
    """

    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor
        self.agent = Agent(reactor, pool=HTTPConnectionPool(reactor, False))

    async def open(self, method: str, url: str, body: Optional[bytes],
                   timeout: float) -> int:
        """
        Send the request and read the answer.
        @return: the HTTP status.
        @raise RelayError: timeout, refused connection, or any failure.
        """
        producer = FileBodyProducer(BytesIO(body)) if body else None
        headers = Headers({b"User-Agent": [b"numberok-gate"]})
        if body:
            headers.addRawHeader(b"Content-Type", b"text/plain; "
                                                  b"charset=utf-8")
        d = self.agent.request(method.upper().encode("ascii"),
                               url.encode("utf-8"), headers, producer)
        d.addCallback(lambda response: readBody(response).addCallback(
            lambda _: response.code))
        timedOut: list[bool] = []

        def onTimeout(result: Any, seconds: float) -> Any:
            # The cancelled request fails in the Agent's own words
            # (ResponseNeverReceived, CancelledError): remember why.
            timedOut.append(True)
            return result
        d.addTimeout(timeout, self.reactor, onTimeoutCancel=onTimeout)
        try:
            return await d
        except Exception as e:
            if timedOut or isinstance(e, (defer.TimeoutError,
                                          TwistedTimeout)):
                raise RelayError("no answer within %gs" % (timeout,))
            raise RelayError("%s: %s" % (type(e).__name__,
                                         str(e)[:200] or "failed"))
