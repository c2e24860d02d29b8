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

from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from zope.interface import implementer

from numberok import wire
from numberok.endpoints import addressText
from numberok.interfaces import IEventPublisher, IEventSubscriber
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.settings import SettingsStore
from numberok.settings.keys import (
    NETSERVER_ALLOWED_CLIENTS,
    NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS,
    NETSERVER_MAX_CONNECTIONS,
    NETSERVER_SEND_LOST_ONLY,
)


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
        return self.factory.wantsScreenshots

    @property
    def lostOnly(self) -> bool:
        return self.factory.lostOnly

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
        self.factory.metrics.protocolErrors.labels(reason="protocol").inc()
        self.log.warn("protocol error from {peer}: {reason}; closing",
                      peer=self.peerText, reason=reason)
        self.close()

    def timeoutConnection(self) -> None:
        self.factory.metrics.protocolErrors.labels(
            reason="handshake_timeout").inc()
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
            # A producer still registered keeps the connection open: once
            # a paused transport's buffer empties, Twisted resumes the
            # producer instead of closing, and a client that read
            # everything would wait for the abort meant for those that
            # do not read.
            self.transport.unregisterProducer()
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
        return addressText(self.transport.getPeer())

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
    maxConnections = NETSERVER_MAX_CONNECTIONS.maximum
    log = Logger()
    reactor = LazyReactor()

    def __init__(self, store: SettingsStore, publisher: IEventPublisher,
                 reactor: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None) -> None:
        self.store = store
        self.publisher = publisher
        self._reactor = reactor
        self.metrics = metricsOrPrivate(metrics)
        self._connections: dict[int, NumberOkProtocol] = {}
        self._ids = itertools.count(1)
        self.metrics.connections.set_function(lambda: len(self._connections))
        self._refusedLimit = self.metrics.connectionsRefused.labels(
            reason="limit")
        self._refusedNotAllowed = self.metrics.connectionsRefused.labels(
            reason="not_allowed")
        self.peakConnections = 0
        # Asked for every event and every client: kept here, refreshed when
        # the settings change, rather than looked up each time.
        self._followSettings(None, store.current)
        store.addObserver(self._followSettings)

    def _followSettings(self, old, new) -> None:
        self.wantsScreenshots = new[NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS]
        self.lostOnly = new[NETSERVER_SEND_LOST_ONLY]

    def isAllowed(self, address) -> bool:
        networks = self.store.current[NETSERVER_ALLOWED_CLIENTS]
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
            self._refusedNotAllowed.inc()
            self.log.warn("refused {peer}: not in AllowedClients",
                          peer=addressText(addr))
            return None
        limit = min(self.maxConnections,
                    self.store.current[NETSERVER_MAX_CONNECTIONS])
        if len(self._connections) >= limit:
            self._refusedLimit.inc()
            self.log.warn("refused {peer}: connection limit {limit} reached",
                          peer=addressText(addr), limit=limit)
            return None
        self.metrics.connectionsAccepted.inc()
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
        self.log.info("disconnecting {peer} on request",
                      peer=protocol.peerText)
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
                self.metrics.protocolErrors.labels(
                    reason="shutdown_aborted").inc(len(stuck))
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
