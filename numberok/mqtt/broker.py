"""
The broker's address: C{[Mqtt] Broker} (or C{--mqtt}) in Twisted's client
endpoint syntax, and the TLS context it asks for.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Optional


class BrokerError(ValueError):
    """A broker address that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """
    Where the broker is, parsed from C{tcp:host=H:port=P} or
    C{tls:host=H:port=P[:trustRoots=CA][:certificate=C:privateKey=K]}
    (positional C{tcp:H:P} works too, as with Twisted's endpoints).
    """

    host: str
    port: int
    tls: bool = False
    trustRoots: Optional[str] = None
    certificate: Optional[str] = None
    privateKey: Optional[str] = None

    def sslContext(self) -> Optional[ssl.SSLContext]:
        """The client TLS context (server certificate and host name are
        verified), or L{None} for plain TCP.  Reads files: call it in a
        thread."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.trustRoots)
        if self.certificate:
            context.load_cert_chain(self.certificate,
                                    self.privateKey or None)
        return context


def _splitEndpoint(text: str) -> list[str]:
    """Split on C{:}, honouring Twisted's C{\\:} escape."""
    parts, current, escaped = [], "", False
    for ch in text:
        if escaped:
            current += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def parseBroker(text: str) -> BrokerAddress:
    """
    Parse C{[Mqtt] Broker} (or C{--mqtt}).

    @raise BrokerError: naming what is wrong.
    """
    parts = _splitEndpoint(text.strip())
    kind = parts[0].lower()
    if kind not in ("tcp", "tls", "ssl"):
        raise BrokerError("broker %r: use tcp:host=H:port=1883 or "
                          "tls:host=H:port=8883" % (text,))
    named: dict[str, str] = {}
    positional: list[str] = []
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep:
            named[key] = value
        else:
            positional.append(part)
    allowed = {"host", "port", "trustRoots", "certificate", "privateKey",
               "timeout"}
    unknown = sorted(set(named) - allowed)
    if unknown:
        raise BrokerError("broker %r: unknown option %s"
                          % (text, ", ".join(unknown)))
    host = named.get("host") or (positional[0] if positional else "")
    portText = named.get("port") or (positional[1] if len(positional) > 1
                                     else ("8883" if kind != "tcp" else "1883"))
    if not host:
        raise BrokerError("broker %r: host is missing" % (text,))
    try:
        port = int(portText)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise BrokerError("broker %r: port must be 1..65535" % (text,))
    if kind == "tcp" and ({"trustRoots", "certificate", "privateKey"}
                          & set(named)):
        raise BrokerError("broker %r: certificates need tls:" % (text,))
    return BrokerAddress(host, port, kind != "tcp", named.get("trustRoots"),
                         named.get("certificate"), named.get("privateKey"))
