"""
C{multipart/form-data} bodies, for the HTTP edges that take them: camera
alarms (L{numberok.sources.hikvision}) and pushed reads
(L{numberok.web.ingest}).  One splitter, so both refuse the same things the
same way.

Our own parser, not the standard library's C{email} package: that one's
header parsing is quadratic in the number of parameters (a
C{Content-Disposition} with 50,000 parameters took 11.8 s and 452 MB),
recursive on RFC 822 comments (a C{Content-Type} of 100,000 C{(} raised
RecursionError) and follows nested multiparts without a bound.  Here
every step is one linear scan, and everything is bounded before it is
looked at: the request's C{Content-Type} (L{MAX_CONTENT_TYPE_BYTES}), the
parts (counted with one C{bytes.count} before anything is split), each
part's header block (L{MAX_HEADER_BYTES}, L{MAX_HEADERS} lines) and each
header's parameters (L{MAX_PARAMETERS}); a part that is itself multipart
is refused (no camera or recognizer nests).  Whatever is wrong raises
L{ReadFormatError} naming the field (C{Content-Type},
C{parts[1].Content-Disposition}, ...), and nothing else.

Pure and blocking (a body may be megabytes): callers run it in a thread.
"""

from __future__ import annotations

import binascii
import re
from typing import NamedTuple
from urllib.parse import unquote

from numberok.sources.formats import ReadFormatError

__all__ = ["Part", "multipartParts", "parseHeaderValue"]

MAX_CONTENT_TYPE_BYTES = 1024
"""The longest C{Content-Type} (request or part) taken."""
MAX_HEADER_BYTES = 4096
"""The largest header block of one part: a name, a file name and a type
fit many times over."""
MAX_HEADERS = 8
"""Header lines of one part at most (form-data uses two or three)."""
MAX_PARAMETERS = 8
"""Parameters of one header value at most (form-data uses two)."""
MAX_BOUNDARY = 70
"""RFC 2046's longest boundary."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_MEDIA_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_IDENTITY_ENCODINGS = ("", "7bit", "8bit", "binary")


class Part(NamedTuple):
    """
    One part of a body.  C{name} and C{filename} are as sent (empty when
    missing); C{contentType} is lower case (C{text/plain} when missing).
    """

    name: str
    filename: str
    contentType: str
    payload: bytes


def _quoted(value: str, start: int, field: str) -> tuple[str, int]:
    """The quoted string starting at C{value[start] == '"'}: its text and
    the index after its closing quote."""
    out = []
    i, end = start + 1, len(value)
    while i < end:
        ch = value[i]
        if ch == "\\" and i + 1 < end:
            out.append(value[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ReadFormatError(field, "a quoted parameter value is not closed")


def _extended(value: str, field: str) -> str:
    """An RFC 2231 / 5987 value (C{utf-8''%D0%BA.jpg}) decoded."""
    charset, _, rest = value.partition("'")
    _, _, encoded = rest.partition("'")
    try:
        return unquote(encoded, encoding=charset or "utf-8",
                       errors="strict")
    except (LookupError, UnicodeDecodeError):
        raise ReadFormatError(field, "a parameter in charset %r that does "
                              "not decode" % (charset[:20],)) from None


def parseHeaderValue(value: str, field: str,
                     maxParameters: int = MAX_PARAMETERS
                     ) -> tuple[str, dict[str, str]]:
    """
    A header value of the C{Content-Type} / C{Content-Disposition} shape:
    C{main; name=value; name="quoted value"; name*=utf-8''encoded}.

    One left-to-right scan; at most C{maxParameters} parameters.

    @return: the main value (lower case, stripped) and the parameters by
        lower-case name (an extended C{name*} wins over C{name}).
    @raise ReadFormatError: naming C{field}.
    """
    main, sep, rest = value.partition(";")
    params: dict[str, str] = {}
    i, end = 0, len(rest)
    count = 0
    while sep and i < end:
        while i < end and rest[i] in " \t;":
            i += 1
        if i >= end:
            break
        count += 1
        if count > maxParameters:
            raise ReadFormatError(field, "more than %d parameters"
                                  % (maxParameters,))
        equals = rest.find("=", i)
        semicolon = rest.find(";", i)
        if equals < 0 or 0 <= semicolon < equals:
            raise ReadFormatError(field, "a parameter without a value")
        name = rest[i:equals].strip().lower()
        if not _TOKEN.match(name):
            raise ReadFormatError(field, "a parameter name that is not a "
                                  "token: %r" % (name[:40],))
        i = equals + 1
        while i < end and rest[i] in " \t":
            i += 1
        if i < end and rest[i] == '"':
            text, i = _quoted(rest, i, field)
        else:
            stop = rest.find(";", i)
            stop = end if stop < 0 else stop
            text, i = rest[i:stop].strip(), stop
        if name.endswith("*"):
            params[name[:-1]] = _extended(text, field)
        else:
            params.setdefault(name, text)
    return main.strip().lower(), params


def _headers(block: bytes, where: str) -> dict[str, str]:
    """A part's header lines by lower-case name (folded lines joined)."""
    lines: list[str] = []
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            text = line.decode("latin-1")
        if text[:1] in (" ", "\t") and lines:
            lines[-1] += " " + text.strip()
        elif text:
            lines.append(text)
    if len(lines) > MAX_HEADERS:
        raise ReadFormatError(where, "more than %d header lines"
                              % (MAX_HEADERS,))
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not _TOKEN.match(name.strip()):
            raise ReadFormatError(where, "a header line that is not "
                                  "'Name: value': %r" % (line[:40],))
        headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _decode(payload: bytes, encoding: str, field: str) -> bytes:
    if encoding in _IDENTITY_ENCODINGS:
        return payload
    try:
        if encoding == "base64":
            return binascii.a2b_base64(payload)
        if encoding == "quoted-printable":
            return binascii.a2b_qp(payload)
    except binascii.Error as e:
        raise ReadFormatError(field, "not %s: %s" % (encoding, e)) from None
    raise ReadFormatError(field, "%r is not accepted: send the part as "
                          "binary" % (encoding[:40],))


