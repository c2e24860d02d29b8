"""
The admin page, the login page and the small pages of errors: rendered
with C{twisted.web.template}, so that every text from outside (plates,
addresses, settings values) is escaped by the flattener, never pasted into
HTML by hand, and served by the endpoints at the end of this module.

The page is complete without JavaScript (values, connections, last events
as they were when it was served); C{static/admin.js} swaps in the live
parts from C{GET /live} every second and saves through C{PUT /api/settings}.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import quote

from twisted.internet import defer
from twisted.python.filepath import FilePath
from twisted.web.template import (Element, Tag, XMLFile, flattenString,
                                  renderer, tags)

from numberok.metrics import Metrics
from numberok.settings import FIELDS, Field
from numberok.settings.keys import (
    ANALYTICS_LEVENSHTEIN_DISTANCE, ANALYTICS_SKIP_FIRST_RESULTS,
    ANALYTICS_SOFT_COMPARISON, ANALYTICS_USE_RAW_RESULTS, CAMERAS_TOKEN,
    MQTT_BROKER, MQTT_CLIENT_ID, MQTT_COLLECT, MQTT_PASSWORD, MQTT_PICTURES,
    MQTT_PUBLISH, MQTT_QOS, MQTT_READS, MQTT_TOPIC_PREFIX,
    NETSERVER_ALLOWED_CLIENTS, NETSERVER_ATTACHED_SCREENSHOTS_QUALITY,
    NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS, NETSERVER_ENABLE,
    NETSERVER_MAX_CONNECTIONS, NETSERVER_PORT, NETSERVER_SEND_LOST_ONLY,
    PLATES_ALPHABET, PLATES_TEMPLATES, SYSTEM_SYSTEM_ID, SYSTEM_TEST_MODE,
    ZONE_IN_DIRECTION, ZONE_LOSS_INTERVAL_SEC, ZONE_ROLE)
from numberok.web.cameras import HikvisionResource
from numberok.web.channelnames import ChannelNameParts, channelLabel
from numberok.web.common import Endpoint, answerHTML
from numberok.web.hints import overrideHint, platesMarked
from numberok.web.journal_tab import thumbnailLink
from numberok.web.metrics import connectionCounters, screenshotCounters
from numberok.web.tabs import chosenTab, navigation, renderPane

TEMPLATES = FilePath(__file__).sibling("templates")

LABELS = {
    NETSERVER_ENABLE.name: "Enable TCP server",
    NETSERVER_PORT.name: "Port",
    NETSERVER_MAX_CONNECTIONS.name: "Max connections",
    NETSERVER_ATTACH_SCREENSHOTS_TO_EVENTS.name:
        "Attach screenshots to events",
    NETSERVER_ATTACHED_SCREENSHOTS_QUALITY.name: "Screenshot quality",
    NETSERVER_SEND_LOST_ONLY.name: "Send only lost result",
    NETSERVER_ALLOWED_CLIENTS.name: "Allowed clients",
    ANALYTICS_SOFT_COMPARISON.name: "Soft comparison",
    ANALYTICS_LEVENSHTEIN_DISTANCE.name: "Distance",
    ANALYTICS_SKIP_FIRST_RESULTS.name: "Skip first results",
    ANALYTICS_USE_RAW_RESULTS.name: "Use raw results",
    PLATES_ALPHABET.name: "Plate alphabet",
    PLATES_TEMPLATES.name: "Plate templates",
    SYSTEM_SYSTEM_ID.name: "System ID",
    SYSTEM_TEST_MODE.name: "Test mode",
    MQTT_BROKER.name: "Broker",
    MQTT_CLIENT_ID.name: "Client id",
    MQTT_TOPIC_PREFIX.name: "Topic prefix",
    MQTT_PUBLISH.name: "Publish events",
    MQTT_PICTURES.name: "Include pictures",
    MQTT_QOS.name: "QoS",
    MQTT_COLLECT.name: "Collect other instances' events",
    MQTT_READS.name: "Reads topic",
    CAMERAS_TOKEN.name: "Camera token",
}
LONG_TEXT = (PLATES_TEMPLATES.name, NETSERVER_ALLOWED_CLIENTS.name)
"""Text fields shown whole: a textarea across the card that grows."""
SECRET = (MQTT_PASSWORD.name,)


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
    text = f.render(value)
    if name in LONG_TEXT:
        return tags.textarea(text, rows=str(1 + len(text) // 90),
                             spellcheck="false", class_="grow", **attrs)
    return tags.input(type="password" if name in SECRET else "text",
                      value=text, spellcheck="false", autocomplete="off",
                      **attrs)


def _bytesText(n: int) -> str:
    if n < 1024:
        return "%d B" % (n,)
    if n < 1024 * 1024:
        return "%.1f KiB" % (n / 1024,)
    return "%.1f MiB" % (n / 1024 / 1024,)


def _timeCell(ms: int, **attrs) -> Tag:
    """A time the script shows in the browser's local time."""
    return tags.td(_timeText(ms / 1000.0), **{"data-ms": str(ms)}, **attrs)


