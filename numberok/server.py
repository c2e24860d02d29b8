"""
The NumberOk event server: the per-connection protocol and the factory that
admits, counts and lists connections.

A connection must subscribe within L{NumberOkProtocol.handshakeTimeout}
seconds; after that it only receives.  Anything else it sends that is not a
repeated subscribe is a protocol error and closes that connection only.  The
factory refuses by returning L{None} from C{buildProtocol} (the peer sees a
connect, then EOF): first peers outside C{AllowedClients}, then any peer
beyond C{MaxConnections}.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from typing import Optional

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from numberok import wire
from numberok.interfaces import IEventPublisher, IEventSubscriber
from numberok.settings import SettingsStore


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """One row of the admin page's connection table."""

    id: int
    host: str
    port: int
    connectedSince: float
    subscribed: bool
    eventsSent: int
    bytesSent: int
    queued: int
    dropped: int


def _peerText(address) -> str:
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    return "%s:%s" % (host, getattr(address, "port", "?"))


@implementer(IEventSubscriber, IPushProducer)
class NumberOkProtocol(Protocol, TimeoutMixin):
    """
    One NumberOk client connection.

    It is its own push producer on the transport: when the peer stops
    reading and the transport's buffer fills, C{pauseProducing} marks it
    unwritable and the publisher keeps (and, past the cap, drops) its events
    instead of buffering without bound.
    """

    handshakeTimeout = 1.0
    log = Logger()

    def __init__(self) -> None:
        self.connectionId = 0
        self.subscribed = False
        self.subscription = None
        self.connectedSince = 0.0
        self._paused = False
        self._closing = False
        self._closedWaiters: list[defer.Deferred] = []
        self._decoder = wire.PacketDecoder(allowedTypes=[wire.PT_SUBSCRIBE],
                                           maxDataLength=0)

    # -- IEventSubscriber --------------------------------------------------

    @property
    def wantsScreenshots(self) -> bool:
        return self.factory.store.current["NetServer.AttachScreenshotsToEvents"]

    @property
    def lostOnly(self) -> bool:
        return self.factory.store.current["NetServer.SendLostOnly"]

    def writePackets(self, data: bytes) -> None:
        self.transport.write(data)

    def isWritable(self) -> bool:
        return not self._paused and not self._closing

    # -- IPushProducer -----------------------------------------------------

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False

    def stopProducing(self) -> None:
        self._closing = True

    # -- connection life ---------------------------------------------------

    def connectionMade(self) -> None:
        self.callLater = self.factory.reactor.callLater
        self.connectedSince = self.factory.reactor.seconds()
        self.transport.registerProducer(self, True)
        self.factory.register(self)
        self.setTimeout(self.handshakeTimeout)

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            packets = self._decoder.feed(data)
        except wire.WireError as e:
            self.protocolError(str(e))
            return
        for packet in packets:
            if not self.subscribed:
                self._subscribe()
            # A repeated subscribe is harmless and ignored.

    def _subscribe(self) -> None:
        self.setTimeout(None)
        self.subscribed = True
        self.subscription = self.factory.publisher.subscribe(self)
        self.log.info("{peer} subscribed (connection {id})",
                      peer=self.peerText, id=self.connectionId)

    def protocolError(self, reason: str) -> None:
        """Log and count C{reason}, then close this connection only."""
        self.factory.protocolErrors += 1
        self.log.warn("protocol error from {peer}: {reason}; closing",
                      peer=self.peerText, reason=reason)
        self.close()

    def timeoutConnection(self) -> None:
        self.factory.handshakeTimeouts += 1
        self.log.info("{peer} did not subscribe within {timeout} s; closing",
                      peer=self.peerText, timeout=self.handshakeTimeout)
        self.close()

    def close(self) -> None:
        """
        Close now, dropping unsent data: a peer that misbehaves or is
        disconnected by the operator may also have stopped reading, and a
        graceful close would wait on it for ever.
        """
        if not self._closing:
            self._closing = True
            self.transport.abortConnection()

    def closeGracefully(self) -> None:
        """
        Close after what the transport still holds has been written: for
        shutdown, so the last events reach a client that reads.  A client
        that does not read is aborted by L{NumberOkFactory.closeAll} when
        the grace period ends.
        """
        if not self._closing:
            self._closing = True
            self.setTimeout(None)
            self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection now, whatever it still holds."""
        self._closing = True
        if self.transport is not None:
            self.transport.abortConnection()

    def whenClosed(self) -> defer.Deferred:
        """A Deferred that fires when this connection is gone."""
        if self.transport is None or self._closedWaiters is None:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._closedWaiters.append(d)
        return d

    def connectionLost(self, reason) -> None:
        self._closing = True
        self.setTimeout(None)
        self.factory.unregister(self)
        waiters, self._closedWaiters = self._closedWaiters, None
        for d in waiters or ():
            d.callback(None)

    @property
    def peerText(self) -> str:
        return _peerText(self.transport.getPeer())

    def __repr__(self) -> str:
        return "<NumberOk connection %d %s>" % (
            self.connectionId, self.peerText if self.transport else "-")

    def info(self) -> ConnectionInfo:
        peer = self.transport.getPeer()
        s = self.subscription
        return ConnectionInfo(
            id=self.connectionId, host=getattr(peer, "host", str(peer)),
            port=getattr(peer, "port", 0),
            connectedSince=self.connectedSince, subscribed=self.subscribed,
            eventsSent=s.eventsSent if s else 0,
            bytesSent=s.bytesSent if s else 0,
            queued=s.queued if s else 0, dropped=s.dropped if s else 0)


class NumberOkFactory(Factory):
    """
    Admits NumberOk clients and keeps the registry of live connections.

    @ivar maxConnections: overridden per connection attempt by
        C{[NetServer] MaxConnections}, so a saved change applies to the next
        connection without touching the live ones.
    """

    protocol = NumberOkProtocol
    maxConnections = 4
    log = Logger()

    def __init__(self, store: SettingsStore, publisher: IEventPublisher,
                 reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.store = store
        self.publisher = publisher
        self.reactor = reactor
        self._connections: dict[int, NumberOkProtocol] = {}
        self._ids = itertools.count(1)
        self.accepted = 0
        self.refusedLimit = 0
        self.refusedNotAllowed = 0
        self.handshakeTimeouts = 0
        self.protocolErrors = 0
        self.shutdownAborted = 0
        self.peakConnections = 0

    def isAllowed(self, address) -> bool:
        networks = self.store.current["NetServer.AllowedClients"]
        if not networks:
            return True
        try:
            ip = ipaddress.ip_address(getattr(address, "host", ""))
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in networks
                   if network.version == ip.version)

    def buildProtocol(self, addr) -> Optional[NumberOkProtocol]:
        if not self.isAllowed(addr):
            self.refusedNotAllowed += 1
            self.log.warn("refused {peer}: not in AllowedClients",
                          peer=_peerText(addr))
            return None
        limit = min(self.maxConnections,
                    self.store.current["NetServer.MaxConnections"])
        if len(self._connections) >= limit:
            self.refusedLimit += 1
            self.log.warn("refused {peer}: connection limit {limit} reached",
                          peer=_peerText(addr), limit=limit)
            return None
        self.accepted += 1
        protocol = Factory.buildProtocol(self, addr)
        protocol.connectionId = next(self._ids)
        # Reserve the slot now: connectionMade follows, but the count must
        # hold from this moment on.
        self._connections[protocol.connectionId] = protocol
        self.peakConnections = max(self.peakConnections,
                                   len(self._connections))
        return protocol

    def register(self, protocol: NumberOkProtocol) -> None:
        self._connections[protocol.connectionId] = protocol
        self.log.info("{peer} connected (connection {id})",
                      peer=protocol.peerText, id=protocol.connectionId)

    def unregister(self, protocol: NumberOkProtocol) -> None:
        if self._connections.pop(protocol.connectionId, None) is not None:
            self.publisher.unsubscribe(protocol)
            self.log.info("connection {id} from {peer} closed",
                          id=protocol.connectionId, peer=protocol.peerText)

    def connections(self) -> list[ConnectionInfo]:
        """The live connections, oldest first."""
        return [p.info() for _, p in sorted(self._connections.items())
                if p.transport is not None]

    def disconnect(self, connectionId: int) -> bool:
        """
        Close connection C{connectionId}.  @return: C{False} when there is no
        such connection.
        """
        protocol = self._connections.get(connectionId)
        if protocol is None or protocol.transport is None:
            return False
        self.log.info("disconnecting {peer} on request", peer=protocol.peerText)
        protocol.close()
        return True

    def closeAll(self, grace: float) -> defer.Deferred:
        """
        Close every connection for shutdown: each one first writes what it
        still holds (its last events); those still open after C{grace}
        seconds -- clients that stopped reading -- are aborted.

        @return: a Deferred firing when every connection is gone.  It never
            takes much longer than C{grace}.
        """
        protocols = [p for p in self._connections.values()
                     if p.transport is not None]
        if not protocols:
            return defer.succeed(None)
        waits = [p.whenClosed() for p in protocols]
        for protocol in protocols:
            protocol.closeGracefully()

        def abortRest() -> None:
            stuck = [p for p in protocols if p._closedWaiters is not None]
            if stuck:
                self.shutdownAborted += len(stuck)
                self.log.warn(
                    "shutdown: {count} connections did not take their last "
                    "events within {grace} s and were aborted: {peers}",
                    count=len(stuck), grace=grace,
                    peers=", ".join(p.peerText for p in stuck))
            for protocol in stuck:
                protocol.abort()
        timer = self.reactor.callLater(grace, abortRest)
        done = defer.DeferredList(waits)

        def finished(result: object) -> None:
            if timer.active():
                timer.cancel()
        done.addCallback(finished)
        return done


class ListeningService(Service):
    """
    Listens on a strports endpoint while running, and can move to another
    endpoint without a gap: the new port is bound first, and only when that
    worked is the old one closed, so an unusable port leaves the server
    where it was.

    @ivar description: the endpoint now in use, e.g. C{"tcp:7700"}.
    """

    log = Logger()

    def __init__(self, description: str, factory, reactor=None,
                 enabled: bool = True) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.description = description
        self.factory = factory
        self.reactor = reactor
        self.enabled = enabled
        self.port = None

    def _listen(self, description: str) -> defer.Deferred:
        return serverFromString(self.reactor, description).listen(self.factory)

    def startService(self) -> None:
        """
        Listen now.  A port that cannot be bound at start-up ends the
        process here with the reason (as C{strports.service} would, but
        without a traceback) instead of running deaf.
        """
        Service.startService(self)
        if not self.enabled:
            return
        d = self._listen(self.description)
        outcome: list = []
        d.addBoth(lambda result: outcome.append(result) or result)
        if outcome and isinstance(outcome[0], Failure):
            d.addErrback(lambda f: None)
            self.running = False
            # SystemExit: twistd then ends with this one line instead of a
            # traceback through its own start-up code.
            raise SystemExit("numberok: cannot listen on %s: %s" % (
                self.description, outcome[0].getErrorMessage()))
        # Twisted's own endpoints have bound by now; another may bind later.
        d.addCallbacks(self._listening, lambda f: self.log.failure(
            "cannot listen on {endpoint}", f, endpoint=self.description))

    def _listening(self, port) -> None:
        self.port = port
        self.log.info("listening on {endpoint}", endpoint=self.description)

    def rebind(self, description: str) -> defer.Deferred:
        """
        Listen on C{description} instead.  Fails (and keeps the old port)
        when the new endpoint cannot be bound.  When the service is not
        listening (stopped or disabled) it only records the endpoint.
        """
        if not self.running or self.port is None:
            self.description = description
            return defer.succeed(None)
        d = self._listen(description)

        def bound(port):
            old, self.port, self.description = self.port, port, description
            self.log.info("now listening on {endpoint}", endpoint=description)
            if old is not None:
                return old.stopListening()
        d.addCallback(bound)
        return d

    def stopService(self):
        Service.stopService(self)
        return self._close()

    def _close(self) -> defer.Deferred:
        port, self.port = self.port, None
        if port is None:
            return defer.succeed(None)
        return defer.maybeDeferred(port.stopListening)

    def setEnabled(self, enabled: bool) -> defer.Deferred:
        """
        Listen or stop listening while the service keeps running, for the
        C{[NetServer] Enable} switch.  Live connections are not touched.
        """
        self.enabled = enabled
        if not self.running:
            return defer.succeed(None)
        if not enabled:
            return self._close()
        if self.port is not None:
            return defer.succeed(None)
        d = self._listen(self.description)

        def listening(port):
            self.port = port
            self.log.info("listening on {endpoint}", endpoint=self.description)
        return d.addCallback(listening)

    @property
    def boundPort(self) -> Optional[int]:
        """The TCP port number in use (useful with C{tcp:0} in tests)."""
        if self.port is None:
            return None
        return self.port.getHost().port


def endpointWithPort(description: str, port: int) -> str:
    """
    C{description} with its port replaced: C{"tcp:7700:interface=::1"} and
    8000 give C{"tcp:8000:interface=::1"}; other options (TLS keys, the
    interface) stay, so changing the port on the admin page keeps them.
    """
    head, _, rest = description.partition(":")
    parts = rest.split(":") if rest else []
    for i, part in enumerate(parts):
        if part.isdigit():
            parts[i] = str(port)
            return ":".join([head] + parts)
        if part.startswith("port="):
            parts[i] = "port=%d" % (port,)
            return ":".join([head] + parts)
    return "%s:%d%s" % (head, port, (":" + rest) if rest else "")


class EventPortService(ListeningService):
    """
    The event port's L{ListeningService}, with the graceful shutdown of
    issue 7 (docs/operations.rst, "Shutdown"): stop accepting, let the
    publisher hand every queued event (the analytics' final Lost events
    included) to the connections, let each connection write them out, then
    close; all within L{shutdownGrace} seconds, after which connections
    that do not read are aborted.

    @ivar shutdownGrace: the whole shutdown's bound, in seconds.
    """

    shutdownGrace = 3.0

    def stopService(self) -> defer.Deferred:
        start = self.reactor.seconds()
        stopped = ListeningService.stopService(self)
        factory = self.factory

        def drain(_: object) -> defer.Deferred:
            return factory.publisher.drain(self.shutdownGrace)

        def close(_: object) -> defer.Deferred:
            left = self.shutdownGrace - (self.reactor.seconds() - start)
            return factory.closeAll(max(0.25, left))

        stopped.addBoth(drain)
        stopped.addCallback(close)
        stopped.addErrback(lambda f: self.log.failure(
            "event port shutdown failed", f))
        return stopped
