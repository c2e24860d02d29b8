"""
The admin page and the login page, rendered with C{twisted.web.template}
so that every text from outside (plates, addresses, settings values) is
escaped by the flattener, never pasted into HTML by hand.

The page is complete without JavaScript (values, connections, last events
as they were when it was served); C{static/admin.js} then refreshes the
tables every second or two and saves through C{PUT /api/settings}.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet import defer
from twisted.python.filepath import FilePath
from twisted.web.template import (Element, Tag, XMLFile, flattenString,
                                  renderer, tags)

from numberok.settings import FIELDS, ZONE_FIELDS, Field

TEMPLATES = FilePath(__file__).sibling("templates")

LABELS = {
    "NetServer.Enable": "Enable TCP server",
    "NetServer.Port": "Port",
    "NetServer.MaxConnections": "Max connections",
    "NetServer.AttachScreenshotsToEvents": "Attach screenshots to events",
    "NetServer.AttachedScreenshotsQuality": "Screenshot quality",
    "NetServer.SendLostOnly": "Send only lost result",
    "NetServer.AllowedClients": "Allowed clients",
    "Analytics.SoftComparison": "Soft comparison",
    "Analytics.LevenshteinDistance": "Distance",
    "Analytics.SkipFirstResults": "Skip first results",
    "Analytics.UseRawResults": "Use raw results",
    "Plates.Alphabet": "Plate alphabet",
    "Plates.Templates": "Plate templates",
    "System.SystemId": "System ID",
    "System.TestMode": "Test mode",
}


def _timeText(seconds: float) -> str:
    """Server-side fallback text; the script shows local time instead."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _input(f: Field, name: str, value: Any, **extra) -> Tag:
    """The form control of one field, filled with C{value}."""
    attrs = dict(name=name, id="f-" + name, **extra)
    attrs["data-kind"] = f.kind
    if f.kind == "bool":
        box = tags.input(type="checkbox", **attrs)
        if value:
            box(checked="checked")
        return tags.span(box, tags.span(class_="slider"), class_="switch")
    if f.kind == "choice":
        return tags.select(
            [tags.option(c, value=c, selected="selected") if c == value
             else tags.option(c, value=c) for c in f.choices], **attrs)
    if f.kind in ("int", "float"):
        return tags.input(type="number", value=f.render(value),
                          min=f.render(f.minimum), max=f.render(f.maximum),
                          step="1" if f.kind == "int" else "0.1",
                          inputmode="numeric" if f.kind == "int" else "decimal",
                          **attrs)
    return tags.input(type="text", value=f.render(value), spellcheck="false",
                      autocomplete="off", **attrs)


