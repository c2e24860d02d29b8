"""
The event server's admission and handshake rules, in memory: connection
limit, allow-list, 1 s subscribe timeout, protocol errors closing only the
offending connection, the registry and disconnect-by-id, backpressure.
"""

from __future__ import annotations

import pytest
from helpers import closedFor, connect, disconnect, makeEvent, refusals
from twisted.internet.testing import MemoryReactorClock
from zope.interface.verify import verifyObject

from numberok import wire
from numberok.events import EventState
from numberok.interfaces import IEventSubscriber
from numberok.listening import ListeningService
from numberok.publisher import EventPublisher
from numberok.server import NumberOkFactory
from numberok.settings import Settings, SettingsStore


def makeFactory(**changes):
    reactor = MemoryReactorClock()
    store = SettingsStore(Settings().withChanges(changes))
    publisher = EventPublisher(store, reactor=reactor)
    return NumberOkFactory(store, publisher, reactor=reactor), reactor


def subscribed(factory, port=50000, host="127.0.0.1"):
    protocol, transport = connect(factory, host, port)
    protocol.dataReceived(wire.subscribePacket())
    return protocol, transport


def test_connection_provides_event_subscriber():
    factory, _ = makeFactory()
    protocol, _ = connect(factory)
    assert verifyObject(IEventSubscriber, protocol)


def test_fifth_connection_is_refused():
    factory, _ = makeFactory()
    admitted = [connect(factory, port=50000 + i)[0] for i in range(4)]
    assert all(admitted)
    assert connect(factory, port=50010) == (None, None)
    assert refusals(factory, "limit") == 1


def test_max_connections_setting_lowers_the_limit_for_new_connections():
    factory, _ = makeFactory(**{"NetServer.MaxConnections": "2"})
    assert connect(factory, port=1)[0] and connect(factory, port=2)[0]
    assert connect(factory, port=3)[0] is None


def test_closed_connection_frees_its_slot():
    factory, _ = makeFactory(**{"NetServer.MaxConnections": "1"})
    protocol, transport = connect(factory)
    assert connect(factory, port=2)[0] is None
    disconnect(protocol, transport)
    assert connect(factory, port=3)[0] is not None


def test_peer_outside_allowed_clients_is_refused_before_the_limit():
    factory, _ = makeFactory(**{"NetServer.AllowedClients": "10.0.0.0/8"})
    assert connect(factory, host="127.0.0.1")[0] is None
    assert connect(factory, host="10.1.2.3")[0] is not None
    assert refusals(factory, "not_allowed") == 1
    assert refusals(factory, "limit") == 0


def test_client_that_does_not_subscribe_within_one_second_is_closed():
    factory, reactor = makeFactory()
    protocol, transport = connect(factory)
    reactor.advance(0.99)
    assert not transport.disconnecting
    reactor.advance(0.02)
    assert transport.disconnecting
    assert closedFor(factory, "handshake_timeout") == 1


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_subscribe_fed_in_pieces_cancels_the_timeout(chunk):
    factory, reactor = makeFactory()
    protocol, transport = connect(factory)
    packet = wire.subscribePacket()
    for i in range(0, len(packet), chunk):
        protocol.dataReceived(packet[i:i + chunk])
    reactor.advance(5)
    assert protocol.subscribed
    assert not transport.disconnecting


def test_subscribed_client_receives_events():
    factory, reactor = makeFactory()
    protocol, transport = subscribed(factory)
    factory.publisher.publish(makeEvent())
    [packet] = wire.PacketDecoder().feed(transport.value())
    assert packet.ptype == wire.PT_EVENT
    assert dict(wire.decodeEventData(packet.data)[0])["State"] == "Detected"


def test_repeated_subscribe_is_ignored():
    factory, _ = makeFactory()
    protocol, transport = subscribed(factory)
    protocol.dataReceived(wire.subscribePacket() * 2)
    assert not transport.disconnecting
    assert closedFor(factory, "protocol") == 0


@pytest.mark.parametrize("packet,reason", [
    (wire.HEADER.pack(wire.PT_SUBSCRIBE, wire.MAX_DATA_LENGTH + 1), "length"),
    (wire.HEADER.pack(0x42, 0), "type"),
    (wire.HEADER.pack(wire.PT_SUBSCRIBE, 4) + b"abcd", "subscribe data"),
])
def test_protocol_error_closes_only_that_connection(packet, reason):
    factory, _ = makeFactory()
    good, goodTransport = subscribed(factory, port=1)
    bad, badTransport = connect(factory, port=2)
    bad.dataReceived(packet[:8])
    assert badTransport.disconnecting, reason
    assert not goodTransport.disconnecting
    assert closedFor(factory, "protocol") == 1


def test_registry_lists_connections_and_disconnect_closes_the_right_one():
    factory, reactor = makeFactory()
    reactor.advance(100)
    first, firstTransport = subscribed(factory, port=1111)
    second, secondTransport = connect(factory, port=2222)
    factory.publisher.publish(makeEvent())
    rows = factory.connections()
    assert [(r.port, r.subscribed, r.eventsSent) for r in rows] == [
        (1111, True, 1), (2222, False, 0)]
    assert rows[0].bytesSent == len(firstTransport.value())
    assert rows[0].connectedSince == 100
    assert factory.disconnect(rows[1].id)
    assert secondTransport.disconnecting
    assert not firstTransport.disconnecting
    assert not factory.disconnect(999)


def test_paused_transport_holds_events_until_resumed():
    factory, reactor = makeFactory()
    protocol, transport = subscribed(factory)
    transport.producer.pauseProducing()
    factory.publisher.publish(makeEvent())
    assert transport.value() == b""
    assert factory.connections()[0].queued == 1
    transport.producer.resumeProducing()
    reactor.advance(0.5)
    assert len(wire.PacketDecoder().feed(transport.value())) == 1


def test_lost_connection_unsubscribes_and_stops_its_timers():
    factory, reactor = makeFactory()
    protocol, transport = subscribed(factory)
    factory.publisher.publish(makeEvent())
    factory.publisher.publish(makeEvent(EventState.LOST))
    disconnect(protocol, transport)
    assert factory.connections() == []
    assert factory.publisher.subscriptions() == []
    assert [c for c in reactor.getDelayedCalls() if c.active()] == []


def test_listening_service_refuses_an_unusable_port_and_keeps_the_old():
    from twisted.internet import reactor
    factory, _ = makeFactory()
    service = ListeningService("tcp:0:interface=127.0.0.1", factory, reactor)
    service.startService()
    try:
        port = service.boundPort
        failures = []
        service.rebind("tcp:%d:interface=127.0.0.1" % (port,)).addErrback(
            failures.append)
        assert failures, "binding a port already in use must fail"
        assert service.boundPort == port
    finally:
        service.stopService()
