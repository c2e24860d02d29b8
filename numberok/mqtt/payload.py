"""
The MQTT event message: one JSON object per event, built from the wire
event's pairs (L{numberok.events.eventPairs}, so the names and the values as
text are exactly those of the NumberOk protocol) plus our own members
(docs/mqtt.rst, "Payload"), and the way back from a message to a
L{PlateEvent} on a collecting instance.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from numberok.channels import checkChannelName
from numberok.events import (BBox, EventState, MovementType, PlateEvent,
                             eventPairs)
from numberok.settings.keys import MAX_CHANNEL
from numberok.sources.formats import ReadFormatError, checkPlate, decodeJpeg
from numberok.vehicle import eventVehicle

MAX_INT = 2 ** 63 - 1
MAX_COORDINATE = 100000

_INTEGER = re.compile(r"-?[0-9]{1,19}")
"""An integer as text: ASCII digits only (not C{²}, not C{--1}), at most
19 of them, so C{int()} never sees what it would refuse or choke on."""

_MOVEMENTS = {m.wireName: m for m in MovementType}
_STATES = {s.value: s for s in EventState}


def eventTopic(prefix: str, systemId: int, event: PlateEvent) -> str:
    """C{<prefix>/<SystemId>/events/<channel>/<zone>}."""
    return _eventTopic(prefix, systemId, event.channel, event.zone)


def _eventTopic(prefix: str, systemId: int, channel: int, zone: int) -> str:
    return "%s/%d/events/%d/%d" % (prefix, systemId, channel, zone)


def statusTopic(prefix: str, systemId: int) -> str:
    """The retained C{online} / C{offline} of one instance."""
    return "%s/%d/status" % (prefix, systemId)


def collectFilter(prefix: str) -> str:
    """What a collecting instance subscribes to."""
    return "%s/+/events/#" % (prefix,)


def encodeEvent(event: PlateEvent, systemId: int, journalId: Optional[int],
                picture: Optional[bytes] = None,
                platePicture: Optional[bytes] = None,
                testMode: bool = False, after: Optional[int] = None) -> bytes:
    """
    The message for C{event}: every wire key with its wire text, then
    C{id} (the journal id, Lost only), C{bbox} (when the event has one and
    a picture goes with it), C{picture} and C{plate_picture} (base64 JPEG),
    and C{after} when the ids C{after + 1 .. id - 1} are not this site's
    own Lost events (collected from other instances: no hole).
    """
    obj = eventObject(event, systemId, journalId, picture, platePicture,
                      testMode)
    if journalId is not None and after is not None \
            and after < journalId - 1:
        obj["after"] = after
    return encodeObject(obj)


def eventObject(event: PlateEvent, systemId: int, journalId: Optional[int],
                picture: Optional[bytes] = None,
                platePicture: Optional[bytes] = None,
                testMode: bool = False) -> dict[str, Any]:
    """L{encodeEvent}'s object before it is encoded, for outputs that add
    members of their own (a webhook's picture URLs)."""
    obj: dict[str, Any] = dict(eventPairs(event, systemId, testMode))
    if journalId is not None:
        obj["id"] = journalId
    if picture is not None:
        if event.bbox is not None:
            obj["bbox"] = list(event.bbox)
        obj["picture"] = base64.b64encode(picture).decode("ascii")
    if platePicture is not None:
        obj["plate_picture"] = base64.b64encode(platePicture).decode("ascii")
    return obj


def encodeObject(obj: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as every message and webhook body is sent."""
    return json.dumps(obj, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True, slots=True)
class CollectedEvent:
    """
    A message of another instance, validated.

    @ivar key: what identifies the message for duplicate removal within
        its C{systemId}: the journal id for a Lost (qualified by the frame
        time, so a site whose journal was recreated is not silenced), and
        C{RuntimeID}, C{State}, C{ReadCount} and frame time for the others.
    @ivar journalId: the site's journal id (C{id}) of a Lost, else
        L{None}: consecutive per site, so a hole shows a lost message.
    @ivar after: the message's C{after} (ids between it and C{journalId}
        are not the site's own), or L{None}.
    """

    systemId: int
    key: str
    event: PlateEvent
    journalId: Optional[int] = None
    after: Optional[int] = None


def decodeObject(payload: bytes) -> dict[str, Any]:
    """A message's JSON object (every message of ours is one).

    @raise ReadFormatError: on C{message} when it is not UTF-8 JSON or not
        an object."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ReadFormatError("message", "not UTF-8 JSON: %s" % (e,))
    if not isinstance(obj, dict):
        raise ReadFormatError("message", "must be a JSON object")
    return obj


def _text(obj: dict, key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ReadFormatError(key, "missing, or not a string")
    return value


def _int(obj: dict, key: str, low: int = 0, high: int = MAX_INT,
         default: Optional[int] = None) -> int:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) \
            or not low <= value <= high:
        raise ReadFormatError(key, "must be an integer %d..%d" % (low, high))
    return value


def _bbox(value: object) -> BBox:
    if not isinstance(value, list) or len(value) != 4 or not all(
            isinstance(v, int) and not isinstance(v, bool)
            and 0 <= v <= MAX_COORDINATE for v in value):
        raise ReadFormatError("bbox", "must be 4 integers [x, y, w, h]")
    return (value[0], value[1], value[2], value[3])


def _channelName(obj: dict) -> Optional[str]:
    """The site's C{ChannelName}, checked like the setting it came from."""
    value = obj.get("ChannelName")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ReadFormatError("ChannelName", "must be a string")
    try:
        return checkChannelName(value)
    except ValueError as e:
        raise ReadFormatError("ChannelName", str(e)) from None


DECISION_KEYS = {"ListName": "listName", "ListKind": "listKind",
                 "ListPlate": "listPlate", "ListMatch": "listMatch",
                 "Access": "access"}
"""The list decision's wire keys (numberok.lists) -> L{PlateEvent}
fields."""


def _decision(obj: dict) -> dict[str, str]:
    """The list decision another site made, kept as it said it."""
    found = {}
    for key, attr in DECISION_KEYS.items():
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise ReadFormatError(key, "must be a string of at most 200 "
                                  "characters")
        found[attr] = value
    return found


def decodeEvent(topic: str, payload: bytes,
                prefix: str = "numberok") -> CollectedEvent:
    """
    Validate a message of C{<prefix>/<SystemId>/events/<ch>/<zone>}.

    @raise ReadFormatError: naming the first bad member; a topic other
        than exactly the one the payload's C{SystemId}, C{ChannelIndex} and
        C{ZoneIndex} give is refused too (a site allowed by the broker's
        ACL to write C{<prefix>/2/#} must not pose as SystemId 1 on
        C{<prefix>/2/events/1/events/0/0}).
    """
    obj = decodeObject(payload)
    systemId = _int(obj, "SystemId", 0, 2 ** 31 - 1)
    channel = _int(obj, "ChannelIndex", 0, MAX_CHANNEL, default=0)
    zone = _int(obj, "ZoneIndex", 0, 1000, default=0)
    expected = _eventTopic(prefix, systemId, channel, zone)
    if topic != expected:
        raise ReadFormatError("SystemId", "%d does not match the topic %s "
                              "(expected %s)" % (systemId, topic, expected))
    state = _STATES.get(_text(obj, "State"))
    if state is None:
        raise ReadFormatError("State", "must be Detected, Updated or Lost")
    movement = _MOVEMENTS.get(obj.get("MovementType", "Undetermined"))
    if movement is None:
        raise ReadFormatError("MovementType", "unknown movement")
    runtimeId = _int(obj, "RuntimeID")
    frameTimeMs = _int(obj, "FrameTimeStampMs")
    reads = _int(obj, "ReadCount", 0, default=1)
    frame = bbox = None
    if obj.get("picture") is not None:
        frame = decodeJpeg(obj["picture"], "picture")
        if obj.get("bbox") is not None:
            bbox = _bbox(obj["bbox"])
    event = PlateEvent(
        state=state, runtimeId=runtimeId,
        channel=channel, zone=zone,
        plate=checkPlate(obj.get("PlateNumber"), "PlateNumber"),
        rawPlate=checkPlate(obj.get("RawPlateNumber",
                                    obj.get("PlateNumber")), "RawPlateNumber"),
        frameTimeMs=frameTimeMs,
        processTimeMs=_int(obj, "ProcessTimeMs", default=0),
        movement=movement,
        checkpoint=_int(obj, "Checkpoint", default=0),
        confidence=_int(obj, "Confidence", 0, 100, default=100) / 100.0,
        reads=reads, frame=frame, bbox=bbox, systemId=systemId,
        channelName=_channelName(obj), vehicle=eventVehicle(obj),
        **_decision(obj))
    journalId = after = None
    if state is EventState.LOST and obj.get("id") is not None:
        journalId = _int(obj, "id", 1)
        key = "L%d:%d" % (journalId, frameTimeMs)
        if obj.get("after") is not None:
            after = _int(obj, "after", 0, journalId - 1)
    else:
        key = "%s%d:%d:%d" % (state.value[0], runtimeId, reads, frameTimeMs)
    return CollectedEvent(systemId, key, event, journalId, after)


checkInt = _int
"""For the other MQTT messages (L{numberok.mqtt.info}): an integer member
checked as the event's are."""
