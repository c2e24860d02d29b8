"""
The command line of C{numberok-client}: its options, their checks, and the
exit codes it ends with (docs/client.rst).
"""

from __future__ import annotations

import math
import sys
from typing import Callable

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage

from numberok.client.protocol import DEFAULT_PORT

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
    """The numberok version of this client (L{numberok.__version__})."""
    import numberok
    return numberok.__version__


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
