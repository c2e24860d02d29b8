"""
A webhook's body: the MQTT event message's JSON object
(L{numberok.mqtt.payload.eventObject}: every wire key with its wire text,
plus C{id}, the journal id, for Lost), with the pictures the target asked
for, and the idempotency key that goes with it (docs/integrations.rst,
"Body").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from numberok.events import PlateEvent
from numberok.mqtt.payload import encodeObject, eventObject
from numberok.webhooks.config import TargetConfig


@dataclass(frozen=True, slots=True)
class Body:
    """
    One delivery's bytes.

    @ivar key: the C{Idempotency-Key}: C{<SystemId>-<journal id>} for a
        Lost, C{<SystemId>-<State>-<RuntimeID>-<ReadCount>} for a live
        Detected/Updated; the same for every retry of an event.
    @ivar journalId: the journal id (Lost from the journal), else L{None}.
    """

    data: bytes
    key: str
    journalId: Optional[int]
    state: str


def buildBody(config: TargetConfig, event: PlateEvent, systemId: int,
              journalId: Optional[int],
              pictures: tuple = (None, None),
              pictureBase: Optional[str] = None,
              stored: tuple[bool, bool] = (False, False),
              testMode: bool = False) -> Body:
    """
    The body of C{event} for C{config}.

    @param systemId: ours (an event collected from another instance keeps
        its own in the body, as on MQTT).
    @param pictures: C{(frame, plate crop)} JPEG bytes for C{inline}, else
        C{(None, None)}.
    @param pictureBase: the admin server's URL (C{http://host:8080}) the
        C{url} pictures are under; L{None} gives paths only.
    @param stored: whether the journal keeps the row's C{(frame, plate
        crop)}: C{url} names only pictures that exist.
    """
    frame, crop = pictures if config.pictures == "inline" else (None, None)
    obj = eventObject(event, systemId, journalId, frame, crop, testMode)
    if config.pictures == "url" and journalId is not None:
        base = "%s/api/events/%d/" % ((pictureBase or "").rstrip("/"),
                                      journalId)
        if stored[0]:
            obj["picture_url"] = base + "screenshot.jpg"
            if event.bbox is not None:
                obj["bbox"] = list(event.bbox)
        if stored[1]:
            obj["plate_picture_url"] = base + "plate.jpg"
    owner = event.systemId if event.systemId is not None else systemId
    if journalId is not None:
        key = "%d-%d" % (systemId, journalId)
    else:
        key = "%d-%s-%d-%d" % (owner, event.state.value, event.runtimeId,
                               event.reads)
    return Body(encodeObject(obj), key, journalId, event.state.value)


def pictureBaseOf(admin: Optional[str]) -> Optional[str]:
    """
    The admin server's URL from its strports description
    (C{tcp:8080:interface=127.0.0.1} -> C{http://127.0.0.1:8080}), for
    C{Pictures = url}; L{None} when it cannot be told (no admin port, a
    UNIX socket).  A wildcard interface gives the host's name.
    """
    if not admin:
        return None
    parts = admin.split(":")
    kind = parts[0].lower()
    if kind not in ("tcp", "ssl", "tls") or len(parts) < 2:
        return None
    port = parts[1].split("=", 1)[-1]
    host = ""
    for part in parts[2:]:
        if part.startswith("interface="):
            host = part.split("=", 1)[1]
    if host in ("", "0.0.0.0", "::"):
        import socket
        host = socket.gethostname()
    if ":" in host:
        host = "[%s]" % (host,)
    scheme = "http" if kind == "tcp" else "https"
    return "%s://%s:%s" % (scheme, host, port)
