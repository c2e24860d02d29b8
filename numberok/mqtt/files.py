"""
The blocking helpers of the site publisher, run in its thread: the outbox
cursor file and the pictures of an event.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from numberok.events import BBox
from numberok.images import InvalidImage, cropPlate

CURSOR_NAME = "mqtt-outbox.cursor"


def readCursor(path: str) -> Optional[int]:
    """The id the broker acknowledged last, or L{None} before the first
    run.  Blocking."""
    try:
        with open(path, encoding="utf-8") as f:
            return int(json.load(f)["acknowledged"])
    except FileNotFoundError:
        return None


def writeCursor(path: str, value: int) -> None:
    """Replace the cursor file atomically (write, fsync, rename).
    Blocking."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        json.dump({"acknowledged": value}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)


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
