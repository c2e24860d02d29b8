"""
Replay: play a JSONL file of reads (the ingest format, one object per line,
as C{numberok-demo-record} writes it) into the sink, at the recorded pace,
N times faster, or as fast as the server takes them.

The file is read and parsed in a thread, a batch of lines at a time, so
neither a large file nor its inline images ever block the reactor or sit
in memory whole.  Besides the ingest keys a replay line may name its image
as C{"jpeg_path"}, relative to the file's directory; only replay knows
that key (a network client must not make the server read its disk).

Timing, timestamps and looping are documented in docs/sources.rst.
"""

from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import replace
from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from numberok.events import PlateRead
from numberok.images import isJpeg
from numberok.metrics import Metrics
from numberok.sources import ThreadedSource, handOver
from numberok.sources.formats import (
    MAX_JPEG_BYTES, ReadFormatError, decodeReadLine, parseReadObject)

# Handed to the parser as "now": a read that comes back with it carried no
# time of its own (valid times are never negative).
_NO_TIME = -1


class _Reader:
    """
    The file side of a replay pass: reads and parses batches of lines.
    Used from one pool thread at a time, never from the reactor thread
    while a batch is out.

    @ivar lastTimeMs: the recorded time of the last read that had one; a
        read without a time follows it immediately.
    """

    def __init__(self, path: str, maxLineBytes: int):
        self.path = path
        self.directory = os.path.dirname(os.path.abspath(path))
        self.maxLineBytes = maxLineBytes
        self.file = None
        self.lineNo = 0
        self.lastTimeMs: Optional[int] = None

    def readBatch(self, maxLines: int, maxBytes: int) -> tuple[list, bool]:
        """
        Read up to C{maxLines} lines or about C{maxBytes} bytes.

        @return: C{(items, eof)}, each item C{(lineNo, reads, recordedMs)}
            with C{recordedMs} the read's recorded time (or L{None} before
            the first timed read), or C{(lineNo, error, None)} for a bad
            line.
        @raise OSError: the file cannot be opened or read.
        """
        if self.file is None:
            self.file = open(self.path, "rb")
        items: list = []
        size = 0
        while len(items) < maxLines and size < maxBytes:
            line = self.file.readline(self.maxLineBytes + 1)
            if not line:
                self.close()
                return items, True
            self.lineNo += 1
            size += len(line)
            if len(line) > self.maxLineBytes and not line.endswith(b"\n"):
                self._skipRestOfLine()
                items.append((self.lineNo, ReadFormatError(
                    "line", "longer than %d bytes" % (self.maxLineBytes,)),
                    None))
                continue
            if not line.strip():
                continue
            try:
                items.extend(self._parse(line))
            except ReadFormatError as e:
                items.append((self.lineNo, e, None))
        return items, False

    def _skipRestOfLine(self) -> None:
        while True:
            chunk = self.file.readline(self.maxLineBytes)
            if not chunk or chunk.endswith(b"\n"):
                return

    def _parse(self, line: bytes) -> list:
        obj = decodeReadLine(line)
        jpeg = None
        if isinstance(obj, dict) and "jpeg_path" in obj:
            jpeg = self._image(obj.pop("jpeg_path"),
                               obj.get("jpeg_b64") is not None)
        reads = parseReadObject(obj, _NO_TIME)
        items = []
        for read in reads:
            if read.timeMs == _NO_TIME:
                recorded = self.lastTimeMs
            else:
                recorded = self.lastTimeMs = read.timeMs
            if jpeg is not None:
                read = replace(read, jpeg=jpeg)
            items.append((self.lineNo, read, recorded))
        return items

    def _image(self, value: object, alsoInline: bool) -> bytes:
        if alsoInline:
            raise ReadFormatError(
                "jpeg_path", "give jpeg_path or jpeg_b64, not both")
        if not isinstance(value, str) or not value:
            raise ReadFormatError("jpeg_path", "must be a non-empty string")
        path = os.path.join(self.directory, value)
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_JPEG_BYTES + 1)
        except (OSError, ValueError) as e:
            raise ReadFormatError(
                "jpeg_path", "cannot read %s: %s"
                % (value, getattr(e, "strerror", None) or e))
        if len(data) > MAX_JPEG_BYTES:
            raise ReadFormatError(
                "jpeg_path", "%s is larger than %d bytes"
                % (value, MAX_JPEG_BYTES))
        if not isJpeg(data):
            raise ReadFormatError(
                "jpeg_path", "%s is not a JPEG (no FF D8 start-of-image "
                "marker)" % (value,))
        return data

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class ReplaySource(ThreadedSource):
    """
    Plays a recorded JSONL file of reads into a sink.

    Pacing: a read recorded C{d} ms after the pass's first read plays
    C{d / speed} ms after the pass started, and its C{timeMs} becomes that
    moment (the server's clock), so timestamps agree with the clock the
    analytics run on.  With C{speed=None} reads go out as fast as the
    reactor turns, L{fastBatch} per turn, with the recorded spacing kept in
    C{timeMs}.  C{keepTimes} sends the recorded C{timeMs} unchanged.

    File order is play order: a read recorded earlier than the one before
    it plays right after it.  Bad lines are logged with their number,
    counted in C{numberok_read_errors_total{source="replay"}}, and
    skipped; passes through the file are counted in
    C{numberok_replay_passes_total}.
    """

    workerName = "numberok-replay"
    log = Logger()
    batchLines = 256
    batchBytes = 4 * 1024 * 1024
    maxLineBytes = 16 * 1024 * 1024
    lowWater = 128
    fastBatch = 200
    # Between two passes: longer than the default plate loss interval (5 s),
    # so the same vehicles make new tracks rather than extend old ones.
    loopGap = 6.0

    def __init__(self, sink, path: str, speed: Optional[float] = 1.0,
                 loop: bool = False, reactor=None, keepTimes: bool = False,
                 runInThread: Optional[Callable[..., Deferred]] = None,
                 metrics: Optional[Metrics] = None):
        """
        @param sink: an L{numberok.interfaces.IPlateReadSink}.
        @param path: the JSONL file.
        @param speed: 1.0 is the recorded pace, N is N times faster,
            L{None} is as fast as possible.
        @param loop: start over at the end of the file, for ever.
        @param runInThread: C{f(callable, *args) -> Deferred} running file
            work off the reactor thread; by default a one-thread pool this
            service owns.  Tests pass a synchronous one.
        @param metrics: the server's L{Metrics}; a private one by default.
        @raise ValueError: speed is not a positive number or None.
        """
        if speed is not None and not (
                isinstance(speed, (int, float)) and math.isfinite(speed)
                and 0 < speed <= 1e6):
            raise ValueError("replay speed must be a positive number, got %r"
                             % (speed,))
        ThreadedSource.__init__(self, reactor, runInThread, metrics)
        self._badLines = self.metrics.readErrors.labels(source="replay")
        self.sink = sink
        self.path = path
        self.speed = speed
        self.loop = loop
        self.keepTimes = keepTimes
        self._generation = 0
        self._call = None
        self._reader: Optional[_Reader] = None
        self._buffer: deque = deque()
        self._reading = False
        self._eof = False
        self._waiters: list[Deferred] = []
        self._finished = False
        self._passNumber = 0

    def whenDone(self) -> Deferred:
        """
        @return: a L{Deferred} that fires with L{None} once a replay without
            C{loop} has played its whole file (or could not open it).
        """
        d = Deferred()
        if self._finished:
            d.callback(None)
        else:
            self._waiters.append(d)
        return d

    def startService(self) -> None:
        super().startService()
        reactor = self.reactor
        self._run = self._startWorker()
        self._generation += 1
        self._finished = False
        self.log.info("replaying {path} at speed {speed}{loop}",
                      path=self.path, speed=self.speed or "max",
                      loop=" in a loop" if self.loop else "")
        self._startPass(round(reactor.seconds() * 1000))

    def stopService(self) -> Deferred:
        """
        Stop playing.  The returned Deferred fires once a batch in flight
        has been read and the file is closed.
        """
        super().stopService()
        self._generation += 1
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._buffer = deque()
        self._reading = False
        reader, self._reader = self._reader, None

        def close(_) -> None:
            # The worker is gone: the file is ours to close.
            if reader is not None:
                reader.close()
        return self._stopWorker().addCallback(close)

    def _startPass(self, startMs: int) -> None:
        self._passNumber += 1
        self.metrics.replayPasses.inc()
        self._passStartMs = startMs
        self._passFirstMs: Optional[int] = None
        self._passPlayed = 0
        self._passBadLines = 0
        self._lastOutMs = startMs
        self._reader = _Reader(self.path, self.maxLineBytes)
        self._eof = False
        self._fill()

    def _fill(self) -> None:
        if (self._reading or self._eof or not self.running
                or len(self._buffer) >= self.lowWater):
            return
        self._reading = True
        generation = self._generation
        d = self._run(self._reader.readBatch, self.batchLines,
                      self.batchBytes)
        d.addCallbacks(self._batchRead, self._readFailed,
                       callbackArgs=(generation,), errbackArgs=(generation,))

    def _batchRead(self, result, generation: int) -> None:
        if generation != self._generation:
            return
        self._reading = False
        items, self._eof = result
        for lineNo, item, recordedMs in items:
            if isinstance(item, ReadFormatError):
                self._badLines.inc()
                self._passBadLines += 1
                self.log.warn("{path}:{line}: skipped: {error}",
                              path=self.path, line=lineNo, error=str(item))
            else:
                self._buffer.append((item, recordedMs))
        # A pump already scheduled will see the new reads; otherwise one
        # on the next turn (never recursively, whatever the executor).
        if self._call is None and self.running:
            self._call = self.reactor.callLater(0, self._pump)

    def _readFailed(self, failure, generation: int) -> None:
        if generation != self._generation:
            return
        self._reading = False
        self.log.failure("cannot read replay file {path}", failure,
                         path=self.path)
        if self._reader is not None:
            self._reader.close()
        self._finish()

    def _pump(self) -> None:
        self._call = None
        if not self.running:
            return
        reactor = self.reactor
        nowMs = reactor.seconds() * 1000
        for _ in range(self.fastBatch):
            if not self._buffer:
                break
            read, recordedMs = self._buffer[0]
            outMs = self._outTime(recordedMs)
            if self.speed is not None and outMs > nowMs + 0.5:
                self._call = reactor.callLater(
                    (outMs - nowMs) / 1000.0, self._pump)
                self._fill()
                return
            self._buffer.popleft()
            self._play(read, outMs)
        if self._buffer:
            self._call = reactor.callLater(0, self._pump)
        elif self._eof:
            self._endOfPass()
            return
        self._fill()

    def _outTime(self, recordedMs: Optional[int]) -> int:
        """When the read plays, in ms of the reactor's clock."""
        if recordedMs is None:
            return self._lastOutMs
        if self._passFirstMs is None:
            self._passFirstMs = recordedMs
        offset = (recordedMs - self._passFirstMs) / (self.speed or 1.0)
        return max(self._lastOutMs, self._passStartMs + round(offset))

    def _play(self, read: PlateRead, outMs: int) -> None:
        self._lastOutMs = outMs
        if not self.keepTimes:
            read = replace(read, timeMs=outMs)
        read = replace(read, source="replay")
        self._passPlayed += 1
        handOver(self.sink, read, self.path)

    def _endOfPass(self) -> None:
        self.log.info(
            "replay of {path} pass {number} done: {played} reads played, "
            "{bad} bad lines", path=self.path, number=self._passNumber,
            played=self._passPlayed, bad=self._passBadLines)
        if not self.loop:
            self._finish()
            return
        if self._passPlayed == 0:
            self.log.warn("replay file {path} has no reads; not looping",
                          path=self.path)
            self._finish()
            return
        reactor = self.reactor
        startMs = max(round(reactor.seconds() * 1000), self._lastOutMs) \
            + round(self.loopGap * 1000)
        self._startPass(startMs)

    def _finish(self) -> None:
        self._finished = True
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)
