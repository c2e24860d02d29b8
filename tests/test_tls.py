"""
TLS on the event port: the strports C{ssl:} endpoint needs nothing
of ours, and C{numberok-client --tls --ca FILE} talks to it.  The
certificates come from the session's C{certificates} fixture (conftest).
"""

from __future__ import annotations

import io

import pytest
import pytest_twisted
from twisted.internet.defer import inlineCallbacks

from helpers import makeEvent
from numberok import client
from numberok.events import EventState


def _hasTLS() -> bool:
    try:
        import OpenSSL  # noqa: F401
        import service_identity  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _hasTLS(), reason="needs pyOpenSSL and service_identity (Twisted[tls])")


@inlineCallbacks
def untilSubscribed(publisher):
    from twisted.internet import reactor, task
    for _ in range(250):
        if publisher.subscriptions():
            return
        yield task.deferLater(reactor, 0.02, lambda: None)
    raise AssertionError("client never subscribed")


def runClient(reactor, port, *argv):
    out, err = io.StringIO(), io.StringIO()
    options = client.Options()
    options.parseOptions(list(argv) + ["127.0.0.1", str(port)])
    d = client.run(reactor, options, out, err)
    d.addTimeout(10, reactor)
    d.addCallback(lambda code: (code, out.getvalue(), err.getvalue()))
    return d


def startTLSServer(reactor, certificates):
    """The real server with its event port on an ssl: strports endpoint."""
    from numberok.build import Endpoints, buildServer
    from numberok.settings import Settings
    server = buildServer(Settings(), Endpoints(
        events=certificates.sslEndpoint(), ingest=None, admin=None),
        reactor=reactor)
    server.privilegedStartService()
    server.startService()
    return server, server.publisher


@pytest_twisted.inlineCallbacks
def test_client_with_tls_and_ca_receives_events_from_an_ssl_port(certificates):
    from twisted.internet import reactor
    service, publisher = startTLSServer(reactor, certificates)
    try:
        d = runClient(reactor, service.eventPort.boundPort, "--tls", "--ca", str(certificates.caPath),
                      "--count", "2")
        yield untilSubscribed(publisher)
        publisher.publish(makeEvent(EventState.DETECTED, runtimeId=7))
        publisher.publish(makeEvent(EventState.LOST, runtimeId=7))
        code, out, err = yield d
    finally:
        yield service.stopService()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 2 and "Lost" in lines[1] and "id=7" in lines[1]


@pytest_twisted.inlineCallbacks
def test_client_that_does_not_trust_the_certificate_is_refused(certificates):
    from twisted.internet import reactor
    service, publisher = startTLSServer(reactor, certificates)
    try:
        code, out, err = yield runClient(reactor, service.eventPort.boundPort,
                                         "--ca", str(certificates.otherCaPath))
    finally:
        yield service.stopService()
    assert code == client.EXIT_CONNECT and out == ""
    assert "certificate verify failed" in err
    assert publisher.subscriptions() == []


@pytest_twisted.inlineCallbacks
def test_plain_client_on_the_tls_port_is_closed_and_the_server_goes_on(
        certificates):
    from twisted.internet import reactor
    service, publisher = startTLSServer(reactor, certificates)
    try:
        # A NumberOk subscribe where a TLS ClientHello belongs.
        code, _, _ = yield runClient(reactor, service.eventPort.boundPort, "--count", "1")
        assert code != client.EXIT_OK
        assert publisher.subscriptions() == []
        d = runClient(reactor, service.eventPort.boundPort, "--ca", str(certificates.caPath),
                      "--count", "1")
        yield untilSubscribed(publisher)
        publisher.publish(makeEvent(EventState.LOST, runtimeId=8))
        code, out, err = yield d
    finally:
        yield service.stopService()
    assert (code, err) == (0, "") and "id=8" in out
