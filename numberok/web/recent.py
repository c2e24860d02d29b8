"""
The last events, for the admin page's "Last events" table and
C{GET /api/events/recent}: a small in-memory ring of every event (Detected,
Updated, Lost), with pictures made in a thread.

One id scheme per path (docs/admin.rst):

- a row whose event is in the journal (a Lost event, once recorded) carries
  its journal C{id}, and its pictures are the journal's:
  C{/api/events/<id>/plate.jpg}, C{/api/events/<id>/thumbnail},
  C{/api/events/<id>/screenshot.jpg};
- a row that is not (Detected, Updated, a Lost not yet recorded) has
  C{"id": null} and a C{live_id}; its pictures, kept here while the row is
  in the ring, are C{/api/events/live/<live_id>/thumbnail} and
  C{/api/events/live/<live_id>/picture.jpg}.

A row's C{thumbnail} is the plate crop when the event has a plate box (at
least 160 px wide: readable), else the frame scaled down; C{picture} is the
whole frame, for a click.  A URL is given only while what it names exists.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import BBox, PlateEvent
from numberok.images import frameMark
from numberok.interfaces import IEventSink
from numberok.journal.fields import JournalEntry, eventJSON
from numberok.journal.pictures import makeThumbnail
from numberok.journal.resource import JournalResource
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.threads import ServiceThreads
from numberok.web.common import (Endpoint, HTTPError, NotFound, answer,
                                 answerJSON)
from numberok.web.gate import Gate, Identity

PICTURE_SIZE = (960, 720)
"""The frame shown on a click, scaled down to this: a row's memory stays
small however large the camera's frame."""


def livePictures(frame: bytes, box: Optional[BBox]
                 ) -> tuple[Optional[bytes], Optional[bytes]]:
    """
    The thumbnail (plate crop when there is a box, else the frame scaled
    down) and the click picture of a frame.  Blocking: runs in a thread.
    """
    from numberok.images import InvalidImage, cropPlate
    thumbnail = None
    if box is not None:
        try:
            thumbnail = cropPlate(frame, box)
        except InvalidImage:
            return None, None
    if thumbnail is None:
        thumbnail = makeThumbnail(frame)
    return thumbnail, makeThumbnail(frame, PICTURE_SIZE, 80)


@dataclass
class RecentEvent:
    """
    One row of the table.  Its pictures arrive later, from a thread; once
    the journal recorded the event, C{entry} is its row there.
    """

    liveId: int
    event: PlateEvent
    entry: Optional[JournalEntry] = None
    thumbnail: Optional[bytes] = None
    picture: Optional[bytes] = None

    def asJSON(self, base: str = "/api/events") -> dict[str, Any]:
        e = self.event
        data = eventJSON(e)
        data.update({
            "id": self.entry.id if self.entry is not None else None,
            "live_id": self.liveId,
            # When the server made the event (for Lost: when the vehicle
            # was lost); the table shows frame_time_ms, the camera's time,
            # and this as its tooltip.
            "time_ms": (e.eventTimeMs if e.eventTimeMs is not None
                        else e.frameTimeMs),
            "confidence": round(e.confidence, 3),
        })
        data["thumbnail"], data["picture"] = self.urls(base)
        return data

    def urls(self, base: str) -> tuple[Optional[str], Optional[str]]:
        """C{(thumbnail, picture)} URLs, L{None} for what does not
        exist."""
        entry = self.entry
        if entry is not None:
            row = "%s/%d/" % (base, entry.id)
            shot = row + "screenshot.jpg" if entry.hasScreenshot else None
            if entry.hasPlatePicture:
                return row + "plate.jpg", shot
            return (row + "thumbnail" if shot else None), shot
        live = "%s/live/%d/" % (base, self.liveId)
        return (live + "thumbnail" if self.thumbnail else None,
                live + "picture.jpg" if self.picture else None)


