"""
The one list of a journal row's fields.

A L{PlateEvent} is stored as one SQLite row and served as one JSON object;
both shapes, and the value type L{JournalEntry}, are derived from
L{EVENT_FIELDS} and L{JOURNAL_FIELDS} here, so a new event field is added in
one place.  The SQL column names double as the JSON member names: both are
persisted or documented (docs/operations.rst), so they stay snake_case while
every Python attribute -- event fields and the journal's own alike -- is
camelCase like L{PlateEvent}'s (C{recordedMs} is column C{recorded_ms}).
"""

from __future__ import annotations

from dataclasses import dataclass, make_dataclass
from typing import Any, Callable, Optional

from numberok.events import (VEHICLE_ATTRIBUTES, BBox, EventState,
                             MovementType, PlateEvent)
from numberok.vehicle import attributesOf
from numberok.plates.matching import skeleton


def _same(value: Any) -> Any:
    return value


def _movementOf(wireName: str) -> MovementType:
    return next((m for m in MovementType if m.wireName == wireName),
                MovementType.UNDETERMINED)


def boxText(box: Optional[BBox]) -> Optional[str]:
    """C{(x, y, w, h)} as stored: C{"x,y,w,h"}, the wire's C{PlateRect}
    spelling."""
    return None if box is None else ",".join(str(int(v)) for v in box)


def boxOf(text: Optional[str]) -> Optional[BBox]:
    if not text:
        return None
    x, y, w, h = (int(v) for v in text.split(","))
    return x, y, w, h


@dataclass(frozen=True, slots=True)
class Field:
    """
    One stored field.

    @ivar attr: the attribute of L{JournalEntry} (and of L{PlateEvent} for
        event fields).
    @ivar column: the SQL column, and the JSON member name.
    @ivar sqlType: its SQL declaration.  Fields added after the first
        release must be nullable or have a default: an old database gets
        them with C{ALTER TABLE ADD COLUMN}.
    @ivar pyType: the type the row holds.
    @ivar toRow: event value -> row value.
    @ivar toEvent: row value -> event value.
    @ivar toJSON: row value -> JSON value.
    @ivar public: whether the JSON API shows it.
    """

    attr: str
    column: str
    sqlType: str
    pyType: Any
    toRow: Callable[[Any], Any] = _same
    toEvent: Callable[[Any], Any] = _same
    toJSON: Callable[[Any], Any] = _same
    public: bool = True


EVENT_FIELDS: tuple[Field, ...] = (
    Field("state", "state", "TEXT NOT NULL", str,
          lambda s: s.value, EventState),
    Field("runtimeId", "runtime_id", "INTEGER NOT NULL", int),
    Field("channel", "channel", "INTEGER NOT NULL", int),
    Field("zone", "zone", "INTEGER NOT NULL", int),
    Field("plate", "plate", "TEXT NOT NULL", str),
    Field("rawPlate", "raw_plate", "TEXT NOT NULL", str),
    Field("frameTimeMs", "frame_time_ms", "INTEGER NOT NULL", int),
    Field("processTimeMs", "process_time_ms", "INTEGER NOT NULL", int),
    Field("movement", "movement", "TEXT NOT NULL", str,
          lambda m: m.wireName, _movementOf),
    Field("checkpoint", "checkpoint", "INTEGER NOT NULL", int),
    Field("confidence", "confidence", "REAL NOT NULL", float, float),
    Field("reads", "reads", "INTEGER NOT NULL", int),
    # Added in the second release: nullable, so old rows read as unknown.
    Field("eventTimeMs", "event_time_ms", "INTEGER", Optional[int]),
    Field("systemId", "system_id", "INTEGER", Optional[int]),
    Field("bbox", "plate_box", "TEXT", Optional[str], boxText, boxOf,
          lambda text: list(boxOf(text)) if text else None),
    Field("channelName", "channel_name", "TEXT", Optional[str]),
    # The vehicle's attributes (PlateEvent.vehicle, read through its
    # properties), NULL where unknown.
    Field("vehicleType", "vehicle_type", "TEXT", Optional[str]),
    Field("vehicleColour", "vehicle_colour", "TEXT", Optional[str]),
    Field("vehicleMake", "vehicle_make", "TEXT", Optional[str]),
    Field("vehicleModel", "vehicle_model", "TEXT", Optional[str]),
    Field("plateColour", "plate_colour", "TEXT", Optional[str]),
    # The list decision (numberok.lists): nullable; named as on the wire,
    # so the journal API, MQTT and webhooks all say ListName, Access, ...
    Field("listName", "ListName", "TEXT", Optional[str]),
    Field("listKind", "ListKind", "TEXT", Optional[str]),
    Field("listPlate", "ListPlate", "TEXT", Optional[str]),
    Field("listMatch", "ListMatch", "TEXT", Optional[str]),
    Field("access", "Access", "TEXT", Optional[str]),
)
"""Every L{PlateEvent} field but C{frame} (stored as a file)."""

