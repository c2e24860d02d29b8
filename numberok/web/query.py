"""
The query string a JSON API path takes, and nothing else: a parameter the
path does not know is answered 400 naming it, never quietly ignored (a
misspelt or unsupported filter would otherwise look applied:
C{GET /api/events?plate=ZZZ} answered every row).

Only the URL's query is looked at, not C{request.args}, which also holds
the fields of a posted form.
"""

from __future__ import annotations

from typing import Collection
from urllib.parse import parse_qsl

MAX_NAMED = 10
"""Unknown parameters named in one answer at most."""


def unknownParameters(request, allowed: Collection[str]) -> dict[str, str]:
    """
    The parameters of C{request}'s query that are not in C{allowed}, as
    the API's errors (C{{name: message}}); empty when all are known.
    """
    query = request.uri.partition(b"?")[2]
    if not query:
        return {}
    takes = (", ".join(sorted(allowed)) if allowed else "none")
    errors: dict[str, str] = {}
    # As text: parse_qsl given bytes re-encodes each decoded value as
    # ASCII and fails on a Cyrillic plate (?q=%D0%9F...).
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True,
                             max_num_fields=None, errors="replace"):
        text = name[:40]
        if text not in allowed and text not in errors:
            errors[text] = ("unknown query parameter; this path takes %s"
                            % (takes,))
            if len(errors) >= MAX_NAMED:
                break
    return errors
