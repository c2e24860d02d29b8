"""
The deferred aggregator: groups the noisy per-frame reads of one vehicle
into one track per channel and zone, and emits its Detected / Updated / Lost
events.  docs/analytics.rst has the rules and their numbers: soft
comparison on look-alike skeletons, skip-first-X (none for per-vehicle
reads), folding small tracks into an announced neighbour, Updated, Lost
after the zone's loss interval (C{track.lost} fires then), and the track
caps, which never end an announced track without its Lost.

The cost per read does not depend on how many zones or tracks are active:
everything a read touches is found by dict look-ups in its own zone (the
near search of soft comparison covers only that zone's texts, through a
partition index once they are many, bounded in bytes
across zones: L{TextIndex}), and the loss timers are one reactor
C{DelayedCall} per loss interval, not per track (L{LossTimers}).
"""

from __future__ import annotations

import itertools
from typing import Iterator, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from numberok.events import EventState, PlateEvent, PlateRead
from numberok.interfaces import IEventSink, IPlateReadSink, IZoneOwner
from numberok.losstimers import LossTimers
from numberok.metrics import Metrics, metricsOrPrivate
from numberok.plates import PlateRules, skeleton
from numberok.reactors import LazyReactor
from numberok.budgets import ByteBudget
from numberok.plates.matching import NEAR_INDEX_BYTES
from numberok.settings import SettingsStore
from numberok.tracks import Track, movementOf
from numberok.zones import AnalyticsConfig, ZoneAggregator

__all__ = ["Analytics", "EventFanout", "Track", "ZoneAggregator",
           "movementOf"]

RULES_CACHE_SIZE = 8192
"""Texts whose plate-rule results the analytics remember."""

LOGGED_DROPS = 20
"""Tracks dropped by a cap that are logged one by one; after that every
1000th (all are counted)."""


