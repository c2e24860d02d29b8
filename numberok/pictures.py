"""
The picture of an outgoing event: its screenshot, asked of the
L{IScreenshotEncoder} once per event, and C{PlateRect}, the plate box in
that picture's pixels (docs/protocol.rst).

The encoder may scale a frame down to fit the packet, so the box is scaled
with it: both pictures' sizes are read from their headers in a thread
(L{numberok.images.frameSize}), never on the reactor thread.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from numberok import images, wire
from numberok.interfaces import IScreenshotEncoder
from numberok.queues import Outgoing, attachedRect, rectPair


def pictureSizes(frame: bytes, jpeg: bytes
                 ) -> tuple[tuple[int, int], tuple[int, int]]:
    """The source frame's and the attached picture's sizes (headers only)."""
    return images.frameSize(frame), images.frameSize(jpeg)


class PictureAttacher:
    """
    Makes an L{Outgoing} ready: sets its C{jpeg} (and C{rect} when the event
    has a box), marks it ready and calls back.  An event already marked
    ready by someone else (the drain's grace period ended) is left alone.
    Nothing here fails: a picture or a box that cannot be had is left out,
    logged.
    """

    log = Logger()

    def __init__(self, encoder: Optional[IScreenshotEncoder],
                 runInThread: Callable[..., Deferred]) -> None:
        self.encoder = encoder
        self.runInThread = runInThread
        self._warnedNoThreads = False

    def attach(self, outgoing: Outgoing, quality: int,
               ready: Callable[[], None]) -> None:
        """
        Ask for C{outgoing}'s screenshot; call C{ready()} once it is
        attached or left out.  Its text must be encoded already: the
        picture gets what the text (and C{PlateRect}) leave of 1 MiB.
        """
        event = outgoing.event
        reserve = len(rectPair(event.bbox)) if event.bbox else 0
        d = self.encoder.encode(
            event.frame, quality,
            wire.MAX_DATA_LENGTH - len(outgoing.text) - reserve,
            event.channel)
        d.addCallback(self._encoded, outgoing, ready)
        d.addErrback(self._failed, outgoing, ready)

    def _encoded(self, jpeg: Optional[bytes], outgoing: Outgoing,
                 ready: Callable[[], None]) -> None:
        if outgoing.ready:
            return
        event = outgoing.event
        if jpeg and event.bbox is not None:
            try:
                d = self.runInThread(pictureSizes, event.frame, jpeg)
            except RuntimeError:
                if not self._warnedNoThreads:
                    self._warnedNoThreads = True
                    self.log.warn("publisher not started: pictures go "
                                  "without PlateRect")
            else:
                d.addCallbacks(self._placed, self._notPlaced,
                               callbackArgs=(outgoing, jpeg, ready),
                               errbackArgs=(outgoing, jpeg, ready))
                d.addErrback(self._failed, outgoing, ready)
                return
        self._done(outgoing, jpeg, ready)

    def _placed(self, sizes: tuple, outgoing: Outgoing, jpeg: bytes,
                ready: Callable[[], None]) -> None:
        if not outgoing.ready:
            outgoing.rect = attachedRect(outgoing.event.bbox, *sizes)
        self._done(outgoing, jpeg, ready)

    def _notPlaced(self, failure: Failure, outgoing: Outgoing, jpeg: bytes,
                   ready: Callable[[], None]) -> None:
        self.log.warn("PlateRect left out of event {runtimeId}: {error}",
                      runtimeId=outgoing.event.runtimeId,
                      error=failure.getErrorMessage())
        self._done(outgoing, jpeg, ready)

    def _done(self, outgoing: Outgoing, jpeg: Optional[bytes],
              ready: Callable[[], None]) -> None:
        if outgoing.ready:
            return
        if jpeg:
            outgoing.jpeg = jpeg
        outgoing.ready = True
        ready()

    def _failed(self, failure: Failure, outgoing: Outgoing,
                ready: Callable[[], None]) -> None:
        self.log.failure("screenshot encoding failed", failure)
        self._done(outgoing, None, ready)
