"""
C{multipart/form-data} bodies, for the HTTP edges that take them: camera
alarms (L{numberok.sources.hikvision}) and pushed reads
(L{numberok.web.ingest}).  One splitter, so both refuse the same things the
same way.

Pure and blocking (a body may be megabytes): callers run it in a thread.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import email.utils
from typing import NamedTuple

from numberok.sources.formats import ReadFormatError

__all__ = ["Part", "multipartParts"]


class Part(NamedTuple):
    """
    One part of a body.  C{name} and C{filename} are as sent (empty when
    missing); C{contentType} is lower case (C{text/plain} when missing).
    """

    name: str
    filename: str
    contentType: str
    payload: bytes


def _parse(data: bytes) -> email.message.EmailMessage:
    return email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(data)


def multipartParts(contentType: str, body: bytes, maxParts: int,
                   advice: str = "") -> list[Part]:
    """
    The parts of a C{multipart/form-data} body.

    The parts are counted before the MIME parser sees the body: its work
    grows with their number, and a body of thousands of tiny parts is
    refused without that work.

    @param contentType: the request's C{Content-Type}, with the boundary.
    @param maxParts: the most parts taken.
    @param advice: added to the too-many-parts message (C{"; send ..."}).
    @raise ReadFormatError: no boundary (C{Content-Type}), more than
        C{maxParts} parts or no multipart body (C{body}).
    """
    head = ("Content-Type: %s\r\nMIME-Version: 1.0\r\n\r\n"
            % (contentType,)).encode("latin-1", "replace")
    boundary = _parse(head).get_param("boundary")
    if isinstance(boundary, tuple):         # RFC 2231 encoded
        boundary = email.utils.collapse_rfc2231_value(boundary)
    if not boundary:
        raise ReadFormatError("Content-Type", "multipart without a boundary")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    if body.count(delimiter) > maxParts + 1:
        raise ReadFormatError("body", "more than %d parts%s"
                              % (maxParts, advice))
    message = _parse(head + body)
    if not message.is_multipart():
        raise ReadFormatError("body", "not a multipart body (boundary not "
                              "found)")
    return [Part(part.get_param("name", header="content-disposition") or "",
                 part.get_filename() or "", part.get_content_type(),
                 part.get_payload(decode=True) or b"")
            for part in message.iter_parts()]