@implementer(IPlateReadSink, IZoneOwner)
class Analytics(Service):
    """
    The L{IPlateReadSink} of the server: one L{ZoneAggregator} per
    (channel, zone), events out to one L{IEventSink}.

    Stopping the service ends every active track (announced ones as Lost),
    so a vehicle that was seen is always reported, also at shutdown; the
    shutdown sequence calls L{closeTracks} and waits for its Deferred.

    @ivar runtimeIds: RuntimeID source.  IDs start at the start time in ms
        times 1000, so they keep growing across restarts and fit an int64.
    @ivar maxTracksPerZone: active tracks one zone may hold (a real lane
        sees a handful at once; 64 is a jammed multi-lane view).
    @ivar maxTracks: active tracks in all zones together.
    """

    log = Logger()
    reactor = LazyReactor()
    maxTracksPerZone = 64
    maxTracks = 4096

    def __init__(self, store: SettingsStore, sink: IEventSink,
                 reactor: Optional[IReactorTime] = None,
                 metrics: Optional[Metrics] = None) -> None:
        self.store = store
        self.sink = sink
        self._reactor = reactor
        self.metrics = metrics = metricsOrPrivate(metrics)
        self.runtimeIds: Iterator[int] = itertools.count(
            int(self.reactor.seconds() * 1000) * 1000 + 1)
        self._zones: dict[tuple[int, int], ZoneAggregator] = {}
        self._tracks: dict[int, Track] = {}
        self._pending: dict[int, Track] = {}
        self._rules: Optional[PlateRules] = None
        self.nearBudget = ByteBudget(NEAR_INDEX_BYTES)  # all zones' indexes
        self._rulesFrom = None
        self._config: Optional[AnalyticsConfig] = None
        self._configFrom = None
        self._normalized: dict[str, tuple[str, str]] = {}
        self._fitting: dict[str, bool] = {}
        # Label children bound once: this is the per-read path.
        self._readsBy: dict[str, object] = {}
        self._eventsBy = {state: metrics.events.labels(state=state.value)
                          for state in EventState}
        self._readToEvent = metrics.readToEvent.observe
        self._emptyReads = metrics.emptyReads
        self._activeTracks = metrics.activeTracks
        self._dropped = 0
        self.lossTimers = LossTimers(self.reactor, self._expired)
        # Resolved above (the runtime ids): bound once for the read path.
        self._seconds = self.reactor.seconds

    @property
    def reads(self) -> int:
        """All reads taken (compatibility view of C{numberok_reads_total})."""
        return int(sum(self.metrics.value("numberok_reads_total",
                                          source=source or "other")
                       for source in self._readsBy))

    @property
    def config(self) -> "AnalyticsConfig":
        """The analytics settings now, read from the store once per change
        rather than four times per read."""
        settings = self.store.current
        if self._configFrom is not settings:
            self._config = AnalyticsConfig.fromSettings(settings)
            self._configFrom = settings
        return self._config

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

    def _processed(self, raw: str) -> tuple[str, str]:
        """
        L{PlateRules.normalize} and its L{skeleton}, remembered: one
        vehicle's reads repeat the same few texts, and this runs for every
        read.
        """
        known = self._normalized.get(raw)
        if known is None:
            if len(self._normalized) >= RULES_CACHE_SIZE:
                self._normalized.clear()
            processed = self.rules.normalize(raw)
            known = self._normalized[raw] = (processed, skeleton(processed))
        return known

    def fits(self, processed: str) -> bool:
        """L{PlateRules.fits}, remembered like L{_processed}."""
        fits = self._fitting.get(processed)
        if fits is None:
            if len(self._fitting) >= RULES_CACHE_SIZE:
                self._fitting.clear()
            fits = self._fitting[processed] = self.rules.fits(processed)
        return fits

    def addRead(self, read: PlateRead) -> None:
        counter = self._readsBy.get(read.source)
        if counter is None:
            counter = self._readsBy[read.source] = self.metrics.reads.labels(
                source=read.source or "other")
        counter.inc()
        if self.store.current is not self._rulesFrom:
            self._refreshRules()
        known = self._normalized.get(read.plate)
        processed, key = (known if known is not None
                          else self._processed(read.plate))
        if not processed:
            self._emptyReads.inc()
            return
        where = (read.channel, read.zone)
        aggregator = self._zones.get(where)
        if aggregator is None:
            aggregator = self._zones[where] = ZoneAggregator(
                read.channel, read.zone, self)
        aggregator.addRead(read, processed, key, self._seconds())

    def emit(self, event: PlateEvent, arrival: Optional[float]) -> None:
        """
        Hand C{event} to the sink; C{arrival} is the reactor time the read
        that caused it came in (L{None} for Lost, which a timer causes).
        """
        self._eventsBy[event.state].inc()
        if arrival is not None:
            self._readToEvent(max(0.0, self._seconds() - arrival))
        try:
            self.sink.publish(event)
        except Exception:
            self.log.failure("event sink failed on {runtimeId}",
                             runtimeId=event.runtimeId)

    # -- track bookkeeping: the caps, the counters -------------------------

    def openTrack(self, zone: ZoneAggregator) -> Track:
        """
        A new track in C{zone}, after making room under the caps: the
        oldest never-announced track goes first (it is most likely noise);
        only when every track is announced does the oldest announced one
        end early, with its Lost.
        """
        if len(zone.tracks) >= self.maxTracksPerZone:
            self._evict(zone.pending or zone.tracks, "zone_cap")
        if len(self._tracks) >= self.maxTracks:
            self._evict(self._pending or self._tracks, "total_cap")
        track = Track(next(self.runtimeIds), zone.channel, zone.zone,
                      self.fits)
        zone.tracks[track.runtimeId] = track
        zone.pending[track.runtimeId] = track
        self._tracks[track.runtimeId] = track
        self._pending[track.runtimeId] = track
        self._activeTracks.inc()
        return track

    def _evict(self, tracks: dict[int, Track], reason: str) -> None:
        track = next(iter(tracks.values()))
        self._dropped += 1
        if self._dropped <= LOGGED_DROPS or self._dropped % 1000 == 0:
            self.log.warn(
                "track cap ({reason}): ended {kind} track {runtimeId} "
                "({plate}) early; {count} dropped so far",
                reason=reason, runtimeId=track.runtimeId,
                plate=track.plate(), count=self._dropped,
                kind="announced" if track.announced else "unannounced")
        self._zones[(track.channel, track.zone)].endTrack(track, reason)

    def _expired(self, track: Track) -> None:
        """C{track}'s loss interval passed without a read."""
        self._zones[(track.channel, track.zone)].endTrack(track)

    def announced(self, track: Track) -> None:
        self._pending.pop(track.runtimeId, None)

    def merged(self, track: Track) -> None:
        """C{track} was folded into an announced neighbour: it ends
        silently."""
        self.metrics.mergedTracks.inc()
        track.lost.callback(None)

    def forgotten(self, track: Track) -> None:
        self._tracks.pop(track.runtimeId, None)
        self._pending.pop(track.runtimeId, None)
        self._activeTracks.dec()

    def closed(self, track: Track, reason: Optional[str]) -> None:
        if reason is not None:
            self.metrics.droppedTracks.labels(reason=reason).inc()
        elif not track.announced:
            self.metrics.noiseTracks.inc()

    def activeTracks(self) -> list[Track]:
        """The active tracks, oldest first."""
        return list(self._tracks.values())

    # -- shutdown ----------------------------------------------------------

    def closeTracks(self) -> Deferred:
        """
        End every active track now (announced ones with their Lost).

        @return: a Deferred that fires, once every track's C{lost} has
            fired, with the number of announced tracks sent as Lost.
        """
        tracks = list(self._tracks.values())
        announced = sum(t.announced for t in tracks)
        waits = [t.lost for t in tracks]
        for track in tracks:
            self._zones[(track.channel, track.zone)].endTrack(track)
        return DeferredList(waits).addCallback(lambda _: announced)

    def closeAll(self) -> int:
        """
        L{closeTracks} for callers that want the count at once (ending a
        track is synchronous).  @return: how many were announced.
        """
        counted: list[int] = []
        self.closeTracks().addCallback(counted.append)
        return counted[0]

    def stopService(self) -> Deferred:
        Service.stopService(self)

        def report(closed: int) -> None:
            if closed:
                self.log.info("shutdown: {count} active tracks sent as Lost",
                              count=closed)
        return self.closeTracks().addCallback(report)


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
