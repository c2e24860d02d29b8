"""
Known plates: lists of plates and masks (allow, deny, info), each with a
match distance and a scope of channels and zones; the access decision made
from them for every passage, from memory; and their storage beside the
journal.  docs/lists.rst.

 - L{model}: the values and their validation (the API's names);
 - L{windows}: weekly time windows and the time zone they are read in;
 - L{index}, L{matcher}: the in-memory index and the decision;
 - L{csvfile}: CSV import and export;
 - L{store}: the SQLite database (in a thread), with the access log;
 - L{service}: L{ListsService}, which owns them;
 - L{decider}: L{PassageDecider}, the decision on each passage's events;
 - L{api}: the JSON API under C{/api/lists}.
"""

from numberok.lists.decider import PassageDecider
from numberok.lists.matcher import Decision, Match, Matcher
from numberok.lists.model import Entry, ListError, PlateList
from numberok.lists.service import ListsService, NoSuchList

__all__ = ["Decision", "Entry", "ListError", "ListsService", "Match",
           "Matcher", "NoSuchList", "PassageDecider", "PlateList"]
