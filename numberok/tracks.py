"""
One vehicle in one zone (L{Track}) and its direction of travel
(L{movementOf}): the state the analytics keep per track, and nothing about
zones, timers' owners or sinks (those are in L{numberok.analytics}).
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.defer import Deferred

from numberok.events import BBox, MovementType, PlateRead
from numberok.plates import PlateVote, skeleton
from numberok.trackfit import MIN_STEP_MS, boxFits, nextVelocity
from numberok.vehicle import AttributeVote

NO_TIME = 2 ** 63
"""A track's first read time before it has any read."""

MAX_DISTINCT_PLATES = 64
"""Distinct read texts a track remembers for matching; beyond this a track
matches on the texts it has, which are plenty for one vehicle."""

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
    if inDirection == "down" or inDirection == "up":
        along = (y1 + h1 / 2) - (y0 + h0 / 2)
    elif inDirection == "right" or inDirection == "left":
        along = (x1 + w1 / 2) - (x0 + w0 / 2)
    else:
        raise KeyError(inDirection)
    if inDirection == "up" or inDirection == "left":
        along = -along
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


def movementOfTravel(travel: str, inDirection: str) -> MovementType:
    """
    The direction a source states (L{PlateRead.travel}) as a movement, for a
    track whose boxes cannot tell (a camera's single alarm has one box).  A
    vehicle approaching the camera moves down the frame, one leaving moves
    up: with C{InDirection} down, approaching is In; with up, it is Out;
    across the frame (left, right) the camera's word says nothing about the
    zone's In, so the movement stays undetermined.
    """
    approaching = travel == "approaching"
    if inDirection == "down":
        return MovementType.IN if approaching else MovementType.OUT
    if inDirection == "up":
        return MovementType.OUT if approaching else MovementType.IN
    return MovementType.UNDETERMINED