JOURNAL_FIELDS: tuple[Field, ...] = (
    Field("recordedMs", "recorded_ms", "INTEGER NOT NULL", int),
    Field("screenshotBytes", "screenshot_bytes",
          "INTEGER NOT NULL DEFAULT 0", int),
    # The picture files the row commits to (names unique per write, so a
    # file can never be taken for another row's); NULL for none.
    Field("screenshotFile", "screenshot_file", "TEXT", Optional[str],
          public=False),
    Field("plateFile", "plate_file", "TEXT", Optional[str], public=False),
    Field("plateBytes", "plate_bytes", "INTEGER NOT NULL DEFAULT 0", int),
)
"""The journal's own fields, after the event's."""

SEARCH_FIELDS: tuple[Field, ...] = (
    # Added in the third release (schema version 2, numberok.journal.
    # schema): derived from the event's plate when the row is written, so
    # searches find it through an index; old rows are backfilled.
    Field("plate_skeleton", "plate_skeleton", "TEXT", Optional[str],
          public=False),
)
"""Columns the journal derives from the event for search
(L{searchValues}), after the journal's own.  A new derived column goes at
the end here; a new event field at the end of L{EVENT_FIELDS}."""

ALL_FIELDS = EVENT_FIELDS + JOURNAL_FIELDS + SEARCH_FIELDS
COLUMNS = ("id",) + tuple(f.column for f in ALL_FIELDS)
"""Every column, in L{JournalEntry}'s order (C{id} first)."""


def eventRow(event: PlateEvent) -> tuple:
    """The event fields of C{event} as row values, in L{EVENT_FIELDS}
    order."""
    return tuple(f.toRow(getattr(event, f.attr)) for f in EVENT_FIELDS)


_PLATE_INDEX = [f.column for f in EVENT_FIELDS].index("plate")


def searchValues(row: tuple) -> tuple:
    """The L{SEARCH_FIELDS} values of an event row (L{eventRow})."""
    return (skeleton(row[_PLATE_INDEX]),)


def eventJSON(event: PlateEvent) -> dict[str, Any]:
    """The event fields of C{event} under their JSON names (no picture)."""
    return {f.column: f.toJSON(f.toRow(getattr(event, f.attr)))
            for f in EVENT_FIELDS}


class _EntryMethods:
    __slots__ = ()

    @property
    def hasScreenshot(self) -> bool:
        return self.screenshotFile is not None and self.screenshotBytes > 0

    @property
    def hasPlatePicture(self) -> bool:
        return self.plateFile is not None and self.plateBytes > 0

    def toEvent(self) -> PlateEvent:
        """The row as an event again (without its frame)."""
        values = {f.attr: f.toEvent(getattr(self, f.attr))
                  for f in EVENT_FIELDS}
        # The attribute columns are one field of the event.
        vehicle = {name: values.pop(attr)
                   for name, attr, _ in VEHICLE_ATTRIBUTES}
        return PlateEvent(vehicle=attributesOf(**vehicle), **values)

    def toJSON(self, screenshotURL: Optional[str] = None,
               platePictureURL: Optional[str] = None) -> dict[str, Any]:
        """
        The entry as a JSON object for the admin API.

        @param screenshotURL: where the web server serves the frame; the
            C{"screenshot"} member is that URL, or L{None} without one.
        @param platePictureURL: the same for the plate crop
            (C{"plate_picture"}).
        """
        data: dict[str, Any] = {"id": self.id}
        for f in ALL_FIELDS:
            if f.public:
                data[f.column] = f.toJSON(getattr(self, f.attr))
        data["screenshot"] = screenshotURL if self.hasScreenshot else None
        data["plate_picture"] = (platePictureURL if self.hasPlatePicture
                                 else None)
        return data


JournalEntry = make_dataclass(
    "JournalEntry", [("id", int)] + [(f.attr, f.pyType) for f in ALL_FIELDS],
    bases=(_EntryMethods,), frozen=True, slots=True,
    namespace={"__module__": __name__})
JournalEntry.__doc__ = """
One recorded event: the fields of its L{PlateEvent} as stored (C{state} and
C{movement} as their wire text, C{bbox} as C{"x,y,w,h"}), plus the
journal's own: C{id} (increasing, never reused), C{recordedMs} (when the
journal took it, server clock), the picture files and their sizes.
Built from L{EVENT_FIELDS} and L{JOURNAL_FIELDS}.
"""

@dataclass(frozen=True, slots=True)
class JournalPage:
    """
    An answer to L{numberok.journal.Journal.since}.

    @ivar entries: rows with C{id > since_id}, oldest first.
    @ivar oldestId: the oldest id still kept (L{None} when empty): when it is
        greater than C{since_id + 1}, retention removed rows the client
        never saw.
    @ivar lastId: the newest id given so far (L{None} when none ever was).
    @ivar epoch: the database's identity (a UUID made when it was created):
        it changes when the database was lost and made anew, and a client
        whose C{since_id} came from another epoch must check C{firstId}.
    @ivar firstId: the first id this epoch gave or will give (ids of a new
        epoch continue above the last one known); 1 for a journal that
        started from nothing.
    """

    entries: list
    oldestId: Optional[int]
    lastId: Optional[int]
    epoch: str = ""
    firstId: int = 1
