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
    """Replace the cursor file atomically."""
    replaceFile(path, json.dumps({"acknowledged": value}))


def replaceFile(path: str, text: str) -> None:
    """Replace C{path} with C{text} atomically (write, fsync, rename): a
    crash leaves the old file or the new one, never half of one."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
