"""
Screenshots: the JPEG that travels with an event, re-encoded from the
recognizer's frame at the configured quality and scaled down when it would
not fit in a packet (docs/plates.rst, "Screenshots").

Decoding and encoding are blocking CPU work, so they run in a thread pool
that L{ScreenshotService} owns (L{ServiceThreads}); Pillow releases the GIL
while it codes, so the pool uses every core.  The reactor thread only hands
bytes over and counts (in L{numberok.metrics.Metrics}).  A frame over the
pixel limit (L{numberok.images.MAX_FRAME_PIXELS}) is refused from its
header, before anything is decoded.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from io import BytesIO
from typing import Optional

from PIL import Image
from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok.images import (MAX_FRAME_PIXELS, InvalidImage, frameMark,
                             frameSize)
from numberok.interfaces import IScreenshotEncoder
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.threads import ServiceThreads

__all__ = ["InvalidImage", "ImageDoesNotFit", "ScreenshotService",
           "reencode", "MIN_QUALITY", "MAX_QUALITY"]

_Key = tuple[int, int, int]

MIN_QUALITY = 10
MAX_QUALITY = 100


class ImageDoesNotFit(Exception):
    """Even scaled down to a thumbnail the JPEG is larger than allowed."""


def _save(image: Image.Image, quality: int) -> bytes:
    out = BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def reencode(jpeg: bytes, quality: int, maxBytes: int,
             maxPixels: int = MAX_FRAME_PIXELS, minSide: int = 16) -> bytes:
    """
    Decode C{jpeg} and encode it again at C{quality}; while the result is
    larger than C{maxBytes}, scale the picture down (by the square root of
    the size ratio, since JPEG size grows with the pixel count) and encode
    again.  Blocking: call it in a thread.  Metadata (EXIF, comments) is
    not copied.

    @param maxPixels: frames with more pixels are refused from their header
        (L{frameSize}) before they are decoded, so a decompression bomb
        costs nothing.
    @param minSide: the smallest side a scaled picture may have.
    @raise InvalidImage: for anything that is not a decodable JPEG
        (garbage, another format, truncated data, too many pixels).
    @raise ImageDoesNotFit: when C{maxBytes} is too small for any picture.
    """
    width, height = frameSize(jpeg, maxPixels)
    try:
        image = Image.open(BytesIO(jpeg), formats=("JPEG",))
        image.load()
    except Exception as e:
        # Pillow reports bad data with OSError, SyntaxError, ValueError,
        # struct.error, DecompressionBombError...: all mean "unusable".
        raise InvalidImage("%s: %s" % (type(e).__name__, e)) from None
    if image.mode not in ("L", "RGB", "CMYK"):
        image = image.convert("RGB")
    data = _save(image, quality)
    scale = 1.0
    while len(data) > maxBytes:
        scale *= min(0.9, max(0.25, 0.95 * math.sqrt(maxBytes / len(data))))
        size = (round(width * scale), round(height * scale))
        if min(size) < minSide:
            raise ImageDoesNotFit(
                "%dx%d at quality %d does not fit in %d bytes"
                % (width, height, quality, maxBytes))
        # reducing_gap: integer box reduction first, then a cheap filter.
        data = _save(image.resize(size, Image.Resampling.BILINEAR,
                                  reducing_gap=2.0), quality)
    return data


@implementer(IScreenshotEncoder)
class ScreenshotService(Service):
    """
    Re-encodes event screenshots in a thread pool it owns (started in
    L{startService}, stopped in L{stopService}); the reactor thread never
    decodes or encodes.

    The same frame object asked for again at the same quality and size (a
    track's Detected and Lost often carry the same best frame) is answered
    from a small cache, or joins the encoding already running.  Frames are
    matched by identity, not content: hashing every 150 KB frame on the
    reactor thread would cost more than the rare repeat saves.

    Counts go to C{metrics}: C{screenshotsEncoded} (cache answers not
    included), C{screenshotCacheHits}, and C{screenshotsSkipped} by reason
    (C{invalid}: not a usable JPEG or over the pixel limit; C{unfit}: fits
    in C{maxBytes} at no size; C{overloaded}: L{maxBacklog} were waiting).

    @ivar threads: the pool size; by default one thread per core.
    """

    name = "screenshots"
    log = Logger()

    maxPixels = MAX_FRAME_PIXELS
    """Frames with more pixels are refused from their header, undecoded."""

    maxBacklog = 256
    """
    Encodings queued or running at most.  Past that a request fires
    L{None} at once: an event without a picture now beats every event
    late.
    """

    cacheSize = 8
    """Recent results kept; 0 turns the cache off."""

    def __init__(self, reactor: Optional[IReactorFromThreads] = None,
                 threads: Optional[int] = None,
                 metrics: Optional[Metrics] = None) -> None:
        if threads is not None and threads < 1:
            raise ValueError("threads must be at least 1, not %r"
                             % (threads,))
        self._reactor = reactor
        self.threads = threads or os.cpu_count() or 1
        self.metrics = metricsOrPrivate(metrics)
        self._countEncoded = self.metrics.screenshotsEncoded
        self._countCacheHits = self.metrics.screenshotCacheHits
        self._skipped = {reason: self.metrics.screenshotsSkipped.labels(
            reason=reason) for reason in ("invalid", "unfit", "overloaded")}
        self._pool = ServiceThreads("numberok-screenshots", self.threads,
                                    reactor=reactor)
        self._backlog = 0
        # (id(frame), quality, maxBytes) -> (frame, waiters) while it is
        # encoded (holding the frame keeps its id from being reused), then
        # -> (mark of the frame, picture) in the cache, checked on a hit.
        self._inFlight: dict[_Key, tuple[bytes, list[Deferred]]] = {}
        self._cache: OrderedDict[_Key, tuple[tuple[int, bytes], bytes]] = (
            OrderedDict())
        self._warnedChannels: set[int] = set()
        self._warnedOverload = False
        self._warnedStopped = False

    reactor = LazyReactor()

    def startService(self) -> None:
        Service.startService(self)
        self._pool.start()
        self._warnedStopped = False

    def stopService(self) -> Deferred:
        """
        Stop the pool.  Encodings already queued still finish and fire;
        joining the worker threads happens off the reactor thread, and the
        returned Deferred fires when they are gone.
        """
        Service.stopService(self)
        return self._pool.stop()

    def encode(self, jpeg: bytes, quality: int, maxBytes: int,
               channel: int = 0) -> Deferred:
        """
        Re-encode C{jpeg} at C{quality} (clamped to 10..100), scaled down
        until it fits in C{maxBytes}.

        @param channel: the camera the frame came from, so that a broken
            camera is logged once rather than once per frame.
        @return: a L{Deferred} firing with the JPEG L{bytes}, or L{None}
            when there is no usable picture; it never fails.
        """
        if not isinstance(jpeg, bytes):
            self._invalid(channel, "expected JPEG bytes, got %s"
                          % (type(jpeg).__name__,))
            return succeed(None)
        quality = min(MAX_QUALITY, max(MIN_QUALITY, int(quality)))
        key = (id(jpeg), quality, maxBytes)
        cached = self._cache.get(key)
        if cached is not None and cached[0] != frameMark(jpeg):
            # Another frame at the address of one that was freed.
            del self._cache[key]
            cached = None
        if cached is not None:
            self._cache.move_to_end(key)
            self._countCacheHits.inc()
            return succeed(cached[1])
        result: Deferred = Deferred()
        running = self._inFlight.get(key)
        if running is not None:
            self._countCacheHits.inc()
            running[1].append(result)
            return result
        if not self._pool.running:
            if not self._warnedStopped:
                self._warnedStopped = True
                self.log.warn("screenshot asked for while the screenshot "
                              "service is stopped; events go without one")
            return succeed(None)
        if self._backlog >= self.maxBacklog:
            self._skipped["overloaded"].inc()
            if not self._warnedOverload:
                self._warnedOverload = True
                self.log.warn(
                    "screenshot backlog full ({backlog} frames): events go "
                    "without a picture until it drains",
                    backlog=self._backlog)
            return succeed(None)
        self._inFlight[key] = (jpeg, [result])
        self._backlog += 1
        work = self._pool.run(reencode, jpeg, quality, maxBytes,
                              self.maxPixels)
        work.addCallbacks(self._encoded, self._failed,
                          callbackArgs=(key,), errbackArgs=(key, channel))
        work.addErrback(lambda f: self.log.failure(
            "screenshot bookkeeping failed", f))
        return result

    def _done(self, key: _Key, data: Optional[bytes]) -> None:
        self._backlog -= 1
        if self._backlog == 0:
            self._warnedOverload = False
        frame, waiters = self._inFlight.pop(key)
        if data is not None and self.cacheSize > 0:
            # Not the frame itself: a 1 MB frame would stay alive for the
            # cache's sake alone.
            self._cache[key] = (frameMark(frame), data)
            while len(self._cache) > self.cacheSize:
                self._cache.popitem(last=False)
        for waiter in waiters:
            waiter.callback(data)

    def _encoded(self, data: bytes, key: _Key) -> None:
        self._countEncoded.inc()
        self._done(key, data)

    def _failed(self, failure: Failure, key: _Key,
                channel: int) -> None:
        if failure.check(InvalidImage):
            self._invalid(channel, str(failure.value))
        elif failure.check(ImageDoesNotFit):
            self._skipped["unfit"].inc()
            self.log.warn("channel {channel}: screenshot dropped: {reason}",
                          channel=channel, reason=str(failure.value))
        else:
            self._skipped["invalid"].inc()
            self.log.failure("channel {channel}: screenshot encoding failed",
                             failure, channel=channel)
        self._done(key, None)

    def _invalid(self, channel: int, reason: str) -> None:
        self._skipped["invalid"].inc()
        if channel not in self._warnedChannels:
            self._warnedChannels.add(channel)
            self.log.warn(
                "channel {channel}: frame is not a usable JPEG ({reason}); "
                "its events go without a picture, and further bad frames "
                "of this channel are counted, not logged",
                channel=channel, reason=reason)
