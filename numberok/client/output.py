"""
What C{numberok-client} makes of an event: the printed line or JSON
object, and the screenshot files (the frame, and the plate cut from it when
the packet says where the plate is: C{PlateRect}).

The file functions are blocking: the command runs them in a thread.
"""

from __future__ import annotations

import json
import os
import unicodedata
from datetime import datetime, timedelta, timezone

from numberok.client.protocol import Pairs, eventFields


def _needsEscape(c: str) -> bool:
    category = unicodedata.category(c)
    return category[0] == "C" or category in ("Zl", "Zp")


def _printable(text: str) -> str:
    """
    C{text} with control, format and line-separator characters escaped, so
    that a hostile plate string cannot break the one-line-per-event output
    or send escape sequences to a terminal.
    """
    if not any(_needsEscape(c) for c in text):
        return text
    return "".join(
        c if not _needsEscape(c)
        else "\\x%02x" % ord(c) if ord(c) < 0x100
        else "\\u%04x" % ord(c) if ord(c) < 0x10000
        else "\\U%08x" % ord(c)
        for c in text)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _clock(when: datetime) -> str:
    return when.strftime("%H:%M:%S.") + "%03dZ" % (when.microsecond // 1000,)


def formatFrameTime(value: str | None) -> str:
    """
    C{FrameTimeStampMs} as UTC C{YYYY-MM-DD HH:MM:SS.mmmZ}, or the raw text
    (escaped) when it is not a usable millisecond count.
    """
    if value is None:
        return "-"
    try:
        when = _utc(int(value))
    except (ValueError, OverflowError):
        return _printable(value)
    return when.strftime("%Y-%m-%d ") + _clock(when)


def _frameTimeAfter(value: str | None, arrivedMs: int) -> str:
    """
    The C{frame=} column: the frame time as a clock time when it falls on
    the arrival's UTC day, else with its date (ISO, no space).
    """
    text = formatFrameTime(value)
    try:
        when, arrived = _utc(int(value or "")), _utc(arrivedMs)
    except (ValueError, OverflowError):
        return "frame=" + text
    if when.date() == arrived.date():
        return "frame=" + _clock(when)
    return "frame=" + text.replace(" ", "T")


def formatEventLine(pairs: Pairs, jpegBytes: int,
                    screenshot: str | None = None,
                    arrivedMs: int | None = None) -> str:
    """
    The readable one-line form of an event (docs/client.rst), here folded::

        2026-11-26 01:02:05.120Z Lost     A123BC77   sys=1  ch0/z1  In
        id=17 conf=93 reads=12 frame=01:02:03.456Z cam="Gate north"
        [jpeg 34567 B]

    Columns: when the event arrived (UTC; C{arrivedMs}, the client's
    clock), State, PlateNumber, SystemId, channel/zone, MovementType,
    RuntimeID, then our own Confidence and ReadCount when the server sends
    them, the event's frame time (C{FrameTimeStampMs}: for a Lost the
    best read's frame, which can be older than a Detected printed before
    it), the channel's name when the server sends one, the list decision
    (C{access=granted list=staff:A123BC77(exact)}) when lists apply, then
    the screenshot size and where it was saved.  Lines are printed in
    arrival order, so the leading times only grow.  Without C{arrivedMs} (a caller with no
    clock) the line leads with the frame time instead and has no
    C{frame=}.
    """
    f = eventFields(pairs)
    get = lambda key: _printable(f.get(key, "?"))  # noqa: E731
    plate = f.get("PlateNumber", f.get("Plate", "?"))
    frameTime = f.get("FrameTimeStampMs")
    parts = [
        formatFrameTime(frameTime) if arrivedMs is None
        else formatFrameTime(str(arrivedMs)),
        "%-8s" % get("State"),
        "%-10s" % (_printable(plate) or '""'),
        "%-6s" % ("sys=" + get("SystemId")),
        "%-7s" % ("ch%s/z%s" % (get("ChannelIndex"), get("ZoneIndex"))),
        "%-12s" % get("MovementType"),
        "id=" + get("RuntimeID"),
    ]
    if "Confidence" in f:
        parts.append("conf=" + get("Confidence"))
    if "ReadCount" in f:
        parts.append("reads=" + get("ReadCount"))
    if arrivedMs is not None:
        parts.append(_frameTimeAfter(frameTime, arrivedMs))
    if f.get("ChannelName"):
        parts.append('cam="%s"' % (get("ChannelName").replace('"', '\\"'),))
    if "Access" in f:
        parts.append("access=" + get("Access"))
    if "ListName" in f:
        parts.append("list=%s:%s(%s)" % (get("ListName"), get("ListPlate"),
                                         get("ListMatch")))
    if jpegBytes:
        if screenshot is None:
            parts.append("[jpeg %d B]" % (jpegBytes,))
        else:
            parts.append("[jpeg %d B -> %s]" % (jpegBytes, screenshot))
    return " ".join(parts)


def formatEventJSON(pairs: Pairs, jpegBytes: int,
                    screenshot: str | None = None) -> str:
    """
    The C{--json} form of an event: one JSON object on one line, every pair
    as a string member (as sent; a repeated key keeps its last value), plus
    C{"jpeg_bytes"} and, when the screenshot was saved, C{"screenshot"}.
    """
    obj: dict[str, object] = dict(eventFields(pairs))
    obj["jpeg_bytes"] = jpegBytes
    if screenshot is not None:
        obj["screenshot"] = screenshot
    return json.dumps(obj, ensure_ascii=False)


def _safeNamePart(text: str) -> str:
    """A server-supplied value made safe for a file name: no paths, no dots."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "_"
                      for c in text[:40])
    return cleaned or "_"


def screenshotName(pairs: Pairs, n: int) -> str:
    """
    The file name of event C{n}'s screenshot: C{<RuntimeID>_<State>_<n>.jpg}.
    C{n} is the event's number in this run (1, 2, ...), so the Updated
    events of one track do not overwrite each other.
    """
    f = eventFields(pairs)
    return "%s_%s_%d.jpg" % (_safeNamePart(f.get("RuntimeID", "unknown")),
                             _safeNamePart(f.get("State", "unknown")), n)


def _writeFile(path: str, data: bytes) -> None:
    """Blocking: write C{data} to C{path} via a temporary name."""
    tmp = path + ".part"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def plateRect(pairs: Pairs) -> tuple[int, int, int, int] | None:
    """
    The event's C{PlateRect=x,y,w,h} (integers, in the pixels of the JPEG
    attached to the same packet), or L{None} when absent or malformed.
    """
    text = eventFields(pairs).get("PlateRect")
    if text is None:
        return None
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isascii() and p.strip().isdigit()
                                  and len(p.strip()) <= 6 for p in parts):
        return None
    x, y, w, h = (int(p) for p in parts)
    if w <= 0 or h <= 0:
        return None
    return x, y, w, h


def cropPlate(jpeg: bytes, rect: tuple[int, int, int, int]) -> bytes:
    """
    The plate in C{rect} cut from C{jpeg} by the server's own rule
    (L{numberok.images.cropPlate}: a margin around the box, at least 160
    pixels wide), so the file matches the page's and MQTT's crops.
    Blocking: decodes.

    @raise ValueError: not a JPEG Pillow can read, over 12 megapixels
        (refused from its header), or C{rect} outside the picture.
    """
    from numberok.images import InvalidImage, frameSize
    from numberok.images import cropPlate as serverCrop
    try:
        crop = serverCrop(jpeg, rect)
    except InvalidImage as e:
        raise ValueError(str(e)) from None
    if crop is None:
        width, height = frameSize(jpeg)
        raise ValueError("PlateRect %d,%d,%d,%d is outside the %dx%d picture"
                         % (rect + (width, height)))
    return crop


def platePath(path: str) -> str:
    """C{dir/name.jpg} -> C{dir/name-plate.jpg}."""
    base, ext = os.path.splitext(path)
    return base + "-plate" + ext


def saveScreenshot(path: str, jpeg: bytes,
                   rect: tuple[int, int, int, int] | None) -> str | None:
    """
    Blocking: write the screenshot to C{path} and, when C{rect} is given,
    the plate cut from it to L{platePath}C{(path)}.

    @return: why the plate could not be cut (the screenshot is saved all
        the same), or L{None}.
    @raise OSError: the screenshot could not be written.
    """
    _writeFile(path, jpeg)
    if rect is None:
        return None
    try:
        _writeFile(platePath(path), cropPlate(jpeg, rect))
    except (ValueError, OSError) as e:
        return "plate crop for %s: %s" % (path, e)
    return None
