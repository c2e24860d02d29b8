"""
The deferred aggregator: groups the noisy per-frame reads of one vehicle
into one track per channel and zone, and emits its Detected / Updated / Lost
events (docs/analytics.rst has the rules and their numbers).

- A read joins the active track of its zone that is nearest by Levenshtein
  distance between look-alike skeletons -- to the track's voted plate or
  any of its distinct reads so far -- when that distance is within
  C{LevenshteinDistance} (soft comparison); with soft comparison off, the
  track must already have that exact text.  Ties go to the track read most
  recently, then to the older track.
- The first C{SkipFirstResults} reads of a track are held back (two more
  when its text fits no plate template); Detected comes with the next
  read.  A small track that would be announced but is only a bad copy of
  an announced vehicle is folded into it.  A track lost before Detected was
  noise: it ends without any event and is counted in C{noiseTracks}.
- Updated: on every read with C{UseRawResults}, otherwise only when the
  voted plate or the movement type changes.
- Lost: C{LossIntervalSec} of the zone after the track's last read.  Each
  track has a Deferred, C{track.lost}, that fires then.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import (BBox, EventState, MovementType, PlateEvent,
                             PlateRead)
from numberok.interfaces import IEventSink, IPlateReadSink
from numberok.plates import (PlateRules, PlateVote, distance, skeleton,
                             within)
from numberok.settings import SettingsStore

MAX_DISTINCT_PLATES = 64
"""Distinct read texts a track remembers for matching; beyond this a track
matches on the texts it has, which are plenty for one vehicle."""

RULES_CACHE_SIZE = 8192
"""Texts whose plate-rule results the analytics remember."""

NOT_A_PLATE_EXTRA_READS = 2
"""Reads a track whose text fits no plate template is held back beyond
SkipFirstResults before Detected."""

PARTIAL_MIN_LENGTH = 4
"""The shortest text taken for a truncated read of a longer plate."""

PARTIAL_MAX_MISSING = 3
"""How many more characters than the distance setting a partial read may
lack and still be folded into an announced vehicle."""

# Movement thresholds, in plate widths travelled along the zone's
# in-direction between a track's first and latest box (docs/analytics.rst).
CLEAR_PASS_PLATE_WIDTHS = 1.5
SHORT_MOVE_PLATE_WIDTHS = 0.3


def movementOf(first: BBox, last: BBox, inDirection: str) -> MovementType:
    """
    The direction of travel from the first box to the last one.

    The distance is measured in plate widths (the mean of both boxes) so that
    it does not depend on the camera's resolution or distance: a move of at
    least L{CLEAR_PASS_PLATE_WIDTHS} is a clear pass (In / Out), one of at
    least L{SHORT_MOVE_PLATE_WIDTHS} an attempt (TryIn / TryOut), anything
    smaller L{MovementType.UNDETERMINED}.
    """
    (x0, y0, w0, h0), (x1, y1, w1, h1) = first, last
    dx = (x1 + w1 / 2) - (x0 + w0 / 2)
    dy = (y1 + h1 / 2) - (y0 + h0 / 2)
    along = {"down": dy, "up": -dy, "right": dx, "left": -dx}[inDirection]
    unit = max((w0 + w1) / 2, 1.0)
    travelled = along / unit
    if travelled >= CLEAR_PASS_PLATE_WIDTHS:
        return MovementType.IN
    if travelled >= SHORT_MOVE_PLATE_WIDTHS:
        return MovementType.TRY_IN
    if travelled <= -CLEAR_PASS_PLATE_WIDTHS:
        return MovementType.OUT
    if travelled <= -SHORT_MOVE_PLATE_WIDTHS:
        return MovementType.TRY_OUT
    return MovementType.UNDETERMINED


class Track:
    """
    One vehicle in one zone: its vote, the reads it keeps for the picture
    and the movement, and its loss timer.

    @ivar lost: fires with the Lost L{PlateEvent} when the track ends, or
        with L{None} when it ends as noise (never announced).
    """

    def __init__(self, runtimeId: int, channel: int, zone: int,
                 fits: Callable[[str], bool]) -> None:
        self.runtimeId = runtimeId
        self.channel = channel
        self.zone = zone
        self.vote = PlateVote(fits=fits)
        self.texts: set[str] = set()
        self.keys: set[str] = set()
        self.bestReadOf: dict[str, PlateRead] = {}
        self.bestFrameOf: dict[str, PlateRead] = {}
        self.reads = 0
        self.announced = False
        self.firstBox: Optional[BBox] = None
        self.lastBox: Optional[BBox] = None
        self.movement = MovementType.UNDETERMINED
        self.lastRead: Optional[PlateRead] = None
        self.lastReadAt = 0.0
        self.timer = None
        self.lost: Deferred = Deferred()

    def add(self, read: PlateRead, processed: str, now: float) -> list[str]:
        """
        Count C{read} in.  @return: the match keys (skeletons) this track is
        now known by that it was not before -- of the read's text and of a
        new voted plate -- for the zone's index.
        """
        self.reads += 1
        self.lastRead = read
        self.lastReadAt = now
        self.vote.add(processed, read.plate, read.confidence)
        new = []
        if processed in self.texts or len(self.texts) < MAX_DISTINCT_PLATES:
            self.texts.add(processed)
            _keepBest(self.bestReadOf, processed, read)
            if read.jpeg:
                _keepBest(self.bestFrameOf, processed, read)
            new.append(skeleton(processed))
        new.append(skeleton(self.vote.best()[0]))
        fresh = [key for key in new if key not in self.keys]
        self.keys.update(fresh)
        if read.bbox is not None:
            if self.firstBox is None:
                self.firstBox = read.bbox
            self.lastBox = read.bbox
        return fresh

    def bestRead(self, plate: str) -> PlateRead:
        """
        The read whose frame goes with the track's events: the most
        confident read of the voted plate that came with a frame, else the
        most confident read with a frame of any text, else the most
        confident read of the voted plate.
        """
        framed = self.bestFrameOf.get(plate)
        if framed is None and self.bestFrameOf:
            framed = max(self.bestFrameOf.values(), key=lambda r: r.confidence)
        return framed or self.bestReadOf.get(plate) or self.lastRead


def _preference(track: Track) -> tuple[float, int]:
    """Among equally near tracks: the one read most recently, then the older."""
    return (-track.lastReadAt, track.runtimeId)


def _keepBest(best: dict[str, PlateRead], key: str, read: PlateRead) -> None:
    kept = best.get(key)
    if kept is None or read.confidence > kept.confidence:
        best[key] = read


class ZoneAggregator:
    """
    The tracks of one channel/zone.  Reads arrive in order; settings are
    read from the store on each read, so a saved change applies to the next
    event.
    """

    log = Logger()

    def __init__(self, channel: int, zone: int, analytics: "Analytics") -> None:
        self.channel = channel
        self.zone = zone
        self.analytics = analytics
        self.tracks: dict[int, Track] = {}
        # Every text any active track is known by -> those tracks: the
        # exact match is one dict look-up, and soft comparison one
        # rapidfuzz scan over the texts rather than a loop over tracks.
        self.index: dict[str, set[Track]] = {}

    def addRead(self, read: PlateRead, processed: str) -> None:
        analytics = self.analytics
        settings = analytics.store.current
        now = analytics.reactor.seconds()
        key = skeleton(processed)
        track = self._match(processed, key, settings)
        if track is None:
            track = Track(next(analytics.runtimeIds), self.channel, self.zone,
                          analytics.fits)
            self.tracks[track.runtimeId] = track
            analytics.tracksOpened += 1
        elif (not track.announced and settings["Analytics.SoftComparison"]
              and track.reads + 1 > settings["Analytics.SkipFirstResults"]):
            # This read would announce a small track: if it is only a
            # partial or garbled copy of a vehicle already announced here,
            # fold it into that one instead (protocol: tracks never
            # announced may merge into a neighbour).
            neighbour = self._absorbingNeighbour(
                track.keys | {key}, settings["Analytics.LevenshteinDistance"])
            if neighbour is not None:
                self._forget(track)
                analytics.mergedTracks += 1
                track.lost.callback(None)
                track = neighbour
        before = (track.vote.best()[0] if track.reads else None, track.movement)
        for fresh in track.add(read, processed, now):
            self.index.setdefault(fresh, set()).add(track)
        zone = settings.zone(self.channel, self.zone)
        if track.firstBox is not None and track.lastBox is not None:
            track.movement = movementOf(track.firstBox, track.lastBox,
                                        zone.inDirection)
        self._restartTimer(track, zone.lossInterval)
        if not track.announced:
            if self._readyToAnnounce(track, settings):
                track.announced = True
                analytics.emit(self._event(track, EventState.DETECTED, read))
            return
        after = (track.vote.best()[0], track.movement)
        if settings["Analytics.UseRawResults"] or after != before:
            analytics.emit(self._event(track, EventState.UPDATED, read))

    def _readyToAnnounce(self, track: Track, settings) -> bool:
        """
        Past the held-back reads; and a track whose voted text is not a
        whole plate of any template (a partial read at the frame edge, most
        often) waits L{NOT_A_PLATE_EXTRA_READS} reads more, which gives the
        whole plate time to appear and take it in.
        """
        skip = settings["Analytics.SkipFirstResults"]
        if track.reads <= skip:
            return False
        analytics = self.analytics
        if not analytics.rules.templates or analytics.fits(
                track.vote.best()[0]):
            return True
        return track.reads > skip + NOT_A_PLATE_EXTRA_READS

    def _match(self, processed: str, key: str, settings) -> Optional[Track]:
        exact = self.index.get(key)
        if not settings["Analytics.SoftComparison"]:
            # Off means the same text after the plate rules.
            exact = [t for t in exact or () if processed in t.texts]
            return min(exact, key=_preference) if exact else None
        if exact:
            return min(exact, key=_preference)
        if not self.index:
            return None
        limit = settings["Analytics.LevenshteinDistance"]
        best: Optional[Track] = None
        bestRank = None
        for text, d in within(key, self.index, limit):
            for track in self.index[text]:
                rank = (d,) + _preference(track)
                if bestRank is None or rank < bestRank:
                    best, bestRank = track, rank
        return best

    def _absorbingNeighbour(self, keys, limit: int) -> Optional[Track]:
        """
        The announced track that a small track with these match keys is
        most likely a bad copy of: its voted plate is within one more than
        the distance setting, or a truncated read (at least
        L{PARTIAL_MIN_LENGTH} characters) of it with at most one other
        error.  Only the voted plate counts here, not the neighbour's own
        misreads: those would make a different car look like a copy.
        """
        best: Optional[Track] = None
        bestRank = None
        for track in self.tracks.values():
            if not track.announced:
                continue
            voted = skeleton(track.vote.best()[0])
            for key in keys:
                d = distance(key, voted)
                excess = d - abs(len(key) - len(voted))
                partial = (min(len(key), len(voted)) >= PARTIAL_MIN_LENGTH
                           and excess <= 1
                           and abs(len(key) - len(voted))
                           <= limit + PARTIAL_MAX_MISSING)
                if d > limit + 1 and not partial:
                    continue
                rank = (min(d, excess + 1),) + _preference(track)
                if bestRank is None or rank < bestRank:
                    best, bestRank = track, rank
        return best

    def _restartTimer(self, track: Track, interval: float) -> None:
        if track.timer is not None and track.timer.active():
            track.timer.reset(interval)
        else:
            track.timer = self.analytics.reactor.callLater(
                interval, self.endTrack, track)

    def endTrack(self, track: Track) -> None:
        """
        End C{track} now: Lost if it was announced, silently (counted as
        noise) if not.  Fires C{track.lost} either way.
        """
        if not self._forget(track):
            return
        if not track.announced:
            self.analytics.noiseTracks += 1
            track.lost.callback(None)
            return
        event = self._event(track, EventState.LOST, None)
        self.analytics.emit(event)
        track.lost.callback(event)

    def _forget(self, track: Track) -> bool:
        """
        Remove C{track} from this zone: tracks, index, timer.
        @return: C{False} when it was not here (already ended).
        """
        if self.tracks.pop(track.runtimeId, None) is None:
            return False
        for key in track.keys:
            holders = self.index.get(key)
            if holders is not None:
                holders.discard(track)
                if not holders:
                    del self.index[key]
        if track.timer is not None and track.timer.active():
            track.timer.cancel()
        return True

    def _event(self, track: Track, state: EventState,
               current: Optional[PlateRead]) -> PlateEvent:
        plate, raw, confidence = track.vote.best()
        best = track.bestRead(plate)
        timed = current if current is not None else best
        return PlateEvent(
            state=state, runtimeId=track.runtimeId, channel=track.channel,
            zone=track.zone, plate=plate, rawPlate=raw,
            frameTimeMs=timed.timeMs,
            processTimeMs=timed.processTimeMs,
            movement=track.movement, checkpoint=timed.checkpoint,
            confidence=confidence, reads=track.reads,
            frame=best.jpeg)


@implementer(IPlateReadSink)
class Analytics(Service):
    """
    The L{IPlateReadSink} of the server: one L{ZoneAggregator} per
    (channel, zone), events out to one L{IEventSink}.

    Stopping the service ends every active track (announced ones as Lost),
    so a vehicle that was seen is always reported, also at shutdown.

    @ivar runtimeIds: RuntimeID source.  IDs start at the start time in ms
        times 1000, so they keep growing across restarts and fit an int64.
    """

    log = Logger()

    def __init__(self, store: SettingsStore, sink: IEventSink,
                 reactor=None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.store = store
        self.sink = sink
        self.reactor = reactor
        self.runtimeIds: Iterator[int] = itertools.count(
            int(reactor.seconds() * 1000) * 1000 + 1)
        self._zones: dict[tuple[int, int], ZoneAggregator] = {}
        self._rules: Optional[PlateRules] = None
        self._rulesFrom = None
        self._normalized: dict[str, str] = {}
        self._fitting: dict[str, bool] = {}
        self.reads = 0
        self.emptyPlates = 0
        self.tracksOpened = 0
        self.noiseTracks = 0
        self.mergedTracks = 0
        self.events = 0

    @property
    def rules(self) -> PlateRules:
        self._refreshRules()
        return self._rules

    def _refreshRules(self) -> None:
        """Follow a settings change; new rules forget the remembered texts."""
        settings = self.store.current
        if self._rulesFrom is not settings:
            rules = PlateRules.fromSettings(settings)
            if rules != self._rules:
                self._normalized.clear()
                self._fitting.clear()
            self._rules = rules
            self._rulesFrom = settings

    def normalize(self, raw: str) -> str:
        """
        L{PlateRules.normalize}, remembered: one vehicle's reads repeat the
        same few texts, and this runs for every read.
        """
        processed = self._normalized.get(raw)
        if processed is None:
            if len(self._normalized) >= RULES_CACHE_SIZE:
                self._normalized.clear()
            processed = self._normalized[raw] = self.rules.normalize(raw)
        return processed

    def fits(self, processed: str) -> bool:
        """L{PlateRules.fits}, remembered like L{normalize}."""
        fits = self._fitting.get(processed)
        if fits is None:
            if len(self._fitting) >= RULES_CACHE_SIZE:
                self._fitting.clear()
            fits = self._fitting[processed] = self.rules.fits(processed)
        return fits

    def addRead(self, read: PlateRead) -> None:
        self.reads += 1
        self._refreshRules()
        processed = self.normalize(read.plate)
        if not processed:
            self.emptyPlates += 1
            return
        key = (read.channel, read.zone)
        aggregator = self._zones.get(key)
        if aggregator is None:
            aggregator = self._zones[key] = ZoneAggregator(
                read.channel, read.zone, self)
        aggregator.addRead(read, processed)

    def emit(self, event: PlateEvent) -> None:
        self.events += 1
        try:
            self.sink.publish(event)
        except Exception:
            self.log.failure("event sink failed on {runtimeId}",
                             runtimeId=event.runtimeId)

    def activeTracks(self) -> list[Track]:
        return [t for z in self._zones.values() for t in z.tracks.values()]

    def closeAll(self) -> int:
        """End every active track now.  @return: how many were announced."""
        announced = 0
        for aggregator in list(self._zones.values()):
            for track in list(aggregator.tracks.values()):
                announced += track.announced
                aggregator.endTrack(track)
        return announced

    def stopService(self):
        Service.stopService(self)
        closed = self.closeAll()
        if closed:
            self.log.info("shutdown: {count} active tracks sent as Lost",
                          count=closed)


@implementer(IEventSink)
class EventFanout:
    """
    An L{IEventSink} that hands each event to several sinks (publisher,
    journal, recent-events list), isolating them: one failing sink is
    logged and the others still get the event.
    """

    log = Logger()

    def __init__(self, *sinks: IEventSink) -> None:
        self.sinks = list(sinks)

    def publish(self, event: PlateEvent) -> None:
        for sink in self.sinks:
            try:
                sink.publish(event)
            except Exception:
                self.log.failure("event sink {sink!r} failed", sink=sink)

