"""
The one way a service owns threads: L{ServiceThreads} starts a pool with the
service and stops it without joining on the reactor thread.

C{ThreadPool.stop()} joins every worker; called on the reactor thread it
blocks the reactor for as long as the job in flight takes (a picture
encode, a journal write).  Here the join runs in a short-lived thread of its
own and the caller gets a Deferred that fires when the pool is gone, so a
service's C{stopService} can return it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.threadpool import ThreadPool

from numberok.reactors import LazyReactor

T = TypeVar("T")


class ServiceThreads:
    """
    A thread pool owned by one service.

    @ivar name: the threads' name, for thread dumps.
    """

    def __init__(self, name: str, maxThreads: int = 1, minThreads: int = 0,
                 reactor: Optional[IReactorFromThreads] = None) -> None:
        self.name = name
        self.maxThreads = maxThreads
        self.minThreads = minThreads
        self._reactor = reactor
        self._pool: Optional[ThreadPool] = None

    reactor = LazyReactor()

    @property
    def running(self) -> bool:
        return self._pool is not None

    def start(self) -> None:
        """Start the pool (from C{startService}); starting twice is a no-op."""
        if self._pool is None:
            self._pool = ThreadPool(minthreads=self.minThreads,
                                    maxthreads=self.maxThreads, name=self.name)
            self._pool.start()

    def run(self, f: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred:
        """
        Run C{f(*args, **kwargs)} in the pool.

        @return: a Deferred firing on the reactor thread with its result.
        @raise RuntimeError: when the pool is not running (a bug: the
            service was not started, or already stopped).
        """
        if self._pool is None:
            raise RuntimeError("%s: thread pool is not running" % (self.name,))
        from twisted.internet.threads import deferToThreadPool
        return deferToThreadPool(self.reactor, self._pool, f, *args, **kwargs)

    def stop(self) -> Deferred:
        """
        Stop taking work and let the jobs already queued finish.

        @return: a Deferred that fires (with L{None}) on the reactor thread
            once every worker has ended; the reactor is never blocked on it.
        """
        pool, self._pool = self._pool, None
        if pool is None:
            return succeed(None)
        done: Deferred = Deferred()

        def join() -> None:
            try:
                pool.stop()
            finally:
                self.reactor.callFromThread(done.callback, None)

        threading.Thread(target=join, name=self.name + "-stop",
                         daemon=True).start()
        return done
