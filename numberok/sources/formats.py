"""
The read formats every source speaks: our own JSON ingest object and the
result objects OpenALPR emits (C{alpr -j}, the alprd agent's
C{alpr_results} and C{alpr_group} messages).

Pure parsing, no I/O: the ingest port, the HTTP endpoint, replay and the
recorder all go through here, so a read is validated the same way whichever
door it came in by.  Anything wrong with a read raises L{ReadFormatError}
naming the field, and nothing else; the caller counts and logs it.

The field-by-field mapping, defaults and limits are documented in
docs/sources.rst; keep the two in step.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import zlib
from dataclasses import replace
from typing import Callable, Optional

from numberok.events import BBox, PlateRead

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
JPEG_SOI = b"\xff\xd8"

# OpenALPR's C{epoch_time} is milliseconds in C{alpr -j} and the commercial
# agent, but seconds in the open-source alprd; below this it must be seconds
# (1e11 ms is March 1973, 1e11 s is the year 5138).
EPOCH_SECONDS_BELOW = 10 ** 11

_DATA_URL = re.compile(r"^data:image/jpe?g;base64,", re.IGNORECASE)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


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


@functools.lru_cache(maxsize=1)
def _cleaner() -> Callable[[str], str]:
    """
    The plate cleaner of L{numberok.plates} when present, else the same
    documented behaviour: drop C0 controls and DEL, strip.  Imported lazily
    so the formats do not depend on the plate rules being loaded.
    """
    try:
        from numberok.plates import cleanRaw
    except ImportError:
        return lambda text: _CONTROL.sub("", text).strip()
    return cleanRaw


def cleanPlate(text: str) -> str:
    """
    The plate text as sources hand it on: control characters removed and
    surrounding space stripped (L{numberok.plates.cleanRaw}).
    """
    return _cleaner()(text)


def _jsonType(value: object) -> str:
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


def _isNumber(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def checkPlate(value: object, field: str = "plate") -> str:
    """
    Validate a plate from outside: a string that, after L{cleanPlate}, has
    1..L{MAX_PLATE_CHARS} characters.

    @return: the cleaned plate.
    @raise ReadFormatError: naming C{field}.
    """
    return _plate(value, field)


def _plate(value: object, field: str) -> str:
    if value is None:
        raise ReadFormatError(field, "missing")
    if not isinstance(value, str):
        raise ReadFormatError(
            field, "must be a string, not %s" % (_jsonType(value),))
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ReadFormatError(field, "contains unpaired surrogates")
    plate = cleanPlate(value)
    if not plate:
        raise ReadFormatError(
            field, "empty after removing control characters and spaces")
    if len(plate) > MAX_PLATE_CHARS:
        raise ReadFormatError(
            field, "%d characters, at most %d allowed"
            % (len(plate), MAX_PLATE_CHARS))
    return plate


def _integer(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReadFormatError(
            field, "must be an integer, not %s" % (_jsonType(value),))
    if not low <= value <= high:
        raise ReadFormatError(
            field, "must be %d..%d, got %d" % (low, high, value))
    return value


def _number(value: object, field: str, low: float, high: float,
            hint: str = "") -> float:
    if not _isNumber(value):
        raise ReadFormatError(
            field, "must be a number, not %s" % (_jsonType(value),))
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise ReadFormatError(
            field, "must be %s..%s%s, got %r"
            % (_bound(low), _bound(high), hint, value))
    return number


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _processTime(value: object, field: str) -> int:
    return round(_number(value, field, 0, MAX_PROCESS_TIME_MS))


def decodeJpeg(value: object, field: str) -> bytes:
    """
    Decode a base64 JPEG (optionally a C{data:image/jpeg;base64,} URL).

    @raise ReadFormatError: not a string, not strict base64, too large, or
        not starting with the JPEG start-of-image marker C{FF D8}.
    """
    if not isinstance(value, str):
        raise ReadFormatError(
            field, "must be a base64 string, not %s" % (_jsonType(value),))
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


def isJpeg(data: bytes) -> bool:
    """
    Whether C{data} starts like a JPEG (the start-of-image marker).  A
    cheap gate: a broken JPEG behind a good marker is the screenshot
    encoder's problem, which already copes with unusable frames.
    """
    return data[:2] == JPEG_SOI


def _bbox(value: object, field: str) -> BBox:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise ReadFormatError(
            field, "must be an array of 4 integers [x, y, w, h], not %s"
            % (_jsonType(value) if not isinstance(value, (list, tuple))
               else "%d items" % (len(value),)))
    x, y, w, h = (_integer(item, field, 0, MAX_COORDINATE) for item in value)
    return (x, y, w, h)


def _ourRead(obj: dict, nowMs: int) -> PlateRead:
    """Validate one object of our own ingest format."""
    def get(key, default):
        value = obj.get(key)
        return default if value is None else value

    plate = _plate(obj.get("plate"), "plate")
    channel = _integer(get("channel", 0), "channel", 0, MAX_CHANNEL)
    zone = _integer(get("zone", 0), "zone", 0, MAX_ZONE)
    confidence = _number(get("confidence", 1.0), "confidence", 0.0, 1.0,
                         " (a fraction, not a percent)")
    timeMs = nowMs
    if obj.get("time_ms") is not None:
        timeMs = _integer(obj["time_ms"], "time_ms", 0, MAX_TIME_MS)
    bbox = obj.get("bbox")
    if bbox is not None:
        bbox = _bbox(bbox, "bbox")
    jpeg = obj.get("jpeg_b64")
    if jpeg is not None:
        jpeg = decodeJpeg(jpeg, "jpeg_b64")
    processTime = _processTime(get("process_time_ms", 0), "process_time_ms")
    checkpoint = _integer(get("checkpoint", 0), "checkpoint", 0,
                          MAX_CHECKPOINT)
    return PlateRead(
        plate=plate, timeMs=timeMs, channel=channel, zone=zone,
        confidence=confidence, bbox=bbox, jpeg=jpeg,
        processTimeMs=processTime, checkpoint=checkpoint)


def cameraChannel(cameraId: object, field: str = "camera_id") -> int:
    """
    The channel an OpenALPR C{camera_id} maps to.

    An integer 0..1023, or a string of decimal digits with such a value, is
    the channel itself (the open-source alprd numbers its streams 1..n).
    Any other integer or string -- the commercial agent's large random ids,
    names such as C{"gate-north"} -- maps to C{crc32(str(camera_id)) %
    1024}: stable across restarts and machines, so one camera always lands
    on one channel, though two cameras may collide (give them small ids
    then).  A missing or null C{camera_id} is channel 0.
    """
    if cameraId is None:
        return 0
    if isinstance(cameraId, str):
        text = cameraId.strip()
        if text.isascii() and text.isdigit() and int(text) <= MAX_CHANNEL:
            return int(text)
        try:
            key = cameraId.encode("utf-8")
        except UnicodeEncodeError:
            raise ReadFormatError(field, "contains unpaired surrogates")
    elif isinstance(cameraId, int) and not isinstance(cameraId, bool):
        if 0 <= cameraId <= MAX_CHANNEL:
            return cameraId
        key = str(cameraId).encode("ascii")
    else:
        raise ReadFormatError(
            field, "must be an integer or a string, not %s"
            % (_jsonType(cameraId),))
    return zlib.crc32(key) % (MAX_CHANNEL + 1)


def _epochMs(value: object, field: str) -> int:
    number = _number(value, field, 0, MAX_TIME_MS)
    if number < EPOCH_SECONDS_BELOW:
        number *= 1000
    return min(round(number), MAX_TIME_MS)


def _coordinatesBox(value: object, field: str) -> BBox:
    """
    The bounding rectangle of OpenALPR's plate corners, clamped to the
    frame's top-left (corners of a plate at the edge can be slightly
    negative).
    """
    if not isinstance(value, list) or not 1 <= len(value) <= 16:
        raise ReadFormatError(
            field, "must be an array of 1..16 points {x, y}, not %s"
            % (_jsonType(value) if not isinstance(value, list)
               else "%d items" % (len(value),)))
    xs, ys = [], []
    for i, point in enumerate(value):
        where = "%s[%d]" % (field, i)
        if not isinstance(point, dict):
            raise ReadFormatError(
                where, "must be an object {x, y}, not %s" % (_jsonType(point),))
        xs.append(_number(point.get("x"), where + ".x",
                          -MAX_COORDINATE, MAX_COORDINATE))
        ys.append(_number(point.get("y"), where + ".y",
                          -MAX_COORDINATE, MAX_COORDINATE))
    left, top = max(0, round(min(xs))), max(0, round(min(ys)))
    right, bottom = max(0, round(max(xs))), max(0, round(max(ys)))
    return (left, top, right - left, bottom - top)


def _checkText(obj: dict, key: str) -> None:
    """C{site_id} and C{uuid} are not carried, but must be what they say."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ReadFormatError(
            key, "must be a string, not %s" % (_jsonType(value),))


