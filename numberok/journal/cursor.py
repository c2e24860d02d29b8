"""
The persisted cursor of an outbox consumer (L{numberok.journal.outbox}): a
small JSON file beside the journal naming the last journal id the output
acknowledged.  Blocking: run in a thread.
"""

from __future__ import annotations

import json
import os
from typing import Optional


def readCursor(path: str) -> Optional[int]:
    """The id acknowledged last, or L{None} before the first run."""
    try:
        with open(path, encoding="utf-8") as f:
            return int(json.load(f)["acknowledged"])
    except FileNotFoundError:
        return None


def writeCursor(path: str, value: int) -> None:
    """Replace the cursor file atomically (write, fsync, rename)."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        json.dump({"acknowledged": value}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