def _figures(parts: list[tuple[str, float]]) -> str:
    return " · ".join("%s %d" % (label, value) for label, value in parts)


class LiveParts:
    """
    The parts of the page that change while it is open: the listening
    state, the connections and last-events tables and the counters.  The
    page renders them once; C{GET /live} renders the same renderers alone
    (C{templates/live.xml}) for the script to swap in every second, so
    there is one copy of each table.  Each renderer sets the C{id} the
    script swaps by.
    """

    admin: Any
    metrics: Metrics

    @renderer
    def listening(self, request, tag: Tag) -> Tag:
        state = self.admin.listeningState()
        tag(id="listening", class_="status")
        if state["port"] is not None:
            return tag(tags.span(class_="dot on"),
                       "Listening on port %d" % (state["port"],))
        return tag(tags.span(class_="dot off"),
                   "Not listening" if not state["enabled"]
                   else "Not listening (port unavailable)")

    @renderer
    def counters(self, request, tag: Tag) -> Tag:
        k = connectionCounters(self.metrics)
        return tag(_figures([
            ("Accepted", k["accepted"]),
            ("refused (limit)", k["refusedLimit"]),
            ("refused (not allowed)", k["refusedNotAllowed"]),
            ("handshake timeouts", k["handshakeTimeouts"]),
            ("protocol errors", k["protocolErrors"]),
            ("HTTP reads", k["httpReads"]),
            ("refused HTTP posts", k["httpBadRequests"])]), id="counters")

    @renderer
    def screenshotCounters(self, request, tag: Tag) -> Tag:
        k = screenshotCounters(self.metrics)
        skipped = k["skipped"]
        text = _figures([("Screenshots encoded", k["encoded"]),
                         ("cache hits", k["cacheHits"]),
                         ("skipped", sum(skipped.values()))])
        if skipped:
            text += " (%s)" % (", ".join(
                "%s %d" % item for item in skipped.items()),)
        return tag(text, id="screenshot-counters")

    @renderer
    def connectionRows(self, request, tag: Tag) -> Tag:
        rows = []
        for c in self.admin.factory.connections():
            rows.append(tags.tr(
                tags.td(c.host), tags.td(str(c.port)),
                _timeCell(int(c.connectedSince * 1000)),
                tags.td("yes" if c.subscribed else "no"),
                tags.td(str(c.eventsSent), class_="num"),
                tags.td(_bytesText(c.bytesSent), class_="num"),
                tags.td(str(c.queued), class_="num"),
                tags.td(str(c.dropped), class_="num" + (
                    " warn-text" if c.dropped else "")),
                tags.td(tags.button("Disconnect", type="button",
                                    class_="btn small danger disconnect",
                                    **{"data-id": str(c.id)})),
                **{"data-id": str(c.id)}))
        if not rows:
            rows.append(tags.tr(tags.td("No clients connected.", colspan="9",
                                        class_="empty")))
        return tag(rows, id="connection-rows")

    @renderer
    def eventRows(self, request, tag: Tag) -> Tag:
        rows = []
        recent = self.admin.recent
        for entry in (recent.recent() if recent is not None else []):
            row = entry.asJSON()
            rows.append(tags.tr(
                tags.td(_picture(row)),
                tags.td(tags.span(row["plate"], class_="plate-text"),
                        _listBadge(row), class_="plate"),
                tags.td(tags.span(row["state"], class_="badge %s"
                                  % (row["state"].lower(),))),
                tags.td("%d / %d" % (row["channel"], row["zone"]),
                        channelLabel(row)),
                tags.td(row["movement"]),
                # The vehicle's own time: its frame's, by the camera's
                # clock (a Lost: its best read's); when the server made
                # the event is the tooltip (docs/admin.rst).
                _timeCell(row["frame_time_ms"], title=(
                    "processed by the server at %s"
                    % (_timeText(row["time_ms"] / 1000.0),)),
                    **{"data-title-ms": str(row["time_ms"])}),
                **{"data-id": str(entry.liveId)}))
        if not rows:
            rows.append(tags.tr(tags.td("No events yet.", colspan="6",
                                        class_="empty")))
        return tag(rows, id="event-rows")

    @renderer
    def mqttCounters(self, request, tag: Tag) -> Tag:
        """The collector's figures, the warnings first: events dropped as
        our own SystemId and holes no site filled (docs/mqtt.rst)."""
        value = self.metrics.value
        return tag(_figures([
            ("Collected", int(value("numberok_mqtt_collected_total"))),
            ("dropped as our own SystemId",
             int(value("numberok_mqtt_own_dropped_total"))),
            ("lost in gaps", int(value("numberok_mqtt_gap_events_total",
                                       outcome="unfilled"))),
            ("duplicates", int(value("numberok_mqtt_duplicates_total"))),
            ("bad messages",
             int(value("numberok_mqtt_bad_messages_total")))]),
            id="mqtt-counters")