def _alprResults(obj: dict, nowMs: int) -> list[PlateRead]:
    results = obj.get("results")
    if not isinstance(results, list):
        raise ReadFormatError(
            "results", "must be an array, not %s" % (_jsonType(results),)
            if results is not None else "missing")
    if len(results) > MAX_RESULTS:
        raise ReadFormatError(
            "results", "%d results, at most %d allowed"
            % (len(results), MAX_RESULTS))
    channel = cameraChannel(obj.get("camera_id"))
    _checkText(obj, "site_id")
    _checkText(obj, "uuid")
    timeMs = nowMs
    if obj.get("epoch_time") is not None:
        timeMs = _epochMs(obj["epoch_time"], "epoch_time")
    processTime = 0
    if obj.get("processing_time_ms") is not None:
        processTime = _processTime(obj["processing_time_ms"],
                                   "processing_time_ms")
    elif isinstance(obj.get("processing_time"), dict):
        total = obj["processing_time"].get("total")
        if total is not None:
            processTime = _processTime(total, "processing_time.total")
    reads = []
    for i, result in enumerate(results):
        where = "results[%d]" % (i,)
        if not isinstance(result, dict):
            raise ReadFormatError(
                where, "must be an object, not %s" % (_jsonType(result),))
        reads.append(_alprPlate(result, where, channel, timeMs, processTime))
    return reads


