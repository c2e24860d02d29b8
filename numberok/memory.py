"""
Giving picture memory back to the system after bursts.

A frame costs several large, short-lived buffers (the base64 text, the
decoded bytes, the decoded picture, the encoder's output: docs/operations.rst,
"Memory").  Python frees them, but glibc's allocator keeps freed memory in
its arenas for reuse and returns it only when the top of a heap happens to
be free: after a burst of big pictures the process keeps hundreds of
megabytes it no longer uses.  C{malloc_trim(0)} walks the arenas and
returns every free page.

L{MemoryTrimmer} does that from a thread, rate-limited, and only when the
resident size grew since its last trim: a check every L{MemoryTrimmer.interval}
seconds reads C{/proc/self/statm} and trims when the RSS is more than
L{MemoryTrimmer.slack} bytes above what the last trim left.  During a
burst that bounds the freed-but-kept memory to what a few seconds of
pictures take; after it the memory is back within one interval.  Where
C{malloc_trim} does not exist (musl, other systems) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.threads import ServiceThreads

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def residentBytes() -> Optional[int]:
    """This process's resident set size, or L{None} without C{/proc}."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def glibcTrim() -> Optional[Callable[[], Any]]:
    """
    C{malloc_trim(0)} of the C library, or L{None} where there is none.
    ctypes releases the GIL for the call, so other threads run meanwhile.
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class MemoryTrimmer(Service):
    """
    Returns freed memory to the system when the process grew (see the
    module docstring).  Counts C{numberok_memory_trims_total} and
    C{numberok_memory_trimmed_bytes_total}.

    @ivar interval: seconds between checks (and so at least between trims).
    @ivar slack: growth of the RSS since the last trim, in bytes, that
        makes the next check trim.
    """

    name = "memory"
    log = Logger()
    interval = 2.0
    slack = 16 * 1024 * 1024

    def __init__(self, reactor: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None,
                 trim: Optional[Callable[[], Any]] = None,
                 measure: Callable[[], Optional[int]] = residentBytes
                 ) -> None:
        self._reactor = reactor
        metrics = metricsOrPrivate(metrics)
        self._trims = metrics.memoryTrims
        self._trimmed = metrics.memoryTrimmedBytes
        self._trim = trim if trim is not None else glibcTrim()
        self._measure = measure
        self._threads = ServiceThreads("numberok-memory", 1, reactor=reactor)
        self._loop: Optional[LoopingCall] = None
        self._busy = False
        self.baseline: Optional[int] = None
        """The RSS the last trim left (or the first check saw)."""

    reactor = LazyReactor()

    def startService(self) -> None:
        Service.startService(self)
        if self._trim is None or self._measure() is None:
            self.log.info("memory trimming off: no malloc_trim or no "
                          "/proc on this system")
            return
        self._threads.start()
        self._loop = LoopingCall(self.check)
        self._loop.clock = self.reactor
        self._loop.start(self.interval, now=True).addErrback(
            lambda f: self.log.failure("memory check loop ended", f))

    def stopService(self) -> Deferred:
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        return self._threads.stop() if self._threads.running else succeed(
            None)

    def check(self) -> Optional[Deferred]:
        """
        One check: in the thread, measure, and trim when the RSS grew more
        than L{slack} since the last trim.  A check while one runs is
        skipped.
        """
        if self._busy or not self._threads.running:
            return None
        self._busy = True
        d = self._threads.run(self._checkInThread, self.baseline)
        d.addCallbacks(self._checked, lambda f: self.log.failure(
            "memory trim failed", f))
        d.addBoth(self._idle)
        return d

    def _checkInThread(self, baseline: Optional[int]
                       ) -> tuple[int, Optional[int]]:
        """@return: (RSS now, RSS before the trim or L{None} for none)."""
        before = self._measure() or 0
        if baseline is not None and before - baseline <= self.slack:
            return before, None
        self._trim()
        return self._measure() or 0, before

    def _checked(self, result: tuple[int, Optional[int]]) -> None:
        after, before = result
        if before is None:
            # No trim: let the baseline follow the RSS down (memory given
            # back by itself), never up.
            if self.baseline is None or after < self.baseline:
                self.baseline = after
            return
        self.baseline = after
        self._trims.inc()
        if before > after:
            self._trimmed.inc(before - after)

    def _idle(self, _: object) -> None:
        self._busy = False
