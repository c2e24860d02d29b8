"""
Sources of raw plate reads: each one a Service that feeds an
L{numberok.interfaces.IPlateReadSink} and nothing else.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from numberok.events import PlateRead
from numberok.interfaces import IPlateReadSink

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


def startWorker(reactor, name: str) -> tuple[ThreadPool,
                                              Callable[..., Deferred]]:
    """
    Start the one worker thread a source owns for its blocking work (frame
    rendering, file reading), so it never runs on the reactor thread.

    @return: the pool (the source stops it in C{stopService}) and
        C{run(f, *args) -> Deferred} that runs C{f} on that thread.
    """
    from twisted.internet.threads import deferToThreadPool
    pool = ThreadPool(minthreads=0, maxthreads=1, name=name)
    pool.start()
    return pool, lambda f, *args: deferToThreadPool(reactor, pool, f, *args)


class ThreadedSource(Service):
    """
    The shared life of a source that does blocking work: an injected
    reactor (the global one, looked up when first needed, by default) and
    one worker thread of its own, started with the service and stopped with
    it.  Tests inject C{runInThread} (C{f(callable, *args) -> Deferred}) to
    run that work synchronously; then no thread is started.

    @cvar workerName: the worker thread's name, for thread dumps.
    """

    workerName = "numberok-source"

    def __init__(self, reactor=None,
                 runInThread: Optional[Callable[..., Deferred]] = None) -> None:
        self._reactor = reactor
        self._runInThread = runInThread
        self._pool: Optional[ThreadPool] = None

    def _getReactor(self):
        if self._reactor is None:
            from twisted.internet import reactor
            self._reactor = reactor
        return self._reactor

    def _startWorker(self) -> Callable[..., Deferred]:
        """Start the worker (unless one is injected); return its runner."""
        if self._runInThread is not None:
            return self._runInThread
        self._pool, run = startWorker(self._getReactor(), self.workerName)
        return run

    def _stopWorker(self) -> None:
        """Stop the worker; waits for the job in flight to finish."""
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
