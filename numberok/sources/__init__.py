"""
Sources of raw plate reads: each one a Service that feeds an
L{numberok.interfaces.IPlateReadSink} and nothing else.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from numberok.events import PlateRead
from numberok.interfaces import IPlateReadSink
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.reactors import LazyReactor
from numberok.threads import ServiceThreads

_log = Logger(namespace="numberok.sources")


def handOver(sink: IPlateReadSink, read: PlateRead, where: str) -> bool:
    """
    Give C{read} to C{sink}.  A sink that fails (a bug: the analytics never
    raise for a valid read) is logged, naming where the read came from, and
    reported as C{False} rather than raised: one read must not stop a
    source, nor reach the reactor as an exception.
    """
    try:
        sink.addRead(read)
    except Exception:
        _log.failure("read sink failed on a read from {where} ({plate})",
                     where=where, plate=read.plate)
        return False
    return True


class ThreadedSource(Service):
    """
    The shared life of a source that does blocking work: an injected
    reactor (the global one, looked up when first needed, by default), the
    server's L{Metrics} (a private one by default) and one worker thread of
    its own (L{ServiceThreads}), started with the service and stopped with
    it off the reactor thread.  Tests inject C{runInThread}
    (C{f(callable, *args) -> Deferred}) to run that work synchronously;
    then no thread is started.

    The reads a source hands on are counted by the analytics
    (C{numberok_reads_total}), not here: a source counts only what it
    alone knows, such as the lines or files it refused
    (C{numberok_read_errors_total}).

    @cvar workerName: the worker thread's name, for thread dumps.
    """

    workerName = "numberok-source"
    reactor = LazyReactor()

    def __init__(self, reactor: Optional[IReactorTime] = None,
                 runInThread: Optional[Callable[..., Deferred]] = None,
                 metrics: Optional[Metrics] = None) -> None:
        self.metrics = metricsOrPrivate(metrics)
        self._reactor = reactor
        self._runInThread = runInThread
        self._threads: Optional[ServiceThreads] = None

    def _startWorker(self) -> Callable[..., Deferred]:
        """Start the worker (unless one is injected); return its runner."""
        if self._runInThread is not None:
            return self._runInThread
        self._threads = ServiceThreads(self.workerName, 1,
                                       reactor=self.reactor)
        self._threads.start()
        return self._threads.run

    def _stopWorker(self) -> Deferred:
        """
        Stop the worker: the job in flight finishes first.

        @return: a Deferred firing once the thread is gone (at once with
            an injected runner).
        """
        threads, self._threads = self._threads, None
        if threads is None:
            return succeed(None)
        return threads.stop()
