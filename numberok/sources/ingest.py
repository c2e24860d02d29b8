"""
The raw-read ingest port: JSON lines over TCP, one read per line, in our
own format or as an OpenALPR result (L{numberok.sources.formats}).

A bad line is answered on the same connection with one JSON line,
C{{"error": "...", "line": N}}, counted, and the connection goes on; so is a
line longer than L{IngestProtocol.MAX_LENGTH} (2 MiB).  Nothing a recognizer
sends can stop the port or reach the reactor as an exception.
"""

from __future__ import annotations

import json

from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from numberok.interfaces import IPlateReadSink
from numberok.sources.formats import ReadFormatError, parseReadLine


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

    def dataReceived(self, data: bytes) -> None:
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
        for read in reads:
            factory.reads += 1
            try:
                factory.sink.addRead(read)
            except Exception:
                factory.sinkFailures += 1
                self.log.failure("read sink failed on line {line}",
                                 line=self.lineNumber)

    def _refuse(self, message: str) -> None:
        self.factory.badLines += 1
        peer = self.transport.getPeer()
        self.log.warn("ingest {peer}: bad line {line}: {message}",
                      peer="%s:%s" % (getattr(peer, "host", peer),
                                      getattr(peer, "port", "")),
                      line=self.lineNumber, message=message)
        reply = {"error": message, "line": self.lineNumber}
        self.transport.write(json.dumps(reply).encode("utf-8") + b"\n")


class IngestFactory(Factory):
    """
    Makes L{IngestProtocol}s feeding one L{IPlateReadSink}, and counts for
    the admin page.
    """

    protocol = IngestProtocol

    def __init__(self, sink: IPlateReadSink, reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.sink = sink
        self.reactor = reactor
        self.reads = 0
        self.badLines = 0
        self.sinkFailures = 0
