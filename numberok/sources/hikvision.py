"""
Hikvision ISAPI ANPR alarms: what a Hikvision ANPR camera's "HTTP
listening" (alarm host) pushes, turned into a L{PlateRead}.

The camera posts an C{EventNotificationAlert} XML document, either as the
bare body or as a C{multipart/form-data} part beside one JPEG part per
picture its C{pictureInfoList} names (C{licensePlatePicture.jpg},
C{vehiclePicture.jpg}, C{detectionPicture.jpg}).  The mapping of its fields
to a read, and where their meaning comes from, is the table in
docs/sources.rst ("Hikvision ANPR cameras").

Everything here is pure and blocking (an XML parse, a JPEG header read):
the HTTP resource (L{numberok.web.cameras}) runs L{parseAlarm} in a thread.
The XML is untrusted: it is parsed only with C{defusedxml}, which refuses
DTDs, entity declarations (billion laughs) and external references.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Optional
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import defusedxml
import defusedxml.ElementTree

from numberok.events import BBox, PlateRead, VehicleAttributes
from numberok.images import InvalidImage, frameSize
from numberok.sources.formats import (MAX_CHANNEL, MAX_TIME_MS, MAX_ZONE,
                                      ReadFormatError, checkPlate)
from numberok.sources.multipart import multipartParts
from numberok.vehicle import attributesOf, checkAttribute

MAX_ALARM_BYTES = 8 * 1024 * 1024
"""The largest alarm body taken: the XML and two or three JPEGs of a few
hundred kilobytes each fit many times over (docs/sources.rst)."""

MAX_PARTS = 16
"""Multipart parts taken at most; ISAPI lists up to 8 pictures."""

MAX_XML_DEPTH = 32
"""Element nesting taken at most; an ISAPI alarm nests about 5 deep."""

MAX_XML_ELEMENTS = 10000
"""Elements taken at most; an ISAPI alarm has about a hundred."""

XML_CHUNK_BYTES = 64 * 1024
"""How much XML one parser call takes: between calls other threads run."""

PICTURE_PREFERENCE = ("vehiclePicture", "detectionPicture")
"""Which picture becomes the read's frame: the first of these sent."""

RECT_SCALE = 1000
"""ISAPI gives C{plateRect} in thousandths of the picture's width and
height, origin top left (docs/sources.rst cites the schema)."""

HEARTBEATS = frozenset({"videoloss", "heartbeat"})
"""Event types cameras send to say they are alive (Hikvision's heartbeat is
a C{videoloss} alarm with C{eventState} inactive)."""

DIRECTIONS = frozenset({"forward", "reverse"})
TRAVEL = {"forward": "approaching", "reverse": "leaving"}
"""ISAPI's C{direction} as L{numberok.events.PlateRead.travel}: forward is
a vehicle coming towards the camera, reverse one driving away."""

ANPR = "anpr"
UNKNOWN_PLATE = "unknown_plate"
HEARTBEAT = "heartbeat"
OTHER = "other"
KINDS = (ANPR, UNKNOWN_PLATE, HEARTBEAT, OTHER)

_XML_TYPES = ("application/xml", "text/xml")


@dataclass(frozen=True, slots=True)
class Alarm:
    """
    One parsed alarm.

    @ivar kind: one of L{KINDS}: an ANPR read, an ANPR alarm without a
        read (C{licensePlate} C{unknown}), a heartbeat, or any other
        event type.
    @ivar eventType: as the camera spelled it, for the log.
    @ivar read: the read, for C{kind == ANPR} only.
    @ivar direction: C{"forward"} or C{"reverse"} when the camera says so
        (C{ANPR/direction}); L{None} otherwise.
    @ivar pictureProblem: why the camera's picture was left out of the
        read (not a JPEG, over the pixel limit, a missing part), or L{None}.
    """

    kind: str
    eventType: str
    read: Optional[PlateRead] = None
    direction: Optional[str] = None
    pictureProblem: Optional[str] = None


@dataclass(frozen=True, slots=True)
class _Picture:
    fileName: str
    type: str
    rect: Optional[tuple[int, int, int, int]]


def _local(tag: str) -> str:
    """A tag without its namespace: ISAPI documents come with
    C{.../ver20/XMLSchema}, C{.../ver10/XMLSchema}, isapi.org's, or none."""
    return tag.rsplit("}", 1)[-1]


def _child(element: Element, name: str) -> Optional[Element]:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: Element, name: str) -> Optional[str]:
    child = _child(element, name)
    if child is None or child.text is None:
        return None
    return child.text.strip() or None


def _int(element: Element, name: str, low: int, high: int,
         path: str) -> Optional[int]:
    text = _text(element, name)
    if text is None:
        return None
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 9:
        raise ReadFormatError(path, "%r is not an integer" % (text[:40],))
    value = int(text)
    if not low <= value <= high:
        raise ReadFormatError(path, "%d is not %d..%d" % (value, low, high))
    return value