def _alprPlate(result: dict, where: str, channel: int, timeMs: int,
               processTime: int, jpeg: Optional[bytes] = None,
               requirePlate: bool = True) -> PlateRead:
    """
    One OpenALPR plate result (a C{results[]} item or a C{best_plate}).
    A group may carry its plate only as C{best_plate_number}; then
    C{requirePlate} is false and a placeholder stands until replaced.
    """
    if requirePlate or result.get("plate") is not None:
        plate = _plate(result.get("plate"), where + ".plate")
    else:
        plate = "?"
    confidence = 1.0
    if result.get("confidence") is not None:
        confidence = _number(result["confidence"], where + ".confidence",
                             0.0, 100.0, " percent") / 100.0
    if result.get("epoch_time") is not None:
        timeMs = _epochMs(result["epoch_time"], where + ".epoch_time")
    if result.get("processing_time_ms") is not None:
        processTime = _processTime(result["processing_time_ms"],
                                   where + ".processing_time_ms")
    bbox = None
    if result.get("coordinates") is not None:
        bbox = _coordinatesBox(result["coordinates"], where + ".coordinates")
    return PlateRead(
        plate=plate, timeMs=timeMs, channel=channel, zone=0,
        confidence=confidence, bbox=bbox, jpeg=jpeg,
        processTimeMs=processTime, source="openalpr")


def _alprGroup(obj: dict, nowMs: int) -> list[PlateRead]:
    best = obj.get("best_plate")
    if best is None:
        best = {}
    elif not isinstance(best, dict):
        raise ReadFormatError(
            "best_plate", "must be an object, not %s" % (_jsonType(best),))
    channel = cameraChannel(obj.get("camera_id"))
    _checkText(obj, "site_id")
    _checkText(obj, "best_uuid")
    timeMs = nowMs
    for key in ("best_uuid_epoch_ms", "epoch_start"):
        if obj.get(key) is not None:
            timeMs = _epochMs(obj[key], key)
            break
    jpeg = None
    if obj.get("vehicle_crop_jpeg") is not None:
        jpeg = decodeJpeg(obj["vehicle_crop_jpeg"], "vehicle_crop_jpeg")
    best = dict(best)
    # The group's time is the best frame's, not the plate result's own.
    best.pop("epoch_time", None)
    read = _alprPlate(best, "best_plate", channel, timeMs, 0, jpeg,
                      requirePlate=obj.get("best_plate_number") is None)
    # The group's summary keys win over the copy inside best_plate.
    if obj.get("best_plate_number") is not None:
        read = replace(read, plate=_plate(obj["best_plate_number"],
                                          "best_plate_number"))
    if obj.get("best_confidence") is not None:
        read = replace(read, confidence=_number(
            obj["best_confidence"], "best_confidence", 0.0, 100.0,
            " percent") / 100.0)
    return [read]


