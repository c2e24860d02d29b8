"""
The settings value: one immutable, valid set of settings (L{Settings}),
the settings of one zone (L{ZoneSettings}), and L{Settings.withChanges},
the one place a change is validated -- every bad field at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from numberok.settings.families import Family, Key, SectionSettings
from numberok.settings.fields import Field, SettingsError
from numberok.settings.keys import (FAMILIES, FIELDS, MAX_CHANNEL, SCHEMA,
                                    ZONE_FIELDS, ZONE_IN_DIRECTION,
                                    ZONE_LOSS_INTERVAL_SEC, ZONE_ROLE,
                                    ZONE_SECTION)


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
    @ivar sections: C{(family, ident)} to L{SectionSettings} for the
        listed sections of the families (C{[Webhook:erp]}, C{[Gate:0:1]},
        C{[Channel:3]}: L{numberok.settings.families}).
    """

    values: Mapping[str, Any] = field(
        default_factory=lambda: {f.name: f.default for f in SCHEMA})
    zones: Mapping[tuple[int, int], ZoneSettings] = field(
        default_factory=dict)
    sections: Mapping[tuple[str, str], SectionSettings] = field(
        default_factory=dict)

    def __getitem__(self, key: Key) -> Any:
        return self.values[key.name if isinstance(key, Field) else key]

    def zone(self, channel: int, zone: int) -> ZoneSettings:
        """The settings of a zone, defaults when it is not listed."""
        return self.zones.get((channel, zone)) or DEFAULT_ZONE

    def family(self, family: Family) -> list[SectionSettings]:
        """The listed sections of C{family}, ordered by identifier."""
        return [s for (name, _), s in self.sections.items()
                if name == family.name]

    def section(self, family: Family, ident: str
                ) -> Optional[SectionSettings]:
        """One section of C{family}; L{None} when it is not listed."""
        return self.sections.get((family.name, ident))

    def withChanges(self, changes: Mapping[Key, Any]) -> "Settings":
        """
        A new L{Settings} with C{changes} applied, validated all at once.
        Only the keys of C{changes} can be in error: the settings this is
        called on are valid already.

        @param changes: key (constant or C{"Section.Key"}) to a raw value
            (text from a form or a file, or a JSON scalar).  Zone keys are
            C{"Zone:<c>:<z>.LossIntervalSec"}; C{"Zone:<c>:<z>"} mapped to
            L{None} removes a zone, mapped to anything else lists it.
            Family sections likewise: C{"Webhook:erp.Url"}, C{"Webhook:erp"}.
        @raise SettingsError: listing every invalid field; nothing applies.
        """
        values = dict(self.values)
        zones = dict(self.zones)
        sections = dict(self.sections)
        touched: set[tuple[str, str]] = set()
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
            elif _familyOf(section or name) is not None:
                error = _changeSection(sections, touched, section or name,
                                       key if section else None, raw)
            else:
                error = "unknown setting"
            if error:
                errors[name] = error
        for where in sorted(touched):
            # The whole-section check, once its keys parsed.
            family = FAMILIES[where[0]]
            name = family.section(where[1])
            if where not in sections or any(
                    e == name or e.startswith(name + ".") for e in errors):
                continue
            for key, message in family.check(sections[where]).items():
                errors["%s.%s" % (name, key)] = message
        if errors:
            raise SettingsError(errors)
        return Settings(values, dict(sorted(zones.items())),
                        dict(sorted(sections.items())))


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


def _familyOf(section: str) -> Optional[Family]:
    name = section.partition(":")[0]
    family = FAMILIES.get(name)
    return family if family is not None and family.claims(section) else None


def _changeSection(sections: dict[tuple[str, str], SectionSettings],
                   touched: set[tuple[str, str]], section: str,
                   key: Optional[str], raw: Any) -> str:
    """Apply one change to a family's section; the error, or C{""}."""
    family = _familyOf(section)
    assert family is not None
    ident = family.match(section)
    if ident is None:
        return "a section of this kind is named %s" % (family.identHelp,)
    error = family.identCheck(ident)
    if error:
        return error
    where = (family.name, ident)
    if key is None:
        if raw is None:
            sections.pop(where, None)
        else:
            sections.setdefault(where, family.defaults(ident))
            touched.add(where)
        return ""
    sectionField = family.fieldOf(key)
    if sectionField is None:
        return "unknown key (known in [%s]: %s)" % (
            family.section("..."), ", ".join(f.key for f in family.fields))
    parsed: dict[str, Any] = {}
    error = _parseInto(parsed, sectionField, key, raw)
    if not error:
        sections[where] = sections.get(
            where, family.defaults(ident)).withValue(key, parsed[key])
        touched.add(where)
    return error