class _BoundedBuilder(TreeBuilder):
    """
    A tree builder that refuses a document deeper than L{MAX_XML_DEPTH} or
    with more than L{MAX_XML_ELEMENTS} elements as it is parsed: an 8 MiB
    body of nested elements peaked at 509 MB as a tree.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.elements = 0

    def start(self, tag, attrs):
        self.depth += 1
        self.elements += 1
        if self.depth > MAX_XML_DEPTH:
            raise ReadFormatError("xml", "elements nested deeper than %d"
                                  % (MAX_XML_DEPTH,))
        if self.elements > MAX_XML_ELEMENTS:
            raise ReadFormatError("xml", "more than %d elements"
                                  % (MAX_XML_ELEMENTS,))
        return super().start(tag, attrs)

    def end(self, tag):
        self.depth -= 1
        return super().end(tag)


def parseXML(data: bytes) -> Element:
    """
    The root of an alarm document, parsed with defusedxml, bounded in depth
    and elements (L{_BoundedBuilder}), and fed in L{XML_CHUNK_BYTES} pieces
    so that a large document lets other threads (the reactor's) run
    between them.

    @raise ReadFormatError: not XML, a DTD / entity / external reference
        (refused, never expanded), too deep or too many elements, or
        another root than C{EventNotificationAlert}.
    """
    try:
        parser = defusedxml.ElementTree.DefusedXMLParser(
            target=_BoundedBuilder(), forbid_dtd=True, forbid_entities=True,
            forbid_external=True)
        view = memoryview(data)
        for at in range(0, len(data), XML_CHUNK_BYTES):
            parser.feed(bytes(view[at:at + XML_CHUNK_BYTES]))
        root = parser.close()
    except defusedxml.DefusedXmlException as e:
        raise ReadFormatError("xml", "refused: %s" % (
            type(e).__name__,)) from None
    except (ParseError, ValueError) as e:
        raise ReadFormatError("xml",
                              "not well-formed XML: %s" % (e,)) from None
    if _local(root.tag) != "EventNotificationAlert":
        raise ReadFormatError("xml", "root element is %s, not "
                              "EventNotificationAlert" % (_local(root.tag)[:40],))
    return root


def parseTime(text: Optional[str], nowMs: int) -> int:
    """
    C{dateTime} (ISO 8601, normally with an offset, e.g.
    C{2025-11-24T15:30:12+03:00}) as ms since the epoch.  A time without
    an offset is taken in the server's local zone, as cameras set to local
    time stamp it; no time at all means now.
    """
    if text is None:
        return nowMs
    try:
        stamp = datetime.datetime.fromisoformat(text)
        if stamp.tzinfo is None:
            stamp = stamp.astimezone()
        ms = round(stamp.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        raise ReadFormatError("dateTime", "%r is not an ISO 8601 time"
                              % (text[:40],)) from None
    if not 0 <= ms <= MAX_TIME_MS:
        raise ReadFormatError("dateTime", "%r is out of range" % (text[:40],))
    return ms


def confidenceOf(anpr: Element) -> float:
    """
    C{confidenceLevel} (0..100, the whole plate) as 0.0..1.0; without it the
    lowest of C{plateCharBelieve}'s per-character values (a plate is no
    surer than its weakest character); without both, 1.0.
    """
    level = _int(anpr, "confidenceLevel", 0, 100, "ANPR.confidenceLevel")
    if level is not None:
        return level / 100
    chars = _text(anpr, "plateCharBelieve")
    values = []
    for value in (chars or "").split(","):
        value = value.strip()
        if not value:
            continue
        if not (value.isascii() and value.isdigit() and len(value) <= 3
                and int(value) <= 100):
            raise ReadFormatError("ANPR.plateCharBelieve", (
                "%r is not a list of integers 0..100" % (chars[:40],)))
        values.append(int(value))
    return min(values) / 100 if values else 1.0


def _pictures(anpr: Element) -> list[_Picture]:
    listing = _child(anpr, "pictureInfoList")
    if listing is None:
        return []
    pictures = []
    for info in listing:
        if _local(info.tag) != "pictureInfo":
            continue
        name = _text(info, "fileName") or ""
        kind = _text(info, "type") or name.rsplit(".", 1)[0]
        rect = None
        box = _child(info, "plateRect")
        if box is not None:
            # A box outside the schema's 0..1000 (some firmware sends
            # pixels) is left out rather than guessed at; the read stays.
            try:
                values = [_int(box, key, 0, RECT_SCALE, "plateRect." + key)
                          for key in ("X", "Y", "width", "height")]
            except ReadFormatError:
                values = [None]
            if None not in values:
                rect = tuple(values)
        pictures.append(_Picture(name, kind, rect))
    return pictures


def scaleRect(rect: tuple[int, int, int, int], width: int,
              height: int) -> Optional[BBox]:
    """
    C{plateRect} (thousandths of the picture) in pixels of a C{width} x
    C{height} picture, clipped to it; L{None} when nothing of it is inside.
    """
    x, y, w, h = rect
    left = min(width, round(x * width / RECT_SCALE))
    top = min(height, round(y * height / RECT_SCALE))
    right = min(width, round((x + w) * width / RECT_SCALE))
    bottom = min(height, round((y + h) * height / RECT_SCALE))
    if right - left < 1 or bottom - top < 1:
        return None
    return (left, top, right - left, bottom - top)


def _splitBody(contentType: str, body: bytes
               ) -> tuple[bytes, dict[str, bytes]]:
    """The XML document and the pictures by name (part name and file
    name both, lower case)."""
    kind = contentType.split(";", 1)[0].strip().lower()
    if kind.startswith("multipart/"):
        xml, pictures = None, {}
        for name, filename, partType, payload in multipartParts(
                contentType, body, MAX_PARTS):
            looksXML = (partType in _XML_TYPES
                        or name.lower().endswith(".xml")
                        or filename.lower().endswith(".xml")
                        or payload.lstrip()[:1] == b"<")
            if looksXML and xml is None:
                xml = payload
            else:
                for key in (name, filename):
                    if key:
                        pictures.setdefault(key.lower(), payload)
        if xml is None:
            raise ReadFormatError("xml", "no XML part in the multipart body")
        return xml, pictures
    if kind in _XML_TYPES or kind == "" or body.lstrip()[:1] == b"<":
        return body, {}
    raise ReadFormatError("Content-Type", "%r is not accepted: send "
                          "application/xml or multipart/form-data" % (kind,))


def _frame(pictures: list[_Picture], parts: dict[str, bytes]
           ) -> tuple[Optional[bytes], Optional[BBox], Optional[str]]:
    """The frame, its plate box, and why a picture was left out."""
    for wanted in PICTURE_PREFERENCE:
        for picture in pictures:
            if picture.type != wanted:
                continue
            jpeg = parts.get(picture.fileName.lower())
            if jpeg is None:
                return None, None, "%s is listed but not sent" % (
                    picture.fileName[:60],)
            try:
                width, height = frameSize(jpeg)
            except InvalidImage as e:
                return None, None, "%s: %s" % (picture.fileName[:60], e)
            bbox = (scaleRect(picture.rect, width, height)
                    if picture.rect is not None else None)
            return jpeg, bbox, None
    return None, None, None


def parseAlarm(contentType: str, body: bytes, nowMs: int) -> Alarm:
    """
    One pushed alarm.  Blocking (XML parse, JPEG header): call it in a
    thread.

    @param contentType: the request's C{Content-Type}.
    @param nowMs: the server's time, for an alarm without C{dateTime}.
    @raise ReadFormatError: naming the field; the resource answers 400 (or
        415 for C{Content-Type}).
    """
    if len(body) > MAX_ALARM_BYTES:
        raise ReadFormatError("body", "larger than %d bytes"
                              % (MAX_ALARM_BYTES,))
    xml, parts = _splitBody(contentType, body)
    root = parseXML(xml)
    eventType = _text(root, "eventType") or ""
    folded = eventType.lower()
    if folded in HEARTBEATS:
        return Alarm(HEARTBEAT, eventType)
    if folded != "anpr":
        return Alarm(OTHER, eventType)
    anpr = _child(root, "ANPR")
    if anpr is None:
        raise ReadFormatError("ANPR", "an ANPR alarm without its ANPR element")
    raw = _text(anpr, "licensePlate")
    if raw is None or raw.lower() == "unknown":
        return Alarm(UNKNOWN_PLATE, eventType)
    plate = checkPlate(raw, "ANPR.licensePlate")
    channel = _int(root, "channelID", 1, MAX_CHANNEL + 1, "channelID") or 1
    line = _int(anpr, "line", 1, MAX_ZONE + 1, "ANPR.line") or 1
    direction = (_text(anpr, "direction") or "").lower()
    frame, bbox, problem = _frame(_pictures(anpr), parts)
    read = PlateRead(
        plate=plate, timeMs=parseTime(_text(root, "dateTime"), nowMs),
        channel=channel - 1, zone=line - 1, confidence=confidenceOf(anpr),
        bbox=bbox, jpeg=frame, source="hikvision", perVehicle=True,
        travel=TRAVEL.get(direction), vehicle=vehicleAttributes(root, anpr))
    return Alarm(ANPR, eventType, read,
                 direction if direction in DIRECTIONS else None, problem)


def vehicleAttributes(root: Element, anpr: Element
                      ) -> Optional[VehicleAttributes]:
    """
    The vehicle as the camera describes it: C{ANPR/vehicleType},
    C{ANPR/plateColor} and C{vehicleInfo/color} (C{vehicleInfo} inside
    C{ANPR} or beside it, as firmware differs).  Make and model come only
    as numeric codes of Hikvision's own tables (C{vehicleLogoRecog},
    C{vehileModel}), which are not published: left out rather than
    guessed.  A value that is not a short text is left out too: the plate
    read stays.
    """
    info = _child(anpr, "vehicleInfo")
    if info is None:
        info = _child(root, "vehicleInfo")

    def text(element: Optional[Element], name: str) -> Optional[str]:
        if element is None:
            return None
        try:
            return checkAttribute(_text(element, name), name)
        except ReadFormatError:
            return None
    return attributesOf(type=text(anpr, "vehicleType"),
                        colour=text(info, "color"),
                        plateColour=text(anpr, "plateColor"))
