"""
C{GET /lists}: the Lists page -- lists and their entries (add, edit,
delete, search), CSV import and export, the match preview and the access
log.  A standalone page with the admin page's look; its script
(C{static/lists.js}) works through the JSON API only (L{numberok.lists.api})
and puts text into the page with C{textContent}, never as HTML.
"""

from __future__ import annotations

from twisted.web.template import Tag, flattenString, tags

from numberok.web.common import Endpoint, answerHTML
from numberok.web.tabs import navigation, tabNamed


def _page(csrf: str):
    field = lambda label, **attrs: tags.label(  # noqa: E731
        label, tags.input(**attrs))
    return tags.html(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport",
                      content="width=device-width, initial-scale=1"),
            tags.meta(name="csrf-token", content=csrf),
            tags.title("numberok · Lists"),
            tags.link(rel="icon", href="data:,"),
            tags.link(rel="stylesheet", href="/static/admin.css"),
            tags.script(src="/static/lists.js", defer="defer")),
        tags.body(
            tags.header(
                tags.div(tags.span("N", class_="logo"), " numberok ",
                         tags.span("known plates", class_="sub"),
                         class_="brand"),
                tags.div(tags.a("Admin page", href="/",
                                class_="btn small ghost light"),
                         class_="topbar-right"),
                class_="topbar"),
            Tag("main")(
                navigation(None, tabNamed("lists")),
                tags.div(
                    tags.section(
                        tags.div(tags.h2("Lists"), class_="card-head"),
                        tags.div(id="list-items"),
                        tags.form(
                            field("Name", name="name", required="required",
                                  placeholder="staff"),
                            tags.label("Kind", tags.select(
                                [tags.option(k, value=k)
                                 for k in ("allow", "deny", "info")],
                                name="kind")),
                            field("Distance", name="distance",
                                  type="number", min="0", max="2",
                                  value="0"),
                            field("Scope", name="scope",
                                  placeholder="0 or 0:1, empty: all"),
                            tags.button("Save list", type="submit",
                                        class_="btn small"),
                            id="list-form", class_="inline-form"),
                        tags.button("Delete list", id="delete-list",
                                    type="button", class_="btn small ghost"),
                        tags.div(id="list-errors", class_="errors"),
                        class_="card"),
                    tags.section(
                        tags.div(tags.h2("Entries ",
                                         tags.span(id="entries-title")),
                                 class_="card-head"),
                        tags.div(
                            field("Search", id="search", type="search",
                                  placeholder="plate, owner, comment"),
                            tags.a("Export CSV", id="export", href="#",
                                   class_="btn small ghost"),
                            tags.label("Import CSV (replaces all)",
                                       tags.input(id="import", type="file",
                                                  accept=".csv,text/csv")),
                            class_="inline-form"),
                        tags.form(
                            field("Plate", name="plate", required="required",
                                  placeholder="A123BC77 or A*77"),
                            field("Owner", name="owner"),
                            field("Comment", name="comment"),
                            field("Valid from", name="validFrom",
                                  placeholder="2026-01-01"),
                            field("Valid until", name="validUntil",
                                  placeholder="2026-12-31"),
                            field("Windows", name="windows",
                                  placeholder="Mon-Fri 07:00-20:00"),
                            field("Visits left", name="visitsLeft",
                                  type="number", min="0"),
                            tags.button("Save entry", type="submit",
                                        class_="btn small"),
                            id="entry-form", class_="inline-form"),
                        tags.div(id="entry-errors", class_="errors"),
                        tags.table(
                            tags.thead(tags.tr(
                                [tags.th(h) for h in (
                                    "Plate", "Owner", "Comment", "Valid",
                                    "Windows", "Visits left", "")])),
                            tags.tbody(id="entry-rows"),
                            class_="table"),
                        tags.div(id="entries-count"),
                        class_="card"),
                    class_="lists-layout"),
                tags.section(
                    tags.div(tags.h2("Match preview"),
                             tags.p("What a read would match, and at which "
                                    "level: see what a misread would "
                                    "trigger.", class_="card-sub"),
                             class_="card-head"),
                    tags.form(
                        field("Plate as read", name="plate",
                              required="required"),
                        field("Distance", name="distance", type="number",
                              min="0", max="2",
                              placeholder="each list's own"),
                        tags.button("Preview", type="submit",
                                    class_="btn small"),
                        id="preview-form", class_="inline-form"),
                    tags.div(id="preview-decision"),
                    tags.table(tags.thead(tags.tr(
                        [tags.th(h) for h in ("List", "Kind", "Entry",
                                              "Match", "Valid now")])),
                        tags.tbody(id="preview-rows"), class_="table"),
                    class_="card"),
                tags.section(
                    tags.div(tags.h2("Access log"), class_="card-head"),
                    tags.table(tags.thead(tags.tr(
                        [tags.th(h) for h in (
                            "Time", "Plate", "Ch / zone", "List", "Entry",
                            "Match", "Access", "Action", "Result",
                            "Latency, ms")])),
                        tags.tbody(id="access-rows"), class_="table"),
                    class_="card"))))


class ListsPage(Endpoint):
    """C{GET /lists}: the page (login needed, like the admin page)."""

    api = False

    def __init__(self, gate, lists) -> None:
        super().__init__(gate)
        self.lists = lists

    async def GET(self, request, identity) -> None:
        session = identity.session
        if session is None:
            session = self.gate.startSession(request, anonymous=True)
        body = await flattenString(request, _page(session.csrf))
        answerHTML(request, 200, b"<!DOCTYPE html>\n" + body)
