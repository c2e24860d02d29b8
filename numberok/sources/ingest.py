"""
The raw-read ingest port: JSON lines over TCP, one read per line, in our
own format or as an OpenALPR result (L{numberok.sources.formats}).

A bad line is answered on the same connection with one JSON line,
C{{"error": "...", "line": N}}, counted, and the connection goes on; so is a
line longer than L{IngestProtocol.MAX_LENGTH} (2 MiB).  Nothing a recognizer
sends can stop the port or reach the reactor as an exception.

Hardening: at most L{IngestFactory.maxConnections} recognizers at
once (the next one is refused, logged and counted); error replies to a peer
that does not read them are counted and left out instead of piling up in
memory; and at shutdown L{IngestService} stops taking reads I{before} the
analytics close their tracks, so no read can open a track that nobody
closes.
"""

from __future__ import annotations

import json
from typing import Optional

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from numberok.endpoints import addressText
from numberok.interfaces import IPlateReadSink
from numberok.listening import ListeningService
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.sources import handOver
from numberok.sources.formats import ReadFormatError, parseReadLine


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
        self._where = "ingest from %s" % (
            addressText(self.transport.getPeer()),)
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
        """
        One pass over the complete lines of C{data}: split once, parse each
        (L{parseReadLine}), hand the reads on; a partial last line waits in
        the buffer for the rest.
        """
        factory = self.factory
        if factory.stopped:
            return
        if self._skippingLongLine:
            end = data.find(self.delimiter)
            if end < 0:
                return
            self._skippingLongLine = False
            data = data[end + 1:]
        buffer = self._buffer
        if self.delimiter not in data:
            buffer += data
            if len(buffer) > self.MAX_LENGTH:
                self._refuseLongPartial()
            return
        if buffer:
            buffer += data
            data = bytes(buffer)
            buffer.clear()
        lines = data.split(self.delimiter)
        rest = lines.pop()
        maxLength = self.MAX_LENGTH
        nowMs = int(factory.reactor.seconds() * 1000)
        sink, where = factory.sink, self._where
        transport = self.transport
        for line in lines:
            if transport.disconnecting or factory.stopped:
                return
            self.lineNumber += 1
            if len(line) > maxLength:
                self._refuse("line longer than %d bytes" % (maxLength,))
                continue
            try:
                reads = parseReadLine(line.rstrip(b"\r"), nowMs, "ingest")
            except ReadFormatError as e:
                self._refuse(str(e))
                continue
            for read in reads:
                if not handOver(sink, read, where):
                    factory.sinkFailed.inc()
        buffer += rest
        if len(buffer) > maxLength:
            self._refuseLongPartial()

    def _refuseLongPartial(self) -> None:
        """The line being received is already too long: refuse, skip it."""
        self.lineNumber += 1
        self._refuse("line longer than %d bytes" % (self.MAX_LENGTH,))
        self._buffer.clear()
        self._skippingLongLine = True

    def _refuse(self, message: str) -> None:
        factory = self.factory
        factory.readErrors.inc()
        factory.badLineCount += 1
        count = factory.badLineCount
        if count <= factory.loggedBadLines or count % 1000 == 0:
            self.log.warn("ingest {peer}: bad line {line}: {message} "
                          "({count} bad lines so far)",
                          peer=addressText(self.transport.getPeer()),
                          line=self.lineNumber, message=message,
                          count=count)
        if self._repliesPaused:
            # The peer does not read its replies: do not buffer them.
            factory.metrics.ingestRepliesDropped.inc()
            return
        reply = {"error": message, "line": self.lineNumber}
        self.transport.write(json.dumps(reply).encode("utf-8") + b"\n")


class IngestFactory(Factory):
    """
    Makes L{IngestProtocol}s feeding one L{IPlateReadSink}, and counts in
    its L{Metrics}: bad lines (C{numberok_read_errors_total}, source
    C{ingest}), refused connections (C{numberok_ingest_connections_refused
    _total}), replies left out, and reads the sink failed on.  The reads
    themselves are counted by the analytics (source C{ingest}).
    """

    protocol = IngestProtocol
    maxConnections = 32
    loggedBadLines = 100
    """Bad lines logged one by one; after that every 1000th (all counted)."""
    log = Logger()
    reactor = LazyReactor()

    def __init__(self, sink: IPlateReadSink,
                 reactor: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None) -> None:
        self.sink = sink
        self._reactor = reactor
        self.metrics = metricsOrPrivate(metrics)
        self.readErrors = self.metrics.readErrors.labels(source="ingest")
        self.sinkFailed = self.metrics.sinkFailures.labels(source="ingest")
        self.stopped = False
        self._protocols: set[IngestProtocol] = set()
        # For the log's rate limit only; the count that is reported is
        # the metric.
        self.badLineCount = 0

    def buildProtocol(self, addr) -> Optional[IngestProtocol]:
        if self.stopped:
            return None
        if len(self._protocols) >= self.maxConnections:
            self.metrics.ingestRefused.inc()
            self.log.warn("ingest: refused {peer}: {limit} recognizers "
                          "already connected",
                          peer=addressText(addr),
                          limit=self.maxConnections)
            return None
        return Factory.buildProtocol(self, addr)

    def register(self, protocol: IngestProtocol) -> None:
        self._protocols.add(protocol)

    def unregister(self, protocol: IngestProtocol) -> None:
        self._protocols.discard(protocol)

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
