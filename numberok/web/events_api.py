"""
C{/api/events}: the page's last events (L{numberok.web.recent.RecentEvents})
and, mounted behind the gate, the journal's pages (L{numberok.journal_api.
JournalResource}).

    GET /api/events/recent                  the last events, newest first
    GET /api/events/<id>/thumbnail          a last event's thumbnail
    GET /api/events/<id>/plate-thumbnail    its plate crop (when the ring
                                            makes them: C{plateThumbnail})
    GET /api/events/<id>/frame.jpg          its whole frame
    GET /api/events?since_id=N&limit=M      the journal, oldest first
    GET /api/events/<id>/<anything else>    the journal's (screenshot.jpg...)

The ids of the first four are the ring's, the others the journal's.
"""

from __future__ import annotations

import re
from typing import Callable, Optional

from twisted.web import resource

from numberok.web.common import (Endpoint, Guarded, HTTPError, NotFound,
                                 answer, answerJSON)

EVENT_ID = re.compile(rb"^\d{1,18}$")
FRAME_URL = "/api/events/%d/frame.jpg"


def recentEntries(recent) -> list:
    """The ring's entries, newest first (none without a ring)."""
    return recent.recent() if recent is not None else []


def frameOf(recent, eventId: int) -> Optional[bytes]:
    for entry in recentEntries(recent):
        if entry.id == eventId:
            return entry.event.frame
    return None


class EventsNode(Endpoint):
    """
    @param recent: the L{numberok.web.recent.RecentEvents}, or L{None}.
    @param journal: the journal's resource, or L{None} when it is off.
    """

    def __init__(self, gate, recent, journal: Optional[resource.Resource]
                 ) -> None:
        super().__init__(gate)
        self.recent = recent
        self.journal = journal

    def getChild(self, path: bytes, request) -> resource.Resource:
        if path == b"recent":
            return RecentEndpoint(self.gate, self.recent)
        if EVENT_ID.match(path):
            return EventNode(self, int(path), path)
        return NotFound(self.gate)

    def journalChild(self, request, *path: bytes) -> Endpoint:
        if self.journal is None:
            return JournalOff(self.gate)
        inner = self.journal
        for segment in path:
            inner = inner.getChildWithDefault(segment, request)
        return Guarded(self.gate, inner)

    async def GET(self, request, identity) -> None:
        await self.journalChild(request).GET(request, identity)


class EventNode(Endpoint):
    """C{/api/events/<id>}: a last event's pictures, else the journal's."""

    def __init__(self, events: EventsNode, eventId: int,
                 segment: bytes) -> None:
        super().__init__(events.gate)
        self.events = events
        self.eventId = eventId
        self.segment = segment

    def getChild(self, path: bytes, request) -> resource.Resource:
        recent, eventId = self.events.recent, self.eventId
        if path == b"thumbnail":
            return Picture(self.gate, "thumbnail", lambda: (
                recent.thumbnail(eventId) if recent is not None else None))
        if path == b"plate-thumbnail":
            crop = getattr(recent, "plateThumbnail", None)
            return Picture(self.gate, "plate thumbnail", lambda: (
                crop(eventId) if crop is not None else None))
        if path == b"frame.jpg":
            return Picture(self.gate, "frame", lambda: frameOf(recent,
                                                                eventId))
        return self.events.journalChild(request, self.segment, path)

    async def GET(self, request, identity) -> None:
        raise HTTPError(404, {"path": "no such page or API: %s" % (
            request.path.decode("ascii", "replace")[:200],)})


class RecentEndpoint(Endpoint):
    def __init__(self, gate, recent) -> None:
        super().__init__(gate)
        self.recent = recent

    async def GET(self, request, identity) -> None:
        answerJSON(request, 200, {"events": [
            e.asJSON() for e in recentEntries(self.recent)]})


class Picture(Endpoint):
    """A JPEG the ring holds in memory, or 404 naming the event."""

    def __init__(self, gate, what: str,
                 find: Callable[[], Optional[bytes]]) -> None:
        super().__init__(gate)
        self.what = what
        self.find = find

    async def GET(self, request, identity) -> None:
        jpeg = self.find()
        if jpeg is None:
            raise HTTPError(404, {"id": "no %s for event %s" % (
                self.what, request.prepath[-2].decode("ascii"))})
        request.setHeader(b"Cache-Control", b"private, max-age=86400")
        answer(request, 200, b"image/jpeg", jpeg)


class JournalOff(Endpoint):
    async def GET(self, request, identity) -> None:
        raise HTTPError(404, {"journal": "the journal is disabled "
                                         "([Journal] Path is empty)"})

