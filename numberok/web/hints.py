"""
Help texts of the admin page's fields, beyond the schema's own words:
plates in them set in the plate face (so C{A123BC77} and C{А123ВС77} read
as what they are), and what a command-line option changed for this run.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.web.template import tags

from numberok.settings import Field
from numberok.settings.store import Override

_PLATE_WORD = re.compile(
    r"\b(?=[0-9A-ZА-ЯЁ]*[0-9])(?=[0-9A-ZА-ЯЁ]*[A-ZА-ЯЁ])[0-9A-ZА-ЯЁ]{6,10}\b")


def platesMarked(text: str) -> list:
    """C{text} with the plates in it (C{A123BC77}) in the plate face."""
    parts: list = []
    last = 0
    for match in _PLATE_WORD.finditer(text):
        parts += [text[last:match.start()],
                  tags.span(match.group(), class_="plate")]
        last = match.end()
    return parts + [text[last:]]


def overrideHint(f: Field, value: Any, override: Override) -> str:
    """What a command-line option changed for this run, and what the
    settings file says (the page would look wrong otherwise)."""
    def shown(v: Any) -> str:
        if f.kind == "bool":
            return "on" if v else "off"
        return '"%s"' % (f.render(v),)
    now = shown(value)
    return "%s for this run by %s; the settings file says %s." % (
        now[:1].upper() + now[1:] if f.kind == "bool" else now,
        override.option, shown(override.fileValue))
