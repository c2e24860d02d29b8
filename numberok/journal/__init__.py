"""
The event journal: every Lost event, kept on disk so that an integrator who
was disconnected can catch up (C{GET /api/events?since_id=N}) and the admin
page's "last events" survive a restart (docs/operations.rst, "Journal").

- L{numberok.journal.fields}: the one list of a row's fields, from which
  the SQL row, L{JournalEntry} and the JSON object are derived;
- L{numberok.journal.store}: the blocking part (SQLite, picture files,
  epochs), run only in the journal's thread;
- L{numberok.journal.service}: L{Journal}, the reactor side;
- L{numberok.journal.resource}: the HTTP resource for C{/api/events}.
- L{numberok.journal.schema}: schema versions and migrations;
- L{numberok.journal.query}, L{numberok.journal.search},
  L{numberok.journal.export}, L{numberok.journal.visits} and their
  C{*_api} resources: search, export and visits (docs/search.rst).
"""

from numberok.journal.fields import JournalEntry, JournalPage
from numberok.journal.service import Journal, JournalUnavailable
from numberok.journal.store import (DATABASE_NAME, SCREENSHOT_DIRECTORY,
                                    JournalStore)

__all__ = ["Journal", "JournalEntry", "JournalPage", "JournalUnavailable",
           "JournalStore", "DATABASE_NAME", "SCREENSHOT_DIRECTORY"]
