"""
Our own JSON ingest format, one read per line, and the one entry point for
every read format (L{parseReadLine}, L{parseReadObject}): an object without
a top-level C{plate} that looks like OpenALPR goes to
L{numberok.sources.openalpr}.

Pure parsing, no I/O: the ingest port, the HTTP endpoint, replay and the
recorder all go through here, so a read is validated the same way whichever
door it came in by.  Anything wrong with a read raises L{ReadFormatError}
naming the field, and nothing else; the caller counts and logs it.

Two paths, one result.  A line holding only our format's members is
decoded and type-checked in one step by msgspec (C speed: about a fifth of
the standard library's C{json.loads} alone, measured in bench/fanout.py).
Anything that path does not accept as it stands -- an unknown member, a
wrong type, a value out of range, OpenALPR, broken JSON -- goes through the
standard library and the field-by-field checks, which decide, so every
message and every accepted value is what the documented format says.
tests/test_formats.py checks the two agree on arbitrary lines.

The field-by-field mapping, defaults and limits are documented in
docs/sources.rst; keep the two in step.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Annotated, Optional

import msgspec

from numberok.events import PlateRead
from numberok.images import isJpeg
from numberok.plates import cleanRaw
from numberok.sources.fields import (MAX_CHANNEL, MAX_CHECKPOINT,
                                     MAX_COORDINATE, MAX_JPEG_BYTES,
                                     MAX_PLATE_CHARS, MAX_PROCESS_TIME_MS,
                                     MAX_RESULTS, MAX_TIME_MS, MAX_ZONE,
                                     ReadFormatError, checkBox, checkInteger,
                                     checkNumber, checkPlate,
                                     checkProcessTime, cleanPlate,
                                     decodeJpeg, jsonType)
from numberok.sources.openalpr import (cameraChannel, isOpenAlpr,
                                       parseOpenAlpr)
from numberok.sources.vehiclefields import (VEHICLE_KEYS, checkTravel,
                                            jsonAttributes)

__all__ = [
    "MAX_CHANNEL", "MAX_CHECKPOINT", "MAX_COORDINATE", "MAX_JPEG_BYTES",
    "MAX_PLATE_CHARS", "MAX_PROCESS_TIME_MS", "MAX_RESULTS", "MAX_TIME_MS",
    "MAX_ZONE", "ReadFormatError", "cameraChannel", "checkPlate",
    "cleanPlate", "decodeJpeg", "decodeReadLine", "isJpeg", "isOpenAlpr",
    "parseReadLine", "parseReadObject", "readToObject",
]


def _ourRead(obj: dict, nowMs: int, source: str = "") -> PlateRead:
    """Validate one object of our own ingest format, field by field."""
    def get(key, default):
        value = obj.get(key)
        return default if value is None else value

    plate = checkPlate(obj.get("plate"), "plate")
    channel = checkInteger(get("channel", 0), "channel", 0, MAX_CHANNEL)
    zone = checkInteger(get("zone", 0), "zone", 0, MAX_ZONE)
    confidence = checkNumber(get("confidence", 1.0), "confidence", 0.0, 1.0,
                             " (a fraction, not a percent)")
    timeMs = nowMs
    if obj.get("time_ms") is not None:
        timeMs = checkInteger(obj["time_ms"], "time_ms", 0, MAX_TIME_MS)
    bbox = obj.get("bbox")
    if bbox is not None:
        bbox = checkBox(bbox, "bbox")
    jpeg = obj.get("jpeg_b64")
    if jpeg is not None:
        jpeg = decodeJpeg(jpeg, "jpeg_b64")
    processTime = checkProcessTime(get("process_time_ms", 0),
                                   "process_time_ms")
    checkpoint = checkInteger(get("checkpoint", 0), "checkpoint", 0,
                              MAX_CHECKPOINT)
    perVehicle = get("per_vehicle", False)
    if not isinstance(perVehicle, bool):
        raise ReadFormatError(
            "per_vehicle", "must be true or false, not %s"
            % (jsonType(perVehicle),))
    return PlateRead(
        plate=plate, timeMs=timeMs, channel=channel, zone=zone,
        confidence=confidence, bbox=bbox, jpeg=jpeg,
        processTimeMs=processTime, checkpoint=checkpoint, source=source,
        perVehicle=perVehicle, travel=checkTravel(obj.get("travel")),
        vehicle=jsonAttributes(obj.get("vehicle"), obj.get("plate_colour")))


# --- the fast path: one typed decode ----------------------------------------

def _within(low, high):
    return msgspec.Meta(ge=low, le=high)


_Coordinate = Annotated[int, _within(0, MAX_COORDINATE)]


class _Line(msgspec.Struct, forbid_unknown_fields=True):
    """Our format's members with their types and ranges, for msgspec."""

    plate: Optional[str] = None
    channel: Optional[Annotated[int, _within(0, MAX_CHANNEL)]] = None
    zone: Optional[Annotated[int, _within(0, MAX_ZONE)]] = None
    confidence: Optional[Annotated[float, _within(0.0, 1.0)]] = None
    time_ms: Optional[Annotated[int, _within(0, MAX_TIME_MS)]] = None
    bbox: Optional[tuple[_Coordinate, _Coordinate, _Coordinate,
                         _Coordinate]] = None
    jpeg_b64: Optional[str] = None
    process_time_ms: Optional[
        Annotated[float, _within(0, MAX_PROCESS_TIME_MS)]] = None
    checkpoint: Optional[Annotated[int, _within(0, MAX_CHECKPOINT)]] = None
    per_vehicle: Optional[bool] = None
    travel: Optional[str] = None
    vehicle: Optional[dict] = None
    plate_colour: Optional[str] = None


