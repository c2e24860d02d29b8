"""
L{DemoSource}: plays the demo simulation into a sink on the injected
reactor's clock, rendering frames in its worker thread.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Callable, Iterator, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from numberok.events import PlateRead
from numberok.metrics import Metrics
from numberok.sources import ThreadedSource, handOver
from numberok.sources.demo.render import renderFrame
from numberok.sources.demo.simulation import DemoRead, validateRate, reads


class _Pending:
    __slots__ = ("read", "frame", "done")

    def __init__(self, read: PlateRead):
        self.read = read
        self.frame: Optional[bytes] = None
        self.done = False


class DemoSource(ThreadedSource):
    """
    Plays the simulation (L{reads}) into a sink on the reactor's clock.

    Each read is due at its simulated time; its frame is rendered in a
    thread and the read is handed to the sink as soon as its frame is ready,
    always in simulation order.  The read's C{timeMs} is its due time, so
    the sequence does not depend on how fast frames render.  When rendering
    falls more than L{maxPendingFrames} frames behind, reads go out without
    a frame (counted in C{numberok_demo_frames_skipped_total}) rather than
    piling up.  Vehicles are counted in C{numberok_demo_vehicles_total}.
    """

    workerName = "numberok-demo-frames"
    log = Logger()
    maxPendingFrames = 32

    def __init__(self, sink, rate: float = 2.0, seed: int = 1,
                 channels: int = 2, reactor=None, frames: bool = True,
                 runInThread: Optional[Callable[..., Deferred]] = None,
                 metrics: Optional[Metrics] = None):
        """
        @param sink: an L{numberok.interfaces.IPlateReadSink}.
        @param rate: mean vehicles per second over all channels.
        @param frames: render JPEG frames (off: reads without images).
        @param runInThread: C{f(callable, *args) -> Deferred} running the
            call off the reactor thread; by default a one-thread pool this
            service owns.  Tests pass a synchronous one.
        @param metrics: the server's L{Metrics}; a private one by default.
        @raise ValueError: rate or channels out of range.
        """
        validateRate(rate, channels)
        ThreadedSource.__init__(self, reactor, runInThread, metrics)
        self.sink = sink
        self.rate = rate
        self.seed = seed
        self.channels = channels
        self.frames = frames
        self._call = None
        self._sequence: Optional[Iterator[DemoRead]] = None
        self._pending: deque[_Pending] = deque()
        self._lastVehicle = -1

    def startService(self) -> None:
        super().startService()
        reactor = self.reactor
        if self.frames:
            self._render = self._startWorker()
        startMs = round(reactor.seconds() * 1000)
        self._sequence = reads(self.seed, self.rate, self.channels, startMs)
        self._pending = deque()
        self.log.info(
            "demo traffic: {rate} vehicles/s on {channels} channels, "
            "seed {seed}", rate=self.rate, channels=self.channels,
            seed=self.seed)
        self._scheduleNext()

    def stopService(self) -> Deferred:
        """Stop playing; the Deferred fires once the render thread is
        gone."""
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._sequence = None
        self._pending = deque()
        return self._stopWorker()

    def _scheduleNext(self) -> None:
        demoRead = next(self._sequence)
        reactor = self.reactor
        delay = max(0.0, demoRead.read.timeMs / 1000.0 - reactor.seconds())
        self._call = reactor.callLater(delay, self._due, demoRead)

    def _due(self, demoRead: DemoRead) -> None:
        self._call = None
        pending = _Pending(demoRead.read)
        # First reads come in vehicle order, so a new index is a new vehicle.
        if demoRead.vehicle > self._lastVehicle:
            self._lastVehicle = demoRead.vehicle
            self.metrics.demoVehicles.inc()
        if not self.frames:
            pending.done = True
        elif len(self._pending) >= self.maxPendingFrames:
            self.metrics.demoFramesSkipped.inc()
            pending.done = True
        queue = self._pending
        queue.append(pending)
        if not pending.done:
            d = self._render(renderFrame, demoRead.scene)
            d.addCallbacks(self._rendered, self._renderFailed,
                           callbackArgs=(pending, queue),
                           errbackArgs=(pending, queue))
        self._deliver(queue)
        if self.running:
            self._scheduleNext()

    def _rendered(self, frame: bytes, pending: _Pending, queue) -> None:
        pending.frame = frame
        pending.done = True
        self._deliver(queue)

    def _renderFailed(self, failure, pending: _Pending, queue) -> None:
        self.log.failure("demo frame rendering failed", failure)
        pending.done = True
        self._deliver(queue)

    def _deliver(self, queue) -> None:
        # A queue left over from before stopService is no longer ours.
        if queue is not self._pending or not self.running:
            return
        while queue and queue[0].done:
            pending = queue.popleft()
            read = pending.read
            if pending.frame is not None:
                read = replace(read, jpeg=pending.frame)
            handOver(self.sink, read, "the demo")
