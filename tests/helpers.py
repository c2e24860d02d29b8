"""
Shared test helpers: in-memory connections to our real protocols, and an
event factory.  No test double here stands in for numberok code; the peers
and transports are Twisted's own testing transports.
"""

from __future__ import annotations

import io

from PIL import Image
from twisted.internet.address import IPv4Address
from twisted.internet import defer
from twisted.internet.defer import maybeDeferred
from twisted.internet.protocol import Protocol
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from numberok import wire
from numberok.client import NumberOkClientProtocol, eventFields
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


HTTP_READ = {"plate": "A123BC77", "channel": 2, "zone": 1, "confidence": 0.9,
             "time_ms": 1764000000000, "bbox": [10, 20, 100, 30]}
"""One valid read as C{POST /api/reads} takes it."""


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


class Certificates:
    """
    The one way tests make TLS material: a throw-away CA, a certificate it
    signed for 127.0.0.1 and localhost (with its key), and a second CA that
    signed nothing of ours (a client trusting only it must refuse the
    server).  EC keys, made in-process: fast and without the openssl
    command.

    @ivar caPath: PEM of the CA that signed the server's certificate.
    @ivar certPath: PEM of the server's certificate (C{certKey=} of an
        C{ssl:} strports endpoint).
    @ivar keyPath: PEM of the server's private key (C{privateKey=}).
    @ivar otherCaPath: PEM of the unrelated CA.
    """

    def __init__(self, directory) -> None:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        now = datetime.datetime.now(datetime.timezone.utc)
        day = datetime.timedelta(days=1)

        def certificate(subject, issuer, publicKey, signingKey, *extensions):
            builder = (x509.CertificateBuilder()
                       .subject_name(name(subject)).issuer_name(name(issuer))
                       .public_key(publicKey)
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - day)
                       .not_valid_after(now + day))
            for extension, critical in extensions:
                builder = builder.add_extension(extension, critical=critical)
            return builder.sign(signingKey, hashes.SHA256())

        def ca(cn):
            key = ec.generate_private_key(ec.SECP256R1())
            return key, certificate(
                cn, cn, key.public_key(), key,
                (x509.BasicConstraints(ca=True, path_length=0), True))

        caKey, caCert = ca("numberok test CA")
        _, otherCert = ca("another CA")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = certificate(
            "127.0.0.1", "numberok test CA", key.public_key(), caKey,
            (x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), False))
        pem = serialization.Encoding.PEM
        self.caPath = directory / "ca.pem"
        self.otherCaPath = directory / "other-ca.pem"
        self.certPath = directory / "server.pem"
        self.keyPath = directory / "server.key"
        self.caPath.write_bytes(caCert.public_bytes(pem))
        self.otherCaPath.write_bytes(otherCert.public_bytes(pem))
        self.certPath.write_bytes(cert.public_bytes(pem))
        self.keyPath.write_bytes(key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    def serverOptions(self):
        """Twisted's TLS context factory for a server with this
        certificate (for C{listenSSL} / L{ssl.optionsForClientTLS}'s peer)."""
        from twisted.internet import ssl
        return ssl.PrivateCertificate.loadPEM(
            self.certPath.read_bytes() + self.keyPath.read_bytes()).options()

    def sslEndpoint(self) -> str:
        """A strports description of a TLS port on 127.0.0.1, any port."""
        return "ssl:0:interface=127.0.0.1:privateKey=%s:certKey=%s" % (
            self.keyPath, self.certPath)


# -- peers for loopback tests (real sockets, the test's reactor) -------------


class Collector(NumberOkClientProtocol):
    """A good client: subscribes, reads everything, remembers RuntimeIDs."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.states: list[tuple[int, str]] = []
        self.closed = defer.Deferred()

    def eventReceived(self, pairs, jpeg) -> None:
        f = eventFields(pairs)
        self.ids.append(int(f["RuntimeID"]))
        self.states.append((int(f["RuntimeID"]), f["State"]))

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class Silent(Protocol):
    """
    A peer that connects and then neither sends nor (when C{stall}) reads:
    it optionally subscribes first.
    """

    def __init__(self, subscribe: bool = False, stall: bool = True) -> None:
        self.subscribe = subscribe
        self.stall = stall
        self.closed = defer.Deferred()
        self.received = 0

    def connectionMade(self) -> None:
        if self.subscribe:
            self.transport.write(wire.subscribePacket())
        if self.stall:
            self.transport.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)

    def connectionLost(self, reason) -> None:
        self.closed.callback(None)


class Received(Protocol):
    """Keeps every byte; C{closed} fires with them all when the peer (or
    an HTTP body) ends."""

    def __init__(self) -> None:
        self.received = b""
        self.closed = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason) -> None:
        self.closed.callback(self.received)


def ingestCount(factory, name: str, **labels: str) -> int:
    """One of an ingest factory's counters, read from its metrics."""
    return int(factory.metrics.value(name, **labels))
