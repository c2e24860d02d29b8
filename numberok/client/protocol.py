"""
The NumberOk event client protocol, for integrators: subscribe to a server
and receive each event's pairs and screenshot (docs/client.rst).

Only L{numberok.wire} and Twisted are used here, never the server's code:
the client is a peer of any NumberOk-compatible server, ours or the
original, and must keep working against both.
"""

from __future__ import annotations

from typing import Iterable

from twisted.internet.protocol import Protocol
from twisted.logger import Logger

from numberok import wire

DEFAULT_PORT = 7700

Pairs = list[tuple[str, str]]

def eventFields(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """
    A dict view of an event's pairs.  The protocol allows repeated keys; the
    last one wins here, which is what a C{Key=Value} reader of the original
    protocol does too.
    """
    return dict(pairs)


class NumberOkClientProtocol(Protocol):
    """
    Subscribe to a NumberOk server and hand each event to L{eventReceived}.

    Subclass it and override L{eventReceived}; L{protocolError} and
    L{malformedEventReceived} are hooks too.  A framing error (a packet type
    other than Event, a length over 1 MiB) leaves no way to find the next
    packet, so it closes the connection.  An Event packet whose text part is
    malformed is framed correctly, so it is skipped and counted and the
    connection goes on: one bad event should not cost an integrator the
    ones after it.

    @ivar eventCount: events delivered to L{eventReceived}.
    @ivar malformedCount: Event packets skipped because their data did not
        decode.
    @ivar bytesReceived: bytes received on this connection.
    @ivar error: the L{wire.WireError} that closed the connection, if one did.
    """

    log = Logger()

    eventCount = 0
    malformedCount = 0
    bytesReceived = 0
    error: wire.WireError | None = None

    def connectionMade(self) -> None:
        self._decoder = wire.PacketDecoder(allowedTypes=[wire.PT_EVENT])
        self.transport.write(wire.subscribePacket())

    def dataReceived(self, data: bytes) -> None:
        if self.error is not None:
            # The connection is closing; what still arrives has no framing.
            return
        self.bytesReceived += len(data)
        try:
            packets = self._decoder.feed(data)
        except wire.WireError as e:
            self.error = e
            self.protocolError(e)
            return
        for packet in packets:
            try:
                pairs, jpeg = wire.decodeEventData(packet.data)
            except wire.WireError as e:
                self.malformedCount += 1
                self.malformedEventReceived(packet.data, e)
                continue
            self.eventCount += 1
            try:
                self.eventReceived(pairs, jpeg)
            except Exception:
                self.log.failure("eventReceived failed for event {n}",
                                 n=self.eventCount)

    def eventReceived(self, pairs: Pairs, jpeg: bytes) -> None:
        """
        One event arrived.  Override this.

        @param pairs: the event's C{(key, value)} pairs in the order sent;
            L{eventFields} gives a dict view.
        @param jpeg: the attached screenshot, C{b""} when there is none.
        """

    def malformedEventReceived(self, data: bytes,
                               error: wire.WireError) -> None:
        """
        An Event packet whose data is not C{Key=Value} text was skipped.

        @param data: the packet's data bytes.
        @param error: why it did not decode.
        """
        self.log.warn("skipped malformed event from {peer}: {error}",
                      peer=self.transport.getPeer(), error=str(error))

    def protocolError(self, error: wire.WireError) -> None:
        """
        The server sent bytes that are not NumberOk packets: log and close.
        """
        self.log.error("protocol error from {peer}: {error}; closing",
                       peer=self.transport.getPeer(), error=str(error))
        self.transport.loseConnection()
