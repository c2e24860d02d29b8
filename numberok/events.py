"""
The value types that travel through numberok: a raw L{PlateRead} going in,
a L{PlateEvent} (Detected / Updated / Lost) coming out, and the mapping of an
event to the NumberOk key/value pairs of the wire protocol.

No I/O here: these are plain frozen values, safe to share between the
reactor thread and the screenshot threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

BBox = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class VehicleAttributes:
    """
    What a source says about the vehicle besides its plate, each L{None}
    when it does not say (never a guess): C{type} (body type or class, as
    the source spells it, e.g. C{"sedan"}, C{"SUVMPV"}), C{colour},
    C{make}, C{model} and the plate's own C{plateColour}.  The analytics
    vote each one over a track's reads like the plate (L{numberok.vehicle}).
    """

    type: Optional[str] = None
    colour: Optional[str] = None
    make: Optional[str] = None
    model: Optional[str] = None
    plateColour: Optional[str] = None


VEHICLE_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    # (VehicleAttributes field, PlateEvent field, wire key)
    ("type", "vehicleType", "VehicleType"),
    ("colour", "vehicleColour", "VehicleColour"),
    ("make", "vehicleMake", "VehicleMake"),
    ("model", "vehicleModel", "VehicleModel"),
    ("plateColour", "plateColour", "PlateColour"),
)
"""Each vehicle attribute's names on a read, on an event and on the wire
(docs/protocol.rst)."""


@dataclass(frozen=True, slots=True)
class PlateRead:
    """
    One plate read off one frame by a recognizer, as a source received it.

    @ivar plate: the text as recognized (control characters already removed).
    @ivar confidence: 0.0 .. 1.0.
    @ivar timeMs: UTC frame time, ms since the epoch.
    @ivar bbox: C{(x, y, w, h)} of the plate in the frame, when known; the
        analytics derive the movement direction from it.
    @ivar jpeg: the frame as JPEG bytes, when the source has one.
    @ivar processTimeMs: time the recognizer spent on that frame.
    @ivar source: which source made the read (C{"ingest"}, C{"demo"}, ...),
        for logs and counters.
    @ivar perVehicle: C{True} when the source gives one result per vehicle
        (an ANPR camera's alarm, a folder-watch JPEG) rather than one per
        frame: such a read is Detected at once, never held back by
        C{SkipFirstResults} (docs/analytics.rst).
    @ivar travel: the source's own word on the vehicle's travel,
        C{"approaching"} or C{"leaving"} the camera (an ANPR camera's
        C{direction}), for when the boxes cannot tell; L{None} when the
        source does not say.
    @ivar vehicle: the vehicle's attributes when the source gives any
        (L{VehicleAttributes}); L{None} when it gives none.
    """

    plate: str
    timeMs: int
    channel: int = 0
    zone: int = 0
    confidence: float = 1.0
    bbox: Optional[BBox] = None
    jpeg: Optional[bytes] = None
    processTimeMs: int = 0
    checkpoint: int = 0
    source: str = ""
    perVehicle: bool = False
    travel: Optional[str] = None
    vehicle: Optional[VehicleAttributes] = None


class EventState(enum.Enum):
    """The phase of a vehicle track, as sent in C{State}."""

    DETECTED = "Detected"
    UPDATED = "Updated"
    LOST = "Lost"

    # Members are singletons compared by identity: the identity hash is
    # exact, and C-level (Enum's own hashes the name in Python, and states
    # key dicts on the per-event path).
    __hash__ = object.__hash__


class MovementType(enum.Enum):
    """
    The direction of a track: C{MovementType} text and C{uMovementType} code.
    """

    UNDETERMINED = ("Undetermined", 0)
    TRY_IN = ("TryIn", 1)
    IN = ("In", 2)
    TRY_OUT = ("TryOut", 4)
    OUT = ("Out", 8)

    @property
    def wireName(self) -> str:
        return self.value[0]

    @property
    def code(self) -> int:
        return self.value[1]


@dataclass(frozen=True, slots=True)
class PlateEvent:
    """
    One event of one vehicle track.

    @ivar runtimeId: the track's id, the same for all its events.
    @ivar plate: the track's best plate after the plate rules
        (C{PlateNumber}).
    @ivar rawPlate: the best read as the recognizer gave it
        (C{RawPlateNumber}).
    @ivar frameTimeMs: the frame time of the read this event reports.
    @ivar confidence: the confidence of the best plate, 0.0 .. 1.0.
    @ivar reads: how many reads the track has had so far.
    @ivar frame: the source JPEG of the track's best read, not yet
        re-encoded; the publisher turns it into the attached screenshot only
        when a subscriber wants one.
    @ivar bbox: C{(x, y, w, h)} of the plate in C{frame}, when known: the
        plate crop (L{numberok.images.cropPlate}) is cut from it.
    @ivar systemId: the C{SystemId} of the instance that made the event when
        it is not this one (an event collected over MQTT keeps its origin);
        L{None} means this instance's own C{[System] SystemId}.
    @ivar eventTimeMs: when the event was emitted, by the server's clock
        (for Lost: when the vehicle was declared lost), ms since the epoch;
        L{None} where unknown.  Not on the wire: C{FrameTimeStampMs} stays the
        best read's frame time.
    @ivar channelName: the name C{[Channel:<n>] Name} gave the channel
        when the event was made (C{ChannelName} on the wire), L{None} for
        an unnamed channel.
    @ivar journalId: this server's journal id of a Lost, once known
        (L{numberok.journalids}); on the wire as C{JournalId}.
    @ivar vehicle: the track's voted L{VehicleAttributes} (each attribute
        the winner of the reads that gave it), L{None} when no read gave
        any; C{vehicleType}, C{vehicleColour}, C{vehicleMake},
        C{vehicleModel} and C{plateColour} read one each.
    @ivar listName: the list whose entry the plate matched (C{ListName}),
        L{None} when it matched none (L{numberok.lists}).
    @ivar listKind: that list's kind: C{allow}, C{deny} or C{info}.
    @ivar listPlate: the matched entry's plate or mask as written in the
        list (C{ListPlate}).
    @ivar listMatch: how it matched: C{exact}, C{lookalike} or
        C{fuzzy:<d>} (C{ListMatch}).
    @ivar access: C{granted}, C{denied} or C{unknown} on every event of a
        zone with lists in scope (C{Access}); L{None} where no list
        applies.
    """

    state: EventState
    runtimeId: int
    channel: int
    zone: int
    plate: str
    rawPlate: str
    frameTimeMs: int
    processTimeMs: int = 0
    movement: MovementType = MovementType.UNDETERMINED
    checkpoint: int = 0
    confidence: float = 1.0
    reads: int = 1
    frame: Optional[bytes] = None
    bbox: Optional[BBox] = None
    systemId: Optional[int] = None
    eventTimeMs: Optional[int] = None
    channelName: Optional[str] = None
    journalId: Optional[int] = None
    vehicle: Optional[VehicleAttributes] = None
    listName: Optional[str] = None
    listKind: Optional[str] = None
    listPlate: Optional[str] = None
    listMatch: Optional[str] = None
    access: Optional[str] = None

    # One field for the five attributes (each field costs every event its
    # construction), and a view of each for the journal and readers.
    @property
    def vehicleType(self) -> Optional[str]:
        return None if self.vehicle is None else self.vehicle.type

    @property
    def vehicleColour(self) -> Optional[str]:
        return None if self.vehicle is None else self.vehicle.colour

    @property
    def vehicleMake(self) -> Optional[str]:
        return None if self.vehicle is None else self.vehicle.make

    @property
    def vehicleModel(self) -> Optional[str]:
        return None if self.vehicle is None else self.vehicle.model

    @property
    def plateColour(self) -> Optional[str]:
        return None if self.vehicle is None else self.vehicle.plateColour


def unicodePlateNumber(text: str) -> str:
    """
    Spell C{text} as UTF-16 code units, four upper-case hex digits each, as
    the C{UnicodePlateNumber} key wants it (surrogate pairs stay two units).
    """
    return text.encode("utf-16-be").hex().upper()


def eventPairs(event: PlateEvent, systemId: int,
               testMode: bool = False) -> list[tuple[str, str]]:
    """
    The NumberOk C{Key=Value} pairs of an LPR event, in the order the
    original server sends them.  Besides the protocol's keys we add two of
    our own, documented in docs/protocol.rst: C{Confidence} (0..100, the best
    plate's confidence) and C{ReadCount} (reads in the track so far); then,
    each only when known, C{ChannelName}, C{JournalId}, the vehicle's
    attributes (C{VehicleType}, C{VehicleColour}, C{VehicleMake},
    C{VehicleModel}, C{PlateColour}) and the list decision (C{ListName},
    C{ListKind}, C{ListPlate}, C{ListMatch}, C{Access}) where lists apply.
    """
    if event.systemId is not None:
        systemId = event.systemId
    pairs = [
        ("SystemId", str(systemId)),
        ("Status", "IAService.LPR"),
        ("State", event.state.value),
        ("RuntimeID", str(event.runtimeId)),
        ("MovementType", event.movement.wireName),
        ("uMovementType", str(event.movement.code)),
        ("FrameTimeStampMs", str(event.frameTimeMs)),
        ("ProcessTimeMs", str(event.processTimeMs)),
    ]
    if testMode:
        pairs.append(("TestMode", "Enabled"))
    pairs += [
        ("PlateNumber", event.plate),
        ("Plate", event.plate),
        ("RawPlateNumber", event.rawPlate),
        ("UnicodePlateNumber", unicodePlateNumber(event.plate)),
        ("ZoneIndex", str(event.zone)),
        ("ChannelIndex", str(event.channel)),
        ("Checkpoint", str(event.checkpoint)),
        ("KPP", str(event.checkpoint)),
        ("Confidence", str(round(event.confidence * 100))),
        ("ReadCount", str(event.reads)),
    ]
    if event.channelName:
        pairs.append(("ChannelName", event.channelName))
    if event.journalId is not None:
        pairs.append(("JournalId", str(event.journalId)))
    # The vehicle's attributes, only those some read gave.
    vehicle = event.vehicle
    if vehicle is not None:
        for name, _, key in VEHICLE_ATTRIBUTES:
            value = getattr(vehicle, name)
            if value is not None:
                pairs.append((key, value))
    if event.listName is not None:
        pairs += [
            ("ListName", event.listName),
            ("ListKind", event.listKind or ""),
            ("ListPlate", event.listPlate or ""),
            ("ListMatch", event.listMatch or ""),
        ]
    if event.access is not None:
        pairs.append(("Access", event.access))
    return pairs