def _part(index: int, data: bytes) -> Part:
    """One part (between its delimiter line and the next delimiter)."""
    where = "parts[%d]" % (index,)
    if data.startswith(b"\r\n") or data.startswith(b"\n"):
        block, payload = b"", data[2 if data[:1] == b"\r" else 1:]
    else:
        head = data[:MAX_HEADER_BYTES + 4]
        cut = [(p, n) for p, n in ((head.find(b"\r\n\r\n"), 4),
                                   (head.find(b"\n\n"), 2)) if p >= 0]
        if not cut:
            raise ReadFormatError(where, "header block larger than %d bytes, "
                                  "or not ended by an empty line"
                                  % (MAX_HEADER_BYTES,))
        at, length = min(cut)
        block, payload = data[:at], data[at + length:]
    headers = _headers(block, where)
    disposition = headers.get("content-disposition", "")
    if len(disposition) > MAX_CONTENT_TYPE_BYTES:
        raise ReadFormatError(where + ".Content-Disposition",
                              "longer than %d bytes"
                              % (MAX_CONTENT_TYPE_BYTES,))
    _, params = parseHeaderValue(disposition, where + ".Content-Disposition")
    kind = "text/plain"
    if "content-type" in headers:
        field = where + ".Content-Type"
        kind, _ = parseHeaderValue(headers["content-type"], field)
        if not _MEDIA_TYPE.match(kind):
            raise ReadFormatError(field, "%r is not a media type"
                                  % (kind[:40],))
        if kind.startswith("multipart/"):
            raise ReadFormatError(field, "nested multipart is not accepted")
    encoding = headers.get("content-transfer-encoding", "").lower()
    payload = _decode(payload, encoding,
                      where + ".Content-Transfer-Encoding")
    return Part(params.get("name", ""), params.get("filename", ""), kind,
                payload)


def boundaryOf(contentType: str) -> bytes:
    """
    The delimiter (C{--} and the boundary) a request's C{Content-Type}
    names.

    @raise ReadFormatError: on C{Content-Type}.
    """
    if len(contentType) > MAX_CONTENT_TYPE_BYTES:
        raise ReadFormatError("Content-Type", "longer than %d bytes"
                              % (MAX_CONTENT_TYPE_BYTES,))
    _, params = parseHeaderValue(contentType, "Content-Type")
    boundary = params.get("boundary", "")
    if not boundary:
        raise ReadFormatError("Content-Type", "multipart without a boundary")
    if len(boundary) > MAX_BOUNDARY:
        raise ReadFormatError("Content-Type", "a boundary longer than %d "
                              "characters (RFC 2046)" % (MAX_BOUNDARY,))
    return b"--" + boundary.encode("utf-8", "replace")


def multipartParts(contentType: str, body: bytes, maxParts: int,
                   advice: str = "") -> list[Part]:
    """
    The parts of a C{multipart/form-data} body.

    The parts are counted before anything is split: a body of thousands
    of tiny parts is refused without that work.  A body without the
    closing delimiter ends with its last part.

    @param contentType: the request's C{Content-Type}, with the boundary.
    @param maxParts: the most parts taken.
    @param advice: added to the too-many-parts message (C{"; send ..."}).
    @raise ReadFormatError: naming the field (see the module docstring).
    """
    delimiter = boundaryOf(contentType)
    if body.count(delimiter) > maxParts + 1:
        raise ReadFormatError("body", "more than %d parts%s"
                              % (maxParts, advice))
    if body.startswith(delimiter):
        at = 0
    else:
        at = body.find(b"\n" + delimiter)
        if at < 0:
            raise ReadFormatError("body", "not a multipart body (boundary "
                                  "not found)")
        at += 1
    parts: list[Part] = []
    marker = b"\n" + delimiter
    while True:
        at += len(delimiter)
        if body[at:at + 2] == b"--":
            break
        lineEnd = body.find(b"\n", at)
        if lineEnd < 0:
            break
        start = lineEnd + 1
        following = body.find(marker, start)
        end = len(body) if following < 0 else following
        data = body[start:end]
        if following >= 0 and data.endswith(b"\r"):
            data = data[:-1]
        elif following < 0 and data.endswith(b"\r\n"):
            data = data[:-2]
        parts.append(_part(len(parts), data))
        if following < 0:
            break
        at = following + 1
    return parts
