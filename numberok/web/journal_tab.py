"""
The admin page's Journal tab: a search form (plate, how to match it, time
range, channel, zone, movement, list, access) sent with GET, so every search is a URL a
guard can bookmark; the matches in a table with the plate crops (click for
the frame), their number, a link to older matches and the exports.

It runs the same search as C{GET /api/events/search}
(L{numberok.journal.search.JournalSearch}); times typed in the form are
the browser's local time (the page's script sends its UTC offset as
C{tz}; without the script they are UTC).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Optional
from urllib.parse import urlencode

from twisted.web.template import Tag, tags

from numberok.events import MovementType
from numberok.journal.query import (ACCESS_RESULTS, MATCHES, SearchError,
                                    parseQuery)
from numberok.journal.resource import entryJSON

FORM_FIELDS = ("plate", "match", "distance", "from", "to", "channel", "zone",
               "movement", "list", "access")
MATCH_LABELS = {"lookalike": "look-alike (O/0, B/8, Cyrillic)",
                "exact": "exact", "fuzzy": "within a distance",
                "mask": "mask (* and ?)", "fragment": "fragment"}


def pageArgs(request) -> dict[str, str]:
    """The page's own query parameters, as text."""
    out = {}
    for name in FORM_FIELDS + ("tz", "cursor"):
        values = request.args.get(name.encode("ascii"))
        if values:
            text = values[0].decode("utf-8", "replace").strip()
            if text:
                out[name] = text
    return out


