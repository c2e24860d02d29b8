"""
C{POST /api/reads}: plate reads pushed by webhook, for cameras and
recognizers that cannot hold a TCP connection to the ingest port.

Two body shapes:

 - C{application/json}: one read in the ingest format (or an OpenALPR
   result object, or an array of such objects), exactly as one line of
   the ingest port (L{numberok.sources.formats}).
 - C{multipart/form-data}: a JSON part (named C{read}, or of type
   C{application/json}) holding that object without its image, and a JPEG
   part (named C{jpeg} or C{image}, of type C{image/jpeg}, or a file named
   C{*.jpg}) holding the frame as plain bytes -- what camera webhooks and
   C{curl -F} send, without base64's third more.

Parsing is pure and blocking (a body may be megabytes): the resource runs
L{parseBody} in a thread and hands the reads to the sink in the reactor.
Every refusal is a L{ReadFormatError} naming the field.
"""

from __future__ import annotations

from dataclasses import replace

from numberok.events import PlateRead
from numberok.images import isJpeg
from numberok.sources.formats import (MAX_JPEG_BYTES, ReadFormatError,
                                      decodeReadLine, parseReadObject)
from numberok.sources.multipart import multipartParts

MAX_BODY_BYTES = MAX_JPEG_BYTES * 3 // 2 + 64 * 1024
"""A base64 JPEG of the largest size the ingest format takes, and room."""
MAX_READS_PER_REQUEST = 1000
MAX_PARTS = 8
"""A read needs two parts (JSON, JPEG); a few more are ignored, but
thousands of tiny parts are refused before the MIME parser sees them."""
JSON_PART_NAMES = ("read", "json", "metadata")
JPEG_PART_NAMES = ("jpeg", "image", "frame", "picture")


def _readsFrom(obj: object, nowMs: int) -> list[PlateRead]:
    if isinstance(obj, list):
        if not obj:
            raise ReadFormatError("body", "an empty array holds no read")
        if len(obj) > MAX_READS_PER_REQUEST:
            raise ReadFormatError("body", "more than %d reads in one request"
                                  % (MAX_READS_PER_REQUEST,))
        reads = []
        for i, item in enumerate(obj):
            try:
                reads += parseReadObject(item, nowMs)
            except ReadFormatError as e:
                raise ReadFormatError("[%d].%s" % (i, e.field), e.message)
        return reads
    return parseReadObject(obj, nowMs)


def _decodeJSON(data: bytes) -> object:
    try:
        return decodeReadLine(data)
    except ReadFormatError as e:
        raise ReadFormatError("body", e.message)


def parseJSONBody(body: bytes, nowMs: int) -> list[PlateRead]:
    """The reads of a C{application/json} body."""
    if not body.strip():
        raise ReadFormatError("body", "empty; expected a JSON read")
    return [replace(r, source="http")
            for r in _readsFrom(_decodeJSON(body), nowMs)]


def parseMultipartBody(contentType: str, body: bytes,
                       nowMs: int) -> list[PlateRead]:
    """The reads of a C{multipart/form-data} body: the JSON part's reads,
    each with the JPEG part as its frame."""
    jsonParts, jpegParts = [], []
    for part in multipartParts(
            contentType, body, MAX_PARTS,
            "; send one JSON part and at most one JPEG part"):
        name, filename = part.name.lower(), part.filename.lower()
        kind, payload = part.contentType, part.payload
        if kind == "application/json" or name in JSON_PART_NAMES:
            jsonParts.append(payload)
        elif (kind in ("image/jpeg", "image/jpg") or name in JPEG_PART_NAMES
              or filename.endswith((".jpg", ".jpeg"))):
            jpegParts.append(payload)
    if len(jsonParts) != 1:
        raise ReadFormatError("read", (
            "no JSON part: send the read as a part named 'read' or of type "
            "application/json") if not jsonParts else
            "%d JSON parts; send one" % (len(jsonParts),))
    if len(jpegParts) > 1:
        raise ReadFormatError("jpeg", "%d JPEG parts; send one"
                              % (len(jpegParts),))
    jpeg = jpegParts[0] if jpegParts else None
    if jpeg is not None:
        if len(jpeg) > MAX_JPEG_BYTES:
            raise ReadFormatError("jpeg", "image larger than %d bytes"
                                  % (MAX_JPEG_BYTES,))
        if not isJpeg(jpeg):
            raise ReadFormatError(
                "jpeg", "%d bytes that are not a JPEG (no FF D8 "
                "start-of-image marker)" % (len(jpeg),))
    try:
        reads = _readsFrom(_decodeJSON(jsonParts[0]), nowMs)
    except ReadFormatError as e:
        raise ReadFormatError(
            "read" if e.field == "body" else e.field, e.message)
    if jpeg is not None and any(r.jpeg is not None for r in reads):
        raise ReadFormatError("jpeg", "both a JPEG part and jpeg_b64 in the "
                              "read; send the image once")
    return [replace(r, source="http",
                    jpeg=jpeg if jpeg is not None else r.jpeg)
            for r in reads]


def parseBody(contentType: str, body: bytes, nowMs: int) -> list[PlateRead]:
    """
    The reads of one request.

    @param contentType: the request's C{Content-Type} header.
    @raise ReadFormatError: naming the field (C{Content-Type}, C{body},
        C{read}, C{jpeg}, or a field of the read such as C{plate}).
    """
    kind = contentType.split(";", 1)[0].strip().lower()
    if len(body) > MAX_BODY_BYTES:
        raise ReadFormatError("body", "larger than %d bytes"
                              % (MAX_BODY_BYTES,))
    if kind == "application/json" or kind.endswith("+json"):
        return parseJSONBody(body, nowMs)
    if kind == "multipart/form-data":
        return parseMultipartBody(contentType, body, nowMs)
    raise ReadFormatError("Content-Type", (
        "%r is not accepted: send application/json or multipart/form-data"
        % (kind or "(none)",)))
