"""
The admin page's channel names (C{[Channel:<n>] Name}): the rows that
edit them, in the Cameras card, and the label under a channel's number in
Last events.  Saved like every other key (C{"Channel:3.Name"}); a removed
row sends C{"Channel:3": null}.
"""

from __future__ import annotations

from typing import Any

from twisted.web.template import Tag, renderer, tags

from numberok.settings.keys import CHANNEL_FAMILY, CHANNEL_NAME


def channelLabel(row: dict[str, Any]):
    """A Last-events row's channel name, under its number; nothing for an
    unnamed channel."""
    name = row.get("channel_name")
    if not name:
        return ""
    return tags.span(name, class_="channel-name")


def _channelRow(ident: str, name: str) -> Tag:
    """One channel's row: its number, the name field, Remove."""
    from numberok.web.page import _input  # the page imports this module
    section = CHANNEL_FAMILY.section(ident)
    fieldName = "%s.%s" % (section, CHANNEL_NAME.key)
    return tags.tr(
        tags.td(ident),
        tags.td(_input(CHANNEL_NAME, fieldName, name,
                       **{"aria-label": "Name of channel " + ident}),
                tags.p(class_="error", role="alert"),
                **{"data-field": fieldName}),
        tags.td(tags.button("Remove", type="button",
                            class_="btn small ghost remove-channel-name")),
        **{"data-channel": section})


class ChannelNameParts:
    """The renderers of the channel-name rows, mixed into the page."""

    settings: Any

    @renderer
    def channelNameRows(self, request, tag: Tag) -> Tag:
        return tag([_channelRow(s.ident, s[CHANNEL_NAME])
                    for s in sorted(self.settings.family(CHANNEL_FAMILY),
                                    key=lambda s: int(s.ident))])

    @renderer
    def channelNameTemplate(self, request, tag: Tag) -> Tag:
        """The row the script copies for "Add channel" (C replaced)."""
        return tag(_channelRow("C", ""))
