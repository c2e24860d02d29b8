"""
The checks C{[Mqtt] TopicPrefix} and C{[Mqtt] Reads} pass at Save (and at
start): a prefix or filter the broker would refuse, or one that can never
match, must be refused with the reason, not accepted and then collect
nothing (docs/mqtt.rst, "Topics").
"""

from __future__ import annotations

MAX_TOPIC_BYTES = 1024
"""Longer prefixes or filters are refused (MQTT allows 65,535 bytes; no
real deployment needs more than this)."""


def _common(text: str, what: str) -> list[str]:
    if not text:
        raise ValueError("%s must not be empty" % (what,))
    if len(text.encode("utf-8")) > MAX_TOPIC_BYTES:
        raise ValueError("%s is longer than %d bytes" % (what,
                                                         MAX_TOPIC_BYTES))
    if "\x00" in text:
        raise ValueError("%s must not contain NUL" % (what,))
    if text.startswith("$"):
        raise ValueError("%s must not start with $ (the broker's own "
                         "topics)" % (what,))
    return text.split("/")


def checkPrefix(text: str) -> str:
    """
    A topic prefix: one or more levels of plain text, no wildcard (C{+},
    C{#}) anywhere, no empty level (C{a//b}, a leading or trailing C{/}).

    @raise ValueError: saying what is wrong.
    """
    levels = _common(text, "the topic prefix")
    if "+" in text or "#" in text:
        raise ValueError("the topic prefix %r must not contain + or # "
                         "(they are wildcards; sites publish under it)"
                         % (text,))
    if "" in levels:
        raise ValueError("the topic prefix %r has an empty level (a "
                         "leading, trailing or double /)" % (text,))
    return text


def checkFilter(text: str) -> str:
    """
    A topic filter as MQTT 3.1.1 section 4.7 defines it: C{+} only as a
    whole level, C{#} only as the whole last level.  Empty is allowed (the
    setting is off).

    @raise ValueError: saying what is wrong.
    """
    if not text:
        return text
    levels = _common(text, "the topic filter")
    for n, level in enumerate(levels):
        if "#" in level and (level != "#" or n != len(levels) - 1):
            raise ValueError("topic filter %r: # must be the whole last "
                             "level (cams/+/reads or cams/#)" % (text,))
        if "+" in level and level != "+":
            raise ValueError("topic filter %r: + must be a whole level "
                             "(cams/+/reads)" % (text,))
    return text
