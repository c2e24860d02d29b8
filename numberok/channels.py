"""
Names for camera channels: C{[Channel:<n>] Name = Gate north} gives
channel C{n} a name that travels with its events (C{ChannelName} on the
wire, in MQTT and webhook payloads, the journal's C{channel_name}) and is
shown on the admin page and by C{numberok-client}.

The name is put on an event where the event is made from this instance's
settings (the analytics), so an event keeps the name it had when it
happened, and an event collected from another site keeps that site's name.
"""

from __future__ import annotations

import unicodedata
from typing import Optional

MAX_NAME_LENGTH = 64
"""The longest channel name, in characters: a label, not a description."""


def checkChannelName(text: str) -> str:
    """
    C{text} as a channel name, or L{ValueError} saying why not: at most
    L{MAX_NAME_LENGTH} characters, no control or format characters (a
    right-to-left override or a zero-width space would make two names that
    look the same differ, or reorder what is shown after it).
    """
    if len(text) > MAX_NAME_LENGTH:
        raise ValueError("a channel name is at most %d characters"
                         % (MAX_NAME_LENGTH,))
    for c in text:
        if unicodedata.category(c)[0] == "C" or c in "\u2028\u2029":
            raise ValueError("a channel name may not contain U+%04X"
                             % (ord(c),))
    return text


def channelName(settings, channel: int) -> Optional[str]:
    """The name C{settings} give C{channel}, or L{None} when unnamed."""
    if not settings.sections:
        return None
    # Imported here: the settings keys import this module's check.
    from numberok.settings.keys import CHANNEL_FAMILY, CHANNEL_NAME
    section = settings.section(CHANNEL_FAMILY, str(channel))
    if section is None:
        return None
    return section[CHANNEL_NAME] or None
