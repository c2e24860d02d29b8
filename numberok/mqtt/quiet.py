"""
Warnings about what other clients of the broker send, at a bounded rate:
a broker is shared, and 20,000 garbage messages must not write megabytes
of log.  Every message is still counted in its metric; the log shows the
first few of each kind per interval, then one line saying how many were
held back.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger


class QuietLog:
    """
    At most C{burst} warnings of one kind per C{interval} seconds.

    @ivar burst: warnings of one kind written per interval.
    @ivar interval: seconds of one interval (the reactor's clock).
    """

    burst = 10
    interval = 60.0

    def __init__(self, log: Logger, reactor: IReactorTime) -> None:
        self.log = log
        self.reactor = reactor
        self._windows: dict[str, list] = {}   # kind -> [start, written, held]

    def warn(self, kind: str, format: str, **fields: Any) -> None:
        """Write C{format} unless C{kind} already used its burst."""
        now = self.reactor.seconds()
        window = self._windows.get(kind)
        if window is None or now - window[0] >= self.interval:
            if window is not None and window[2]:
                self.log.warn("mqtt: {held} more {kind} warnings held back "
                              "in {interval:.0f} s (each one is counted)",
                              held=window[2], kind=kind,
                              interval=self.interval)
            window = self._windows[kind] = [now, 0, 0]
        if window[1] < self.burst:
            window[1] += 1
            self.log.warn(format, **fields)
        else:
            window[2] += 1
