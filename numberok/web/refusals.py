"""
L{RefusalLog}: refusals counted one by one and logged without letting an
attack flood the log -- for the admin port's own defences
(L{numberok.web.limits}) and the camera pushes (L{numberok.web.cameras}).
"""

from __future__ import annotations

from collections import Counter

from twisted.logger import Logger

from numberok.metrics import Metrics

__all__ = ["RefusalLog"]


class RefusalLog:
    """
    Logs refusals without letting an attack flood the log: the first of a
    reason at once, then at most one line per C{interval} seconds saying
    how many were left out.  The counter counts every one.

    @param counter: the labelled counter (by C{reason}) to count in;
        C{numberok_admin_refused_total} when not given.
    @param what: who refuses, the first word of the log line.
    """

    log = Logger()
    interval = 10.0

    def __init__(self, reactor, metrics: Metrics, counter=None,
                 what: str = "admin") -> None:
        self.reactor = reactor
        self.metrics = metrics
        self.counter = counter if counter is not None else metrics.adminRefused
        self.what = what
        self._last: dict[str, float] = {}
        self._unlogged: Counter[str] = Counter()

    def refused(self, reason: str, peer: str, message: str) -> None:
        self.counter.labels(reason=reason).inc()
        now = self.reactor.seconds()
        last = self._last.get(reason)
        if last is not None and now - last < self.interval:
            self._unlogged[reason] += 1
            return
        self._last[reason] = now
        self.log.warn("{what}: refused {peer}: {message} ({reason}; {more} "
                      "more not logged)", what=self.what, peer=peer,
                      message=message, reason=reason,
                      more=self._unlogged.pop(reason, 0))
