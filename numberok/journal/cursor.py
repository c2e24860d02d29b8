"""
The persisted cursor of an outbox consumer (L{numberok.journal.outbox}): a
small JSON file beside the journal naming the last journal id the output
acknowledged and the first id it was ever to deliver (where its cursor
stood at its very first run: ids before were history it never sent).
Blocking: run in a thread.
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


def readCursorState(path: str) -> Optional[tuple[int, Optional[int]]]:
    """C{(acknowledged, first)}, C{first} L{None} in a file written before
    it was kept; L{None} before the first run."""
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return None
    first = state.get("first")
    return int(state["acknowledged"]), (int(first) if first is not None
                                        else None)


def writeCursor(path: str, value: int, first: Optional[int] = None) -> None:
    """Replace the cursor file atomically."""
    state = {"acknowledged": value}
    if first is not None:
        state["first"] = first
    replaceFile(path, json.dumps(state))


def replaceFile(path: str, text: str) -> None:
    """Replace C{path} with C{text} atomically (write, fsync, rename): a
    crash leaves the old file or the new one, never half of one."""
    part = path + ".part"
    with open(part, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(part, path)