class _PictureJob:
    """One frame being (or made) into pictures, and the rows that show
    them."""

    def __init__(self, frame: bytes, box: Optional[BBox]) -> None:
        # The frame is held only until its pictures are made; after that
        # its length and last bytes (JPEG entropy data: distinct per frame)
        # tell it again, so a 1 MB frame is not kept for 50 rows.
        self.frame, self.box = frame, box
        self.mark = frameMark(frame)
        self.done = False
        self.pictures: tuple[Optional[bytes], Optional[bytes]] = (None, None)
        self._rows: list[RecentEvent] = []

    def add(self, row: RecentEvent) -> None:
        if self.done:
            row.thumbnail, row.picture = self.pictures
        else:
            self._rows.append(row)

    def shows(self, frame: bytes, box: Optional[BBox]) -> bool:
        """Whether this job's pictures are those of C{frame} and C{box}."""
        if box != self.box:
            return False
        if self.frame is not None:
            return frame is self.frame
        return frameMark(frame) == self.mark

    def finish(self, pictures: tuple[Optional[bytes], Optional[bytes]]
               ) -> None:
        self.done, self.pictures = True, pictures
        self.frame = None
        for row in self._rows:
            if row.entry is None:
                row.thumbnail, row.picture = pictures
        self._rows = []


def _sameEvent(a: PlateEvent, b: PlateEvent) -> bool:
    """Whether row event C{a} (kept without its frame) is C{b}."""
    return (a.runtimeId == b.runtimeId and a.state is b.state
            and a.reads == b.reads and a.frameTimeMs == b.frameTimeMs
            and a.systemId == b.systemId)


@implementer(IEventSink)
class RecentEvents(Service):
    """
    Keeps the last C{size} events.  An event with a frame gets its pictures
    made in this service's own thread; the events of one track usually
    share the frame of its best read, so the pictures are reused while the
    frame stays the same, and when the thread is behind (more than
    C{maxPending} waiting) a row simply has none (counted): the page is a
    view, not a record.

    @param journal: the L{numberok.journal.Journal}, or L{None}: its newest
        rows fill the table at start, and the rows of events it records
        take its ids.
    """

    log = Logger()
    size = 50
    maxPending = 8

    def __init__(self, size: Optional[int] = None,
                 reactor: Optional[IReactorTime] = None,
                 journal: Any = None, metrics: Optional[Metrics] = None,
                 base: str = "/api/events") -> None:
        if size is not None:
            self.size = size
        self.journal = journal
        self.base = base
        self.metrics = metricsOrPrivate(metrics)
        self._skipped = self.metrics.recentThumbnailsSkipped
        self._rows: deque[RecentEvent] = deque(maxlen=self.size)
        self._liveIds = itertools.count(1)
        self._jobs: dict[int, _PictureJob] = {}
        self._pending = 0
        self.threads = ServiceThreads("numberok-thumbnails", 1,
                                      reactor=reactor)

    def startService(self) -> None:
        Service.startService(self)
        self.threads.start()
        if self.journal is not None:
            self.journal.addRecordedObserver(self._journaled)
            self.journal.recent(self.size).addCallbacks(
                self._preload, lambda f: self.log.warn(
                    "last events not loaded from the journal: {reason}",
                    reason=f.getErrorMessage()))

    def stopService(self) -> Deferred:
        Service.stopService(self)
        if self.journal is not None:
            self.journal.removeRecordedObserver(self._journaled)
        return self.threads.stop()

    def _preload(self, entries: list) -> None:
        """
        Put the journal's newest rows below the live ones, so that a
        restart does not empty the page's table; their pictures are the
        journal's.
        """
        room = self.size - len(self._rows)
        for entry in entries[:max(room, 0)]:
            self._rows.appendleft(RecentEvent(next(self._liveIds),
                                              entry.toEvent(), entry))

    def _journaled(self, entry: JournalEntry, event: PlateEvent) -> None:
        """The journal recorded C{event}: its row takes the journal's id
        and pictures, and lets go of its own."""
        for row in self._rows:
            if _sameEvent(row.event, event):
                row.entry, row.thumbnail, row.picture = entry, None, None

    def publish(self, event: PlateEvent) -> None:
        # The row keeps the event without its frame: its pictures are made
        # from the frame once, and a frame is the biggest thing in an event.
        row = RecentEvent(next(self._liveIds), replace(event, frame=None)
                          if event.frame is not None else event)
        self._rows.append(row)
        if event.frame is None:
            return
        job = self._jobs.get(event.runtimeId)
        if job is not None and job.shows(event.frame, event.bbox):
            job.add(row)
            return
        if self._pending >= self.maxPending or not self.threads.running:
            self._skipped.inc()
            return
        job = self._jobs[event.runtimeId] = _PictureJob(event.frame,
                                                        event.bbox)
        job.add(row)
        self._pending += 1
        d = self.threads.run(livePictures, event.frame, event.bbox)
        d.addCallback(job.finish)
        d.addErrback(lambda f: self.log.failure("thumbnail failed", f))
        d.addBoth(self._jobDone)
        # Remember the frames of tracks still in the table only.
        live = {r.event.runtimeId for r in self._rows}
        for runtimeId in [r for r in self._jobs if r not in live]:
            del self._jobs[runtimeId]

    def _jobDone(self, _: object) -> None:
        self._pending -= 1

    def recent(self) -> list[RecentEvent]:
        """The rows kept, newest first."""
        return list(reversed(self._rows))

    def document(self) -> dict[str, Any]:
        """C{GET /api/events/recent}'s answer."""
        return {"events": [r.asJSON(self.base) for r in self.recent()]}

    def _row(self, liveId: int) -> Optional[RecentEvent]:
        for row in self._rows:
            if row.liveId == liveId:
                return row
        return None

    def thumbnail(self, liveId: int) -> Optional[bytes]:
        """The live thumbnail of row C{liveId}, while it is kept here."""
        row = self._row(liveId)
        return row.thumbnail if row is not None else None

    def picture(self, liveId: int) -> Optional[bytes]:
        """The live click picture of row C{liveId}, while it is kept."""
        row = self._row(liveId)
        return row.picture if row is not None else None


