"""
L{numberok.listening.ListeningService}: an L{IListeningPort} held by a
service, bound before start, switched off and on, moved.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor, RaisingMemoryReactor

from conftest import LOOPBACK_ANY_PORT, bounded, getReactor
from numberok.listening import CannotListen, ListeningService


def test_the_port_is_bound_before_the_service_starts():
    reactor = MemoryReactor()
    service = ListeningService("tcp:7700", Factory(), reactor=reactor)
    service.privilegedStartService()
    assert IListeningPort.providedBy(service.port)
    assert service.boundPort == 7700
    assert [entry[0] for entry in reactor.tcpServers] == [7700]
    service.startService()
    assert len(reactor.tcpServers) == 1


def test_a_port_that_cannot_be_bound_raises_cannot_listen_with_the_reason():
    reactor = RaisingMemoryReactor(listenException=CannotListenError(
        "127.0.0.1", 7700, OSError(98, "Address already in use")))
    service = ListeningService("tcp:7700", Factory(), reactor=reactor)
    with pytest.raises(CannotListen) as raised:
        service.privilegedStartService()
    assert str(raised.value).startswith("numberok: cannot listen on "
                                        "tcp:7700: Couldn't listen on ")
    assert service.port is None


def test_a_disabled_service_runs_without_listening():
    reactor = MemoryReactor()
    service = ListeningService("tcp:7700", Factory(), reactor=reactor,
                               enabled=False)
    service.privilegedStartService()
    service.startService()
    assert service.running and service.port is None
    assert reactor.tcpServers == []


@pytest_twisted.inlineCallbacks
def test_switching_off_closes_the_port_and_switching_on_opens_one():
    service = ListeningService(LOOPBACK_ANY_PORT, Factory(),
                               reactor=getReactor())
    service.startService()
    first = service.boundPort
    assert first
    yield bounded(service.setEnabled(False), 5)
    assert service.port is None and service.running
    yield bounded(service.setEnabled(True), 5)
    assert service.boundPort
    yield bounded(service.stopService(), 5)
    assert service.port is None


@pytest_twisted.inlineCallbacks
def test_rebinding_listens_on_the_new_endpoint_and_closes_the_old():
    service = ListeningService(LOOPBACK_ANY_PORT, Factory(),
                               reactor=getReactor())
    service.startService()
    old = service.port
    yield bounded(service.rebind("tcp:0:interface=127.0.0.1"), 5)
    assert service.port is not old
    assert service.description == "tcp:0:interface=127.0.0.1"
    assert old.connected is False
    yield bounded(service.stopService(), 5)
