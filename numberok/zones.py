"""
One channel and zone's tracks (L{ZoneAggregator}): which track a read
belongs to (exact text, then soft comparison over the zone's own texts),
when a track is announced, folded into a neighbour, updated and lost.
L{numberok.analytics.Analytics} owns one per zone, and the things shared
by all of them (plate rules, ids, caps, the sink), which a zone reaches
through L{numberok.interfaces.IZoneOwner} only: this module imports
nothing from the analytics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from numberok.channels import channelName
from numberok.events import EventState, MovementType, PlateEvent, PlateRead
from numberok.interfaces import IZoneOwner
from numberok.plates import distance
from numberok.plates.matching import TextIndex
from numberok.settings.keys import (
    ANALYTICS_LEVENSHTEIN_DISTANCE, ANALYTICS_SKIP_FIRST_RESULTS,
    ANALYTICS_SOFT_COMPARISON, ANALYTICS_USE_RAW_RESULTS)
from numberok.tracks import Track, movementOf, movementOfTravel

NOT_A_PLATE_EXTRA_READS = 2
"""Reads a track whose text fits no plate template is held back beyond
SkipFirstResults before Detected."""

PARTIAL_MIN_LENGTH = 4
"""The shortest text taken for a truncated read of a longer plate."""

PARTIAL_MAX_MISSING = 3
"""How many more characters than the distance setting a partial read may
lack and still be folded into an announced vehicle."""


def _preference(track: Track) -> tuple[float, int]:
    """Among equally near tracks: the one read most recently, then the
    older."""
    return (-track.lastReadAt, track.runtimeId)


@dataclass(frozen=True, slots=True)
class AnalyticsConfig:
    """The C{[Analytics]} settings as the per-read path uses them."""

    soft: bool
    distance: int
    skip: int
    raw: bool

    @classmethod
    def fromSettings(cls, settings) -> "AnalyticsConfig":
        return cls(soft=settings[ANALYTICS_SOFT_COMPARISON],
                   distance=settings[ANALYTICS_LEVENSHTEIN_DISTANCE],
                   skip=settings[ANALYTICS_SKIP_FIRST_RESULTS],
                   raw=settings[ANALYTICS_USE_RAW_RESULTS])


class ZoneAggregator:
    """
    The tracks of one channel/zone.  Reads arrive in order; settings are
    read from the store on each read, so a saved change applies to the next
    event.

    @ivar tracks: the active tracks, oldest first.
    @ivar pending: the active tracks not yet announced, oldest first.
    """

    def __init__(self, channel: int, zone: int,
                 analytics: IZoneOwner) -> None:
        self.channel = channel
        self.zone = zone
        self.analytics = analytics
        self.tracks: dict[int, Track] = {}
        self.pending: dict[int, Track] = {}
        # Every text any active track is known by -> those tracks: the
        # exact match is one dict look-up, and soft comparison a near
        # search over the texts rather than a loop over tracks.
        self.index = TextIndex(analytics.nearBudget)
        # What this zone reads from the settings, kept while the settings
        # object is the same (the per-read path; see _follow).
        self._settingsFrom = None
        self._config: Optional[AnalyticsConfig] = None
        self._lossInterval = 0.0
        self._lossMs = 0
        self._inDirection = ""
        self._channelName: Optional[str] = None

    def _follow(self, settings) -> None:
        """Take this zone's settings from C{settings} (once per change)."""
        zone = settings.zone(self.channel, self.zone)
        self._config = self.analytics.config
        self._lossInterval = zone.lossInterval
        self._lossMs = int(zone.lossInterval * 1000)
        self._inDirection = zone.inDirection
        self._channelName = channelName(settings, self.channel)
        self._settingsFrom = settings

    def addRead(self, read: PlateRead, processed: str, key: str,
                now: float) -> None:
        analytics = self.analytics
        settings = analytics.store.current
        if settings is not self._settingsFrom:
            self._follow(settings)
        config = self._config
        soft = config.soft
        lossMs = self._lossMs
        inDirection = self._inDirection
        track = self._match(read, processed, key, config, lossMs, inDirection)
        if track is None:
            track = analytics.openTrack(self)
        elif (not track.announced and soft
              and track.reads + 1 > config.skip):
            # This read would announce a small track: if it is only a
            # partial or garbled copy of a vehicle already announced here,
            # fold it into that one instead (protocol: tracks never
            # announced may merge into a neighbour).
            neighbour = self._absorbingNeighbour(
                track, track.keys | {key}, config.distance, lossMs,
                inDirection)
            if neighbour is not None:
                self._forget(track)
                analytics.merged(track)
                track = neighbour
        before = (track.voted, track.movement)
        fresh = track.add(read, processed, key, now)
        for text in fresh:
            self.index.add(text, track)
        if track.lastBox is not None:
            track.movement = movementOf(track.firstBox, track.lastBox,
                                        inDirection)
        if read.travel is not None and (
                track.movement is MovementType.UNDETERMINED):
            # The boxes cannot tell (one alarm, one box): the camera can.
            track.movement = movementOfTravel(read.travel, inDirection)
        analytics.lossTimers.touch(track, self._lossInterval, now)
        if not track.announced:
            if read.perVehicle or self._readyToAnnounce(track, config.skip):
                track.announced = True
                self.pending.pop(track.runtimeId, None)
                analytics.announced(track)
                analytics.emit(self._event(track, EventState.DETECTED, read,
                                           now), now)
            return
        if config.raw or (track.voted, track.movement) != before:
            analytics.emit(self._event(track, EventState.UPDATED, read, now),
                           now)

    def _readyToAnnounce(self, track: Track, skip: int) -> bool:
        """
        Past the held-back reads; and a track whose voted text is not a
        whole plate of any template (a partial read at the frame edge, most
        often) waits L{NOT_A_PLATE_EXTRA_READS} reads more, which gives the
        whole plate time to appear and take it in.
        """
        if track.reads <= skip:
            return False
        analytics = self.analytics
        if not analytics.rules.templates or analytics.fits(track.plate()):
            return True
        return track.reads > skip + NOT_A_PLATE_EXTRA_READS

    def _match(self, read: PlateRead, processed: str, key: str,
               config: "AnalyticsConfig", lossMs: int,
               inDirection: str) -> Optional[Track]:
        """
        The track C{read} joins: the nearest by text (exact first) among
        those it fits by time and place (L{Track.admits}).
        """
        soft = config.soft
        exact = self.index.get(key)
        if exact:
            # The usual case: a text the track already knows.
            if len(exact) == 1:
                [track] = exact
                if soft or processed in track.texts:
                    if track.admits(read, lossMs, inDirection):
                        return track
            else:
                exact = [t for t in exact
                         if (soft or processed in t.texts)
                         and t.admits(read, lossMs, inDirection)]
                if exact:
                    return min(exact, key=_preference)
            if not soft:
                # Off means the same text after the plate rules.
                return None
        if not soft or not self.index:
            return None
        limit = config.distance
        best: Optional[Track] = None
        bestRank = None
        holders = self.index.holders
        for text, d in self.index.near(key, limit):
            for track in holders[text]:
                rank = (d,) + _preference(track)
                if (bestRank is None or rank < bestRank) and track.admits(
                        read, lossMs, inDirection):
                    best, bestRank = track, rank
        return best

    def _absorbingNeighbour(self, small: Track, keys, limit: int,
                            lossMs: int, inDirection: str
                            ) -> Optional[Track]:
        """
        The announced track that a small track with these match keys is
        most likely a bad copy of: its voted plate is within one more than
        the distance setting, or a truncated read (at least
        L{PARTIAL_MIN_LENGTH} characters) of it with at most one other
        error.  Only the voted plate counts here, not the neighbour's own
        misreads: those would make a different car look like a copy.
        A neighbour seen elsewhere or at another time
        (L{Track.sameVehicleAs}) is never taken.  Runs once per small track
        about to be announced, over this zone's tracks only.
        """
        best: Optional[Track] = None
        bestRank = None
        pending = self.pending
        for track in self.tracks.values():
            if track.runtimeId in pending:
                continue
            voted = track.plateKey()
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
                if (bestRank is None or rank < bestRank) and (
                        track.sameVehicleAs(small, lossMs, inDirection)):
                    best, bestRank = track, rank
        return best

    def endTrack(self, track: Track, reason: Optional[str] = None) -> None:
        """
        End C{track} now: Lost if it was announced, silently if not (as
        noise, or as dropped for C{reason} when a cap ends it).  Fires
        C{track.lost} either way.
        """
        if not self._forget(track):
            return
        analytics = self.analytics
        analytics.closed(track, reason)
        if not track.announced:
            track.lost.callback(None)
            return
        settings = analytics.store.current
        if settings is not self._settingsFrom:
            self._follow(settings)
        event = self._event(track, EventState.LOST, None,
                            analytics.reactor.seconds())
        analytics.emit(event, None)
        track.lost.callback(event)

    def _forget(self, track: Track) -> bool:
        """
        Remove C{track} from this zone: tracks, index, timer.
        @return: C{False} when it was not here (already ended).
        """
        if self.tracks.pop(track.runtimeId, None) is None:
            return False
        self.pending.pop(track.runtimeId, None)
        self.analytics.forgotten(track)
        for key in track.keys:
            self.index.discard(key, track)
        # The loss timers hold the track: forgetting it there breaks the
        # cycle, so an ended track (and the frames of its reads, a megabyte
        # each) is freed at once rather than at the next full collection.
        self.analytics.lossTimers.forget(track)
        return True

    def _event(self, track: Track, state: EventState,
               current: Optional[PlateRead], now: float) -> PlateEvent:
        """C{track}'s event now (reactor time C{now}); the zone's settings
        are followed already (L{_follow})."""
        plate, raw, confidence = track.vote.best()
        best = track.bestRead(plate)
        timed = current if current is not None else best
        attributes = track.attributes
        return PlateEvent(
            state=state, runtimeId=track.runtimeId, channel=track.channel,
            zone=track.zone, plate=plate, rawPlate=raw,
            frameTimeMs=timed.timeMs,
            processTimeMs=timed.processTimeMs,
            movement=track.movement, checkpoint=timed.checkpoint,
            confidence=confidence, reads=track.reads,
            frame=best.jpeg, bbox=best.bbox,
            eventTimeMs=int(now * 1000),
            channelName=self._channelName,
            vehicle=None if attributes is None else attributes.winner())