def _listBadge(row: dict):
    """
    The list decision of an event (numberok.lists): a badge coloured by
    its access, naming the list, with the entry and match level as its
    tooltip; and a link that adds the plate to a list on the Lists page.
    """
    access = row.get("Access")
    add = tags.a("+ list", href="/lists?plate=" + quote(row["plate"]),
                 class_="add-to-list", title="Add this plate to a list")
    if access is None and row.get("ListName") is None:
        return [" ", add]
    name = row.get("ListName") or access
    title = ("%s entry %s (%s), access %s" % (
        row.get("ListKind"), row.get("ListPlate"), row.get("ListMatch"),
        access) if row.get("ListName") else "no list entry: access %s"
        % (access,))
    shown = access if access in ("granted", "denied") else "unknown"
    return [" ", tags.span(name, class_="badge access " + shown,
                           title=title), " ", add]


def _picture(row: dict):
    """The plate crop (or the frame's thumbnail), the whole frame on
    click; URLs are given only for pictures that exist."""
    return thumbnailLink(row.get("thumbnail"), row.get("picture"),
                         row["plate"])


def _cameraURL(request, token: str) -> str:
    """The push URL a camera needs, as this browser reaches the server."""
    host = (request.getHeader("host") or "127.0.0.1").strip()
    scheme = "https" if request.isSecure() else "http"
    path = HikvisionResource.path.decode()
    return "%s://%s%s?token=%s" % (scheme, host, path, quote(token, safe=""))


