"""
The result objects OpenALPR emits -- C{alpr -j}, the alprd agent's
C{alpr_results} and C{alpr_group} messages -- as numberok reads.

Pure parsing, no I/O; L{numberok.sources.formats.parseReadObject} hands an
object here when L{isOpenAlpr} says it is one.  The field-by-field mapping
is in docs/sources.rst; keep the two in step.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import replace
from typing import Optional

from numberok.events import BBox, PlateRead
from numberok.sources.fields import (MAX_CHANNEL, MAX_COORDINATE,
                                     MAX_RESULTS, MAX_TIME_MS,
                                     ReadFormatError, checkNumber,
                                     checkPlate, checkProcessTime,
                                     decodeJpeg, jsonType)
from numberok.sources.vehiclefields import openAlprAttributes, openAlprTravel

# OpenALPR's C{epoch_time} is milliseconds in C{alpr -j} and the commercial
# agent, but seconds in the open-source alprd; below this it must be seconds
# (1e11 ms is March 1973, 1e11 s is the year 5138).
EPOCH_SECONDS_BELOW = 10 ** 11


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
            % (jsonType(cameraId),))
    return zlib.crc32(key) % (MAX_CHANNEL + 1)


def _epochMs(value: object, field: str) -> int:
    number = checkNumber(value, field, 0, MAX_TIME_MS)
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
            % (jsonType(value) if not isinstance(value, list)
               else "%d items" % (len(value),)))
    xs, ys = [], []
    for i, point in enumerate(value):
        where = "%s[%d]" % (field, i)
        if not isinstance(point, dict):
            raise ReadFormatError(
                where, "must be an object {x, y}, not %s" % (jsonType(point),))
        xs.append(checkNumber(point.get("x"), where + ".x",
                          -MAX_COORDINATE, MAX_COORDINATE))
        ys.append(checkNumber(point.get("y"), where + ".y",
                          -MAX_COORDINATE, MAX_COORDINATE))
    left, top = max(0, round(min(xs))), max(0, round(min(ys)))
    right, bottom = max(0, round(max(xs))), max(0, round(max(ys)))
    return (left, top, right - left, bottom - top)


def _checkText(obj: dict, key: str) -> None:
    """C{site_id} and C{uuid} are not carried, but must be what they say."""
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ReadFormatError(
            key, "must be a string, not %s" % (jsonType(value),))


def _alprResults(obj: dict, nowMs: int) -> list[PlateRead]:
    results = obj.get("results")
    if not isinstance(results, list):
        raise ReadFormatError(
            "results", "must be an array, not %s" % (jsonType(results),)
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
        processTime = checkProcessTime(obj["processing_time_ms"],
                                   "processing_time_ms")
    elif isinstance(obj.get("processing_time"), dict):
        total = obj["processing_time"].get("total")
        if total is not None:
            processTime = checkProcessTime(total, "processing_time.total")
    reads = []
    for i, result in enumerate(results):
        where = "results[%d]" % (i,)
        if not isinstance(result, dict):
            raise ReadFormatError(
                where, "must be an object, not %s" % (jsonType(result),))
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
        plate = checkPlate(result.get("plate"), where + ".plate")
    else:
        plate = "?"
    confidence = 1.0
    if result.get("confidence") is not None:
        confidence = checkNumber(result["confidence"], where + ".confidence",
                             0.0, 100.0, " percent") / 100.0
    if result.get("epoch_time") is not None:
        timeMs = _epochMs(result["epoch_time"], where + ".epoch_time")
    if result.get("processing_time_ms") is not None:
        processTime = checkProcessTime(result["processing_time_ms"],
                                   where + ".processing_time_ms")
    bbox = None
    if result.get("coordinates") is not None:
        bbox = _coordinatesBox(result["coordinates"], where + ".coordinates")
    return PlateRead(
        plate=plate, timeMs=timeMs, channel=channel, zone=0,
        confidence=confidence, bbox=bbox, jpeg=jpeg,
        processTimeMs=processTime, source="openalpr",
        vehicle=openAlprAttributes(result.get("vehicle"),
                                   where + ".vehicle"))


def _alprGroup(obj: dict, nowMs: int) -> list[PlateRead]:
    best = obj.get("best_plate")
    if best is None:
        best = {}
    elif not isinstance(best, dict):
        raise ReadFormatError(
            "best_plate", "must be an object, not %s" % (jsonType(best),))
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
        read = replace(read, plate=checkPlate(obj["best_plate_number"],
                                              "best_plate_number"))
    if obj.get("best_confidence") is not None:
        read = replace(read, confidence=checkNumber(
            obj["best_confidence"], "best_confidence", 0.0, 100.0,
            " percent") / 100.0)
    # A group is one vehicle: its direction of travel and its attributes.
    travel = openAlprTravel(obj.get("travel_direction"), "travel_direction")
    vehicle = openAlprAttributes(obj.get("vehicle"))
    if travel is not None or vehicle is not None:
        read = replace(read, travel=travel,
                       vehicle=vehicle if vehicle is not None
                       else read.vehicle)
    return [read]


_ALPR_KEYS = ("data_type", "results", "epoch_time", "best_plate")


def isOpenAlpr(obj: dict) -> bool:
    """
    Whether C{obj} is an OpenALPR message rather than our own read: it has
    no top-level C{plate} (OpenALPR never has one) and has one of
    C{data_type}, C{results}, C{epoch_time} or C{best_plate}.
    """
    return "plate" not in obj and any(key in obj for key in _ALPR_KEYS)



def parseOpenAlpr(obj: dict, nowMs: int) -> list[PlateRead]:
    """
    The reads of one OpenALPR message: one per plate result, none for an
    empty C{results} or a heartbeat.

    @raise ReadFormatError: naming the first bad field.
    """
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