class Track:
    """
    One vehicle in one zone: its vote, the reads it keeps for the picture
    and the movement, and its loss timer.

    Frames are big (a camera JPEG is often 0.5-1 MB), so a track holds at
    most two: the best framed read of its voted plate and its most
    confident framed read overall (the fallback picture); the frames of
    texts the vote has moved away from are let go at once.

    @ivar lost: fires when the track ends -- with its Lost L{PlateEvent}
        when it was announced, with L{None} when it ends as noise (never
        announced, or folded into a neighbour).  The shutdown sequence waits
        on these (L{numberok.analytics.Analytics.closeTracks}).
    @ivar voted: the voted plate as of the last read (L{None} before it).
    """

    __slots__ = ("runtimeId", "channel", "zone", "vote", "texts", "keys",
                 "bestReadOf", "framed", "bestFramed", "reads", "announced",
                 "firstBox", "lastBox", "movement", "lastRead", "lastReadAt",
                 "timer", "deadline", "lost", "voted", "_plateKey", "gateBox", "gateAt",
                 "velocity", "firstMs", "lastMs", "firstBoxAt", "lastBoxAt",
                 "attributes", "__weakref__")

    def __init__(self, runtimeId: int, channel: int, zone: int,
                 fits: Callable[[str], bool]) -> None:
        self.runtimeId = runtimeId
        self.channel = channel
        self.zone = zone
        self.vote = PlateVote(fits=fits)
        self.texts: set[str] = set()
        self.keys: set[str] = set()
        # text -> most confident read of it that came without a frame
        self.bestReadOf: dict[str, PlateRead] = {}
        # text -> most confident framed read of it; only the voted plate's
        # entry survives the next read
        self.framed: dict[str, PlateRead] = {}
        self.bestFramed: Optional[PlateRead] = None
        self.reads = 0
        self.announced = False
        self.firstBox: Optional[BBox] = None
        self.lastBox: Optional[BBox] = None
        self.movement = MovementType.UNDETERMINED
        self.lastRead: Optional[PlateRead] = None
        self.lastReadAt = 0.0
        # Its loss timer (numberok.losstimers): the group it is in, and
        # when it is Lost unless read again.
        self.timer = None
        self.deadline = 0.0
        self.lost: Deferred = Deferred()
        self.voted: Optional[str] = None
        self._plateKey = ""
        # Where the plate of a frame source was last seen and how it moves
        # (numberok.trackfit): frame reads join only where they fit.
        self.gateBox: Optional[BBox] = None
        self.gateAt = 0
        self.velocity: Optional[tuple[float, float]] = None
        # The span of the reads' own times (the camera's clock); empty
        # (first after last) before the first read.
        self.firstMs = NO_TIME
        self.lastMs = -1
        self.firstBoxAt = 0
        self.lastBoxAt = 0
        # The vehicle's attributes, voted over the reads that gave any.
        self.attributes: Optional[AttributeVote] = None

    def plate(self) -> str:
        """The voted plate so far ("" before the first read)."""
        return self.vote.best()[0]

    def add(self, read: PlateRead, processed: str, key: str,
            now: float) -> list[str]:
        """
        Count C{read} in; C{key} is the skeleton of C{processed}.
        @return: the match keys (skeletons) this track is now known by that
            it was not before -- of the read's text and of a new voted
            plate -- for the zone's index.
        """
        self.reads += 1
        self.lastRead = read
        self.lastReadAt = now
        atMs = read.timeMs
        if atMs > self.lastMs:
            self.lastMs = atMs
        if atMs < self.firstMs:
            self.firstMs = atMs
        self.vote.add(processed, read.plate, read.confidence)
        if read.vehicle is not None:
            if self.attributes is None:
                self.attributes = AttributeVote()
            self.attributes.add(read.vehicle, read.confidence)
        fresh = []
        texts = self.texts
        if processed in texts or len(texts) < MAX_DISTINCT_PLATES:
            if processed not in texts:
                texts.add(processed)
                if key not in self.keys:
                    fresh.append(key)
            if read.jpeg:
                kept = self.framed.get(processed)
                if kept is None or read.confidence > kept.confidence:
                    self.framed[processed] = read
                best = self.bestFramed
                if best is None or read.confidence > best.confidence:
                    self.bestFramed = read
            else:
                kept = self.bestReadOf.get(processed)
                if kept is None or read.confidence > kept.confidence:
                    self.bestReadOf[processed] = read
        plate = self.vote.best()[0]
        if plate != self.voted:
            self.voted = plate
            self._plateKey = skeleton(plate)
            if self._plateKey not in self.keys and self._plateKey not in fresh:
                fresh.append(self._plateKey)
        if len(self.framed) > 1:
            kept = self.framed.get(plate)
            self.framed = {plate: kept} if kept is not None else {}
        if fresh:
            self.keys.update(fresh)
        box = read.bbox
        if box is not None:
            # First and latest by the reads' own time, so a read that
            # arrives out of order does not turn the movement round.
            if self.firstBox is None:
                self.firstBox = self.lastBox = box
                self.firstBoxAt = self.lastBoxAt = atMs
            elif atMs >= self.lastBoxAt:
                self.lastBox = box
                self.lastBoxAt = atMs
            elif atMs < self.firstBoxAt:
                self.firstBox = box
                self.firstBoxAt = atMs
            if not read.perVehicle:
                gate = self.gateBox
                if gate is None:
                    self.gateBox = box
                    self.gateAt = atMs
                elif atMs - self.gateAt >= MIN_STEP_MS:
                    self.velocity = nextVelocity(self.velocity, gate,
                                                 self.gateAt, box, atMs)
                    self.gateBox = box
                    self.gateAt = atMs
                elif atMs >= self.gateAt:
                    # The same frame, or too soon to measure a speed over.
                    self.gateBox = box
        return fresh

    def admits(self, read: PlateRead, lossMs: int, inDirection: str) -> bool:
        """
        Whether C{read} may join this track by when and where it was seen
        (L{numberok.trackfit}): its own time within C{lossMs} of the
        track's span, and, for a frame read with a box, the box where the
        track's motion puts the plate.
        """
        atMs = read.timeMs
        if atMs < self.firstMs - lossMs or atMs > self.lastMs + lossMs:
            return False
        gate = self.gateBox
        if gate is None or read.perVehicle:
            return True
        box = read.bbox
        if box is None:
            return True
        return boxFits(gate, self.gateAt, self.velocity, box, atMs,
                       inDirection)

    def sameVehicleAs(self, other: "Track", lossMs: int,
                      inDirection: str) -> bool:
        """
        Whether C{other} (a small track about to be announced) can be a
        copy of this one by time and place: the same test as L{admits}
        with C{other}'s latest frame box and time span.
        """
        if (other.lastMs < self.firstMs - lossMs
                or other.firstMs > self.lastMs + lossMs):
            return False
        if self.gateBox is None or other.gateBox is None:
            return True
        return boxFits(self.gateBox, self.gateAt, self.velocity,
                       other.gateBox, other.gateAt, inDirection)

    def plateKey(self) -> str:
        """The skeleton of the voted plate."""
        return self._plateKey

    def bestRead(self, plate: str) -> PlateRead:
        """
        The read whose frame goes with the track's events: the most
        confident read of the voted plate that came with a frame, else the
        most confident read with a frame, else the most confident read of
        the voted plate.
        """
        return (self.framed.get(plate) or self.bestFramed
                or self.bestReadOf.get(plate) or self.lastRead)

    def holdsFrames(self) -> int:
        """How many distinct frames the track keeps alive (for tests)."""
        frames = {id(r.jpeg) for r in self.framed.values()}
        if self.bestFramed is not None:
            frames.add(id(self.bestFramed.jpeg))
        return len(frames)
