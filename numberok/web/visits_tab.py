"""
The admin page's Visits tab: how many vehicles are inside now and which,
the long stays among them, and one day's visits with the entries per hour
as a bar chart drawn here as SVG (no script, no CDN: it works offline).

Everything comes from L{numberok.journal.visits_api.Visits}, the same
code as C{GET /api/visits}; the day is the browser's local day when its
script sent its UTC offset (C{tz}), else the UTC day.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional

from twisted.internet import defer
from twisted.web.template import Tag, tags

from numberok.journal.visits import DAY_MS, HOUR_MS
from numberok.journal.visits_api import longerThan
from numberok.web.journal_tab import _labelled, pageArgs, timeCell

DEFAULT_LONG_HOURS = 4
CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 160, 24


def _duration(seconds: Optional[int]) -> str:
    if seconds is None:
        return "—"
    hours, rest = divmod(seconds, 3600)
    return "%d h %02d min" % (hours, rest // 60)


def entriesChart(perHour: list[tuple[int, int]], tzMinutes: int) -> Tag:
    """Bars of entries per hour, with the hour of day under every third
    and the count over each bar that has any."""
    top = max([n for _, n in perHour] + [1])
    slot = (CHART_WIDTH - CHART_PAD) / max(len(perHour), 1)
    plot = CHART_HEIGHT - 2 * CHART_PAD
    parts = [Tag("line")(x1=str(CHART_PAD), x2=str(CHART_WIDTH),
                         y1=str(CHART_HEIGHT - CHART_PAD),
                         y2=str(CHART_HEIGHT - CHART_PAD), class_="axis")]
    for i, (hourMs, n) in enumerate(perHour):
        x = CHART_PAD + i * slot
        height = plot * n / top
        y = CHART_HEIGHT - CHART_PAD - height
        hour = (hourMs // HOUR_MS + tzMinutes // 60) % 24
        parts.append(Tag("rect")(
            Tag("title")("%02d:00 — %d entr%s" % (hour, n,
                                                   "y" if n == 1 else "ies")),
            x="%.1f" % (x + 1,), y="%.1f" % (y,),
            width="%.1f" % (max(slot - 2, 1),), height="%.1f" % (height,),
            class_="bar"))
        if n:
            parts.append(Tag("text")(str(n), x="%.1f" % (x + slot / 2,),
                                     y="%.1f" % (y - 3,), class_="count"))
        if i % 3 == 0:
            parts.append(Tag("text")("%02d" % (hour,),
                                     x="%.1f" % (x + slot / 2,),
                                     y=str(CHART_HEIGHT - 6),
                                     class_="hour"))
    return Tag("svg")(parts, viewBox="0 0 %d %d" % (CHART_WIDTH,
                                                     CHART_HEIGHT),
                      role="img", class_="chart", id="entries-chart",
                      **{"aria-label": "Entries per hour"})


def _visitRows(visits, admin, nowMs: int, empty: str,
               columns: int = 6) -> list[Tag]:
    rows = []
    for v in visits:
        doc = admin.visits.visitJSON(v, nowMs)
        link = doc["entryPicture"] or doc["exitPicture"]
        plate = (tags.a(doc["plate"], href=link, class_="frame-link")
                 if link else doc["plate"])
        rows.append(tags.tr(
            tags.td(plate, class_="plate"), timeCell(doc["entered"]),
            timeCell(doc["left"]), tags.td(_duration(doc["durationSec"])),
            tags.td(doc["status"].replace("_", " ")),
            tags.td(doc["exitPicture"] and tags.a(
                "exit picture", href=doc["exitPicture"],
                class_="frame-link") or ""),
            **{"data-entry": str(doc["entryId"])}))
    if not rows:
        rows.append(tags.tr(tags.td(empty, colspan=str(columns),
                                    class_="empty")))
    return rows


def _table(id: str, rows: list[Tag]) -> Tag:
    return tags.div(tags.table(
        tags.thead(tags.tr(tags.th("Plate"), tags.th("Entered"),
                           tags.th("Left"), tags.th("Duration"),
                           tags.th("Status"), tags.th(""))),
        tags.tbody(rows), class_="data", id=id), class_="table-wrap")


def _day(args: dict[str, str], nowMs: int, tz: int) -> tuple[str, int]:
    """The chosen day (C{YYYY-MM-DD}) and its start in ms."""
    zone = timezone(timedelta(minutes=tz))
    try:
        day = date.fromisoformat(args.get("day", ""))
    except ValueError:
        day = datetime.fromtimestamp(nowMs / 1000, zone).date()
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    return day.isoformat(), int(start.timestamp() * 1000)


def _card(title: str, sub, *body) -> Tag:
    return tags.section(tags.div(tags.h2(title), tags.p(sub,
                                                        class_="card-sub"),
                                 class_="card-head"), *body, class_="card")


def visitsPane(admin, request):
    """The Visits tab's pane (a Deferred while the journal is read)."""
    visits = admin.visits
    if visits is None:
        return _card("Visits", "The journal is disabled ([Journal] Path is "
                     "empty): there are no visits to show.")
    args = pageArgs(request)
    for name in ("day", "hours"):
        values = request.args.get(name.encode())
        if values:
            args[name] = values[0].decode("utf-8", "replace").strip()
    try:
        tz = max(-900, min(900, int(args.get("tz", "0"))))
        hours = max(0, min(24 * 365, int(args.get("hours", "") or
                                         DEFAULT_LONG_HOURS)))
    except ValueError:
        tz, hours = 0, DEFAULT_LONG_HOURS
    now = visits.nowMs()
    dayText, start = _day(args, now, tz)
    if not any(z.role != "none"
               for z in admin.store.current.zones.values()):
        note = tags.p("No zone has a Role yet: set a zone's Role to entry, "
                      "exit or both in Settings → Zones.",
                      class_="pad error")
    else:
        note = ""
    d = defer.gatherResults([visits.inside(),
                             visits.report(start, start + DAY_MS - 1)],
                            consumeErrors=True)

    def show(results):
        inside, report = results
        long = longerThan(inside, hours * 3600, now)
        form = tags.form(
            tags.input(type="hidden", name="tab", value="visits"),
            tags.input(type="hidden", name="tz", value=str(tz), class_="tz"),
            _labelled("Day", tags.input(type="date", name="day", id="v-day",
                                        value=dayText)),
            _labelled("Long stay from, hours", tags.input(
                type="number", name="hours", min="0", value=str(hours),
                id="v-hours")),
            tags.button("Show", type="submit", class_="btn primary"),
            method="get", action="/", class_="search-form")
        return tags.div(
            _card("Inside now", [tags.strong(str(len(inside)),
                                             id="inside-count",
                                             class_="big"),
                                 " vehicles entered and have not left."],
                  note, tags.div(form, class_="pad"),
                  _table("inside", _visitRows(inside, admin, now,
                                              "Nobody inside."))),
            _card("Long stays", "Inside for %d hours or more." % (hours,),
                  _table("long-stays", _visitRows(
                      long, admin, now, "No long stays."))),
            _card("Visits on %s" % (dayText,),
                  "%d visits with an entry or exit that day; entries per "
                  "hour below." % (len(report.visits),),
                  tags.div(entriesChart(report.entriesPerHour, tz),
                           class_="pad"),
                  _table("day-visits", _visitRows(
                      report.visits[:500], admin, now, "No visits."))),
            id="visits-card")

    def failed(f):
        return _card("Visits", "The journal cannot be read now: %s"
                     % (f.value.subFailure.getErrorMessage()
                        if hasattr(f.value, "subFailure")
                        else f.getErrorMessage(),))
    return d.addCallbacks(show, failed)
