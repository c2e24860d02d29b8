"""
The travel hint and the vehicle attributes as each read format spells
them: our JSON (C{"travel"}, C{"vehicle": {"type", "colour", "make",
"model"}}, C{"plate_colour"}) and OpenALPR (C{travel_direction},
C{vehicle}).  Hikvision's are read in L{numberok.sources.hikvision}.
docs/sources.rst has the mapping; values are checked by
L{numberok.vehicle.checkAttribute}.
"""

from __future__ import annotations

import math
from typing import Optional

from numberok.events import VehicleAttributes
from numberok.sources.fields import ReadFormatError, checkNumber, jsonType
from numberok.vehicle import attributesOf, checkAttribute

TRAVELS = ("approaching", "leaving")
"""L{numberok.events.PlateRead.travel}'s values."""

VEHICLE_KEYS = ("type", "colour", "make", "model")
"""The members of our JSON's C{vehicle} object."""

SIDEWAYS_COSINE = 0.5
"""OpenALPR's C{travel_direction} says approaching or leaving only when
the motion is within 60 degrees of straight down or up the frame."""


def checkTravel(value: object, field: str = "travel") -> Optional[str]:
    """C{"approaching"}, C{"leaving"} or absent (L{None})."""
    if value is None:
        return None
    if value not in TRAVELS:
        raise ReadFormatError(
            field, 'must be "approaching" or "leaving", not %s'
            % (repr(value)[:40] if isinstance(value, str)
               else jsonType(value),))
    return value


def jsonAttributes(vehicle: object, plateColour: object
                   ) -> Optional[VehicleAttributes]:
    """
    Our JSON's C{vehicle} object and C{plate_colour}.  Members of
    C{vehicle} other than L{VEHICLE_KEYS} are ignored, as unknown keys
    are everywhere in the format.
    """
    values: dict[str, Optional[str]] = {}
    if vehicle is not None:
        if not isinstance(vehicle, dict):
            raise ReadFormatError(
                "vehicle", "must be an object {type, colour, make, model}, "
                "not %s" % (jsonType(vehicle),))
        for key in VEHICLE_KEYS:
            values[key] = checkAttribute(vehicle.get(key), "vehicle." + key)
    return attributesOf(plateColour=checkAttribute(plateColour,
                                                   "plate_colour"),
                        **values)


def openAlprTravel(value: object, field: str) -> Optional[str]:
    """
    OpenALPR's C{travel_direction}, degrees of the vehicle's motion in the
    picture, taken clockwise from straight up the frame (0: moving up,
    away from the camera; 180: moving down, towards it): approaching
    within 60 degrees of down, leaving within 60 degrees of up, otherwise
    (across the frame) no hint.
    """
    if value is None:
        return None
    degrees = checkNumber(value, field, -360.0, 360.0, " degrees")
    cosine = math.cos(math.radians(degrees))
    if cosine <= -SIDEWAYS_COSINE:
        return "approaching"
    if cosine >= SIDEWAYS_COSINE:
        return "leaving"
    return None


def _bestName(value: object, field: str) -> Optional[str]:
    """
    The first (most confident) C{name} of an OpenALPR candidate list
    C{[{"name": ..., "confidence": ...}, ...]}; a bare string is taken too.
    """
    if value is None or isinstance(value, str):
        return checkAttribute(value, field)
    if not isinstance(value, list):
        raise ReadFormatError(
            field, "must be an array of {name, confidence}, not %s"
            % (jsonType(value),))
    if not value:
        return None
    first = value[0]
    if not isinstance(first, dict):
        raise ReadFormatError(
            field + "[0]", "must be an object {name, confidence}, not %s"
            % (jsonType(first),))
    return checkAttribute(first.get("name"), field + "[0].name")


def openAlprAttributes(vehicle: object, field: str = "vehicle"
                       ) -> Optional[VehicleAttributes]:
    """
    OpenALPR's C{vehicle} object: C{body_type}, C{color}, C{make} and
    C{make_model}, each a candidate list of which the first is taken.
    """
    if vehicle is None:
        return None
    if not isinstance(vehicle, dict):
        raise ReadFormatError(
            field, "must be an object, not %s" % (jsonType(vehicle),))
    return attributesOf(
        type=_bestName(vehicle.get("body_type"), field + ".body_type"),
        colour=_bestName(vehicle.get("color"), field + ".color"),
        make=_bestName(vehicle.get("make"), field + ".make"),
        model=_bestName(vehicle.get("make_model"), field + ".make_model"))
