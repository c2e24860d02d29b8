"""
The raw-read ingest port: JSON lines over TCP, one read per line, in our
own format or as an OpenALPR result (L{numberok.sources.formats}).

A bad line is answered on the same connection with one JSON line,
C{{"error": "...", "line": N}}, counted, and the connection goes on; so is a
line longer than L{IngestProtocol.MAX_LENGTH} (2 MiB).  Nothing a recognizer
sends can stop the port or reach the reactor as an exception.

Hardening (issue 7): at most L{IngestFactory.maxConnections} recognizers at
once (the next one is refused, logged and counted); error replies to a peer
that does not read them are counted and left out instead of piling up in
memory; and at shutdown L{IngestService} stops taking reads I{before} the
analytics close their tracks, so no read can open a track that nobody
closes.
"""

from __future__ import annotations

import json

from typing import Optional

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from numberok.interfaces import IPlateReadSink
from numberok.server import ListeningService
from numberok.sources import handOver
from numberok.sources.formats import ReadFormatError, parseReadLine


def _peerText(transport) -> str:
    peer = transport.getPeer()
    return "%s:%s" % (getattr(peer, "host", peer), getattr(peer, "port", ""))


@implementer(IPushProducer)
class IngestProtocol(Protocol):
    """
    One recognizer connection.  It splits lines itself rather than using
    C{LineOnlyReceiver}, which drops the connection (and the other lines of
    the chunk) on an over-long line: here that line is answered and skipped.
    """

    delimiter = b"\n"
    MAX_LENGTH = 2 * 1024 * 1024
    log = Logger()

    def connectionMade(self) -> None:
        self.lineNumber = 0
        self._buffer = bytearray()
        self._skippingLongLine = False
        self._repliesPaused = False
        # As the producer of our error replies we hear when the peer stops
        # reading them.
        self.transport.registerProducer(self, True)
        self.factory.register(self)

    def connectionLost(self, reason=None) -> None:
        self.factory.unregister(self)

    # -- IPushProducer: the replies --------------------------------------

    def pauseProducing(self) -> None:
        self._repliesPaused = True

    def resumeProducing(self) -> None:
        self._repliesPaused = False

    def stopProducing(self) -> None:
        self._repliesPaused = True

    def dataReceived(self, data: bytes) -> None:
        if self.factory.stopped:
            return
        if self._skippingLongLine:
            end = data.find(self.delimiter)
            if end < 0:
                return
            self._skippingLongLine = False
            data = data[end + 1:]
        buffer = self._buffer
        buffer += data
        start = 0
        while not self.transport.disconnecting:
            end = buffer.find(self.delimiter, start)
            if end < 0:
                break
            line = bytes(buffer[start:end])
            start = end + 1
            if len(line) > self.MAX_LENGTH:
                self.lineNumber += 1
                self._refuse("line longer than %d bytes" % (self.MAX_LENGTH,))
            else:
                self.lineReceived(line)
        del buffer[:start]
        if len(buffer) > self.MAX_LENGTH:
            self.lineNumber += 1
            self._refuse("line longer than %d bytes" % (self.MAX_LENGTH,))
            buffer.clear()
            self._skippingLongLine = True

    def lineReceived(self, line: bytes) -> None:
        self.lineNumber += 1
        factory = self.factory
        line = line.rstrip(b"\r")
        if not line.strip():
            return
        try:
            reads = parseReadLine(line, int(factory.reactor.seconds() * 1000))
        except ReadFormatError as e:
            self._refuse(str(e))
            return
        if factory.stopped:
            return
        for read in reads:
            factory.reads += 1
            if not handOver(factory.sink, read,
                            "ingest line %d" % (self.lineNumber,)):
                factory.sinkFailures += 1

    def _refuse(self, message: str) -> None:
        factory = self.factory
        factory.badLines += 1
        if factory.badLines <= factory.loggedBadLines or \
                factory.badLines % 1000 == 0:
            self.log.warn("ingest {peer}: bad line {line}: {message} "
                          "({count} bad lines so far)",
                          peer=_peerText(self.transport),
                          line=self.lineNumber, message=message,
                          count=factory.badLines)
        if self._repliesPaused:
            # The peer does not read its replies: do not buffer them.
            factory.repliesDropped += 1
            return
        reply = {"error": message, "line": self.lineNumber}
        self.transport.write(json.dumps(reply).encode("utf-8") + b"\n")


class IngestFactory(Factory):
    """
    Makes L{IngestProtocol}s feeding one L{IPlateReadSink}, and counts for
    the admin page.
    """

    protocol = IngestProtocol
    maxConnections = 32
    loggedBadLines = 100
    """Bad lines logged one by one; after that every 1000th (all counted)."""
    log = Logger()

    def __init__(self, sink: IPlateReadSink, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.sink = sink
        self.reactor = reactor
        self.stopped = False
        self._protocols: set[IngestProtocol] = set()
        self.reads = 0
        self.badLines = 0
        self.sinkFailures = 0
        self.refusedLimit = 0
        self.repliesDropped = 0

    def buildProtocol(self, addr) -> Optional[IngestProtocol]:
        if self.stopped:
            return None
        if len(self._protocols) >= self.maxConnections:
            self.refusedLimit += 1
            self.log.warn("ingest: refused {peer}: {limit} recognizers "
                          "already connected",
                          peer="%s:%s" % (getattr(addr, "host", addr),
                                          getattr(addr, "port", "")),
                          limit=self.maxConnections)
            return None
        return Factory.buildProtocol(self, addr)

    def register(self, protocol: IngestProtocol) -> None:
        self._protocols.add(protocol)

    def unregister(self, protocol: IngestProtocol) -> None:
        self._protocols.discard(protocol)

    @property
    def connectionCount(self) -> int:
        return len(self._protocols)

    def stopReads(self) -> None:
        """
        Take no more reads, and close every recognizer connection: for
        shutdown, before the analytics close their tracks.
        """
        self.stopped = True
        for protocol in list(self._protocols):
            protocol.transport.abortConnection()


class IngestService(ListeningService):
    """
    The ingest port's L{ListeningService}: stopping it also stops the reads
    at once (L{IngestFactory.stopReads}), so that it must be stopped before
    the analytics -- that is, added to the service tree after them.
    """

    def stopService(self):
        self.factory.stopReads()
        return ListeningService.stopService(self)

    def startService(self) -> None:
        self.factory.stopped = False
        ListeningService.startService(self)