_ALPR_KEYS = ("data_type", "results", "epoch_time", "best_plate")


def isOpenAlpr(obj: dict) -> bool:
    """
    Whether C{obj} is an OpenALPR message rather than our own read: it has
    no top-level C{plate} (OpenALPR never has one) and has one of
    C{data_type}, C{results}, C{epoch_time} or C{best_plate}.
    """
    return "plate" not in obj and any(key in obj for key in _ALPR_KEYS)


def parseReadObject(obj: object, nowMs: int) -> list[PlateRead]:
    """
    Validate one decoded JSON object and turn it into reads.

    @param obj: our ingest object (one read) or an OpenALPR message (one
        read per plate result; none for an empty C{results} or a
        heartbeat).
    @param nowMs: the receive time, used when the object carries none.
    @return: the reads, in the object's order.
    @raise ReadFormatError: naming the first bad field.  Unknown keys are
        ignored, so senders may add their own.
    """
    if not isinstance(obj, dict):
        raise ReadFormatError(
            "object", "a read must be a JSON object, not %s"
            % (_jsonType(obj),))
    if not isOpenAlpr(obj):
        return [_ourRead(obj, nowMs)]
    dataType = obj.get("data_type")
    if dataType is None or dataType == "alpr_results":
        return _alprResults(obj, nowMs)
    if dataType == "alpr_group":
        return _alprGroup(obj, nowMs)
    if dataType == "heartbeat":
        return []
    raise ReadFormatError(
        "data_type", "unsupported OpenALPR message %s (expected "
        "alpr_results, alpr_group or heartbeat)"
        % (json.dumps(dataType)[:60],))


def _rejectConstant(name: str) -> object:
    raise ValueError("%s is not valid JSON" % (name,))


def _finiteFloat(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number %s is out of range" % (text[:40],))
    return number


def decodeReadLine(line: bytes) -> object:
    """
    Decode one line (UTF-8 JSON) to the object it holds, without judging
    the object.  Replay uses this to see its own extra keys first.

    @raise ReadFormatError: with field C{"line"}: not UTF-8 (with the byte
        offset), not JSON (with line, column and character position), or
        JSON that Python cannot hold (NaN, Infinity, numbers out of range,
        nesting too deep).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReadFormatError(
            "line", "not UTF-8: %s at byte %d" % (e.reason, e.start))
    try:
        return json.loads(text, parse_constant=_rejectConstant,
                          parse_float=_finiteFloat)
    except json.JSONDecodeError as e:
        raise ReadFormatError(
            "line", "not JSON: %s at column %d (char %d)"
            % (e.msg, e.colno, e.pos))
    except RecursionError:
        raise ReadFormatError("line", "JSON nested too deeply")
    except ValueError as e:
        # NaN/Infinity, overflowing floats, integers too long to convert.
        raise ReadFormatError("line", "not acceptable JSON: %s" % (e,))


def parseReadLine(line: bytes, nowMs: int) -> list[PlateRead]:
    """
    Parse one line of the ingest stream (or of a replay file).

    A blank line (only whitespace) is no read and no error: keep-alives and
    trailing newlines are harmless.

    @param line: the line's bytes, with or without its line ending.
    @param nowMs: the receive time, for reads that carry none.
    @raise ReadFormatError: see L{decodeReadLine} and L{parseReadObject}.
    """
    if not line.strip():
        return []
    return parseReadObject(decodeReadLine(line), nowMs)


def readToObject(read: PlateRead) -> dict:
    """
    The ingest object for C{read}: what the recorder writes, and what
    L{parseReadObject} turns back into the same read (its C{source} aside,
    which is not part of the format).  Keys with default or empty values
    are still written, except C{bbox} and C{jpeg_b64} when absent.
    """
    obj: dict = {
        "plate": read.plate,
        "channel": read.channel,
        "zone": read.zone,
        "confidence": read.confidence,
        "time_ms": read.timeMs,
    }
    if read.bbox is not None:
        obj["bbox"] = list(read.bbox)
    obj["process_time_ms"] = read.processTimeMs
    obj["checkpoint"] = read.checkpoint
    if read.jpeg is not None:
        obj["jpeg_b64"] = base64.b64encode(read.jpeg).decode("ascii")
    return obj
