"""
Shared test helpers: in-memory connections to our real protocols, and an
event factory.  No test double here stands in for numberok code; the peers
and transports are Twisted's own testing transports.
"""

from __future__ import annotations

import io

from PIL import Image
from twisted.internet.address import IPv4Address
from twisted.internet.defer import maybeDeferred
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from numberok.events import EventState, PlateEvent
from numberok.interfaces import IPlateReadSink


def connect(factory, host: str = "127.0.0.1", port: int = 50000):
    """
    Connect a protocol from C{factory} to an in-memory transport, as a TCP
    port would.  @return: C{(protocol, transport)}, or C{(None, None)} when
    the factory refuses the peer.
    """
    address = IPv4Address("TCP", host, port)
    protocol = factory.buildProtocol(address)
    if protocol is None:
        return None, None
    transport = StringTransport(peerAddress=address)
    protocol.makeConnection(transport)
    return protocol, transport


def disconnect(protocol, transport) -> None:
    """Finish a close the protocol asked its transport for."""
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure
    protocol.connectionLost(Failure(ConnectionDone()))


def makeEvent(state: EventState = EventState.DETECTED, runtimeId: int = 1,
              plate: str = "A123BC77", frame: bytes | None = None,
              **kwargs) -> PlateEvent:
    return PlateEvent(state=state, runtimeId=runtimeId, channel=0, zone=0,
                      plate=plate, rawPlate=plate,
                      frameTimeMs=1764000000000, frame=frame, **kwargs)


@implementer(IPlateReadSink)
class ListSink:
    """The analytics' place in a source's test: keeps every read."""

    def __init__(self):
        self.reads = []

    def addRead(self, read):
        self.reads.append(read)


def synchronous(f, *args):
    """A C{runInThread} for sources under test: runs the work at once."""
    return maybeDeferred(f, *args)


def jpegBytes(colour=(0, 120, 0), size=(8, 8)) -> bytes:
    """A small valid JPEG of one colour."""
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


def refusals(factory, reason: str) -> float:
    """How many NumberOk connections C{factory} refused for C{reason}."""
    return factory.metrics.value("numberok_connections_refused_total",
                                 reason=reason)


def closedFor(factory, reason: str) -> float:
    """How many NumberOk connections C{factory} closed for C{reason}
    (C{protocol}, C{handshake_timeout}, C{shutdown_aborted})."""
    return factory.metrics.value("numberok_protocol_errors_total",
                                 reason=reason)
