"""
A webhook target's list of parked events, kept beside its cursor so it
survives a restart (C{webhook-<name>.parked}, JSON).  Blocking: run in a
thread.
"""

from __future__ import annotations

import json

from numberok.journal.cursor import replaceFile


def readParked(path: str) -> list:
    """The parked events, oldest first; empty before the first."""
    try:
        with open(path, encoding="utf-8") as f:
            parked = json.load(f)
    except FileNotFoundError:
        return []
    return [p for p in parked if isinstance(p, dict) and "id" in p]


def writeParked(path: str, parked: list) -> None:
    replaceFile(path, json.dumps(parked))
