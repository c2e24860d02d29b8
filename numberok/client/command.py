"""
The C{numberok-client} command: subscribe to a NumberOk server and print
one line (or JSON object) per event, saving screenshots on request
(docs/client.rst).  The protocol itself is L{numberok.client.protocol}.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence, TextIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from numberok.client.options import (
    EXIT_CONNECT,
    EXIT_DISCONNECTED,
    EXIT_OK,
    EXIT_PROTOCOL,
    EXIT_USAGE,
    InThread,
    Options,
)
from numberok.client.session import _CommandClientProtocol, _Session

__all__ = ["EXIT_CONNECT", "EXIT_DISCONNECTED", "EXIT_OK", "EXIT_PROTOCOL",
           "EXIT_USAGE", "Options", "main", "run"]

log = Logger()


def _connectFailure(where: str, f: Failure) -> str:
    if f.check(ConnectionRefusedError):
        return "connection refused by %s (is the server running?)" % (where,)
    if f.check(DNSLookupError):
        return "cannot resolve %s: %s" % (where, f.getErrorMessage())
    if f.check(TimeoutError):
        return "timed out connecting to %s" % (where,)
    return "cannot connect to %s: %s" % (where, f.getErrorMessage())


def run(reactor, options: Options, out: TextIO | None = None,
        err: TextIO | None = None,
        inThread: InThread | None = None,
        stopOnShutdown: bool = False) -> Deferred[int]:
    """
    The command without the process around it: connect, subscribe, print
    events until done.  Never fails: every outcome is an exit code, its
    reason already written to C{err}.

    @param options: parsed L{Options}.
    @param out: where events go (default C{sys.stdout}), flushed per line.
    @param err: where messages go (default C{sys.stderr}).
    @param inThread: C{inThread(f, *args, **kwargs)} runs the blocking
        disk work C{f} (creating the screenshot directory, writing a
        screenshot) and returns a Deferred of its result; the default runs
        it in the reactor's thread pool so the reactor never waits on the
        disk.
    @param stopOnShutdown: when the reactor shuts down (Ctrl-C, SIGTERM),
        close the connection and exit 0 quietly.  For a process that owns
        its reactor; tests leave it off so no trigger outlives them.
    @return: a Deferred firing with the exit code.
    """
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
    from twisted.internet.threads import deferToThreadPool

    if inThread is None:
        def inThread(f, *args, **kwargs) -> Deferred:
            return deferToThreadPool(reactor, reactor.getThreadPool(),
                                     f, *args, **kwargs)

    session = _Session(reactor, options,
                       sys.stdout if out is None else out,
                       sys.stderr if err is None else err, inThread)
    host, port = options["host"], options["port"]
    if stopOnShutdown:
        reactor.addSystemEventTrigger("before", "shutdown",
                                      session.stop, EXIT_OK)

    def makeDirectory() -> Deferred:
        directory = options["save-screenshots"]
        if directory is None:
            return succeed(None)
        return inThread(os.makedirs, directory, exist_ok=True)

    def connect(_: object) -> Deferred:
        endpoint = HostnameEndpoint(reactor, host, port)
        if options["tls"]:
            from twisted.internet.ssl import optionsForClientTLS
            endpoint = wrapClientTLS(
                optionsForClientTLS(host, trustRoot=options["trustRoot"]),
                endpoint)
        factory = Factory.forProtocol(lambda: _CommandClientProtocol(session))
        d = endpoint.connect(factory)
        d.addCallbacks(lambda _: session.done, connectFailed)
        return d

    def directoryFailed(f: Failure) -> int:
        session.warn("cannot create screenshot directory %s: %s"
                     % (options["save-screenshots"], f.getErrorMessage()))
        return EXIT_CONNECT

    def connectFailed(f: Failure) -> int:
        session.warn(_connectFailure(session.where, f))
        return EXIT_CONNECT

    def unexpected(f: Failure) -> int:
        session.warn("internal error: %s" % (f.getErrorMessage(),))
        log.failure("numberok-client failed", f)
        return EXIT_CONNECT

    d = makeDirectory()
    d.addCallbacks(connect, directoryFailed)
    d.addErrback(unexpected)
    return d


def main(argv: Sequence[str] | None = None) -> None:
    """
    The C{numberok-client} console script: parse C{argv} (default
    C{sys.argv[1:]}), run until done, exit with the code of L{run}.
    """
    from twisted.internet.task import react

    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as e:
        sys.stderr.write("numberok-client: %s (see numberok-client --help)\n"
                         % (e,))
        sys.exit(EXIT_USAGE)
    for stream in (sys.stdout, sys.stderr):
        # A plate in a script the terminal cannot show must not end the run.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")

    def exitWith(code: int) -> Failure | None:
        return Failure(SystemExit(code)) if code else None

    react(lambda reactor: run(reactor, options, stopOnShutdown=True)
          .addCallback(exitWith))


