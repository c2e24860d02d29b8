"""
The settings value: one immutable, valid set of settings (L{Settings}),
the settings of one zone (L{ZoneSettings}), and L{Settings.withChanges},
the one place a change is validated -- every bad field at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Union

from numberok.settings.fields import Field, SettingsError
from numberok.settings.keys import (FIELDS, MAX_CHANNEL, SCHEMA, ZONE_FIELDS,
                                    ZONE_IN_DIRECTION, ZONE_LOSS_INTERVAL_SEC,
                                    ZONE_ROLE, ZONE_SECTION, zoneSection)

Key = Union[Field, str]
"""A key: its constant from L{numberok.settings.keys}, or its name."""


@dataclass(frozen=True, slots=True)
class ZoneSettings:
    """
    The settings of one channel/zone.  Read them by attribute or by key:
    C{zone.lossInterval} is C{zone[ZONE_LOSS_INTERVAL_SEC]}.
    """

    lossInterval: float = ZONE_LOSS_INTERVAL_SEC.default
    inDirection: str = ZONE_IN_DIRECTION.default
    role: str = ZONE_ROLE.default

    def __getitem__(self, key: Key) -> Any:
        return getattr(self, _ZONE_ATTRIBUTES[_zoneKey(key)])

    def withValue(self, key: Key, value: Any) -> "ZoneSettings":
        """A copy with the (already parsed) C{value} of C{key}."""
        values = {a: getattr(self, a) for a in _ZONE_ATTRIBUTES.values()}
        values[_ZONE_ATTRIBUTES[_zoneKey(key)]] = value
        return ZoneSettings(**values)


_ZONE_ATTRIBUTES = {ZONE_LOSS_INTERVAL_SEC.key: "lossInterval",
                    ZONE_IN_DIRECTION.key: "inDirection",
                    ZONE_ROLE.key: "role"}
assert set(_ZONE_ATTRIBUTES) == set(ZONE_FIELDS), "a zone key has no field"


def _zoneKey(key: Key) -> str:
    return key.key if isinstance(key, Field) else key


DEFAULT_ZONE = ZoneSettings()


@dataclass(frozen=True)
class Settings:
    """
    One immutable, valid set of settings.  Look values up by key constant
    (C{settings[NETSERVER_PORT]}) or by name (C{settings["NetServer.Port"]}).

    @ivar values: C{"Section.Key"} to typed value, for every L{SCHEMA} field.
    @ivar zones: C{(channel, zone)} to L{ZoneSettings} for listed zones.
    """

    values: Mapping[str, Any] = field(
        default_factory=lambda: {f.name: f.default for f in SCHEMA})
    zones: Mapping[tuple[int, int], ZoneSettings] = field(
        default_factory=dict)

    def __getitem__(self, key: Key) -> Any:
        return self.values[key.name if isinstance(key, Field) else key]

    def zone(self, channel: int, zone: int) -> ZoneSettings:
        """The settings of a zone, defaults when it is not listed."""
        return self.zones.get((channel, zone)) or DEFAULT_ZONE

    def withChanges(self, changes: Mapping[Key, Any]) -> "Settings":
        """
        A new L{Settings} with C{changes} applied, validated all at once.
        Only the keys of C{changes} can be in error: the settings this is
        called on are valid already.

        @param changes: key (constant or C{"Section.Key"}) to a raw value
            (text from a form or a file, or a JSON scalar).  Zone keys are
            C{"Zone:<c>:<z>.LossIntervalSec"}; C{"Zone:<c>:<z>"} mapped to
            L{None} removes a zone, mapped to anything else lists it.
        @raise SettingsError: listing every invalid field; nothing applies.
        """
        values = dict(self.values)
        zones = dict(self.zones)
        errors: dict[str, str] = {}
        for name, raw in changes.items():
            if isinstance(name, Field):
                name = name.name
            section, _, key = name.rpartition(".")
            zoneMatch = ZONE_SECTION.match(section or name)
            if zoneMatch:
                where = (int(zoneMatch.group(1)), int(zoneMatch.group(2)))
                error = _changeZone(zones, where, key if section else None,
                                    raw)
            elif name in FIELDS:
                error = _parseInto(values, FIELDS[name], name, raw)
            else:
                error = "unknown setting"
            if error:
                errors[name] = error
        if errors:
            raise SettingsError(errors)
        return Settings(values, dict(sorted(zones.items())))


def _parseInto(values: dict[str, Any], schemaField: Field, name: str,
               raw: Any) -> str:
    try:
        values[name] = schemaField.parse(raw)
    except ValueError as e:
        return str(e)
    return ""


def _changeZone(zones: dict[tuple[int, int], ZoneSettings],
                where: tuple[int, int], key: Any, raw: Any) -> str:
    """Apply one zone change to C{zones}; the error message, or C{""}."""
    if where[0] > MAX_CHANNEL:
        return "channel must be 0..%d" % (MAX_CHANNEL,)
    if key is None:
        if raw is None:
            zones.pop(where, None)
        else:
            zones.setdefault(where, DEFAULT_ZONE)
        return ""
    zoneField = ZONE_FIELDS.get(key)
    if zoneField is None:
        return "unknown key (known: %s)" % (", ".join(ZONE_FIELDS),)
    parsed: dict[str, Any] = {}
    error = _parseInto(parsed, zoneField, key, raw)
    if not error:
        zones[where] = zones.get(where, DEFAULT_ZONE).withValue(
            zoneField, parsed[key])
    return error


def zoneChanges(where: tuple[int, int], zone: ZoneSettings
                ) -> dict[str, Any]:
    """C{zone} as L{Settings.withChanges} input, rendered as file text."""
    section = zoneSection(*where)
    return {"%s.%s" % (section, f.key): f.render(zone[f])
            for f in ZONE_FIELDS.values()}