class AdminPageElement(LiveParts, ChannelNameParts, Element):
    loader = XMLFile(TEMPLATES.child("admin.xml"))

    def __init__(self, admin, metrics: Metrics, csrf: str,
                 openMode: bool) -> None:
        super().__init__()
        self.admin = admin
        self.metrics = metrics
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
    def cameraURL(self, request, tag: Tag):
        """The exact URL to paste into a camera's alarm-host settings."""
        token = self.settings[CAMERAS_TOKEN]
        url = _cameraURL(request, token) if token else ""
        return tag(tags.code(url, id="camera-url",
                             **{"data-base": _cameraURL(request, "")}),
                   class_="camera-url" + ("" if token else " hidden"))

    @renderer
    def tokenSuggestion(self, request, tag: Tag):
        """A fresh random token (the button puts it in the field)."""
        return tag(**{"data-token": secrets.token_urlsafe(24)})

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
        override = self.admin.store.overrides.get(name)
        if override is not None:
            help += " " + overrideHint(f, value, override)
        if name == NETSERVER_PORT.name:
            live = self.admin.listeningState()["port"]
            if live is not None and live != value:
                # Started with --port: say so, or the field looks wrong.
                help += (" Listening now on %d, set by --port at start; "
                         "saving a port here moves it." % (live,))
        help = platesMarked(help)
        tag.attributes["class"] = "field field-%s%s" % (
            f.kind, " wide" if name in LONG_TEXT else "")
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
        rows = [_zoneRow(str(channel), str(zone), z.lossInterval,
                         z.inDirection, z.role)
                for (channel, zone), z in sorted(self.settings.zones.items())]
        return tag(rows)

    @renderer
    def zoneTemplate(self, request, tag: Tag):
        """The row the script copies for "Add zone" (C and Z replaced)."""
        return tag(_zoneRow("C", "Z", ZONE_LOSS_INTERVAL_SEC.default,
                            ZONE_IN_DIRECTION.default, ZONE_ROLE.default))

    @renderer
    def tabs(self, request, tag: Tag) -> Tag:
        return navigation(request)

    @renderer
    def pane(self, request, tag: Tag) -> Tag:
        """A pane of admin.xml: shown only when its tab is chosen."""
        name = tag.attributes.pop("data-tab")
        tag.attributes["id"] = "tab-" + name
        tag.attributes["class"] = "pane"
        if chosenTab(request).name != name:
            tag.attributes["hidden"] = "hidden"
        return tag

    @renderer
    def tabPane(self, request, tag: Tag):
        """The chosen tab's pane when it is not one of admin.xml's."""
        return renderPane(self.admin, request)


def _zoneRow(channel: str, zone: str, loss: float, direction: str,
             role: str) -> Tag:
    key = "Zone:%s:%s" % (channel, zone)
    lossName = "%s.%s" % (key, ZONE_LOSS_INTERVAL_SEC.key)
    directionName = "%s.%s" % (key, ZONE_IN_DIRECTION.key)
    roleName = "%s.%s" % (key, ZONE_ROLE.key)
    return tags.tr(
        tags.td(channel), tags.td(zone),
        tags.td(_input(ZONE_LOSS_INTERVAL_SEC, lossName, loss),
                tags.p(class_="error", role="alert"),
                **{"data-field": lossName}),
        tags.td(_input(ZONE_IN_DIRECTION, directionName, direction),
                tags.p(class_="error", role="alert"),
                **{"data-field": directionName}),
        tags.td(_input(ZONE_ROLE, roleName, role),
                tags.p(class_="error", role="alert"),
                **{"data-field": roleName}),
        tags.td(tags.button("Remove", type="button",
                            class_="btn small ghost remove-zone")),
        **{"data-zone": key})


class LiveElement(LiveParts, Element):
    loader = XMLFile(TEMPLATES.child("live.xml"))

    def __init__(self, admin, metrics: Metrics) -> None:
        super().__init__()
        self.admin = admin
        self.metrics = metrics


def render(element: Element, request=None) -> defer.Deferred:
    return flattenString(request, element).addCallback(
        lambda body: b"<!DOCTYPE html>\n" + body)


# -- the endpoints --------------------------------------------------------

class PageEndpoint(Endpoint):
    """C{GET /}: the admin page (login needed)."""

    api = False

    def __init__(self, gate, admin, metrics: Metrics) -> None:
        super().__init__(gate)
        self.admin = admin
        self.metrics = metrics

    async def GET(self, request, identity) -> None:
        session = identity.session
        if session is None:
            # No password set and no session yet: a session only to carry
            # the CSRF token.
            session = self.gate.startSession(request, anonymous=True)
        answerHTML(request, 200, await render(AdminPageElement(
            self.admin, self.metrics, session.csrf, self.gate.openMode),
            request))


class LiveEndpoint(PageEndpoint):
    """
    C{GET /live}: the live parts of the page, as HTML the script swaps in.
    An API for the page's script: a lost login answers 401, not the
    login form.
    """

    api = True

    async def GET(self, request, identity) -> None:
        body = await flattenString(request, LiveElement(self.admin,
                                                        self.metrics))
        answerHTML(request, 200, body)
