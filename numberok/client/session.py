"""
One run of C{numberok-client}: the connection's protocol and the session
that prints events, saves pictures and decides the exit code.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, TextIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectionDone,
)
from twisted.internet.interfaces import IHandshakeListener
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok import wire
from numberok.client.options import (
    EXIT_CONNECT,
    EXIT_DISCONNECTED,
    EXIT_OK,
    EXIT_PROTOCOL,
    InThread,
    Options,
)
from numberok.client.output import (
    formatEventJSON,
    formatEventLine,
    plateRect,
    saveScreenshot,
    screenshotName,
)
from numberok.client.protocol import NumberOkClientProtocol, Pairs

log = Logger()


@implementer(IHandshakeListener)
class _CommandClientProtocol(NumberOkClientProtocol):
    """The protocol of the command: hands everything to its L{_Session}."""

    def __init__(self, session: _Session) -> None:
        self.session = session

    def connectionMade(self) -> None:
        super().connectionMade()
        self.session.connected(self)

    def handshakeCompleted(self) -> None:
        self.session.tlsReady = True

    def eventReceived(self, pairs: Pairs, jpeg: bytes) -> None:
        self.session.eventReceived(pairs, jpeg)

    def malformedEventReceived(self, data: bytes,
                               error: wire.WireError) -> None:
        super().malformedEventReceived(data, error)
        self.session.warn("skipped a malformed event: %s" % (error,))

    def protocolError(self, error: wire.WireError) -> None:
        super().protocolError(error)
        self.session.protocolError(error)

    def connectionLost(self, reason: Failure = ConnectionDone()) -> None:
        self.session.connectionLost(reason)


class _Session:
    """
    One run of the command: output in arrival order, screenshots written in
    threads, the silence timer, and the exit code in L{done}.

    Output goes through one Deferred chain so that a line is printed only
    after its screenshot is on disk (the line names the file) and lines stay
    in event order while the reactor goes on reading.  When that chain falls
    behind (a slow disk) the transport is paused, so memory stays bounded by
    L{maxBacklog} events.
    """

    maxBacklog = 64
    resumeBacklog = 16

    def __init__(self, reactor, options: Options, out: TextIO, err: TextIO,
                 inThread: InThread) -> None:
        self.reactor = reactor
        self.options = options
        self.out = out
        self.err = err
        self.inThread = inThread
        self.where = "%s:%d" % (options["host"], options["port"])
        self.done: Deferred[int] = Deferred()
        self.received = 0
        self.tlsReady = False
        self.protocol: _CommandClientProtocol | None = None
        self._chain: Deferred[None] = succeed(None)
        self._backlog = 0
        self._paused = False
        self._exitCode: int | None = None
        self._message: str | None = None
        self._silence = None
        self._silentFor = 0.0
        self._lost = False

    # messages

    def warn(self, message: str) -> None:
        try:
            self.err.write("numberok-client: %s\n" % (message,))
            self.err.flush()
        except OSError:
            pass

    # connection life

    def connected(self, protocol: _CommandClientProtocol) -> None:
        self.protocol = protocol
        self._armSilence()

    def stop(self, code: int, message: str | None = None) -> None:
        """
        Decide the exit code (the first decision wins) and close the
        connection; L{done} fires once it is closed and the output is out.
        """
        if self._exitCode is not None:
            return
        self._exitCode, self._message = code, message
        self._cancelSilence()
        if not self._lost and self.protocol is not None:
            # connectionLost then queues the end after the pending output.
            self.protocol.transport.loseConnection()
            if self._paused:
                self.protocol.transport.resumeProducing()

    def protocolError(self, error: wire.WireError) -> None:
        self.stop(EXIT_PROTOCOL, "protocol error from %s after %d events: %s"
                  % (self.where, self.received, error))

    def connectionLost(self, reason: Failure) -> None:
        self._lost = True
        self._cancelSilence()
        if self._exitCode is None:
            code, message = self._lossVerdict(reason)
            self._exitCode, self._message = code, message
        self._enqueue(self._finish)

    def _lossVerdict(self, reason: Failure) -> tuple[int, str]:
        if (self.options["tls"] and not self.tlsReady
                and not reason.check(ConnectionDone)):
            return EXIT_CONNECT, ("TLS handshake with %s failed: %s"
                                  % (self.where, reason.getErrorMessage()))
        how = ("server closed the connection" if reason.check(ConnectionDone)
               else "connection lost (%s)" % (reason.getErrorMessage(),))
        if self.received == 0:
            return EXIT_DISCONNECTED, (
                "%s: %s before sending any event (connection limit reached "
                "or this client not allowed?)" % (self.where, how))
        return EXIT_DISCONNECTED, ("%s: disconnected after %d events: %s"
                                   % (self.where, self.received, how))

    def _finish(self) -> None:
        if self.done.called:
            return
        if self._message:
            self.warn(self._message)
        self.done.callback(self._exitCode)

    # events

    def eventReceived(self, pairs: Pairs, jpeg: bytes) -> None:
        count = self.options["count"]
        if self._exitCode is not None or (
                count is not None and self.received >= count):
            # Done, or --count reached while earlier screenshots are still
            # being saved: events of the same read are not ours to print.
            return
        self.received += 1
        n = self.received
        self._silentFor = 0.0
        self._armSilence()
        if count is not None and n >= count:
            self._cancelSilence()
        self._backlog += 1
        if self._backlog > self.maxBacklog and not self._paused:
            self._paused = True
            self.protocol.transport.pauseProducing()
        # The readable line leads with when the event arrived (docs/client.rst).
        arrivedMs = int(self.reactor.seconds() * 1000)
        self._enqueue(lambda: self._emit(n, pairs, jpeg, arrivedMs))

    def _enqueue(self, step: Callable[[], object]) -> None:
        """Run C{step} after every step queued before it has finished."""
        self._chain.addCallback(lambda _: step())
        self._chain.addErrback(self._internalError)

    def _internalError(self, f: Failure) -> None:
        # A bug of ours must not stall the output chain (and so the exit).
        log.failure("numberok-client output failed", f)
        self.warn("internal error: %s" % (f.getErrorMessage(),))

    def _emit(self, n: int, pairs: Pairs, jpeg: bytes,
              arrivedMs: int) -> Deferred | None:
        directory = self.options["save-screenshots"]
        if not jpeg or directory is None:
            self._print(n, pairs, len(jpeg), None, arrivedMs)
            return None
        path = os.path.join(directory, screenshotName(pairs, n))

        def failed(f: Failure) -> None:
            self.warn("cannot save screenshot %s: %s"
                      % (path, f.getErrorMessage()))
            return None

        def saved(problem: str | None) -> str:
            if problem is not None:
                self.warn("cannot save %s" % (problem,))
            return path

        d = self.inThread(saveScreenshot, path, jpeg, plateRect(pairs))
        d.addCallbacks(saved, failed)
        d.addCallback(lambda saved: self._print(n, pairs, len(jpeg), saved,
                                                arrivedMs))
        return d

    def _print(self, n: int, pairs: Pairs, jpegBytes: int,
               screenshot: str | None, arrivedMs: int) -> None:
        self._backlog -= 1
        if (self._paused and self._backlog <= self.resumeBacklog
                and not self._lost and self._exitCode is None):
            self._paused = False
            self.protocol.transport.resumeProducing()
        if self.options["json"]:
            line = formatEventJSON(pairs, jpegBytes, screenshot)
        else:
            line = formatEventLine(pairs, jpegBytes, screenshot, arrivedMs)
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except BrokenPipeError:
            # Whoever read our output (| head) is done: so are we.
            if self.out is sys.stdout:
                # Python's flush at exit would complain about the pipe again.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            self.stop(EXIT_OK)
            return
        except OSError as e:
            self.stop(EXIT_CONNECT, "cannot write output: %s" % (e,))
            return
        count = self.options["count"]
        if count is not None and n >= count:
            self.stop(EXIT_OK)

    # silence

    def _armSilence(self) -> None:
        timeout = self.options["timeout"]
        if timeout is None or self._exitCode is not None:
            return
        self._cancelSilence()
        self._silence = self.reactor.callLater(timeout, self._silent)

    def _cancelSilence(self) -> None:
        if self._silence is not None and self._silence.active():
            self._silence.cancel()
        self._silence = None

    def _silent(self) -> None:
        self._silence = None
        self._silentFor += self.options["timeout"]
        self.warn("no events for %g s" % (self._silentFor,))
        self._armSilence()
