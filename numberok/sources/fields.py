"""
Validation of single values from outside, shared by every read format
(L{numberok.sources.formats}, L{numberok.sources.openalpr}) and the sources
that check a value themselves: each check returns the value as numberok
uses it or raises L{ReadFormatError} naming the field, with the message the
sender sees (docs/sources.rst lists them).
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from numberok.events import BBox
from numberok.images import isJpeg
from numberok.plates import cleanRaw

MAX_PLATE_CHARS = 32
MAX_CHANNEL = 1023
MAX_ZONE = 3
MAX_CHECKPOINT = 2 ** 31 - 1
MAX_PROCESS_TIME_MS = 2 ** 31 - 1
# 9999-12-31T23:59:59.999Z: the last instant a calendar (and every client's
# date type) can show; FrameTimeStampMs is unsigned, so nothing below 0.
MAX_TIME_MS = 253402300799999
MAX_COORDINATE = 100000
MAX_JPEG_BYTES = 8 * 1024 * 1024
MAX_RESULTS = 100

_DATA_URL = re.compile(r"^data:image/jpe?g;base64,", re.IGNORECASE)


class ReadFormatError(ValueError):
    """
    A read that cannot be accepted.

    @ivar field: the offending field as a path into the object
        (C{"zone"}, C{"results[1].coordinates"}, or C{"line"} when the
        line is not JSON at all).
    @ivar message: what is wrong with it, for the sender.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__("%s: %s" % (field, message))


def cleanPlate(text: str) -> str:
    """
    The plate text as sources hand it on: invisible characters (control,
    format, separators) removed and surrounding space stripped (L{numberok.plates.cleanRaw}).
    """
    return cleanRaw(text)


def jsonType(value: object) -> str:
    """The JSON name of C{value}'s type, for messages senders understand."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def isNumber(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cleanText(value: object, field: str) -> str:
    """
    A text value from outside, L{cleanPlate}d.
    @raise ReadFormatError: not a string, or one UTF-8 cannot encode.
    """
    if not isinstance(value, str):
        raise ReadFormatError(
            field, "must be a string, not %s" % (jsonType(value),))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ReadFormatError(field, "contains unpaired surrogates")
    return cleanPlate(value)


def checkPlate(value: object, field: str = "plate") -> str:
    """
    Validate a plate from outside: a string that, after L{cleanPlate}, has
    1..L{MAX_PLATE_CHARS} characters.

    @return: the cleaned plate.
    @raise ReadFormatError: naming C{field}.
    """
    if value is None:
        raise ReadFormatError(field, "missing")
    plate = cleanText(value, field)
    if not plate:
        raise ReadFormatError(
            field, "empty after removing control, format and separator "
            "characters and spaces")
    if len(plate) > MAX_PLATE_CHARS:
        raise ReadFormatError(
            field, "%d characters, at most %d allowed"
            % (len(plate), MAX_PLATE_CHARS))
    return plate


def checkInteger(value: object, field: str, low: int, high: int) -> int:
    """An integer (not a boolean) in C{low..high}."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReadFormatError(
            field, "must be an integer, not %s" % (jsonType(value),))
    if not low <= value <= high:
        raise ReadFormatError(
            field, "must be %d..%d, got %d" % (low, high, value))
    return value


def checkNumber(value: object, field: str, low: float, high: float,
                hint: str = "") -> float:
    if not isNumber(value):
        raise ReadFormatError(
            field, "must be a number, not %s" % (jsonType(value),))
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ReadFormatError(
            field, "must be %s..%s%s, got %r"
            % (_bound(low), _bound(high), hint, value))
    return number


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def checkProcessTime(value: object, field: str) -> int:
    return round(checkNumber(value, field, 0, MAX_PROCESS_TIME_MS))


def decodeJpeg(value: object, field: str) -> bytes:
    """
    Decode a base64 JPEG (optionally a C{data:image/jpeg;base64,} URL).

    @raise ReadFormatError: not a string, not strict base64, too large, or
        not starting with the JPEG start-of-image marker C{FF D8}.
    """
    if not isinstance(value, str):
        raise ReadFormatError(
            field, "must be a base64 string, not %s" % (jsonType(value),))
    text = _DATA_URL.sub("", value, count=1)
    if not text:
        raise ReadFormatError(field, "empty")
    if len(text) > 4 * ((MAX_JPEG_BYTES + 2) // 3):
        raise ReadFormatError(
            field, "image larger than %d bytes" % (MAX_JPEG_BYTES,))
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ReadFormatError(field, "not valid base64: %s" % (e,))
    if not isJpeg(data):
        raise ReadFormatError(
            field, "decodes to %d bytes that are not a JPEG (no FF D8 "
            "start-of-image marker)" % (len(data),))
    return data


def checkBox(value: object, field: str) -> BBox:
    """A plate box: an array of 4 integers C{[x, y, w, h]}."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ReadFormatError(
            field, "must be an array of 4 integers [x, y, w, h], not %s"
            % (jsonType(value) if not isinstance(value, (list, tuple))
               else "%d items" % (len(value),)))
    x, y, w, h = (checkInteger(item, field, 0, MAX_COORDINATE)
                  for item in value)
    return (x, y, w, h)

