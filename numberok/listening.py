"""
Listening ports as services: Twisted's L{StreamServerEndpointService}, which
binds in C{privilegedStartService} (so C{twistd --uid} works with a port
under 1024, and a port that cannot be bound stops the start before any
thread or source runs), plus what the admin page needs: move to another
endpoint without a gap, switch listening off and on, tell the bound port.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger


class CannotListen(SystemExit):
    """
    A port that cannot be bound at start.  A L{SystemExit}: twistd then
    ends with exit code 1 and this one line instead of a traceback through
    its own start-up code, before the reactor (or any thread) runs.
    """


class ListeningService(StreamServerEndpointService):
    """
    Listens on a strports description while running.

    @ivar description: the endpoint now in use, e.g. C{"tcp:7700"}.
    @ivar enabled: C{False} keeps the service running without listening
        (C{[NetServer] Enable = 0}).
    @ivar port: the L{IListeningPort}, or L{None} while not listening.
    """

    log = Logger()
    _raiseSynchronously = True

    def __init__(self, description: str, factory: Any, reactor: Any = None,
                 enabled: bool = True) -> None:
        if reactor is None:
            from twisted.internet import reactor
        super().__init__(None, factory)
        self.description = description
        self.reactor = reactor
        self.enabled = enabled
        self.port: Optional[IListeningPort] = None

    def _listen(self, description: str) -> defer.Deferred:
        return serverFromString(self.reactor, description).listen(
            self.factory)

    def privilegedStartService(self) -> None:
        """Bind now (Twisted's own endpoints bind synchronously)."""
        if not self.enabled:
            Service.privilegedStartService(self)
            return
        self.endpoint = serverFromString(self.reactor, self.description)
        try:
            super().privilegedStartService()
        except Exception as e:
            self._waitingForPort = None
            raise CannotListen("numberok: cannot listen on %s: %s"
                               % (self.description, _reason(e))) from None
        self._waitingForPort.addCallback(self._listening)
        self._waitingForPort.addErrback(lambda f: self.log.failure(
            "cannot listen on {endpoint}", f, endpoint=self.description))

    def startService(self) -> None:
        Service.startService(self)
        if self.enabled and self.port is None and self._waitingForPort is None:
            self.privilegedStartService()

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self.log.info("listening on {endpoint}", endpoint=self.description)
        return port

    def stopService(self) -> defer.Deferred:
        Service.stopService(self)
        return self._close()

    def _close(self) -> defer.Deferred:
        waiting, self._waitingForPort = self._waitingForPort, None
        port, self.port = self.port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)
        if waiting is not None:
            waiting.cancel()
        return defer.succeed(None)

    def rebind(self, description: str) -> defer.Deferred:
        """
        Listen on C{description} instead.  Fails (and keeps the old port)
        when the new endpoint cannot be bound.  When the service is not
        listening (stopped or disabled) it only records the endpoint.
        """
        if not self.running or self.port is None:
            self.description = description
            return defer.succeed(None)
        d = self._listen(description)

        def bound(port: IListeningPort) -> Optional[defer.Deferred]:
            old, self.port, self.description = self.port, port, description
            self._waitingForPort = defer.succeed(port)
            self.log.info("now listening on {endpoint}", endpoint=description)
            return old.stopListening() if old is not None else None
        return d.addCallback(bound)

    def setEnabled(self, enabled: bool) -> defer.Deferred:
        """
        Listen or stop listening while the service keeps running, for the
        C{[NetServer] Enable} switch.  Live connections are not touched.
        """
        self.enabled = enabled
        if not self.running:
            return defer.succeed(None)
        if not enabled:
            return self._close()
        if self.port is not None:
            return defer.succeed(None)
        d = self._listen(self.description)
        self._waitingForPort = d
        return d.addCallback(self._listening)

    @property
    def boundPort(self) -> Optional[int]:
        """The TCP port number in use (useful with C{tcp:0} in tests)."""
        if self.port is None:
            return None
        return self.port.getHost().port


def _reason(error: BaseException) -> str:
    """Twisted's CannotListenError text, without its trailing period."""
    text = str(error).strip()
    return text[:-1] if text.endswith(".") else text
