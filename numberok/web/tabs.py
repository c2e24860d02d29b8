"""
The admin page's tabs, listed once in L{TABS}: the navigation, the URL of
each tab (C{/?tab=<name>}, so a guard can bookmark the Journal) and which
pane the server renders all come from this list.  A new tab is one line
here with the function that renders its pane, or with the URL of a page of
its own (Lists, C{/lists}: L{numberok.lists.page}).

Settings and Live are parts of C{templates/admin.xml} (their pane is
always in the page, hidden when another tab is chosen, so the page's
script keeps working); the other tabs are rendered by their function, only
when chosen: they read the journal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from twisted.web.template import Tag, tags

from numberok.web.journal_tab import journalPane
from numberok.web.visits_tab import visitsPane

PaneRenderer = Callable[[Any, Any], Any]
"""C{(admin, request)} -> a Tag, or a Deferred firing with one."""


@dataclass(frozen=True, slots=True)
class Tab:
    """
    @ivar name: the C{tab} query parameter.
    @ivar label: the text of its link.
    @ivar pane: renders its pane; L{None} for the panes in admin.xml and
        for a page of its own.
    @ivar url: the page of its own, when the tab is one.
    """

    name: str
    label: str
    pane: Optional[PaneRenderer] = None
    url: Optional[str] = None


TABS: tuple[Tab, ...] = (
    Tab("settings", "Settings"),
    Tab("live", "Live"),
    Tab("journal", "Journal", journalPane),
    Tab("visits", "Visits", visitsPane),
    Tab("lists", "Lists", url="/lists"),
)


def chosenTab(request) -> Tab:
    """The tab the request's C{?tab=} names; Settings when none or
    unknown."""
    values = request.args.get(b"tab") or [b""]
    name = values[0].decode("ascii", "replace")
    return next((t for t in TABS if t.name == name and t.url is None),
                TABS[0])


def tabURL(tab: Tab) -> str:
    if tab.url is not None:
        return tab.url
    return "/" if tab is TABS[0] else "/?tab=" + tab.name


def tabNamed(name: str) -> Tab:
    return next(t for t in TABS if t.name == name)


def navigation(request, chosen: Optional[Tab] = None) -> Tag:
    """The tab links; the chosen one (by default the request's C{?tab=})
    marked C{aria-current}."""
    if chosen is None:
        chosen = chosenTab(request)
    links = []
    for tab in TABS:
        attrs = {"href": tabURL(tab), "class": "tab",
                 "data-tab": tab.name}
        if tab is chosen:
            attrs["aria-current"] = "page"
        links.append(tags.a(tab.label, **attrs))
    return tags.nav(links, class_="tabs", **{"aria-label": "Sections"})


def renderPane(admin, request) -> Any:
    """The chosen tab's rendered pane, or C{""} for an admin.xml one."""
    tab = chosenTab(request)
    if tab.pane is None:
        return ""
    return tab.pane(admin, request)
