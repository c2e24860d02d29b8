"""
The blocking helpers of the site publisher, run in its thread: the name
of its outbox cursor file (the file itself is
L{numberok.journal.cursor}'s) and the pictures of an event.
"""

from __future__ import annotations

from typing import Optional

from numberok.events import BBox
from numberok.images import InvalidImage, cropPlate
from numberok.journal.cursor import readCursor, writeCursor

__all__ = ["CURSOR_NAME", "readCursor", "writeCursor", "loadPictures"]

CURSOR_NAME = "mqtt-outbox.cursor"


def loadPictures(frame: Optional[bytes], path: Optional[str],
                 bbox: Optional[BBox]) -> tuple[Optional[bytes],
                                               Optional[bytes]]:
    """
    The picture of an event (its frame, or the journal's file) and the
    plate crop when the plate's box is known.  Blocking.
    """
    if frame is None and path is not None:
        try:
            with open(path, "rb") as f:
                frame = f.read()
        except FileNotFoundError:
            return None, None
    crop = None
    if frame is not None and bbox is not None:
        try:
            crop = cropPlate(frame, bbox)
        except InvalidImage:
            crop = None
    return frame, crop
