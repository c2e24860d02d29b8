"""
Whether a read can belong to a track by where and when it was seen, not
only by its text: the plate box must fit the track's position and motion
(L{boxFits}), and the read's own time must fit the track's span of time
(L{numberok.tracks.Track.admits}).  Text alone cannot tell two fleet vehicles with consecutive
numbers apart when they drive side by side, nor one vehicle's two passages
that a camera reports a second apart after an outage; the box and the
camera's clock can.  docs/analytics.rst ("Position and time") has the rule
and its limits.

Pure functions on numbers; L{numberok.zones.ZoneAggregator} calls them for
the few candidate tracks its text index found.
"""

from __future__ import annotations

import math
from typing import Optional

from numberok.events import BBox

ACROSS_PLATE_WIDTHS = 1.2
"""How far (in plate widths) a box may lie across the zone's direction of
travel from where the track's motion puts it: lanes are two plate widths
and more apart, and a vehicle drifts far less than that between reads."""

ALONG_PLATE_WIDTHS = 4.0
"""How far along the direction of travel: a vehicle at speed moves one or
two plate widths between frames, and a missed read or two doubles that."""

MAX_PREDICTION_S = 2.0
"""The longest time a track's motion is extrapolated over: beyond it the
vehicle may have stopped, so the prediction stops there."""

MIN_STEP_MS = 20
"""The shortest time between two boxes that a velocity is measured over:
a frame interval at 50 frames a second.  Reads closer together (one
frame, or times rounded to the millisecond) move the position only."""

MAX_SPEED_PLATE_WIDTHS = 30.0
"""The fastest a plate is taken to cross the picture, in plate widths a
second (a 180 px plate at 10 frames a second moving 2 widths a frame is
20); a faster estimate comes from bad times and is cut to this."""

VELOCITY_SMOOTHING = 0.5
"""Weight of the newest step in the track's velocity estimate."""

_VERTICAL = frozenset({"down", "up"})


def boxFits(last: BBox, lastAtMs: int,
            velocity: Optional[tuple[float, float]], box: BBox, atMs: int,
            inDirection: str) -> bool:
    """
    Whether C{box}, seen at C{atMs}, can be the plate whose latest box was
    C{last} at C{lastAtMs}, moving at C{velocity} (pixels per second, or
    L{None} before the track has moved).

    The box centre is compared with the predicted centre, split along the
    zone's C{InDirection} (the way vehicles travel) and across it, in plate
    widths (the mean of both boxes), so the rule does not depend on the
    camera's resolution.
    """
    # Centre minus centre, with the halves folded together (this runs for
    # every framed read, so: one unpacking each, no calls).
    x0, y0, w0, h0 = last
    x1, y1, w1, h1 = box
    dx = x1 - x0 + (w1 - w0) * 0.5
    dy = y1 - y0 + (h1 - h0) * 0.5
    if velocity is not None:
        dt = (atMs - lastAtMs) * 0.001
        if dt > MAX_PREDICTION_S:
            dt = MAX_PREDICTION_S
        elif dt < -MAX_PREDICTION_S:
            dt = -MAX_PREDICTION_S
        dx -= velocity[0] * dt
        dy -= velocity[1] * dt
    unit = (w0 + w1) * 0.5
    if unit < 1.0:
        unit = 1.0
    if inDirection in _VERTICAL:
        along, across = dy, dx
    else:
        along, across = dx, dy
    if across < 0:
        across = -across
    if along < 0:
        along = -along
    return (across <= ACROSS_PLATE_WIDTHS * unit
            and along <= ALONG_PLATE_WIDTHS * unit)


def nextVelocity(velocity: Optional[tuple[float, float]], last: BBox,
                 lastAtMs: int, box: BBox, atMs: int
                 ) -> Optional[tuple[float, float]]:
    """
    The track's velocity after C{box} at C{atMs} followed C{last}: the
    step's speed (at most L{MAX_SPEED_PLATE_WIDTHS}), smoothed with the
    previous estimate.  Reads with the same time (one frame) leave it as
    it was; the caller measures only over L{MIN_STEP_MS} or more.
    """
    dt = (atMs - lastAtMs) / 1000.0
    if dt <= 0:
        return velocity
    vx = (box[0] - last[0] + (box[2] - last[2]) / 2) / dt
    vy = (box[1] - last[1] + (box[3] - last[3]) / 2) / dt
    fastest = MAX_SPEED_PLATE_WIDTHS * max((last[2] + box[2]) / 2, 1.0)
    speed = math.hypot(vx, vy)
    if speed > fastest:
        vx *= fastest / speed
        vy *= fastest / speed
    if velocity is None:
        return vx, vy
    keep = 1.0 - VELOCITY_SMOOTHING
    return (keep * velocity[0] + VELOCITY_SMOOTHING * vx,
            keep * velocity[1] + VELOCITY_SMOOTHING * vy)