def localTime(text: str, tzMinutes: int) -> str:
    """A C{datetime-local} value (no offset) at the browser's offset, as
    ISO 8601 with it; any other text is left for the search to judge."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    if when.tzinfo is not None:
        return text
    zone = timezone(timedelta(minutes=tzMinutes))
    return when.replace(tzinfo=zone).isoformat()


def apiArgs(args: dict[str, str]) -> dict[str, str]:
    """The page's parameters as the API's (times with their offset)."""
    try:
        tz = max(-900, min(900, int(args.get("tz", "0"))))
    except ValueError:
        tz = 0
    out = {k: v for k, v in args.items() if k != "tz"}
    for name in ("from", "to"):
        if name in out:
            out[name] = localTime(out[name], tz)
    return out


def _select(name: str, choices: list[tuple[str, str]],
            value: Optional[str]) -> Tag:
    options = [tags.option(label, value=v, selected="selected")
               if v == (value or "") else tags.option(label, value=v)
               for v, label in choices]
    return tags.select(options, name=name, id="j-" + name)


def _labelled(label: str, control: Tag) -> Tag:
    return tags.label(tags.span(label, class_="label"), control,
                      class_="filter")


def searchForm(args: dict[str, str]) -> Tag:
    def text(name: str, **attrs) -> Tag:
        return tags.input(name=name, id="j-" + name,
                          value=args.get(name, ""), **attrs)
    return tags.form(
        tags.input(type="hidden", name="tab", value="journal"),
        tags.input(type="hidden", name="tz", value=args.get("tz", "0"),
                   class_="tz"),
        _labelled("Plate", text("plate", type="text", spellcheck="false",
                                autocomplete="off",
                                placeholder="A123BC77, A12*, 123")),
        _labelled("Match", _select("match", [
            (m, MATCH_LABELS[m]) for m in MATCHES],
            args.get("match", "lookalike"))),
        _labelled("Distance", _select("distance", [
            ("", "—"), ("0", "0"), ("1", "1"), ("2", "2")],
            args.get("distance"))),
        _labelled("From", text("from", type="datetime-local", step="1")),
        _labelled("To", text("to", type="datetime-local", step="1")),
        _labelled("Channel", text("channel", type="number", min="0",
                                  max="1023")),
        _labelled("Zone", text("zone", type="number", min="0", max="3")),
        _labelled("Movement", _select("movement", [("", "any")] + [
            (m.wireName, m.wireName) for m in MovementType],
            args.get("movement"))),
        _labelled("List", text("list", type="text", maxlength="64",
                               spellcheck="false")),
        _labelled("Access", _select("access", [("", "any")] + [
            (a, a) for a in ACCESS_RESULTS], args.get("access"))),
        tags.button("Search", type="submit", class_="btn primary",
                    id="journal-search"),
        method="get", action="/", class_="search-form", id="journal-form")


def picture(row: dict[str, Any]) -> Tag:
    """The plate crop (or nothing), linking to the frame."""
    small, frame = row.get("plate_picture"), row.get("screenshot")
    if small is None and frame is not None:
        small = frame.rsplit("/", 1)[0] + "/thumbnail"
    return thumbnailLink(small, frame, row["plate"])


def thumbnailLink(small: Optional[str], frame: Optional[str],
                  plate: str) -> Tag:
    """
    The plate picture C{small} (a crop, or the frame's thumbnail) that
    opens the whole C{frame} on click: the one way the page shows an
    event's picture (Last events and the Journal alike).
    """
    if not small:
        return tags.span(class_="thumb none")
    image = tags.img(src=small, alt="plate " + plate, class_="thumb")
    if frame is None:
        return image
    return tags.a(image, href=frame, target="_blank", class_="frame-link",
                  title="Show the whole frame")


def timeCell(ms: Optional[int]) -> Tag:
    """A time the script shows in local time (UTC without it)."""
    if ms is None:
        return tags.td("—")
    text = datetime.fromtimestamp(ms / 1000, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")
    return tags.td(text, **{"data-ms": str(ms)})


def resultRows(rows: list[dict[str, Any]]) -> list[Tag]:
    out = [tags.tr(
        tags.td(picture(r)),
        tags.td(r["plate"], class_="plate"),
        tags.td(r["raw_plate"]),
        timeCell(r["frame_time_ms"]),
        tags.td("%d / %d" % (r["channel"], r["zone"])),
        tags.td(r["movement"]),
        tags.td("%.2f" % (r["confidence"],), class_="num"),
        **{"data-id": str(r["id"])}) for r in rows]
    if not out:
        out.append(tags.tr(tags.td("No matching events.", colspan="7",
                                   class_="empty")))
    return out


def _results(args: dict[str, str], api: dict[str, str], page) -> Tag:
    rows = [entryJSON(e) for e in page.entries]
    exports = {k: v for k, v in api.items() if k != "cursor"}
    links = [tags.a("Export CSV", href="/api/events/export.csv?"
                    + urlencode(exports), class_="btn small ghost"),
             tags.a("CSV for Excel (;)", href="/api/events/export.csv?"
                    + urlencode(dict(exports, sep=";")),
                    class_="btn small ghost"),
             tags.a("JSON lines", href="/api/events/export.jsonl?"
                    + urlencode(exports), class_="btn small ghost")]
    if page.cursor is not None:
        older = dict(args, tab="journal", cursor=page.cursor)
        links.append(tags.a("Older matches →", href="/?" + urlencode(older),
                            class_="btn small", id="journal-older"))
    return tags.div(
        tags.p(tags.strong("%d" % (page.total,), id="journal-count"),
               " matching event%s, newest first"
               % ("" if page.total == 1 else "s",), class_="count"),
        tags.div(tags.table(
            tags.thead(tags.tr(tags.th("Picture"), tags.th("Plate"),
                               tags.th("Read"), tags.th("Camera time"),
                               tags.th("Channel / zone"),
                               tags.th("Movement"),
                               tags.th("Confidence", class_="num"))),
            tags.tbody(resultRows(rows), id="journal-rows"),
            class_="data", id="journal-results"), class_="table-wrap"),
        tags.div(links, class_="pager"))


def journalPane(admin, request):
    """The Journal tab's pane; a Deferred while the search runs."""
    args = pageArgs(request)
    api = apiArgs(args)
    search = admin.journal.search if admin.journal is not None else None
    head = tags.div(
        tags.h2("Journal"),
        tags.p("Every recorded vehicle. Search by plate as read or as "
               "misread (look-alike letters and digits match), within a "
               "time range of the camera's clock.", class_="card-sub"),
        class_="card-head")
    card = tags.section(head, tags.div(searchForm(args), class_="pad"),
                        class_="card", id="journal-card")
    if search is None:
        return card(tags.p("The journal is disabled ([Journal] Path is "
                           "empty).", class_="pad error"))
    try:
        query = parseQuery({k: [v] for k, v in api.items()})
    except SearchError as e:
        return card(tags.p("%s: %s" % e.args, class_="pad error",
                           id="journal-error", role="alert"))
    d = search.search(query)
    d.addCallback(lambda page: card(_results(args, api, page)))

    def failed(f):
        message = (f.value.args[1] if f.check(SearchError)
                   else f.getErrorMessage())
        return card(tags.p(message, class_="pad error", id="journal-error",
                           role="alert"))
    return d.addErrback(failed)