_decodeLine = msgspec.json.Decoder(_Line).decode
_FAST_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


def _fastRead(line: bytes, nowMs: int, source: str) -> Optional[PlateRead]:
    """
    The read of a line of our format that is valid as it stands, or
    L{None} when the field-by-field path must decide.
    """
    try:
        obj = _decodeLine(line)
    except _FAST_ERRORS:
        return None
    plate = obj.plate
    if plate is None:
        return None
    plate = cleanRaw(plate)
    if not 0 < len(plate) <= MAX_PLATE_CHARS:
        return None
    jpeg = obj.jpeg_b64
    if jpeg is not None:
        jpeg = decodeJpeg(jpeg, "jpeg_b64")
    processTime = obj.process_time_ms
    channel, zone, confidence = obj.channel, obj.zone, obj.confidence
    timeMs, checkpoint = obj.time_ms, obj.checkpoint
    perVehicle = obj.per_vehicle
    travel = vehicle = None
    if (obj.travel is not None or obj.vehicle is not None
            or obj.plate_colour is not None):
        travel = checkTravel(obj.travel)
        vehicle = jsonAttributes(obj.vehicle, obj.plate_colour)
    return PlateRead(
        plate=plate, timeMs=nowMs if timeMs is None else timeMs,
        channel=0 if channel is None else channel,
        zone=0 if zone is None else zone,
        confidence=1.0 if confidence is None else confidence,
        bbox=obj.bbox, jpeg=jpeg,
        processTimeMs=0 if processTime is None else round(processTime),
        checkpoint=0 if checkpoint is None else checkpoint, source=source,
        perVehicle=bool(perVehicle), travel=travel, vehicle=vehicle)


# --- the entry points --------------------------------------------------------

def parseReadObject(obj: object, nowMs: int,
                    source: str = "") -> list[PlateRead]:
    """
    Validate one decoded JSON object and turn it into reads.

    @param obj: our ingest object (one read) or an OpenALPR message (one
        read per plate result; none for an empty C{results} or a
        heartbeat).
    @param nowMs: the receive time, used when the object carries none.
    @param source: the C{source} of reads in our format (OpenALPR reads
        say C{"openalpr"}).
    @return: the reads, in the object's order.
    @raise ReadFormatError: naming the first bad field.  Unknown keys are
        ignored, so senders may add their own.
    """
    if not isinstance(obj, dict):
        raise ReadFormatError(
            "object", "a read must be a JSON object, not %s"
            % (jsonType(obj),))
    if not isOpenAlpr(obj):
        return [_ourRead(obj, nowMs, source)]
    return parseOpenAlpr(obj, nowMs)


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


def parseReadLine(line: bytes, nowMs: int,
                  source: str = "") -> list[PlateRead]:
    """
    Parse one line of the ingest stream (or of a replay file).

    A blank line (only whitespace) is no read and no error: keep-alives and
    trailing newlines are harmless.

    @param line: the line's bytes, with or without its line ending.
    @param nowMs: the receive time, for reads that carry none.
    @param source: see L{parseReadObject}.
    @raise ReadFormatError: see L{decodeReadLine} and L{parseReadObject}.
    """
    read = _fastRead(line, nowMs, source)
    if read is not None:
        return [read]
    if not line.strip():
        return []
    return parseReadObject(decodeReadLine(line), nowMs, source)


def readToObject(read: PlateRead) -> dict:
    """
    The ingest object for C{read}: what the recorder writes, and what
    L{parseReadObject} turns back into the same read (its C{source} aside,
    which is not part of the format).  Keys with default or empty values
    are still written, except C{bbox} and C{jpeg_b64} when absent,
    C{per_vehicle} when false, and C{travel}, C{vehicle} and
    C{plate_colour} when unknown.
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
    if read.perVehicle:
        obj["per_vehicle"] = True
    if read.travel is not None:
        obj["travel"] = read.travel
    vehicle = read.vehicle
    if vehicle is not None:
        members = {key: getattr(vehicle, key) for key in VEHICLE_KEYS
                   if getattr(vehicle, key) is not None}
        if members:
            obj["vehicle"] = members
        if vehicle.plateColour is not None:
            obj["plate_colour"] = vehicle.plateColour
    return obj
