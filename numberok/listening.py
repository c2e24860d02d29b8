"""
Listening ports as services: a L{ListeningService} holds the
L{IListeningPort} a strports endpoint's C{listen} gives, and binds in
C{privilegedStartService} (so C{twistd --uid} works with a port under 1024,
and a port that cannot be bound stops the start before any thread or source
runs), plus what the admin page needs: move to another endpoint without a
gap, switch listening off and on, tell the bound port.

It is composed from public Twisted API alone (C{serverFromString},
C{IStreamServerEndpoint.listen}, C{IListeningPort}) rather than a subclass
of C{StreamServerEndpointService}, whose synchronous errors and rebinding
would need its private attributes.
"""

from __future__ import annotations

from typing import Optional

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from numberok.reactors import LazyReactor


class CannotListen(SystemExit):
    """
    A port that cannot be bound at start.  A L{SystemExit}: twistd then
    ends with exit code 1 and this one line instead of a traceback through
    its own start-up code, before the reactor (or any thread) runs.
    """


class ListeningService(Service):
    """
    Listens on a strports description while running.

    @ivar description: the endpoint now in use, e.g. C{"tcp:7700"}.
    @ivar factory: the protocol factory the port serves.
    @ivar enabled: C{False} keeps the service running without listening
        (C{[NetServer] Enable = 0}).
    @ivar port: the L{IListeningPort}, or L{None} while not listening.
    """

    log = Logger()
    reactor = LazyReactor()

    def __init__(self, description: str, factory: Factory,
                 reactor: Optional[IReactorTCP] = None,
                 enabled: bool = True) -> None:
        self.description = description
        self.factory = factory
        self._reactor = reactor
        self.enabled = enabled
        self.port: Optional[IListeningPort] = None
        self._pending: Optional[defer.Deferred] = None

    def _listen(self, description: str) -> defer.Deferred:
        return serverFromString(self.reactor, description).listen(
            self.factory)

    def privilegedStartService(self) -> None:
        """
        Bind now.  Twisted's own endpoints (tcp, ssl, unix) listen before
        C{listen} returns, so a port that cannot be bound raises
        L{CannotListen} here; an endpoint that binds later is waited for
        (and its failure logged).
        """
        Service.privilegedStartService(self)
        if self.enabled and self.port is None and self._pending is None:
            self._bind()

    def _bind(self) -> None:
        binding = True
        refused: list[Failure] = []

        def failed(failure: Failure) -> None:
            self._pending = None
            if binding:
                refused.append(failure)
            elif not failure.check(defer.CancelledError):
                self.log.failure("cannot listen on {endpoint}", failure,
                                 endpoint=self.description)

        self._pending = self._listen(self.description)
        self._pending.addCallbacks(self._listening, failed)
        binding = False
        if refused:
            raise CannotListen("numberok: cannot listen on %s: %s"
                               % (self.description,
                                  _reason(refused[0].value)))

    def startService(self) -> None:
        Service.startService(self)
        if self.enabled and self.port is None and self._pending is None:
            self._bind()

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self._pending = None
        self.port = port
        self.log.info("listening on {endpoint}", endpoint=self.description)
        return port

    def stopService(self) -> defer.Deferred:
        Service.stopService(self)
        return self._close()

    def _close(self) -> defer.Deferred:
        pending, self._pending = self._pending, None
        port, self.port = self.port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)
        if pending is not None:
            pending.cancel()
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