class AdminPageElement(Element):
    loader = XMLFile(TEMPLATES.child("admin.xml"))

    def __init__(self, admin, csrf: str, openMode: bool) -> None:
        super().__init__()
        self.admin = admin
        self.settings = admin.store.current
        self.csrf = csrf
        self.openMode = openMode

    @renderer
    def csrfMeta(self, request, tag: Tag) -> Tag:
        return tag(content=self.csrf)

    @renderer
    def csrfField(self, request, tag: Tag) -> Tag:
        return tag(value=self.csrf)

    @renderer
    def logout(self, request, tag: Tag):
        return "" if self.openMode else tag

    @renderer
    def openBanner(self, request, tag: Tag):
        return tag if self.openMode else ""

    @renderer
    def listening(self, request, tag: Tag) -> Tag:
        state = self.admin.listeningState()
        if state["port"] is not None:
            return tag(tags.span(class_="dot on"),
                       "Listening on port %d" % (state["port"],))
        return tag(tags.span(class_="dot off"),
                   "Not listening" if not state["enabled"]
                   else "Not listening (port unavailable)")

    @renderer
    def field(self, request, tag: Tag) -> Tag:
        """C{<div t:render="field" data-name="Section.Key"/>}: a row."""
        name = tag.attributes.pop("data-name")
        f = FIELDS[name]
        value = self.settings[name]
        label = LABELS.get(name, f.key)
        control = _input(f, name, value)
        help = ("%s Allowed: %s." % (f.help, f.describe())
                if f.kind in ("int", "float", "choice") else f.help)
        if name == "NetServer.Port":
            live = self.admin.listeningState()["port"]
            if live is not None and live != value:
                # Started with --port: say so, or the field looks wrong.
                help += (" Listening now on %d, set by --port at start; "
                         "saving a port here moves it." % (live,))
        tag.attributes["class"] = "field field-%s" % (f.kind,)
        tag.attributes["data-field"] = name
        if f.kind == "bool":
            return tag(tags.label(control, tags.span(label, class_="label"),
                                  class_="toggle", for_="f-" + name),
                       tags.p(class_="error", role="alert"),
                       tags.p(help, class_="help"))
        return tag(tags.label(label, for_="f-" + name, class_="label"),
                   control, tags.p(class_="error", role="alert"),
                   tags.p(help, class_="help"))

    @renderer
    def zoneRows(self, request, tag: Tag):
        rows = []
        loss, direction = ZONE_FIELDS["LossIntervalSec"], \
            ZONE_FIELDS["InDirection"]
        for (channel, zone), z in sorted(self.settings.zones.items()):
            key = "Zone:%d:%d" % (channel, zone)
            rows.append(tags.tr(
                tags.td(str(channel)), tags.td(str(zone)),
                tags.td(_input(loss, key + ".LossIntervalSec", z.lossInterval),
                        tags.p(class_="error", role="alert"),
                        **{"data-field": key + ".LossIntervalSec"}),
                tags.td(_input(direction, key + ".InDirection", z.inDirection),
                        tags.p(class_="error", role="alert"),
                        **{"data-field": key + ".InDirection"}),
                tags.td(tags.button("Remove", type="button",
                                    class_="btn small ghost remove-zone")),
                **{"data-zone": key}))
        return tag(rows)

    @renderer
    def connectionRows(self, request, tag: Tag):
        rows = []
        for c in self.admin.factory.connections():
            rows.append(tags.tr(
                tags.td(c.host), tags.td(str(c.port)),
                tags.td(_timeText(c.connectedSince)),
                tags.td("yes" if c.subscribed else "no"),
                tags.td(str(c.eventsSent), class_="num"),
                tags.td(str(c.bytesSent), class_="num"),
                tags.td(str(c.queued), class_="num"),
                tags.td(str(c.dropped), class_="num"),
                tags.td(tags.button("Disconnect", type="button",
                                    class_="btn small danger disconnect",
                                    **{"data-id": str(c.id)})),
                **{"data-id": str(c.id)}))
        if not rows:
            rows.append(tags.tr(tags.td("No clients connected.", colspan="9",
                                        class_="empty")))
        return tag(rows)

    @renderer
    def eventRows(self, request, tag: Tag):
        rows = []
        for entry in self.admin.recentDocument()["events"]:
            thumb = (tags.img(src=entry["thumbnail"], alt="", loading="lazy",
                              class_="thumb") if entry["thumbnail"]
                     else tags.span(class_="thumb none"))
            rows.append(tags.tr(
                tags.td(thumb), tags.td(entry["plate"], class_="plate"),
                tags.td(tags.span(entry["state"], class_="badge %s"
                                  % (entry["state"].lower(),))),
                tags.td("%d / %d" % (entry["channel"], entry["zone"])),
                tags.td(entry["movement"]),
                tags.td(_timeText(entry["time_ms"] / 1000.0),
                        **{"data-ms": str(entry["time_ms"])})))
        if not rows:
            rows.append(tags.tr(tags.td("No events yet.", colspan="6",
                                        class_="empty")))
        return tag(rows)


class LoginElement(Element):
    loader = XMLFile(TEMPLATES.child("login.xml"))

    def __init__(self, message: str) -> None:
        super().__init__()
        self.text = message

    @renderer
    def message(self, request, tag: Tag):
        return tag(self.text) if self.text else ""


class ErrorElement(Element):
    loader = XMLFile(TEMPLATES.child("error.xml"))

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.code = code
        self.text = message

    @renderer
    def title(self, request, tag: Tag) -> Tag:
        return tag("Error %d" % (self.code,))

    @renderer
    def message(self, request, tag: Tag) -> Tag:
        return tag(self.text)


def _render(element: Element) -> defer.Deferred:
    return flattenString(None, element).addCallback(
        lambda body: b"<!DOCTYPE html>\n" + body)


def adminPage(admin, csrf: str, openMode: bool) -> defer.Deferred:
    """@return: a Deferred firing with the page's bytes."""
    return _render(AdminPageElement(admin, csrf, openMode))


def loginPage(message: str = "") -> defer.Deferred:
    return _render(LoginElement(message))


def errorPage(code: int, message: str) -> bytes:
    """A small error page (synchronous: the template has no Deferreds)."""
    out: list = []
    _render(ErrorElement(code, message)).addBoth(out.append)
    return out[0] if isinstance(out[0], bytes) else b"error"
