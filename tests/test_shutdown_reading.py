"""
Shutdown and a client that reads, but slowly (a loaded machine): it gets
every event the server had for it and a clean close, never the abort meant
for clients that do not read (issue 21, "small ones").
"""

from __future__ import annotations

import pytest_twisted

from conftest import bounded, connectTo as connect, waitFor
from helpers import Silent, closedFor, makeEvent


@pytest_twisted.inlineCallbacks
def test_a_slow_reader_whose_buffer_was_full_is_closed_not_aborted(server):
    from numberok import wire
    from numberok.events import EventState
    s = server()
    s.root.shutdownGrace = 10.0
    # Not reading yet: the server's buffer for it fills and the connection
    # is paused as a producer, as for any client that falls behind.
    reader = Silent(subscribe=True, stall=True)
    yield connect(s.port, reader)
    yield waitFor(lambda: s.publisher.subscriptions())
    [protocol] = s.factory._connections.values()
    for i in range(3000):
        s.publisher.publish(makeEvent(EventState.LOST, runtimeId=i,
                                      plate="A%07d" % i))
    s.publisher.flushAll()
    yield waitFor(lambda: protocol._paused)
    subscription = protocol.subscription

    stopped = s.stop()
    # The client reads again while the server stops.
    received = bytearray()
    reader.dataReceived = received.extend
    reader.transport.resumeProducing()
    yield bounded(stopped, 15)
    yield bounded(reader.closed, 5)

    assert closedFor(s.factory, "shutdown_aborted") == 0
    packets = wire.PacketDecoder(allowedTypes=[wire.PT_EVENT]).feed(
        bytes(received))
    assert len(packets) == subscription.eventsSent > 0