class RecentListEndpoint(Endpoint):
    """C{GET /api/events/recent}."""

    isLeaf = True

    def __init__(self, gate: Gate, recent: RecentEvents) -> None:
        super().__init__(gate)
        self.recent = recent

    async def GET(self, request, identity: Identity) -> None:
        answerJSON(request, 200, self.recent.document())


class LivePictureEndpoint(Endpoint):
    """C{GET /api/events/live/<live_id>/thumbnail|picture.jpg}."""

    isLeaf = True

    def __init__(self, gate: Gate, recent: RecentEvents) -> None:
        super().__init__(gate)
        self.recent = recent

    async def GET(self, request, identity: Identity) -> None:
        path = request.postpath
        if (len(path) != 2 or not path[0].isdigit() or len(path[0]) > 18
                or path[1] not in (b"thumbnail", b"picture.jpg")):
            raise HTTPError(404, {"path": "no such resource"})
        liveId = int(path[0])
        if path[1] == b"thumbnail":
            data = self.recent.thumbnail(liveId)
        else:
            data = self.recent.picture(liveId)
        if data is None:
            raise HTTPError(404, {"live_id": (
                "no %s for live event %d (not kept any more, or recorded in "
                "the journal: use its id)" % (path[1].decode(), liveId))})
        answer(request, 200, b"image/jpeg", data)


def eventsResource(journal: Any, recent: Optional[RecentEvents],
                   gate: Gate, base: str = "/api/events") -> JournalResource:
    """
    The whole C{/api/events} tree: the journal's paging and pictures, the
    admin page's C{recent} list and its C{live} pictures (L{Endpoint}s,
    which pass the C{gate} themselves).
    """
    root = JournalResource(journal, gate, base)
    if recent is not None:
        root.putChild(b"recent", RecentListEndpoint(gate, recent))
        root.putChild(b"live", LivePictureEndpoint(gate, recent))
    else:
        root.putChild(b"recent", NotFound(gate))
    return root
