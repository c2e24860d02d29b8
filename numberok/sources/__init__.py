"""
Sources of raw plate reads: each one a Service that feeds an
L{numberok.interfaces.IPlateReadSink} and nothing else.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred
from twisted.python.threadpool import ThreadPool


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
