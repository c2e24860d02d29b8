"""
Vehicle attributes (type, colour, make, model, plate colour) from the
sources that give them, through the track to the event: the one check of
an attribute value from outside (L{checkAttribute}) and the vote over a
track's reads (L{AttributeVote}).  The names each attribute has on a read,
an event and the wire are L{numberok.events.VEHICLE_ATTRIBUTES}.

An attribute no read gave stays absent everywhere: never a guess.
"""

from __future__ import annotations

from typing import Optional

from numberok.events import VEHICLE_ATTRIBUTES, VehicleAttributes
from numberok.sources.fields import ReadFormatError, cleanText

MAX_ATTRIBUTE_CHARS = 64
"""The longest attribute value taken (make and model names are short)."""

UNKNOWN = frozenset({"unknown", "unknow", "other", "none", "null", "n/a",
                     "-", "0"})
"""Values cameras send for "not recognised": absent, not an attribute."""



def checkAttribute(value: object, field: str) -> Optional[str]:
    """
    An attribute value from outside: a string, cleaned like a plate
    (control characters and surrounding space removed), at most
    L{MAX_ATTRIBUTE_CHARS} characters; L{None} for an absent, empty or
    "unknown" value (L{UNKNOWN}).

    @raise ReadFormatError: naming C{field}, for a value that is not a
        string or is too long.
    """
    if value is None:
        return None
    text = cleanText(value, field)
    if len(text) > MAX_ATTRIBUTE_CHARS:
        raise ReadFormatError(
            field, "%d characters, at most %d allowed"
            % (len(text), MAX_ATTRIBUTE_CHARS))
    if not text or text.lower() in UNKNOWN:
        return None
    return text


def attributesOf(type: Optional[str] = None, colour: Optional[str] = None,
                 make: Optional[str] = None, model: Optional[str] = None,
                 plateColour: Optional[str] = None
                 ) -> Optional[VehicleAttributes]:
    """The attributes, or L{None} when none is known (so a read without
    any costs the analytics one comparison)."""
    if (type is None and colour is None and make is None and model is None
            and plateColour is None):
        return None
    return VehicleAttributes(type, colour, make, model, plateColour)


class AttributeVote:
    """
    The vote of one track's attribute values: per attribute, each value's
    summed read confidence; the winner is the heaviest, ties going to the
    value seen first.  A read that does not give an attribute does not
    vote on it.
    """

    __slots__ = ("tallies",)

    def __init__(self) -> None:
        self.tallies: dict[str, dict[str, float]] = {}

    def add(self, attributes: VehicleAttributes, confidence: float) -> None:
        weight = max(confidence, 1e-6)
        for name, _, _ in VEHICLE_ATTRIBUTES:
            value = getattr(attributes, name)
            if value is not None:
                tally = self.tallies.setdefault(name, {})
                tally[value] = tally.get(value, 0.0) + weight

    def winner(self) -> VehicleAttributes:
        """Each attribute's winner (L{None} for one no read gave)."""
        tallies = self.tallies
        return VehicleAttributes(**{
            # max() keeps the first of equal weights: insertion order.
            name: max(tally, key=tally.__getitem__)
            for name, tally in tallies.items() if tally})


def eventVehicle(obj: dict) -> Optional[VehicleAttributes]:
    """
    The attributes of an event message that carries the wire keys (an
    MQTT message of another instance).

    @raise ReadFormatError: a key whose value is not a short string.
    """
    return attributesOf(**{name: checkAttribute(obj.get(key), key)
                           for name, _, key in VEHICLE_ATTRIBUTES})
