"""
strports endpoint descriptions as text: the one place that splits and joins
them, with Twisted's escaping (C{\\:} is a colon inside a value, as in an
IPv6 interface C{tcp:7700:interface=\\:\\:1}).

Used to move a port while keeping its other options (the admin page's Port
field) and to decide whether an endpoint is reachable from the network.
"""

from __future__ import annotations

import ipaddress


def splitDescription(description: str) -> list[str]:
    """
    Split a strports description on unescaped C{:} as Twisted does; the
    parts come back unescaped (C{\\:} becomes C{:}).
    """
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def quoteValue(text: str) -> str:
    """Escape C{\\} and C{:} in one part, the inverse of the split."""
    return text.replace("\\", "\\\\").replace(":", "\\:")


def joinDescription(parts: list[str]) -> str:
    """Join unescaped parts into a description (inverse of the split)."""
    return ":".join(quoteValue(part) for part in parts)


def endpointWithPort(description: str, port: int) -> str:
    """
    C{description} with its port replaced: C{"tcp:7700:interface=::1"} and
    8000 give C{"tcp:8000:interface=::1"}; other options (TLS keys, the
    interface) stay, so changing the port on the admin page keeps them.  A
    description without a port gets one after its kind.
    """
    parts = splitDescription(description)
    if len(parts) == 1:
        # "7700" alone is a tcp port in strports' old shorthand.
        return joinDescription(["tcp", str(port)])
    head, rest = parts[0], parts[1:]
    for i, part in enumerate(rest):
        if part.isdigit():
            rest[i] = str(port)
            return joinDescription([head] + rest)
        if part.startswith("port="):
            rest[i] = "port=%d" % (port,)
            return joinDescription([head] + rest)
    return joinDescription([head, str(port)] + rest)


def addressText(address: object) -> str:
    """A peer's address as C{host:port} for logs (the object's own text for
    address types without a host, a UNIX socket say)."""
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    return "%s:%s" % (host, getattr(address, "port", "?"))


def hostText(address: object) -> str:
    """A peer's host alone, what login throttles and per-address caps count
    by; C{"local"} for address types without a host (a UNIX socket)."""
    host = getattr(address, "host", None)
    return str(host) if host else "local"


def isLoopbackHost(host: str) -> bool:
    """C{localhost}, C{127.0.0.0/8} or C{::1} (brackets allowed)."""
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def isLoopbackEndpoint(description: str) -> bool:
    """
    Whether a strports server description only accepts connections from
    this machine: a TCP/SSL endpoint with a loopback C{interface}, or a
    UNIX socket.  Anything else (no interface means every interface) is
    reachable from the network.
    """
    parts = splitDescription(description)
    kind = parts[0].lower() if len(parts) > 1 else "tcp"
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6", "ssl"):
        return False
    positional = [p for p in parts[1:] if "=" not in p]
    options = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    interface = options.get("interface")
    if interface is None and kind in ("tcp", "tcp6") and len(positional) >= 3:
        interface = positional[2]
    return bool(interface) and isLoopbackHost(interface)
