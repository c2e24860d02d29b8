"""
How a camera proves itself with a token in the URL, and how URLs reach the
access log without it: the one accepted form (C{?token=T} exactly,
L{tokenOf}) and the redaction every logged URL goes through
(L{redactedURI}).  The token's own rules (length, alphabet) are the
settings' (L{numberok.settings.fields.parseCameraToken}).
"""

from __future__ import annotations

import re
from typing import Optional

__all__ = ["BadTokenForm", "CAMERA_PATH", "TOKEN_FORM", "TOKEN_QUERY",
           "redactedURI", "tokenOf"]

CAMERA_PATH = b"/api/cameras/hikvision"
"""Where cameras push their alarms (L{numberok.web.cameras})."""

TOKEN_QUERY = re.compile(rb"token=([A-Za-z0-9._~-]*)\Z")
"""The one query a camera push may carry: C{token=T}, nothing before or
after it, nothing encoded (tokens are URL-safe: L{numberok.settings.fields.
parseCameraToken})."""

TOKEN_FORM = ("send the token as ?token=<[Cameras] Token> and nothing else "
              "in the query")


class BadTokenForm(Exception):
    """The query is not exactly C{token=T}."""


def tokenOf(request) -> Optional[bytes]:
    """
    The token of a push: L{None} without a query, else the C{T} of a query
    that is exactly C{token=T} (L{TOKEN_QUERY}).

    @raise BadTokenForm: any other query.
    """
    query = request.uri.partition(b"?")[2]
    if not query:
        return None
    match = TOKEN_QUERY.match(query)
    if match is None:
        raise BadTokenForm()
    return match.group(1)


_LOGGED_NAME = re.compile(rb"[a-z_]{1,15}\Z")


def redactedURI(uri: bytes) -> bytes:
    """
    C{uri} as the access log may show it: every query value replaced by
    C{-}, a query name kept only when it is a short lower-case word (a
    token, at least 16 characters, never is), and the path segments past
    L{CAMERA_PATH} (whatever slashes lead to it) replaced by C{-}.
    """
    path, mark, query = uri.partition(b"?")
    at = path.find(CAMERA_PATH)
    if at >= 0 and len(path) > at + len(CAMERA_PATH):
        path = path[:at + len(CAMERA_PATH)] + b"/-"
    if not mark:
        return path
    names = []
    for pair in query.replace(b";", b"&").split(b"&")[:20]:
        name, equals, _ = pair.partition(b"=")
        name = name if _LOGGED_NAME.match(name) else b"?"
        names.append(name + (b"=-" if equals else b""))
    return path + b"?" + b"&".join(names)
