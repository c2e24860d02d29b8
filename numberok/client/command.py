"""
The C{numberok-client} command: subscribe to a NumberOk server and print
one line (or JSON object) per event, saving screenshots on request
(docs/client.rst).  The protocol itself is L{numberok.client.protocol}.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Callable, Sequence, TextIO

from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import (
    ConnectionDone,
    ConnectionRefusedError,
    DNSLookupError,
    TimeoutError,
)
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from numberok import wire
from numberok.client.output import (formatEventJSON, formatEventLine,
                                    plateRect, saveScreenshot,
                                    screenshotName)
from numberok.client.protocol import (DEFAULT_PORT, NumberOkClientProtocol,
                                      Pairs)

log = Logger()

EXIT_OK = 0
"""C{--count} events received, or the reader of our stdout went away."""
EXIT_CONNECT = 1
"""Could not connect: refused, unknown host, time-out, TLS handshake or
certificate failure; or a local failure (screenshot directory, stdout)."""
EXIT_USAGE = 2
"""Bad command line."""
EXIT_DISCONNECTED = 3
"""The server closed the connection, or it was lost."""
EXIT_PROTOCOL = 4
"""The server sent bytes that are not NumberOk packets."""


class Options(usage.Options):
    synopsis = "Usage: numberok-client [options] HOST [PORT]"
    longdesc = ("Subscribe to a NumberOk event server (default port %d) and "
                "print one line per event. Exit codes: 0 --count reached, "
                "1 could not connect, 2 bad arguments, 3 disconnected, "
                "4 protocol error." % (DEFAULT_PORT,))

    optFlags = [
        ["json", None, "Print one JSON object per event instead of a line."],
        ["tls", None, "Connect with TLS, checking the server's certificate "
                      "for HOST."],
    ]
    optParameters = [
        ["save-screenshots", None, None,
         "Save each event's JPEG in this directory (created if missing) as "
         "<RuntimeID>_<State>_<n>.jpg."],
        ["timeout", None, None,
         "Print a line to stderr each time no event arrived for this many "
         "seconds (the client keeps running)."],
        ["count", None, None, "Exit 0 after this many events."],
        ["ca", None, None,
         "PEM file of the CA that signed the server's certificate; "
         "implies --tls (which otherwise trusts the system's CAs)."],
    ]

    def opt_version(self) -> None:
        """Print numberok's version and exit."""
        print("numberok-client (numberok) %s" % (numberokVersion(),))
        sys.exit(EXIT_OK)

    def parseOptions(self, options=None) -> None:
        """
        As L{usage.Options.parseOptions}, but options may also follow HOST
        and PORT (C{numberok-client 10.0.0.5 --json}), as people type them;
        plain C{getopt} would stop at HOST.
        """
        if options is None:
            options = sys.argv[1:]
        super().parseOptions(_optionsFirst(options, self.longOpt))

    def parseArgs(self, host: str, port: str = str(DEFAULT_PORT)) -> None:
        if not host:
            raise usage.UsageError("HOST must not be empty")
        self["host"] = host
        self["port"] = _parseInt("PORT", port, 1, 65535)

    def postOptions(self) -> None:
        if self["count"] is not None:
            self["count"] = _parseInt("--count", self["count"], 1, None)
        if self["timeout"] is not None:
            try:
                seconds = float(self["timeout"])
            except ValueError:
                seconds = math.nan
            if not (seconds > 0 and math.isfinite(seconds)):
                raise usage.UsageError(
                    "--timeout must be a number of seconds above 0, not %r"
                    % (self["timeout"],))
            self["timeout"] = seconds
        self["trustRoot"] = None
        if self["ca"] is not None:
            self["tls"] = True
        if self["tls"]:
            self["trustRoot"] = _loadTrustRoot(self["ca"])


def numberokVersion() -> str:
    """
    The installed numberok's version, from the package metadata; a
    checkout run without installing says so rather than guessing.
    """
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("numberok")
    except PackageNotFoundError:
        import numberok
        return getattr(numberok, "__version__", "unknown (not installed)")


def _optionsFirst(arguments: list[str], longOpt: list[str]) -> list[str]:
    """
    C{arguments} with every option (and the value of an option that takes
    one) moved before the positional arguments, order otherwise kept.
    Everything after C{--} stays positional.
    """
    takesValue = {"--" + o[:-1] for o in longOpt if o.endswith("=")}
    options: list[str] = []
    positional: list[str] = []
    rest = iter(arguments)
    for argument in rest:
        if argument == "--":
            positional += ["--"] + list(rest)
            break
        if argument.startswith("-") and argument != "-":
            options.append(argument)
            value = next(rest, None) if argument in takesValue else None
            if value is not None:
                options.append(value)
        else:
            positional.append(argument)
    return options + positional


def _parseInt(name: str, text: str, low: int, high: int | None) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        allowed = ("from %d to %d" % (low, high) if high is not None
                   else "of at least %d" % (low,))
        raise usage.UsageError("%s must be a whole number %s, not %r"
                               % (name, allowed, text))
    return value


def _loadTrustRoot(caPath: str | None) -> object:
    """
    The trust root for C{--tls}: the certificate in C{caPath}, or the
    platform's CAs.  Done while parsing options so that a missing TLS
    library or an unreadable CA file is a usage error, not a failed
    connection.
    """
    try:
        from twisted.internet import ssl
    except ImportError as e:
        raise usage.UsageError(
            "--tls needs pyOpenSSL and service_identity "
            "(pip install 'Twisted[tls]'): %s" % (e,)) from None
    if caPath is None:
        return ssl.platformTrust()
    try:
        with open(caPath, "rb") as fh:
            return ssl.Certificate.loadPEM(fh.read())
    except OSError as e:
        raise usage.UsageError("cannot read CA certificate %s: %s"
                               % (caPath, e.strerror or e)) from None
    except Exception as e:
        raise usage.UsageError("%s holds no PEM certificate: %s"
                               % (caPath, e)) from None


InThread = Callable[..., Deferred]


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
        self._enqueue(lambda: self._emit(n, pairs, jpeg))

    def _enqueue(self, step: Callable[[], object]) -> None:
        """Run C{step} after every step queued before it has finished."""
        self._chain.addCallback(lambda _: step())
        self._chain.addErrback(self._internalError)

    def _internalError(self, f: Failure) -> None:
        # A bug of ours must not stall the output chain (and so the exit).
        log.failure("numberok-client output failed", f)
        self.warn("internal error: %s" % (f.getErrorMessage(),))

    def _emit(self, n: int, pairs: Pairs, jpeg: bytes) -> Deferred | None:
        directory = self.options["save-screenshots"]
        if not jpeg or directory is None:
            self._print(n, pairs, len(jpeg), None)
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
        d.addCallback(lambda saved: self._print(n, pairs, len(jpeg), saved))
        return d

    def _print(self, n: int, pairs: Pairs, jpegBytes: int,
               screenshot: str | None) -> None:
        self._backlog -= 1
        if (self._paused and self._backlog <= self.resumeBacklog
                and not self._lost and self._exitCode is None):
            self._paused = False
            self.protocol.transport.resumeProducing()
        fmt = formatEventJSON if self.options["json"] else formatEventLine
        try:
            self.out.write(fmt(pairs, jpegBytes, screenshot) + "\n")
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


