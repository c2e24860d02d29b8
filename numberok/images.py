"""
Pictures as untrusted input: the one JPEG start check, the pixel limit read
from the header before anything is decoded, and the plate crop.

Everything here that decodes (L{frameSize} only reads the header;
L{cropPlate} decodes) is blocking work: call it in a thread, never on the
reactor thread.
"""

from __future__ import annotations

from io import BytesIO
from typing import Optional

from PIL import Image

from numberok.events import BBox

JPEG_SOI = b"\xff\xd8"

MAX_FRAME_PIXELS = 12_000_000
"""
The largest frame taken, in pixels (4000 x 3000).  A camera frame is at most
a few megapixels; a 700-byte file claiming 6300 x 6300 would cost 120 MB
decoded, so it is refused from its header.  docs/operations.rst.
"""

PLATE_MARGIN = 0.25
"""The margin kept around a plate box, as a fraction of its width and
height on each side, so the crop shows the plate's edge and its frame."""

PLATE_MIN_WIDTH = 160
"""A plate crop narrower than this is scaled up to it: readable on the
admin page without the operator zooming."""


def frameMark(frame: bytes) -> tuple[int, bytes]:
    """
    What tells a frame from another without keeping it: its length and
    last 64 bytes (entropy-coded data, distinct per frame).  Caches keyed
    by a frame's identity keep this instead of the frame, so a 1 MB frame
    is not held for a cache's sake alone.
    """
    return len(frame), frame[-64:]


class InvalidImage(Exception):
    """The data is not a JPEG we take: garbage, another format, truncated,
    or more pixels than L{MAX_FRAME_PIXELS}."""


def isJpeg(data: Optional[bytes]) -> bool:
    """
    Whether C{data} starts like a JPEG (the start-of-image marker).  A cheap
    gate: a broken JPEG behind a good marker is caught when it is decoded.
    """
    return bool(data) and data[:2] == JPEG_SOI


def frameSize(jpeg: bytes, maxPixels: int = MAX_FRAME_PIXELS
              ) -> tuple[int, int]:
    """
    The width and height of C{jpeg}, read from its header only.

    @raise InvalidImage: not a JPEG, or over C{maxPixels}.
    """
    if not isJpeg(jpeg):
        raise InvalidImage("not a JPEG (no FF D8 start-of-image marker)")
    try:
        with Image.open(BytesIO(jpeg), formats=("JPEG",)) as image:
            width, height = image.size
    except Exception as e:
        # Pillow reports bad data with OSError, SyntaxError, ValueError,
        # struct.error, DecompressionBombError...: all mean "unusable".
        raise InvalidImage("%s: %s" % (type(e).__name__, e)) from None
    if width * height > maxPixels:
        raise InvalidImage("%dx%d is more than the %d pixels a frame may have"
                           % (width, height, maxPixels))
    return width, height


def plateCropBox(box: BBox, frameWidth: int, frameHeight: int,
                 margin: float = PLATE_MARGIN
                 ) -> Optional[tuple[int, int, int, int]]:
    """
    The rectangle C{(left, top, right, bottom)} cut from a frame for the
    plate in C{box} (C{x, y, w, h}): the box grown by C{margin} on each
    side and clipped to the frame; L{None} when nothing of it is inside.
    """
    x, y, w, h = box
    if w <= 0 or h <= 0:
        return None
    dx, dy = round(w * margin), round(h * margin)
    left, top = max(0, x - dx), max(0, y - dy)
    right = min(frameWidth, x + w + dx)
    bottom = min(frameHeight, y + h + dy)
    if right - left < 2 or bottom - top < 2:
        return None
    return left, top, right, bottom


def cropPlate(jpeg: bytes, box: BBox, quality: int = 85,
              margin: float = PLATE_MARGIN,
              minWidth: int = PLATE_MIN_WIDTH) -> Optional[bytes]:
    """
    A JPEG of the plate in C{box} of the frame C{jpeg}, with a margin, at
    least C{minWidth} pixels wide.  Blocking: call it in a thread.

    @return: the crop, or L{None} when the box lies outside the frame.
    @raise InvalidImage: when C{jpeg} is not a usable frame.
    """
    width, height = frameSize(jpeg)
    rect = plateCropBox(box, width, height, margin)
    if rect is None:
        return None
    try:
        with Image.open(BytesIO(jpeg), formats=("JPEG",)) as image:
            crop = image.crop(rect)
            crop.load()
    except Exception as e:
        raise InvalidImage("%s: %s" % (type(e).__name__, e)) from None
    if crop.mode not in ("L", "RGB"):
        crop = crop.convert("RGB")
    if crop.width < minWidth:
        scale = minWidth / crop.width
        crop = crop.resize((minWidth, max(1, round(crop.height * scale))),
                           Image.Resampling.LANCZOS)
    out = BytesIO()
    crop.save(out, "JPEG", quality=quality)
    return out.getvalue()
