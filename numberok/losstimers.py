"""
Every active track's loss deadline, kept so that a read costs the same
however many tracks are active (L{LossTimers}).

A track is Lost the zone's C{LossIntervalSec} after its latest read.  One
reactor C{DelayedCall} per track, reset on every read, made the reactor's
timer heap as large as the number of tracks: each reset is a Python call,
and each deferred reset comes back as a heap pop and push whose
comparisons are Python methods -- the term that grew with the number of
active zones (bench/scaling.py, README.rst).  Here the tracks of one loss
interval sit in one insertion-ordered dict: a read moves its track to the
end, so the dict stays in deadline order (deadline = read time + the
interval, and reads arrive in time order), and one C{DelayedCall} per
interval fires at the first deadline.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.internet.interfaces import IReactorTime

from numberok.tracks import Track

EPSILON = 1e-9
"""Seconds of float rounding under which a deadline counts as reached."""


class _Group:
    """The tracks of one loss interval, in deadline order, and its timer."""

    __slots__ = ("interval", "tracks", "timer")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.tracks: dict[int, Track] = {}
        self.timer: Optional[Any] = None


class LossTimers:
    """
    The loss deadlines of every active track of one L{Analytics}.

    @param expire: called with a track whose deadline passed; it must end
        the track, which calls L{forget}.
    """

    def __init__(self, reactor: IReactorTime,
                 expire: Callable[[Track], None]) -> None:
        self.reactor = reactor
        self.expire = expire
        self._groups: dict[float, _Group] = {}

    def touch(self, track: Track, interval: float,
              now: Optional[float] = None) -> None:
        """
        C{track} was read now (the reactor's time, or C{now} when the
        caller has it already): its deadline is C{interval} from now.
        """
        if now is None:
            now = self.reactor.seconds()
        group = track.timer
        if group is not None and group.interval == interval:
            # The usual read: its track is in this interval's group already.
            # Re-insert it at the end: the latest deadline of its interval.
            tracks = group.tracks
            runtimeId = track.runtimeId
            del tracks[runtimeId]
            tracks[runtimeId] = track
            track.deadline = now + interval
            if group.timer is None:
                group.timer = self.reactor.callLater(interval, self._fire,
                                                     group)
            return
        group = self._groups.get(interval)
        if group is None:
            group = self._groups[interval] = _Group(interval)
        if track.timer is not None:
            self.forget(track)
        track.timer = group
        group.tracks[track.runtimeId] = track
        track.deadline = now + interval
        if group.timer is None:
            group.timer = self.reactor.callLater(interval, self._fire, group)

    def forget(self, track: Track) -> None:
        """C{track} ended: no deadline any more (and no timer for an empty
        interval)."""
        group = track.timer
        if group is None:
            return
        track.timer = None
        group.tracks.pop(track.runtimeId, None)
        if not group.tracks and group.timer is not None:
            if group.timer.active():
                group.timer.cancel()
            group.timer = None

    def _fire(self, group: _Group) -> None:
        group.timer = None
        now = self.reactor.seconds()
        tracks = group.tracks
        while tracks:
            track = next(iter(tracks.values()))
            if track.deadline > now + EPSILON:
                break
            self.expire(track)
            if tracks and next(iter(tracks.values())) is track:
                # The expiry did not end it (it should): do not loop.
                self.forget(track)
        if tracks and group.timer is None:
            first = next(iter(tracks.values()))
            group.timer = self.reactor.callLater(
                max(0.0, first.deadline - now), self._fire, group)
