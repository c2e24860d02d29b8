"""
The last events, for the admin page's "Last events" table and
C{GET /api/events/recent}: a small in-memory ring with a thumbnail of each
event's screenshot.  Self-contained on purpose: the persistent journal is
another part; this one only serves the page.
"""

from __future__ import annotations

import io
import itertools
from collections import deque
from dataclasses import dataclass
from typing import Optional

from twisted.application.service import Service
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from numberok.events import EventState, MovementType, PlateEvent
from numberok.interfaces import IEventSink

THUMBNAIL_SIZE = (192, 144)
THUMBNAIL_QUALITY = 70


def makeThumbnail(jpeg: bytes) -> Optional[bytes]:
    """
    A small JPEG of C{jpeg} fitting L{THUMBNAIL_SIZE}, or L{None} when it
    is not a usable image.  Blocking (Pillow): runs in a thread.  C{draft}
    lets the decoder skip most of a large frame's pixels.
    """
    from PIL import Image
    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            image.draft("RGB", THUMBNAIL_SIZE)
            image = image.convert("RGB")
            image.thumbnail(THUMBNAIL_SIZE)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=THUMBNAIL_QUALITY)
            return out.getvalue()
    except Exception:
        return None


def _thumbnailOfFile(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return makeThumbnail(f.read())
    except OSError:
        return None


def _eventOf(entry) -> PlateEvent:
    """A journal row (L{numberok.journal.JournalEntry}) as an event again."""
    movement = next((m for m in MovementType if m.wireName == entry.movement),
                    MovementType.UNDETERMINED)
    return PlateEvent(
        state=EventState(entry.state), runtimeId=entry.runtimeId,
        channel=entry.channel, zone=entry.zone, plate=entry.plate,
        rawPlate=entry.rawPlate, frameTimeMs=entry.frameTimeMs,
        processTimeMs=entry.processTimeMs, movement=movement,
        checkpoint=entry.checkpoint, confidence=entry.confidence,
        reads=entry.reads)


@dataclass
class RecentEvent:
    """One row of the table.  C{thumbnail} arrives later, from a thread."""

    id: int
    event: PlateEvent
    thumbnail: Optional[bytes] = None

    def asJSON(self) -> dict:
        e = self.event
        return {
            "id": self.id,
            "state": e.state.value,
            "runtime_id": e.runtimeId,
            "plate": e.plate,
            "raw_plate": e.rawPlate,
            "channel": e.channel,
            "zone": e.zone,
            "time_ms": e.frameTimeMs,
            "movement": e.movement.wireName,
            "confidence": round(e.confidence, 3),
            "reads": e.reads,
            "thumbnail": ("/api/events/%d/thumbnail" % (self.id,)
                          if self.thumbnail else None),
        }


class _ThumbnailJob:
    """One frame being (or made) into a thumbnail, and the rows that show
    it."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self.done = False
        self.thumbnail: Optional[bytes] = None
        self._entries: list[RecentEvent] = []

    def add(self, entry: RecentEvent) -> None:
        if self.done:
            entry.thumbnail = self.thumbnail
        else:
            self._entries.append(entry)

    def finish(self, thumbnail: Optional[bytes]) -> None:
        self.done, self.thumbnail = True, thumbnail
        for entry in self._entries:
            entry.thumbnail = thumbnail
        self._entries = []


@implementer(IEventSink)
class RecentEvents(Service):
    """
    Keeps the last C{size} events.  An event with a frame gets a thumbnail
    made in this service's own one-thread pool; the events of one track
    usually share the frame of its best read, so a thumbnail is reused while
    the frame stays the same, and when the pool is behind (more than
    C{maxPending} waiting) an event simply has none: the page is a view,
    not a record.
    """

    log = Logger()
    size = 50
    maxPending = 8

    def __init__(self, size: Optional[int] = None, reactor=None,
                 journal=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        if size is not None:
            self.size = size
        self.reactor = reactor
        self.journal = journal
        self._events: deque[RecentEvent] = deque(maxlen=self.size)
        self._ids = itertools.count(1)
        self._jobs: dict[int, _ThumbnailJob] = {}
        self._pending = 0
        self.threadpool = ThreadPool(minthreads=0, maxthreads=1,
                                     name="numberok-thumbnails")
        self.skippedThumbnails = 0

    def startService(self) -> None:
        Service.startService(self)
        self.threadpool.start()
        if self.journal is not None:
            self.journal.recent(self.size).addCallbacks(
                self._preload, lambda f: self.log.warn(
                    "last events not loaded from the journal: {reason}",
                    reason=f.getErrorMessage()))

    def _preload(self, entries) -> None:
        """
        Put the journal's newest events (the Lost events it keeps) below
        the live ones, so that a restart does not empty the page's table;
        their thumbnails are made from the journal's pictures.
        """
        room = self.size - len(self._events)
        for journalEntry in entries[:max(room, 0)]:
            entry = RecentEvent(next(self._ids), _eventOf(journalEntry))
            self._events.appendleft(entry)
            if journalEntry.hasScreenshot:
                path = self.journal.screenshotPath(journalEntry.id)
                d = deferToThreadPool(self.reactor, self.threadpool,
                                      _thumbnailOfFile, path)
                d.addCallback(lambda thumbnail, entry=entry: setattr(
                    entry, "thumbnail", thumbnail))
                d.addErrback(lambda f: self.log.failure(
                    "thumbnail of a journal picture failed", f))

    def stopService(self):
        Service.stopService(self)
        return deferToThreadPool(self.reactor, self.threadpool,
                                 lambda: None).addBoth(
            lambda _: self.threadpool.stop())

    def publish(self, event: PlateEvent) -> None:
        entry = RecentEvent(next(self._ids), event)
        self._events.append(entry)
        if event.frame is None:
            return
        job = self._jobs.get(event.runtimeId)
        if job is not None and job.frame == event.frame:
            job.add(entry)
            return
        if self._pending >= self.maxPending:
            self.skippedThumbnails += 1
            return
        job = self._jobs[event.runtimeId] = _ThumbnailJob(event.frame)
        job.add(entry)
        self._pending += 1
        d = deferToThreadPool(self.reactor, self.threadpool, makeThumbnail,
                              event.frame)
        d.addCallback(job.finish)
        d.addErrback(lambda f: self.log.failure("thumbnail failed", f))
        d.addBoth(self._jobDone)
        # Remember the frames of tracks still in the table only.
        live = {e.event.runtimeId for e in self._events}
        for runtimeId in [r for r in self._jobs if r not in live]:
            del self._jobs[runtimeId]

    def _jobDone(self, _) -> None:
        self._pending -= 1

    def recent(self) -> list[RecentEvent]:
        """The events kept, newest first."""
        return list(reversed(self._events))

    def thumbnail(self, eventId: int) -> Optional[bytes]:
        for entry in self._events:
            if entry.id == eventId:
                return entry.thumbnail
        return None
