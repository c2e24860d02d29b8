"""
Where the journal's HTTP resource used to live; it is
L{numberok.journal.resource} now.  Kept so that C{numberok.web.service}
imports it until its import is changed.
"""

from numberok.journal.resource import JournalResource

__all__ = ["JournalResource"]
