"""
Section families: settings sections that come in any number, each named by
the family and an identifier -- C{[Webhook:erp]}, C{[Gate:0:1]},
C{[Channel:3]} -- with the same keys in every section of a family.

A part that needs such sections declares its family once, in
L{numberok.settings.keys} (a L{Family} and one L{Field} constant per key,
whose C{section} is the family's name); loading, validation (every bad
field at once, with the other settings), the JSON API and saving into the
file (comments kept) then work for it as for every other key.  Zones
(C{[Zone:<c>:<z>]}) predate this and keep their typed L{ZoneSettings}.

Names in L{numberok.settings.Settings.withChanges}: C{"Webhook:erp.Url"}
sets a key, C{"Webhook:erp"} mapped to L{None} removes the section and to
anything else adds it with the defaults.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

from numberok.settings.fields import Field

Key = Union[Field, str]
"""A key: its constant from L{numberok.settings.keys}, or its name."""


@dataclass(frozen=True, slots=True)
class SectionSettings:
    """
    The values of one section of a family.

    @ivar family: the family's name (C{"Webhook"}).
    @ivar ident: the section's identifier (C{"erp"} of C{[Webhook:erp]}).
    @ivar values: key (C{"Url"}) to typed value, for every key of the
        family.
    """

    family: str
    ident: str
    values: Mapping[str, Any]

    @property
    def section(self) -> str:
        """The section's name in the file: C{Webhook:erp}."""
        return "%s:%s" % (self.family, self.ident)

    def __getitem__(self, key: Key) -> Any:
        return self.values[key.key if isinstance(key, Field) else key]

    def withValue(self, key: str, value: Any) -> "SectionSettings":
        values = dict(self.values)
        values[key] = value
        return SectionSettings(self.family, self.ident, values)


SectionCheck = Callable[[SectionSettings], Mapping[str, str]]
"""Checks a whole section after its keys parsed (a URL that a method
needs, two keys that go together); returns key -> message."""


def _noCheck(section: SectionSettings) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class Family:
    """
    One family of sections.

    @ivar name: the part of the section name before the first C{:}.
    @ivar ident: a regular expression the identifier must match in full.
    @ivar identHelp: how the identifier is written, for the error message.
    @ivar fields: the keys of every section (filled in by
        L{numberok.settings.keys} from its constants).
    @ivar check: the whole-section check, run after the keys parsed.
    @ivar identCheck: a further check of the identifier (a channel's
        range); returns a message or C{""}.
    """

    name: str
    ident: str
    identHelp: str
    fields: tuple[Field, ...] = ()
    check: SectionCheck = _noCheck
    identCheck: Callable[[str], str] = field(default=lambda ident: "")

    def match(self, section: str) -> Optional[str]:
        """The identifier of C{section} when it is one of this family's
        (C{"erp"} for C{"Webhook:erp"}), else L{None}."""
        prefix = self.name + ":"
        if not section.startswith(prefix):
            return None
        ident = section[len(prefix):]
        return ident if re.fullmatch(self.ident, ident) else None

    def claims(self, section: str) -> bool:
        """Whether C{section} is meant as one of this family's, valid or
        not (so a misspelt identifier is an error, not ignored)."""
        return section == self.name or section.startswith(self.name + ":")

    def section(self, ident: str) -> str:
        return "%s:%s" % (self.name, ident)

    def defaults(self, ident: str) -> SectionSettings:
        return SectionSettings(self.name, ident,
                               {f.key: f.default for f in self.fields})

    def fieldOf(self, key: str) -> Optional[Field]:
        return next((f for f in self.fields if f.key == key), None)
